// The SQL implementation shared by both backends. It is `include!`d by
// `sqlite.rs` and `postgres.rs`, each of which defines `Db`, `SqlStore`
// (with `write` and `read` pools), `MIGRATOR`, `BACKEND`, `CLAIM_SQL`,
// `begin_write_tx` and `lock_workspace`; everything here is identical SQL
// for both, so one behaviour is written once and compiled twice.

use async_trait::async_trait;
use sqlx::{Row, Transaction};

use crate::store::*;

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    async fn ready(&self) -> StoreResult<bool> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_all(&self.read)
                .await?;
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn create_workspace(&self, ws: &NewWorkspace) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&ws.id)
            .bind(&ws.name)
            .bind(ws.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, key_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&ws.api_key_id)
        .bind(&ws.id)
        .bind(&ws.api_key_hash)
        .bind(ws.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn workspace_for_key(&self, key_hash: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn create_connection(&self, conn: &NewConnection) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO connections (id, workspace_id, platform, name, settings, secrets, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&conn.id)
        .bind(&conn.workspace_id)
        .bind(&conn.platform)
        .bind(&conn.name)
        .bind(&conn.settings)
        .bind(&conn.secrets)
        .bind(conn.now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn list_connections(&self, workspace_id: &str) -> StoreResult<Vec<ConnectionRow>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, platform, name, settings, created_at, auth_status, auth_error FROM connections \
             WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
        )
        .bind(workspace_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn get_connection(&self, workspace_id: &str, id: &str) -> StoreResult<Option<ConnectionRow>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, platform, name, settings, created_at, auth_status, auth_error FROM connections \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn update_connection(&self, workspace_id: &str, id: &str, update: &ConnectionUpdate<'_>) -> StoreResult<bool> {
        // Changed credentials are the way out of `needs_reauth`.
        let done = sqlx::query(
            "UPDATE connections SET name = $3, settings = $4, secrets = $5, updated_at = $6, \
               auth_status = 'ok', auth_error = NULL \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(update.name)
        .bind(update.settings)
        .bind(update.secrets)
        .bind(update.now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_connection(&self, workspace_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        // The row stays for the records that reference it; its secrets go.
        let done = sqlx::query(
            "UPDATE connections SET deleted_at = $3, updated_at = $3, secrets = $4 \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(now)
        .bind(Vec::<u8>::new())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn connection_secrets(&self, id: &str) -> StoreResult<Option<ConnectionSecrets>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, platform, settings, secrets, deleted_at FROM connections WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn delivery_stats(&self, connection_id: &str) -> StoreResult<DeliveryStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS received, \
               COALESCE(SUM(CASE WHEN status IN ('pending', 'processing') THEN 1 ELSE 0 END), 0) AS pending, \
               COALESCE(SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END), 0) AS done, \
               COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS dead, \
               MAX(received_at) AS last_delivery_at \
             FROM inbox WHERE connection_id = $1",
        )
        .bind(connection_id)
        .fetch_one(&self.read)
        .await?;
        Ok(DeliveryStats {
            received: row.try_get("received")?,
            pending: row.try_get("pending")?,
            done: row.try_get("done")?,
            dead: row.try_get("dead")?,
            last_delivery_at: row.try_get("last_delivery_at")?,
        })
    }

    async fn insert_deliveries(&self, batch: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>> {
        let mut tx = self.write.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for d in batch {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO inbox (workspace_id, connection_id, platform, topic, dedupe_key, body, \
                   received_at, status, attempts, available_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7) \
                 ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING id",
            )
            .bind(&d.workspace_id)
            .bind(&d.connection_id)
            .bind(&d.platform)
            .bind(&d.topic)
            .bind(&d.dedupe_key)
            .bind(&d.body)
            .bind(d.now)
            .fetch_optional(&mut *tx)
            .await?;
            outcomes.push(id.map_or(InsertOutcome::Duplicate, InsertOutcome::Stored));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn claim_deliveries(&self, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<ClaimedDelivery>> {
        let token = uuid::Uuid::now_v7().simple().to_string();
        Ok(sqlx::query_as(CLAIM_SQL)
            .bind(&token)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.write)
            .await?)
    }

    async fn release_delivery(
        &self,
        id: i64,
        lease_token: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE inbox SET status = 'pending', available_at = $3, last_error = $4, \
                   lease_token = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_token = $2",
            )
            .bind(id)
            .bind(lease_token)
            .bind(at)
            .bind(error),
            None => sqlx::query(
                "UPDATE inbox SET status = 'dead', processed_at = $3, last_error = $4, \
                   lease_token = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_token = $2",
            )
            .bind(id)
            .bind(lease_token)
            .bind(now)
            .bind(error),
        };
        query.execute(&self.write).await?;
        Ok(())
    }

    async fn list_inbox(&self, workspace_id: &str, status: &str, limit: i64) -> StoreResult<Vec<InboxRow>> {
        Ok(sqlx::query_as(
            "SELECT id, connection_id, platform, topic, status, attempts, received_at, last_error, processed_at \
             FROM inbox WHERE workspace_id = $1 AND status = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn replay_delivery(&self, workspace_id: &str, id: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET status = 'pending', attempts = 0, available_at = $3, processed_at = NULL \
             WHERE workspace_id = $1 AND id = $2 AND status = 'dead'",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn begin_write(&self, workspace_id: &str) -> StoreResult<Box<dyn WriteTx>> {
        let mut tx = begin_write_tx(&self.write).await?;
        lock_workspace(&mut tx, workspace_id).await?;
        Ok(Box::new(SqlWriteTx { tx }))
    }

    async fn open_stream(
        &self,
        workspace_id: &str,
        connection_id: &str,
        stream: &str,
        start_cursor: &str,
        since: Option<i64>,
        now: i64,
    ) -> StoreResult<StreamRow> {
        sqlx::query(
            "INSERT INTO sync_streams (connection_id, stream, workspace_id, cursor, since, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (connection_id, stream) DO NOTHING",
        )
        .bind(connection_id)
        .bind(stream)
        .bind(workspace_id)
        .bind(start_cursor)
        .bind(since)
        .bind(now)
        .execute(&self.write)
        .await?;
        sqlx::query_as(&format!("{STREAM_COLUMNS} WHERE connection_id = $1 AND stream = $2"))
            .bind(connection_id)
            .bind(stream)
            .fetch_one(&self.write)
            .await
            .map_err(Into::into)
    }

    async fn reset_stream(&self, workspace_id: &str, connection_id: &str, stream: &str, cursor: &str, since: Option<i64>, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sync_streams (connection_id, stream, workspace_id, cursor, since, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (connection_id, stream) DO UPDATE SET cursor = excluded.cursor, since = excluded.since, \
               watermark = NULL, caught_up = 0, records = 0, pages = 0, started_at = excluded.started_at, \
               last_error = NULL, last_error_at = NULL, updated_at = excluded.updated_at",
        )
        .bind(connection_id)
        .bind(stream)
        .bind(workspace_id)
        .bind(cursor)
        .bind(since)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn streams(&self, connection_id: &str) -> StoreResult<Vec<StreamRow>> {
        Ok(sqlx::query_as(&format!("{STREAM_COLUMNS} WHERE connection_id = $1 ORDER BY stream"))
            .bind(connection_id)
            .fetch_all(&self.read)
            .await?)
    }

    async fn stream_error(&self, connection_id: &str, stream: &str, error: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sync_streams SET last_error = $3, last_error_at = $4, updated_at = $4 \
             WHERE connection_id = $1 AND stream = $2",
        )
        .bind(connection_id)
        .bind(stream)
        .bind(error)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn set_auth_status(&self, connection_id: &str, status: &str, error: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE connections SET auth_status = $2, auth_error = $3 WHERE id = $1")
            .bind(connection_id)
            .bind(status)
            .bind(error)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn update_connection_secrets(&self, connection_id: &str, sealed: &[u8], now: i64) -> StoreResult<()> {
        // New credentials are the way out of `needs_reauth`.
        sqlx::query(
            "UPDATE connections SET secrets = $2, updated_at = $3, auth_status = 'ok', auth_error = NULL \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(connection_id)
        .bind(sealed)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn sync_target(&self, connection_id: &str) -> StoreResult<Option<SyncTarget>> {
        Ok(sqlx::query_as(&format!("{SYNC_TARGET_COLUMNS} WHERE id = $1 AND deleted_at IS NULL"))
            .bind(connection_id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn due_syncs(&self, platforms: &[&str], now: i64, limit: i64) -> StoreResult<Vec<SyncTarget>> {
        if platforms.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{SYNC_TARGET_COLUMNS} WHERE deleted_at IS NULL AND auth_status = 'ok' \
               AND (next_sync_at IS NULL OR next_sync_at <= $1) \
               AND (sync_lease_until IS NULL OR sync_lease_until <= $1) \
               AND platform IN ({}) ORDER BY next_sync_at, id LIMIT $2",
            numbered(3, platforms.len())
        );
        let mut query = sqlx::query_as(&sql).bind(now).bind(limit);
        for platform in platforms {
            query = query.bind(*platform);
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    async fn claim_sync(&self, connection_id: &str, owner: &str, until: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE connections SET sync_lease_owner = $2, sync_lease_until = $3 \
             WHERE id = $1 AND (sync_lease_until IS NULL OR sync_lease_until <= $4 OR sync_lease_owner = $2)",
        )
        .bind(connection_id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_sync(&self, connection_id: &str, owner: &str, next_sync_at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE connections SET sync_lease_owner = NULL, sync_lease_until = NULL, next_sync_at = $3 \
             WHERE id = $1 AND sync_lease_owner = $2",
        )
        .bind(connection_id)
        .bind(owner)
        .bind(next_sync_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn save_oauth_state(&self, state: &str, connection_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO oauth_states (state, connection_id, created_at) VALUES ($1, $2, $3)")
            .bind(state)
            .bind(connection_id)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn take_oauth_state(&self, state: &str, not_before: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("DELETE FROM oauth_states WHERE state = $1 AND created_at >= $2 RETURNING connection_id")
            .bind(state)
            .bind(not_before)
            .fetch_optional(&self.write)
            .await?)
    }

    async fn complaints(&self, workspace_id: &str, status: &str, severity: Option<&str>, limit: i64) -> StoreResult<Vec<ComplaintRow>> {
        Ok(sqlx::query_as(&format!(
            "{COMPLAINT_COLUMNS} WHERE c.workspace_id = $1 AND c.status = $2 AND ($3 = '' OR c.severity = $3) \
             ORDER BY c.id DESC LIMIT $4"
        ))
        .bind(workspace_id)
        .bind(status)
        .bind(severity.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn profile_complaints(&self, profile_id: &str) -> StoreResult<Vec<ComplaintRow>> {
        Ok(sqlx::query_as(&format!("{COMPLAINT_COLUMNS} WHERE r.profile_id = $1 ORDER BY c.id"))
            .bind(profile_id)
            .fetch_all(&self.read)
            .await?)
    }

    async fn suggestions(&self, workspace_id: &str, status: &str, limit: i64) -> StoreResult<Vec<SuggestionRow>> {
        Ok(sqlx::query_as(&format!("{SUGGESTION_COLUMNS} WHERE workspace_id = $1 AND status = $2 ORDER BY id DESC LIMIT $3"))
            .bind(workspace_id)
            .bind(status)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    async fn find_profiles(&self, workspace_id: &str, query: &ProfileQuery) -> StoreResult<Vec<String>> {
        let (kind, value, platform) = match query {
            ProfileQuery::Email(v) => ("email", v.as_str(), None),
            ProfileQuery::Phone(v) => ("phone", v.as_str(), None),
            ProfileQuery::External { platform, external_id } => {
                ("customer_id", external_id.as_str(), Some(platform.as_str()))
            }
        };
        // Connection-scoped keys carry their connection id as scope, so the
        // platform filter joins on it; global keys have an empty scope.
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.profile_id FROM record_keys k \
             JOIN source_records r ON r.connection_id = k.connection_id \
               AND r.kind = k.record_kind AND r.external_id = k.external_id \
             LEFT JOIN connections c ON c.id = k.key_scope \
             WHERE k.workspace_id = $1 AND k.key_kind = $2 AND k.key_value = $3 \
               AND ($4 = '' OR c.platform = $4) \
             ORDER BY r.profile_id LIMIT 100",
        )
        .bind(workspace_id)
        .bind(kind)
        .bind(value)
        .bind(platform.unwrap_or(""))
        .fetch_all(&self.read)
        .await?)
    }

    async fn get_profile(&self, workspace_id: &str, id: &str) -> StoreResult<Option<ProfileRow>> {
        // Merges keep aliases pointing straight at the survivor; the bound
        // only guards against a corrupt chain.
        let mut id = id.to_string();
        for _ in 0..8 {
            let row = sqlx::query(
                "SELECT id, merged_into, view, created_at, updated_at FROM profiles \
                 WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace_id)
            .bind(&id)
            .fetch_optional(&self.read)
            .await?;
            let Some(row) = row else { return Ok(None) };
            match row.try_get::<Option<String>, _>("merged_into")? {
                Some(survivor) => id = survivor,
                None => {
                    return Ok(Some(ProfileRow {
                        id: row.try_get("id")?,
                        view: row.try_get("view")?,
                        created_at: row.try_get("created_at")?,
                        updated_at: row.try_get("updated_at")?,
                    }))
                }
            }
        }
        Err(StoreError::Corrupt(format!("profile alias chain from {id} does not end")))
    }

    async fn timeline(&self, profile_id: &str, filter: &TimelineFilter, limit: i64) -> StoreResult<Vec<StoredRecord>> {
        Ok(sqlx::query_as(
            "SELECT r.connection_id, c.platform, r.kind, r.external_id, r.version, r.occurred_at, r.data \
             FROM source_records r JOIN connections c ON c.id = r.connection_id \
             WHERE r.profile_id = $1 AND r.kind <> 'customer' \
               AND ($2 = '' OR r.kind = $2) \
               AND ($3 = '' OR COALESCE(r.channel, c.platform) = $3) \
               AND ($4 = '' OR r.conversation_id = $4) \
             ORDER BY r.occurred_at DESC, r.external_id DESC LIMIT $5",
        )
        .bind(profile_id)
        .bind(filter.kind.as_deref().unwrap_or(""))
        .bind(filter.channel.as_deref().unwrap_or(""))
        .bind(filter.conversation_id.as_deref().unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn conversations(&self, profile_id: &str) -> StoreResult<Vec<ConversationRow>> {
        Ok(sqlx::query_as(
            "SELECT conversation_id, MAX(channel) AS channel, COUNT(*) AS messages, \
               MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at \
             FROM source_records WHERE profile_id = $1 AND kind = 'message' AND conversation_id IS NOT NULL \
             GROUP BY conversation_id ORDER BY last_at DESC, conversation_id",
        )
        .bind(profile_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn explain(&self, profile_id: &str) -> StoreResult<Vec<LinkRow>> {
        Ok(sqlx::query_as(&format!(
            "{LINK_COLUMNS} WHERE l.removed_at IS NULL AND (ra.profile_id = $1 OR rb.profile_id = $1) \
             ORDER BY l.created_at, l.id"
        ))
        .bind(profile_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn protected_values(&self, workspace_id: &str) -> StoreResult<Vec<ProtectedRow>> {
        Ok(sqlx::query_as(
            "SELECT key_kind, key_value, source, reason, created_at FROM protected_values \
             WHERE workspace_id = $1 ORDER BY key_kind, key_value",
        )
        .bind(workspace_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn profile_ids(&self, workspace_id: &str, after: &str, limit: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM profiles WHERE workspace_id = $1 AND merged_into IS NULL AND id > $2 \
             AND EXISTS (SELECT 1 FROM source_records r WHERE r.profile_id = profiles.id) \
             ORDER BY id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn profile_sources(&self, profile_id: &str) -> StoreResult<Vec<RecordId>> {
        Ok(sqlx::query_as(
            "SELECT connection_id, kind, external_id FROM source_records WHERE profile_id = $1 \
             ORDER BY connection_id, kind, external_id",
        )
        .bind(profile_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn changes(&self, workspace_id: &str, after: i64, limit: i64) -> StoreResult<Vec<ChangeRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, kind, profile_id, data, created_at FROM changes \
             WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    // segments and care triggers:
    async fn segments(&self, workspace_id: &str) -> StoreResult<Vec<SegmentRow>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, name, filter, created_at, updated_at, deleted_at FROM segments \
             WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
        )
        .bind(workspace_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn segment(&self, workspace_id: &str, id: &str) -> StoreResult<Option<SegmentRow>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, name, filter, created_at, updated_at, deleted_at FROM segments \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn segment_members(&self, segment_id: &str, after: &str, limit: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT profile_id FROM segment_members WHERE segment_id = $1 AND profile_id > $2 \
             ORDER BY profile_id LIMIT $3",
        )
        .bind(segment_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn workspace_ids(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM workspaces ORDER BY id")
            .fetch_all(&self.read)
            .await?)
    }


    // destinations:
    async fn create_destination(&self, d: &NewDestination) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO destinations (id, workspace_id, kind, name, settings, secrets, segment_id, mapping, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&d.id)
        .bind(&d.workspace_id)
        .bind(&d.kind)
        .bind(&d.name)
        .bind(&d.settings)
        .bind(&d.secrets)
        .bind(&d.segment_id)
        .bind(&d.mapping)
        .bind(d.now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn list_destinations(&self, workspace_id: &str) -> StoreResult<Vec<DestinationRow>> {
        Ok(sqlx::query_as(&format!(
            "{DESTINATION_COLUMNS} WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn get_destination(&self, workspace_id: &str, id: &str) -> StoreResult<Option<DestinationRow>> {
        Ok(sqlx::query_as(&format!(
            "{DESTINATION_COLUMNS} WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn destination(&self, id: &str) -> StoreResult<Option<DestinationRow>> {
        Ok(sqlx::query_as(&format!("{DESTINATION_COLUMNS} WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn destination_secrets(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT secrets FROM destinations WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn update_destination(&self, workspace_id: &str, id: &str, u: &DestinationUpdate<'_>) -> StoreResult<bool> {
        // A change by a person closes the breaker: they may have fixed the cause.
        let done = sqlx::query(
            "UPDATE destinations SET name = $3, settings = $4, secrets = $5, segment_id = $6, mapping = $7, \
               status = $8, updated_at = $9, next_run_at = 0, consecutive_failures = 0, attempts = 0, \
               breaker_open_until = NULL \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(u.name)
        .bind(u.settings)
        .bind(u.secrets)
        .bind(u.segment_id)
        .bind(u.mapping)
        .bind(u.status)
        .bind(u.now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_destination(&self, workspace_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE destinations SET deleted_at = $3, updated_at = $3, secrets = $4 \
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(now)
        .bind(Vec::<u8>::new())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            // What was sent where is personal data: it goes with the destination.
            for table in ["destination_contacts", "destination_log", "destination_dead_letters"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE destination_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn active_destinations(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM destinations WHERE deleted_at IS NULL AND status = 'active' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?)
    }

    async fn claim_destination(&self, id: &str, owner: &str, until: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE destinations SET lease_owner = $2, lease_until = $3 \
             WHERE id = $1 AND deleted_at IS NULL AND status = 'active' AND next_run_at <= $4 \
               AND (lease_until IS NULL OR lease_until <= $4 OR lease_owner = $2)",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_destination(&self, id: &str, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE destinations SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn delivered_contacts(&self, destination_id: &str, profile_ids: &[String]) -> StoreResult<Vec<DeliveredContact>> {
        if profile_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT profile_id, hash, email FROM destination_contacts \
             WHERE destination_id = $1 AND profile_id IN ({})",
            numbered(2, profile_ids.len())
        );
        let mut query = sqlx::query_as(&sql).bind(destination_id);
        for id in profile_ids {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    async fn save_destination_progress(&self, p: &DestinationProgress) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE destinations SET cursor = $3, next_run_at = $4, attempts = $5, consecutive_failures = $6, \
               breaker_open_until = $7, \
               last_success_at = CASE WHEN $8 THEN $9 ELSE last_success_at END, \
               last_error = CASE WHEN $10 IS NULL THEN last_error ELSE $10 END, \
               last_error_at = CASE WHEN $10 IS NULL THEN last_error_at ELSE $9 END, \
               status = COALESCE($11, status), lease_until = $9 \
             WHERE id = $1 AND lease_owner = $2 AND deleted_at IS NULL",
        )
        .bind(&p.destination_id)
        .bind(&p.owner)
        .bind(p.cursor)
        .bind(p.next_run_at)
        .bind(p.attempts)
        .bind(p.consecutive_failures)
        .bind(p.breaker_open_until)
        .bind(p.succeeded)
        .bind(p.now)
        .bind(&p.error)
        .bind(&p.status)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for c in &p.contacts {
            match &c.hash {
                Some(hash) => {
                    sqlx::query(
                        "INSERT INTO destination_contacts (destination_id, profile_id, hash, email, delivered_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (destination_id, profile_id) \
                         DO UPDATE SET hash = excluded.hash, email = excluded.email, delivered_at = excluded.delivered_at",
                    )
                    .bind(&p.destination_id)
                    .bind(&c.profile_id)
                    .bind(hash)
                    .bind(&c.email)
                    .bind(p.now)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM destination_contacts WHERE destination_id = $1 AND profile_id = $2")
                        .bind(&p.destination_id)
                        .bind(&c.profile_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        for l in &p.log {
            sqlx::query(
                "INSERT INTO destination_log (destination_id, profile_id, seq, message_id, op, result, error, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&p.destination_id)
            .bind(&l.profile_id)
            .bind(l.seq)
            .bind(&l.message_id)
            .bind(&l.op)
            .bind(&l.result)
            .bind(&l.error)
            .bind(p.now)
            .execute(&mut *tx)
            .await?;
        }
        for d in &p.dead {
            sqlx::query(
                "INSERT INTO destination_dead_letters (destination_id, profile_id, seq, change, error, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&p.destination_id)
            .bind(&d.profile_id)
            .bind(d.seq)
            .bind(&d.change)
            .bind(&d.error)
            .bind(p.now)
            .execute(&mut *tx)
            .await?;
        }
        for id in &p.replayed {
            sqlx::query(
                "UPDATE destination_dead_letters SET status = 'replayed', replayed_at = $3 \
                 WHERE destination_id = $1 AND id = $2",
            )
            .bind(&p.destination_id)
            .bind(id)
            .bind(p.now)
            .execute(&mut *tx)
            .await?;
        }
        for (id, error) in &p.redead {
            sqlx::query(
                "UPDATE destination_dead_letters SET status = 'dead', error = $3 \
                 WHERE destination_id = $1 AND id = $2",
            )
            .bind(&p.destination_id)
            .bind(id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn destination_log(&self, destination_id: &str, profile_id: Option<&str>, limit: i64) -> StoreResult<Vec<DestinationLogRow>> {
        Ok(sqlx::query_as(
            "SELECT id, profile_id, seq, message_id, op, result, error, created_at FROM destination_log \
             WHERE destination_id = $1 AND ($2 IS NULL OR profile_id = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(destination_id)
        .bind(profile_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn dead_letters(&self, destination_id: &str, status: &str, limit: i64) -> StoreResult<Vec<DeadLetterRow>> {
        Ok(sqlx::query_as(
            "SELECT id, profile_id, seq, change, error, status, created_at, replayed_at FROM destination_dead_letters \
             WHERE destination_id = $1 AND status = $2 ORDER BY id LIMIT $3",
        )
        .bind(destination_id)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn dead_letter_count(&self, destination_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM destination_dead_letters WHERE destination_id = $1 AND status = 'dead'",
        )
        .bind(destination_id)
        .fetch_one(&self.read)
        .await?)
    }

    async fn queue_replay(&self, destination_id: &str, ids: &[i64], range: Option<(i64, i64)>) -> StoreResult<u64> {
        let mut queued = 0;
        let mut tx = self.write.begin().await?;
        for id in ids {
            queued += sqlx::query(
                "UPDATE destination_dead_letters SET status = 'queued' \
                 WHERE destination_id = $1 AND id = $2 AND status = 'dead'",
            )
            .bind(destination_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if let Some((from, to)) = range {
            queued += sqlx::query(
                "UPDATE destination_dead_letters SET status = 'queued' \
                 WHERE destination_id = $1 AND status = 'dead' AND created_at >= $2 AND created_at <= $3",
            )
            .bind(destination_id)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        // The engine waits out a failing tool; a person asking for a replay
        // wants it tried now.
        sqlx::query("UPDATE destinations SET next_run_at = 0 WHERE id = $1")
            .bind(destination_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn feed_head(&self, workspace_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_one(&self.read)
            .await?)
    }


    // profile: settings, and the workspaces the periodic trait refresh visits.
    async fn profile_settings(&self, workspace_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT settings FROM workspace_settings WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&self.read)
            .await?)
    }


    // search:
    async fn search_terms(&self, workspace_id: &str, lookups: &[TermLookup], per_lookup: i64) -> StoreResult<Vec<TermHit>> {
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, one bounded primary-key range per lookup.
        let mut parts = Vec::with_capacity(lookups.len());
        let mut next = 3;
        for (i, lookup) in lookups.iter().enumerate() {
            let (filter, order) = match lookup {
                TermLookup::Exact(_) => (format!("term = ${next}"), "recency DESC"),
                TermLookup::Range { .. } => (format!("term >= ${next} AND term < ${}", next + 1), "term"),
            };
            next += if matches!(lookup, TermLookup::Exact(_)) { 1 } else { 2 };
            parts.push(format!(
                "SELECT * FROM (SELECT CAST({i} AS BIGINT) AS lookup, profile_id, recency FROM search_terms \
                 WHERE workspace_id = $1 AND {filter} ORDER BY {order} LIMIT $2) AS l{i}"
            ));
        }
        let sql = parts.join(" UNION ALL ");
        let mut query = sqlx::query_as(&sql).bind(workspace_id).bind(per_lookup);
        for lookup in lookups {
            query = match lookup {
                TermLookup::Exact(term) => query.bind(term),
                TermLookup::Range { from, to } => query.bind(from).bind(to),
            };
        }
        Ok(query.fetch_all(&self.read).await?)
    }
}

const STREAM_COLUMNS: &str = "SELECT connection_id, stream, cursor, since, watermark, caught_up, records, pages, \
    started_at, last_success_at, last_error, last_error_at, updated_at FROM sync_streams";

/// A complaint with its record's profile, platform and time.
const COMPLAINT_COLUMNS: &str = "SELECT c.id, r.profile_id, c.connection_id, cn.platform, c.record_kind, \
    c.external_id, c.severity, c.reason, c.status, r.occurred_at, c.created_at, c.resolved_at \
    FROM complaints c \
    JOIN source_records r ON r.connection_id = c.connection_id AND r.kind = c.record_kind \
      AND r.external_id = c.external_id \
    JOIN connections cn ON cn.id = c.connection_id";

const SUGGESTION_COLUMNS: &str =
    "SELECT id, profile_a, profile_b, reason, evidence, status, created_at, decided_at FROM suggestions";

const SYNC_TARGET_COLUMNS: &str =
    "SELECT id, workspace_id, platform, settings, secrets, auth_status FROM connections";

/// Links with the platforms and current profiles of both records.
const LINK_COLUMNS: &str = "SELECT l.id, l.a_connection, l.a_kind, l.a_external, ca.platform AS a_platform, \
    l.b_connection, l.b_kind, l.b_external, cb.platform AS b_platform, l.rule, l.score, l.evidence, l.created_at \
    FROM identity_links l \
    JOIN source_records ra ON ra.connection_id = l.a_connection AND ra.kind = l.a_kind AND ra.external_id = l.a_external \
    JOIN source_records rb ON rb.connection_id = l.b_connection AND rb.kind = l.b_kind AND rb.external_id = l.b_external \
    JOIN connections ca ON ca.id = l.a_connection \
    JOIN connections cb ON cb.id = l.b_connection";

/// Records with each key they carry; a record without keys appears once.
const RECORD_KEY_ROWS: &str = "SELECT r.profile_id, r.connection_id, r.kind, r.external_id, r.created_at, \
    k.key_kind, k.key_scope, k.key_value \
    FROM source_records r LEFT JOIN record_keys k ON k.connection_id = r.connection_id \
      AND k.record_kind = r.kind AND k.external_id = r.external_id";
const RECORD_KEY_ORDER: &str = "ORDER BY r.created_at, r.connection_id, r.kind, r.external_id";

/// Joins a cannot-link's two records to their profiles as `ra` and `rb`.
const CANNOT_LINK_RECORDS: &str = "FROM cannot_links c \
    JOIN source_records ra ON ra.connection_id = c.a_connection AND ra.kind = c.a_kind AND ra.external_id = c.a_external \
    JOIN source_records rb ON rb.connection_id = c.b_connection AND rb.kind = c.b_kind AND rb.external_id = c.b_external";

pub struct SqlWriteTx {
    tx: Transaction<'static, Db>,
}

/// `$first, $first+1, …` for `n` values, for statements built at run time.
fn numbered(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl WriteTx for SqlWriteTx {
    async fn record_state(&mut self, r: &RecordRef) -> StoreResult<Option<RecordState>> {
        Ok(sqlx::query_as(
            "SELECT version, profile_id FROM source_records \
             WHERE connection_id = $1 AND kind = $2 AND external_id = $3",
        )
        .bind(r.connection_id)
        .bind(r.kind)
        .bind(r.external_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn profiles_with_keys(
        &mut self,
        workspace_id: &str,
        keys: &[ScopedKey],
    ) -> StoreResult<Vec<ProfileStub>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One indexed lookup per key, joined by UNION ALL: an OR over the
        // keys would let the planner scan the whole table instead.
        let lookups = (0..keys.len())
            .map(|i| {
                let p = 2 + i * 3;
                format!(
                    "SELECT connection_id, record_kind, external_id FROM record_keys \
                     WHERE workspace_id = $1 AND key_kind = ${p} AND key_value = ${} AND key_scope = ${}",
                    p + 2,
                    p + 1
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let sql = format!(
            "SELECT DISTINCT p.id, p.created_at FROM ({lookups}) k \
             JOIN source_records r ON r.connection_id = k.connection_id \
               AND r.kind = k.record_kind AND r.external_id = k.external_id \
             JOIN profiles p ON p.id = r.profile_id \
             ORDER BY p.created_at, p.id"
        );
        let mut query = sqlx::query_as(&sql).bind(workspace_id);
        for key in keys {
            query = query.bind(key.kind).bind(&key.scope).bind(&key.value);
        }
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    async fn profile_stub(&mut self, id: &str) -> StoreResult<ProfileStub> {
        sqlx::query_as("SELECT id, created_at FROM profiles WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn create_profile(&mut self, workspace_id: &str, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO profiles (id, workspace_id, merged_into, view, created_at, updated_at) \
             VALUES ($1, $2, NULL, '{}', $3, $3)",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn absorb_profile(&mut self, survivor: &str, absorbed: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE source_records SET profile_id = $1 WHERE profile_id = $2")
            .bind(survivor)
            .bind(absorbed)
            .execute(&mut *self.tx)
            .await?;
        // Earlier aliases of the absorbed profile now point at the survivor too.
        sqlx::query("UPDATE profiles SET merged_into = $1, updated_at = $3 WHERE merged_into = $2")
            .bind(survivor)
            .bind(absorbed)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE profiles SET merged_into = $1, view = '{}', updated_at = $3 WHERE id = $2")
            .bind(survivor)
            .bind(absorbed)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn upsert_record(&mut self, r: &NewRecord<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO source_records (workspace_id, connection_id, kind, external_id, version, \
               occurred_at, data, profile_id, created_at, updated_at, channel, conversation_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) \
             ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET \
               version = excluded.version, occurred_at = excluded.occurred_at, data = excluded.data, \
               profile_id = excluded.profile_id, updated_at = excluded.updated_at, \
               channel = excluded.channel, conversation_id = excluded.conversation_id",
        )
        .bind(r.workspace_id)
        .bind(r.connection_id)
        .bind(r.kind)
        .bind(r.external_id)
        .bind(r.version)
        .bind(r.occurred_at)
        .bind(r.data)
        .bind(r.profile_id)
        .bind(r.now)
        .bind(r.channel)
        .bind(r.conversation_id)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM record_keys WHERE connection_id = $1 AND record_kind = $2 AND external_id = $3")
            .bind(r.connection_id)
            .bind(r.kind)
            .bind(r.external_id)
            .execute(&mut *self.tx)
            .await?;
        if r.keys.is_empty() {
            return Ok(());
        }
        let rows = (0..r.keys.len())
            .map(|i| format!("($1, $2, $3, $4, {})", numbered(5 + i * 3, 3)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO record_keys (workspace_id, connection_id, record_kind, external_id, \
               key_kind, key_scope, key_value) VALUES {rows} ON CONFLICT DO NOTHING"
        );
        let mut query = sqlx::query(&sql)
            .bind(r.workspace_id)
            .bind(r.connection_id)
            .bind(r.kind)
            .bind(r.external_id);
        for key in r.keys {
            query = query.bind(key.kind).bind(&key.scope).bind(&key.value);
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn profile_records(&mut self, profile_id: &str) -> StoreResult<Vec<StoredRecord>> {
        Ok(sqlx::query_as(
            "SELECT r.connection_id, c.platform, r.kind, r.external_id, r.version, r.occurred_at, r.data \
             FROM source_records r JOIN connections c ON c.id = r.connection_id \
             WHERE r.profile_id = $1 ORDER BY r.occurred_at, r.external_id",
        )
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn profile_view(&mut self, profile_id: &str) -> StoreResult<String> {
        sqlx::query_scalar("SELECT view FROM profiles WHERE id = $1")
            .bind(profile_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn save_profile_view(&mut self, profile_id: &str, view: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE profiles SET view = $2, updated_at = $3 WHERE id = $1")
            .bind(profile_id)
            .bind(view)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn append_change(&mut self, c: &NewChange<'_>) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO changes (workspace_id, kind, profile_id, data, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        )
        .bind(c.workspace_id)
        .bind(c.kind)
        .bind(c.profile_id)
        .bind(c.data)
        .bind(c.now)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn set_complaint(&mut self, c: &NewComplaint<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO complaints (workspace_id, connection_id, record_kind, external_id, severity, reason, \
               status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) \
             ON CONFLICT (connection_id, record_kind, external_id) DO UPDATE SET \
               severity = excluded.severity, reason = excluded.reason",
        )
        .bind(c.workspace_id)
        .bind(c.record.connection_id)
        .bind(c.record.kind)
        .bind(c.record.external_id)
        .bind(c.severity)
        .bind(c.reason)
        .bind(c.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn clear_complaint(&mut self, r: &RecordRef<'_>) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM complaints WHERE connection_id = $1 AND record_kind = $2 AND external_id = $3 \
               AND status = 'open'",
        )
        .bind(r.connection_id)
        .bind(r.kind)
        .bind(r.external_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn open_complaint_severities(&mut self, profile_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT c.severity FROM complaints c JOIN source_records r ON r.connection_id = c.connection_id \
               AND r.kind = c.record_kind AND r.external_id = c.external_id \
             WHERE r.profile_id = $1 AND c.status = 'open'",
        )
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn resolve_complaint(&mut self, workspace_id: &str, id: i64, now: i64) -> StoreResult<Option<String>> {
        let record: Option<(String, String, String)> = sqlx::query_as(
            "UPDATE complaints SET status = 'resolved', resolved_at = $3 \
             WHERE workspace_id = $1 AND id = $2 AND status = 'open' \
             RETURNING connection_id, record_kind, external_id",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some((connection_id, kind, external_id)) = record else { return Ok(None) };
        Ok(sqlx::query_scalar(
            "SELECT profile_id FROM source_records WHERE connection_id = $1 AND kind = $2 AND external_id = $3",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(external_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn suggest(&mut self, s: &NewSuggestion<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO suggestions (workspace_id, profile_a, profile_b, reason, evidence, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT (workspace_id, profile_a, profile_b) DO NOTHING",
        )
        .bind(s.workspace_id)
        .bind(s.profile_a)
        .bind(s.profile_b)
        .bind(s.reason)
        .bind(s.evidence)
        .bind(s.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn decide_suggestion(&mut self, workspace_id: &str, id: i64, status: &str, now: i64) -> StoreResult<Option<SuggestionRow>> {
        Ok(sqlx::query_as(
            "UPDATE suggestions SET status = $3, decided_at = $4 WHERE workspace_id = $1 AND id = $2 AND status = 'open' \
             RETURNING id, profile_a, profile_b, reason, evidence, status, created_at, decided_at",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(status)
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn connection_settings(&mut self, connection_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT settings FROM connections WHERE id = $1")
            .bind(connection_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn live_profile(&mut self, id: &str) -> StoreResult<Option<ProfileStub>> {
        // Merges keep aliases pointing straight at the survivor: one hop.
        let survivor: Option<Option<String>> = sqlx::query_scalar("SELECT merged_into FROM profiles WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(survivor) = survivor else { return Ok(None) };
        let id = survivor.unwrap_or_else(|| id.to_string());
        Ok(sqlx::query_as("SELECT id, created_at FROM profiles WHERE id = $1 AND merged_into IS NULL")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn order_profile(&mut self, workspace_id: &str, order: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT profile_id FROM source_records WHERE workspace_id = $1 AND kind = 'order' AND external_id = $2 \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(workspace_id)
        .bind(order)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn advance_stream(&mut self, a: &StreamAdvance<'_>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sync_streams SET cursor = $4, watermark = COALESCE($5, watermark), caught_up = $6, \
               records = records + $7, pages = pages + 1, last_success_at = $8, last_error = NULL, \
               last_error_at = NULL, updated_at = $8 \
             WHERE connection_id = $1 AND stream = $2 AND cursor = $3",
        )
        .bind(a.connection_id)
        .bind(a.stream)
        .bind(a.expected_cursor)
        .bind(a.cursor)
        .bind(a.watermark)
        .bind(i64::from(a.caught_up))
        .bind(a.records)
        .bind(a.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete_delivery(&mut self, id: i64, lease_token: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET status = 'done', processed_at = $3, last_error = NULL, \
               lease_token = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_token = $2 AND status = 'processing'",
        )
        .bind(id)
        .bind(lease_token)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn protected_keys(&mut self, workspace_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT key_kind, key_value FROM protected_values WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn protect(&mut self, workspace_id: &str, kind: &str, value: &str, source: &str, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO protected_values (workspace_id, key_kind, key_value, source, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, key_kind, key_value) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(kind)
        .bind(value)
        .bind(source)
        .bind(reason)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn unprotect(&mut self, workspace_id: &str, kind: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM protected_values WHERE workspace_id = $1 AND key_kind = $2 AND key_value = $3")
            .bind(workspace_id)
            .bind(kind)
            .bind(value)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn key_holders(&mut self, workspace_id: &str, keys: &[ScopedKey], limit: i64) -> StoreResult<Vec<KeyHolder>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let lookups = (0..keys.len())
            .map(|i| {
                let p = 3 + i * 3;
                format!(
                    "SELECT connection_id, record_kind, external_id, key_kind, key_scope, key_value FROM record_keys \
                     WHERE workspace_id = $1 AND key_kind = ${p} AND key_value = ${} AND key_scope = ${}",
                    p + 2,
                    p + 1
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let sql = format!(
            "SELECT k.connection_id, k.record_kind AS kind, k.external_id, r.profile_id, k.key_kind, k.key_scope, k.key_value \
             FROM ({lookups}) k \
             JOIN source_records r ON r.connection_id = k.connection_id \
               AND r.kind = k.record_kind AND r.external_id = k.external_id \
             ORDER BY r.created_at, k.connection_id, k.record_kind, k.external_id LIMIT $2"
        );
        let mut query = sqlx::query_as(&sql).bind(workspace_id).bind(limit);
        for key in keys {
            query = query.bind(key.kind).bind(&key.scope).bind(&key.value);
        }
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    async fn profiles_with_value(&mut self, workspace_id: &str, kind: &str, value: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT r.profile_id FROM record_keys k \
             JOIN source_records r ON r.connection_id = k.connection_id \
               AND r.kind = k.record_kind AND r.external_id = k.external_id \
             WHERE k.workspace_id = $1 AND k.key_kind = $2 AND k.key_value = $3 ORDER BY r.profile_id",
        )
        .bind(workspace_id)
        .bind(kind)
        .bind(value)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn resolver_params(&mut self, workspace_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT params FROM resolver_params WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn save_resolver_params(&mut self, workspace_id: &str, params: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resolver_params (workspace_id, params, estimated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET params = excluded.params, estimated_at = excluded.estimated_at",
        )
        .bind(workspace_id)
        .bind(params)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn record_data(&mut self, r: RecordRef<'_>) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM source_records WHERE connection_id = $1 AND kind = $2 AND external_id = $3",
        )
        .bind(r.connection_id)
        .bind(r.kind)
        .bind(r.external_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn profile_values(&mut self, profile_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT k.key_kind, k.key_value FROM source_records r \
             JOIN record_keys k ON k.connection_id = r.connection_id \
               AND k.record_kind = r.kind AND k.external_id = r.external_id \
             WHERE r.profile_id = $1 AND k.key_kind IN ('email', 'phone') LIMIT 200",
        )
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn block_holders(&mut self, workspace_id: &str, blocks: &[ScopedKey], per_block: i64) -> StoreResult<Vec<KeyHolder>> {
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        // A LIMIT per value, so one common value (a frequent name) cannot
        // crowd out the rare ones that actually discriminate.
        let lookups = (0..blocks.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT connection_id, record_kind, external_id, key_kind, key_scope, key_value \
                     FROM record_keys WHERE workspace_id = $1 AND key_kind = 'block' AND key_value = ${} \
                     AND key_scope = '' LIMIT $2) b{i}",
                    i + 3
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let sql = format!(
            "SELECT k.connection_id, k.record_kind AS kind, k.external_id, r.profile_id, k.key_kind, k.key_scope, k.key_value \
             FROM ({lookups}) k \
             JOIN source_records r ON r.connection_id = k.connection_id \
               AND r.kind = k.record_kind AND r.external_id = k.external_id \
             ORDER BY k.key_value, r.created_at, k.connection_id, k.record_kind, k.external_id"
        );
        let mut query = sqlx::query_as(&sql).bind(workspace_id).bind(per_block);
        for block in blocks {
            query = query.bind(&block.value);
        }
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    async fn add_link(&mut self, l: &NewLink<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO identity_links (workspace_id, a_connection, a_kind, a_external, b_connection, b_kind, \
               b_external, rule, score, evidence, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(l.workspace_id)
        .bind(l.a.connection_id)
        .bind(l.a.kind)
        .bind(l.a.external_id)
        .bind(l.b.connection_id)
        .bind(l.b.kind)
        .bind(l.b.external_id)
        .bind(l.rule)
        .bind(l.score)
        .bind(l.evidence)
        .bind(l.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn remove_crossing_links(&mut self, profile_id: &str, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE identity_links SET removed_at = $2, removed_reason = $3 WHERE removed_at IS NULL AND id IN ( \
               SELECT l.id FROM identity_links l \
               JOIN source_records ra ON ra.connection_id = l.a_connection AND ra.kind = l.a_kind AND ra.external_id = l.a_external \
               JOIN source_records rb ON rb.connection_id = l.b_connection AND rb.kind = l.b_kind AND rb.external_id = l.b_external \
               WHERE ra.profile_id <> rb.profile_id AND (ra.profile_id = $1 OR rb.profile_id = $1))",
        )
        .bind(profile_id)
        .bind(now)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn cannot_link_between(&mut self, profile_a: &str, profile_b: &str) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 {CANNOT_LINK_RECORDS} WHERE (ra.profile_id = $1 AND rb.profile_id = $2) \
               OR (ra.profile_id = $2 AND rb.profile_id = $1) LIMIT 1"
        ))
        .bind(profile_a)
        .bind(profile_b)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(found.is_some())
    }

    async fn add_cannot_link(&mut self, workspace_id: &str, a: RecordRef<'_>, b: RecordRef<'_>, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO cannot_links (workspace_id, a_connection, a_kind, a_external, b_connection, b_kind, \
               b_external, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (a_connection, a_kind, a_external, b_connection, b_kind, b_external) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(a.connection_id)
        .bind(a.kind)
        .bind(a.external_id)
        .bind(b.connection_id)
        .bind(b.kind)
        .bind(b.external_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn clear_cannot_links(&mut self, profile_a: &str, profile_b: &str) -> StoreResult<()> {
        sqlx::query(&format!(
            "DELETE FROM cannot_links WHERE (a_connection, a_kind, a_external, b_connection, b_kind, b_external) IN ( \
               SELECT c.a_connection, c.a_kind, c.a_external, c.b_connection, c.b_kind, c.b_external {CANNOT_LINK_RECORDS} \
               WHERE (ra.profile_id = $1 AND rb.profile_id = $2) OR (ra.profile_id = $2 AND rb.profile_id = $1))"
        ))
        .bind(profile_a)
        .bind(profile_b)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn profile_keys(&mut self, profile_id: &str) -> StoreResult<Vec<RecordKeyRow>> {
        Ok(sqlx::query_as(&format!("{RECORD_KEY_ROWS} WHERE r.profile_id = $1 {RECORD_KEY_ORDER}"))
            .bind(profile_id)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn workspace_keys(&mut self, workspace_id: &str) -> StoreResult<Vec<RecordKeyRow>> {
        Ok(sqlx::query_as(&format!("{RECORD_KEY_ROWS} WHERE r.workspace_id = $1 {RECORD_KEY_ORDER}"))
            .bind(workspace_id)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn workspace_records(&mut self, workspace_id: &str) -> StoreResult<Vec<(RecordId, String)>> {
        let rows = sqlx::query(
            "SELECT connection_id, kind, external_id, data FROM source_records WHERE workspace_id = $1 \
             ORDER BY created_at, connection_id, kind, external_id",
        )
        .bind(workspace_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    RecordId {
                        connection_id: row.try_get("connection_id")?,
                        kind: row.try_get("kind")?,
                        external_id: row.try_get("external_id")?,
                    },
                    row.try_get("data")?,
                ))
            })
            .collect()
    }

    async fn remove_links_by_rule(&mut self, workspace_id: &str, rule: &str, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE identity_links SET removed_at = $3, removed_reason = $4 \
             WHERE workspace_id = $1 AND rule = $2 AND removed_at IS NULL",
        )
        .bind(workspace_id)
        .bind(rule)
        .bind(now)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn workspace_links(&mut self, workspace_id: &str) -> StoreResult<Vec<LinkRow>> {
        Ok(sqlx::query_as(&format!(
            "{LINK_COLUMNS} WHERE l.removed_at IS NULL AND l.workspace_id = $1 ORDER BY l.id"
        ))
        .bind(workspace_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn workspace_cannot_links(&mut self, workspace_id: &str) -> StoreResult<Vec<CannotLinkRow>> {
        Ok(sqlx::query_as(
            "SELECT a_connection, a_kind, a_external, b_connection, b_kind, b_external FROM cannot_links \
             WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn profile_links(&mut self, profile_id: &str) -> StoreResult<Vec<LinkRow>> {
        Ok(sqlx::query_as(&format!(
            "{LINK_COLUMNS} WHERE l.removed_at IS NULL AND ra.profile_id = $1 ORDER BY l.id"
        ))
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn profile_cannot_links(&mut self, profile_id: &str) -> StoreResult<Vec<CannotLinkRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT c.a_connection, c.a_kind, c.a_external, c.b_connection, c.b_kind, c.b_external \
             {CANNOT_LINK_RECORDS} WHERE ra.profile_id = $1 OR rb.profile_id = $1"
        ))
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn erase_record(&mut self, workspace_id: &str, r: RecordRef<'_>) -> StoreResult<Option<String>> {
        let profile: Option<String> = sqlx::query_scalar(
            "DELETE FROM source_records WHERE workspace_id = $1 AND connection_id = $2 AND kind = $3 \
             AND external_id = $4 RETURNING profile_id",
        )
        .bind(workspace_id)
        .bind(r.connection_id)
        .bind(r.kind)
        .bind(r.external_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        if profile.is_none() {
            return Ok(None);
        }
        for sql in [
            "DELETE FROM record_keys WHERE connection_id = $1 AND record_kind = $2 AND external_id = $3",
            "DELETE FROM complaints WHERE connection_id = $1 AND record_kind = $2 AND external_id = $3",
            "DELETE FROM identity_links WHERE (a_connection = $1 AND a_kind = $2 AND a_external = $3) \
               OR (b_connection = $1 AND b_kind = $2 AND b_external = $3)",
            "DELETE FROM cannot_links WHERE (a_connection = $1 AND a_kind = $2 AND a_external = $3) \
               OR (b_connection = $1 AND b_kind = $2 AND b_external = $3)",
        ] {
            sqlx::query(sql)
                .bind(r.connection_id)
                .bind(r.kind)
                .bind(r.external_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(profile)
    }

    async fn move_record(&mut self, r: RecordRef<'_>, profile_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE source_records SET profile_id = $4 WHERE connection_id = $1 AND kind = $2 AND external_id = $3")
            .bind(r.connection_id)
            .bind(r.kind)
            .bind(r.external_id)
            .bind(profile_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    // segments and care triggers:
    async fn profile_tags(&mut self, profile_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT tag FROM profile_tags WHERE profile_id = $1 ORDER BY tag")
            .bind(profile_id)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn change_tags(&mut self, profile_id: &str, add: &[String], remove: &[String], now: i64) -> StoreResult<()> {
        for tag in remove {
            sqlx::query("DELETE FROM profile_tags WHERE profile_id = $1 AND tag = $2")
                .bind(profile_id)
                .bind(tag)
                .execute(&mut *self.tx)
                .await?;
        }
        for tag in add {
            sqlx::query(
                "INSERT INTO profile_tags (profile_id, tag, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (profile_id, tag) DO NOTHING",
            )
            .bind(profile_id)
            .bind(tag)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn absorb_profile_extras(&mut self, survivor: &str, absorbed: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO profile_tags (profile_id, tag, created_at) \
             SELECT $1, tag, created_at FROM profile_tags WHERE profile_id = $2 \
             ON CONFLICT (profile_id, tag) DO NOTHING",
        )
        .bind(survivor)
        .bind(absorbed)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO profile_timezones (profile_id, utc_offset) \
             SELECT $1, utc_offset FROM profile_timezones WHERE profile_id = $2 \
             ON CONFLICT (profile_id) DO NOTHING",
        )
        .bind(survivor)
        .bind(absorbed)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE care_triggers SET profile_id = $1 WHERE profile_id = $2")
            .bind(survivor)
            .bind(absorbed)
            .execute(&mut *self.tx)
            .await?;
        for table in ["profile_tags", "profile_timezones", "profile_dates"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE profile_id = $1"))
                .bind(absorbed)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn customer_record_data(&mut self, profile_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM source_records WHERE profile_id = $1 AND kind = 'customer' \
             ORDER BY connection_id, external_id",
        )
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn segments_stamp(&mut self, workspace_id: &str) -> StoreResult<String> {
        let (count, latest): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM segments WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(format!("{count}:{latest}"))
    }

    async fn workspace_segments(&mut self, workspace_id: &str) -> StoreResult<Vec<SegmentRow>> {
        Ok(sqlx::query_as(
            "SELECT id, workspace_id, name, filter, created_at, updated_at, deleted_at FROM segments \
             WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
        )
        .bind(workspace_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn save_segment(&mut self, s: &SegmentRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO segments (id, workspace_id, name, filter, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, filter = excluded.filter, \
             updated_at = excluded.updated_at, deleted_at = excluded.deleted_at",
        )
        .bind(&s.id)
        .bind(&s.workspace_id)
        .bind(&s.name)
        .bind(&s.filter)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.deleted_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn profile_memberships(&mut self, profile_id: &str) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT m.segment_id, s.name, s.workspace_id FROM segment_members m JOIN segments s ON s.id = m.segment_id \
             WHERE m.profile_id = $1 ORDER BY m.segment_id",
        )
        .bind(profile_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn set_membership(&mut self, segment_id: &str, profile_id: &str, member: bool, now: i64) -> StoreResult<()> {
        let sql = if member {
            "INSERT INTO segment_members (segment_id, profile_id, entered_at) VALUES ($1, $2, $3) \
             ON CONFLICT (segment_id, profile_id) DO NOTHING"
        } else {
            "DELETE FROM segment_members WHERE segment_id = $1 AND profile_id = $2 AND $3 = $3"
        };
        sqlx::query(sql)
            .bind(segment_id)
            .bind(profile_id)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn profile_views(&mut self, workspace_id: &str, after: &str, limit: i64) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, view FROM profiles WHERE workspace_id = $1 AND merged_into IS NULL AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn set_profile_date(&mut self, workspace_id: &str, profile_id: &str, kind: &str, date: Option<&str>) -> StoreResult<()> {
        match date {
            Some(date) => {
                sqlx::query(
                    "INSERT INTO profile_dates (profile_id, workspace_id, kind, date, month_day) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (profile_id, kind) DO UPDATE SET date = excluded.date, month_day = excluded.month_day",
                )
                .bind(profile_id)
                .bind(workspace_id)
                .bind(kind)
                .bind(date)
                .bind(date.get(5..).unwrap_or_default())
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM profile_dates WHERE profile_id = $1 AND kind = $2")
                    .bind(profile_id)
                    .bind(kind)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }

    async fn drop_profile_dates(&mut self, profile_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM profile_dates WHERE profile_id = $1")
            .bind(profile_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn profile_timezone(&mut self, profile_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT utc_offset FROM profile_timezones WHERE profile_id = $1")
            .bind(profile_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn set_profile_timezone(&mut self, profile_id: &str, utc_offset: Option<&str>) -> StoreResult<()> {
        match utc_offset {
            Some(offset) => {
                sqlx::query(
                    "INSERT INTO profile_timezones (profile_id, utc_offset) VALUES ($1, $2) \
                     ON CONFLICT (profile_id) DO UPDATE SET utc_offset = excluded.utc_offset",
                )
                .bind(profile_id)
                .bind(offset)
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM profile_timezones WHERE profile_id = $1")
                    .bind(profile_id)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }

    async fn insert_trigger(&mut self, t: &NewTrigger<'_>) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO care_triggers (workspace_id, profile_id, kind, dedupe_key, details, status, due_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (workspace_id, dedupe_key) DO NOTHING",
        )
        .bind(t.workspace_id)
        .bind(t.profile_id)
        .bind(t.kind)
        .bind(t.dedupe_key)
        .bind(t.details)
        .bind(t.due_at)
        .bind(t.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(inserted.rows_affected() > 0)
    }

    async fn due_triggers(&mut self, workspace_id: &str, now: i64, limit: i64) -> StoreResult<Vec<TriggerRow>> {
        Ok(sqlx::query_as(
            "SELECT id, profile_id, kind, details, due_at, created_at FROM care_triggers \
             WHERE workspace_id = $1 AND status = 'pending' AND due_at <= $2 ORDER BY due_at, id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn finish_trigger(&mut self, id: i64, status: &str, reason: Option<&str>, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE care_triggers SET status = $2, reason = $3, fired_at = $4 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(reason)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn defer_trigger(&mut self, id: i64, due_at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE care_triggers SET due_at = $2 WHERE id = $1")
            .bind(id)
            .bind(due_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn fired_triggers_since(&mut self, profile_id: &str, since: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM care_triggers WHERE profile_id = $1 AND status = 'fired' AND fired_at > $2",
        )
        .bind(profile_id)
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn orders_between(&mut self, workspace_id: &str, from: i64, until: i64, limit: i64) -> StoreResult<Vec<OrderRecordRow>> {
        Ok(sqlx::query_as(
            "SELECT connection_id, external_id, profile_id, data FROM source_records \
             WHERE workspace_id = $1 AND kind = 'order' AND occurred_at >= $2 AND occurred_at < $3 \
             ORDER BY occurred_at LIMIT $4",
        )
        .bind(workspace_id)
        .bind(from)
        .bind(until)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn dates_on(&mut self, workspace_id: &str, month_days: &[String]) -> StoreResult<Vec<ProfileDateRow>> {
        if month_days.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT profile_id, kind, date FROM profile_dates WHERE workspace_id = $1 AND month_day IN ({}) \
             ORDER BY profile_id, kind",
            numbered(2, month_days.len())
        );
        let mut query = sqlx::query_as(&sql).bind(workspace_id);
        for day in month_days {
            query = query.bind(day);
        }
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    // profile: consent, settings, trait statistics and erasure.
    async fn record_consent(&mut self, c: &NewConsent<'_>) -> StoreResult<bool> {
        let stored = sqlx::query(
            "INSERT INTO consents (workspace_id, identifier, channel, granted, source, chosen_at, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (workspace_id, identifier, channel) DO UPDATE SET \
               granted = excluded.granted, source = excluded.source, \
               chosen_at = excluded.chosen_at, recorded_at = excluded.recorded_at \
             WHERE consents.chosen_at < excluded.chosen_at",
        )
        .bind(c.workspace_id)
        .bind(c.identifier)
        .bind(c.channel)
        .bind(i64::from(c.granted))
        .bind(c.source)
        .bind(c.chosen_at)
        .bind(c.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(stored.rows_affected() > 0)
    }

    async fn consents(&mut self, workspace_id: &str, identifiers: &[String]) -> StoreResult<Vec<ConsentRow>> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT identifier, channel, granted, source, chosen_at FROM consents \
             WHERE workspace_id = $1 AND identifier IN ({}) ORDER BY identifier, channel",
            numbered(2, identifiers.len())
        );
        let mut query = sqlx::query_as(&sql).bind(workspace_id);
        for identifier in identifiers {
            query = query.bind(identifier);
        }
        Ok(query.fetch_all(&mut *self.tx).await?)
    }

    async fn delete_consents(&mut self, workspace_id: &str, identifiers: &[String]) -> StoreResult<()> {
        if identifiers.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM consents WHERE workspace_id = $1 AND identifier IN ({})",
            numbered(2, identifiers.len())
        );
        let mut query = sqlx::query(&sql).bind(workspace_id);
        for identifier in identifiers {
            query = query.bind(identifier);
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn profile_settings(&mut self, workspace_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT settings FROM workspace_settings WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn save_profile_settings(&mut self, workspace_id: &str, settings: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO workspace_settings (workspace_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(workspace_id)
        .bind(settings)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn trait_stats(&mut self, workspace_id: &str) -> StoreResult<Option<(String, i64)>> {
        Ok(sqlx::query_as("SELECT stats, computed_at FROM trait_stats WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn save_trait_stats(&mut self, workspace_id: &str, stats: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO trait_stats (workspace_id, stats, computed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET stats = excluded.stats, computed_at = excluded.computed_at",
        )
        .bind(workspace_id)
        .bind(stats)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }


    async fn erase_profile(&mut self, workspace_id: &str, profile_id: &str) -> StoreResult<()> {
        const IDS: &str = "SELECT id FROM profiles WHERE workspace_id = $1 AND (id = $2 OR merged_into = $2)";
        for sql in [
            format!("DELETE FROM suggestions WHERE workspace_id = $1 AND (profile_a IN ({IDS}) OR profile_b IN ({IDS}))"),
            format!(
                "DELETE FROM changes WHERE workspace_id = $1 \
                 AND kind IN ('profile.created', 'profile.updated') AND profile_id IN ({IDS})"
            ),
            // Tags, dates (birthdays) and care triggers are personal too.
            format!("DELETE FROM profile_tags WHERE profile_id IN ({IDS})"),
            format!("DELETE FROM profile_timezones WHERE profile_id IN ({IDS})"),
            format!("DELETE FROM profile_dates WHERE profile_id IN ({IDS})"),
            format!("DELETE FROM care_triggers WHERE workspace_id = $1 AND profile_id IN ({IDS})"),
            "DELETE FROM profiles WHERE workspace_id = $1 AND (id = $2 OR merged_into = $2)".to_string(),
        ] {
            sqlx::query(&sql)
                .bind(workspace_id)
                .bind(profile_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    // search:
    async fn search_doc(&mut self, profile_id: &str) -> StoreResult<Option<SearchDoc>> {
        Ok(sqlx::query_as("SELECT workspace_id, recency, terms FROM search_docs WHERE profile_id = $1")
            .bind(profile_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn insert_search_terms(&mut self, workspace_id: &str, profile_id: &str, recency: i64, terms: &[&str]) -> StoreResult<()> {
        for chunk in terms.chunks(SEARCH_TERMS_PER_STATEMENT) {
            let rows = (0..chunk.len()).map(|i| format!("($1, ${}, $2, $3)", 4 + i)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "INSERT INTO search_terms (workspace_id, term, recency, profile_id) VALUES {rows} ON CONFLICT DO NOTHING"
            );
            let mut query = sqlx::query(&sql).bind(workspace_id).bind(recency).bind(profile_id);
            for term in chunk {
                query = query.bind(*term);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn delete_search_terms(&mut self, workspace_id: &str, profile_id: &str, recency: i64, terms: &[&str]) -> StoreResult<()> {
        for chunk in terms.chunks(SEARCH_TERMS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM search_terms WHERE workspace_id = $1 AND recency = $2 AND profile_id = $3 AND term IN ({})",
                numbered(4, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(workspace_id).bind(recency).bind(profile_id);
            for term in chunk {
                query = query.bind(*term);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn save_search_doc(&mut self, profile_id: &str, doc: Option<&SearchDoc>) -> StoreResult<()> {
        match doc {
            Some(doc) => {
                sqlx::query(
                    "INSERT INTO search_docs (profile_id, workspace_id, recency, terms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (profile_id) DO UPDATE SET workspace_id = excluded.workspace_id, \
                       recency = excluded.recency, terms = excluded.terms",
                )
                .bind(profile_id)
                .bind(&doc.workspace_id)
                .bind(doc.recency)
                .bind(&doc.terms)
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM search_docs WHERE profile_id = $1")
                    .bind(profile_id)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }
}

// destinations:
const DESTINATION_COLUMNS: &str = "SELECT id, workspace_id, kind, name, settings, segment_id, mapping, status, cursor, \
    next_run_at, attempts, consecutive_failures, breaker_open_until, last_success_at, last_error, last_error_at, \
    created_at FROM destinations";

// search:
/// Terms written per statement: well under both backends' bound-parameter limits.
const SEARCH_TERMS_PER_STATEMENT: usize = 500;
