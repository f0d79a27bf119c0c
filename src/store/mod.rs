//! Storage: one interface, two backends chosen by the database URL.
//!
//! The SQL is written once (`sql.rs`) in the dialect both SQLite and
//! PostgreSQL accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`) and
//! compiled for each backend; `sqlite.rs` and `postgres.rs` hold only what
//! really differs: pool setup, how a writer serialises per workspace, and how
//! workers claim jobs. The integration suite runs against both.

mod postgres;
mod sqlite;
mod types;

use std::sync::Arc;

use async_trait::async_trait;

pub use types::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the database named by `url` (`sqlite:` or `postgres:`).
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqlStore::connect(url).await?))
    } else {
        Ok(Arc::new(postgres::SqlStore::connect(url).await?))
    }
}

/// Everything the hub reads and writes. Methods are use cases, not tables.
#[async_trait]
pub trait Store: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> StoreResult<()>;
    /// True when the database answers and every embedded migration is applied.
    async fn ready(&self) -> StoreResult<bool>;

    async fn create_workspace(&self, ws: &NewWorkspace) -> StoreResult<()>;
    async fn workspace_for_key(&self, key_hash: &str) -> StoreResult<Option<String>>;

    async fn create_connection(&self, conn: &NewConnection) -> StoreResult<()>;
    async fn list_connections(&self, workspace_id: &str) -> StoreResult<Vec<ConnectionRow>>;
    async fn get_connection(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> StoreResult<Option<ConnectionRow>>;
    async fn update_connection(
        &self,
        workspace_id: &str,
        id: &str,
        update: &ConnectionUpdate<'_>,
    ) -> StoreResult<bool>;
    async fn delete_connection(&self, workspace_id: &str, id: &str, now: i64) -> StoreResult<bool>;
    /// Any connection by id, deleted or not, with its sealed secrets.
    async fn connection_secrets(&self, id: &str) -> StoreResult<Option<ConnectionSecrets>>;
    async fn delivery_stats(&self, connection_id: &str) -> StoreResult<DeliveryStats>;

    /// Stores deliveries in one transaction (group commit); a delivery whose
    /// dedupe key was seen before on its connection is not stored again.
    async fn insert_deliveries(&self, batch: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>>;
    /// Leases up to `limit` deliveries that are due, or whose lease ran out.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Gives a claimed delivery back: to retry at `retry_at`, or dead when `None`.
    async fn release_delivery(
        &self,
        id: i64,
        lease_token: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;
    async fn list_inbox(
        &self,
        workspace_id: &str,
        status: &str,
        limit: i64,
    ) -> StoreResult<Vec<InboxRow>>;
    /// Makes a dead delivery pending again; false if there is no such dead delivery.
    async fn replay_delivery(&self, workspace_id: &str, id: i64, now: i64) -> StoreResult<bool>;

    /// Begins the transaction in which a delivery's effects are applied.
    /// Writers of one workspace are serialised until it commits, so identity
    /// resolution and the change feed's order are never raced.
    async fn begin_write(&self, workspace_id: &str) -> StoreResult<Box<dyn WriteTx>>;

    /// The stream's row, creating it at `start_cursor` if it does not exist.
    async fn open_stream(
        &self,
        workspace_id: &str,
        connection_id: &str,
        stream: &str,
        start_cursor: &str,
        since: Option<i64>,
        now: i64,
    ) -> StoreResult<StreamRow>;
    /// Starts the stream over at `cursor` (a new backfill).
    async fn reset_stream(
        &self,
        workspace_id: &str,
        connection_id: &str,
        stream: &str,
        cursor: &str,
        since: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;
    async fn streams(&self, connection_id: &str) -> StoreResult<Vec<StreamRow>>;
    async fn stream_error(
        &self,
        connection_id: &str,
        stream: &str,
        error: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// `needs_reauth` (with why) stops polling until credentials change.
    async fn set_auth_status(
        &self,
        connection_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> StoreResult<()>;
    async fn update_connection_secrets(
        &self,
        connection_id: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<()>;
    async fn sync_target(&self, connection_id: &str) -> StoreResult<Option<SyncTarget>>;
    /// Connections of these platforms whose next sync is due and whose
    /// lease is free.
    async fn due_syncs(
        &self,
        platforms: &[&str],
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<SyncTarget>>;
    /// Takes the connection's sync lease; false if another poller holds it.
    async fn claim_sync(
        &self,
        connection_id: &str,
        owner: &str,
        until: i64,
        now: i64,
    ) -> StoreResult<bool>;
    async fn release_sync(
        &self,
        connection_id: &str,
        owner: &str,
        next_sync_at: i64,
    ) -> StoreResult<()>;
    async fn save_oauth_state(&self, state: &str, connection_id: &str, now: i64)
        -> StoreResult<()>;
    /// The connection an OAuth `state` was issued for, once: it is consumed.
    async fn take_oauth_state(&self, state: &str, not_before: i64) -> StoreResult<Option<String>>;

    /// Complaints of a workspace by status (and severity), newest first.
    async fn complaints(
        &self,
        workspace_id: &str,
        status: &str,
        severity: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ComplaintRow>>;
    async fn profile_complaints(&self, profile_id: &str) -> StoreResult<Vec<ComplaintRow>>;

    async fn suggestions(
        &self,
        workspace_id: &str,
        status: &str,
        limit: i64,
    ) -> StoreResult<Vec<SuggestionRow>>;

    async fn find_profiles(
        &self,
        workspace_id: &str,
        query: &ProfileQuery,
    ) -> StoreResult<Vec<String>>;
    /// The profile, following merges to the survivor.
    async fn get_profile(&self, workspace_id: &str, id: &str) -> StoreResult<Option<ProfileRow>>;
    async fn timeline(
        &self,
        profile_id: &str,
        filter: &TimelineFilter,
        limit: i64,
    ) -> StoreResult<Vec<StoredRecord>>;
    /// The profile's conversations, most recent first.
    async fn conversations(&self, profile_id: &str) -> StoreResult<Vec<ConversationRow>>;
    /// Active links of a profile's records, oldest first.
    async fn explain(&self, profile_id: &str) -> StoreResult<Vec<LinkRow>>;
    async fn protected_values(&self, workspace_id: &str) -> StoreResult<Vec<ProtectedRow>>;
    /// Live profile ids after `after`, in id order (for exports).
    async fn profile_ids(
        &self,
        workspace_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// The records a profile is built from.
    async fn profile_sources(&self, profile_id: &str) -> StoreResult<Vec<RecordId>>;
    async fn changes(
        &self,
        workspace_id: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeRow>>;

    // segments and care triggers:
    /// Live segments of the workspace, oldest first.
    async fn segments(&self, workspace_id: &str) -> StoreResult<Vec<SegmentRow>>;
    async fn segment(&self, workspace_id: &str, id: &str) -> StoreResult<Option<SegmentRow>>;
    /// Member profile ids after `after`, in id order.
    async fn segment_members(
        &self,
        segment_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    async fn workspace_ids(&self) -> StoreResult<Vec<String>>;

    // destinations:
    async fn create_destination(&self, destination: &NewDestination) -> StoreResult<()>;
    async fn list_destinations(&self, workspace_id: &str) -> StoreResult<Vec<DestinationRow>>;
    async fn get_destination(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> StoreResult<Option<DestinationRow>>;
    /// A live destination by id, in any workspace (for the engine).
    async fn destination(&self, id: &str) -> StoreResult<Option<DestinationRow>>;
    async fn destination_secrets(&self, id: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn update_destination(
        &self,
        workspace_id: &str,
        id: &str,
        update: &DestinationUpdate<'_>,
    ) -> StoreResult<bool>;
    async fn delete_destination(&self, workspace_id: &str, id: &str, now: i64)
        -> StoreResult<bool>;
    /// Ids of every live, active destination.
    async fn active_destinations(&self) -> StoreResult<Vec<String>>;
    /// Takes the destination's lease when it is free and its run is due.
    async fn claim_destination(
        &self,
        id: &str,
        owner: &str,
        until: i64,
        now: i64,
    ) -> StoreResult<bool>;
    async fn release_destination(&self, id: &str, owner: &str) -> StoreResult<()>;
    async fn delivered_contacts(
        &self,
        destination_id: &str,
        profile_ids: &[String],
    ) -> StoreResult<Vec<DeliveredContact>>;
    /// Commits one run; false (and nothing written) if the lease was lost.
    async fn save_destination_progress(&self, progress: &DestinationProgress)
        -> StoreResult<bool>;
    async fn destination_log(
        &self,
        destination_id: &str,
        profile_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<DestinationLogRow>>;
    /// Dead letters of a destination with `status` (`dead` or `queued`).
    async fn dead_letters(
        &self,
        destination_id: &str,
        status: &str,
        limit: i64,
    ) -> StoreResult<Vec<DeadLetterRow>>;
    async fn dead_letter_count(&self, destination_id: &str) -> StoreResult<i64>;
    /// Queues dead letters for replay by id or by time range; how many.
    async fn queue_replay(
        &self,
        destination_id: &str,
        ids: &[i64],
        range: Option<(i64, i64)>,
    ) -> StoreResult<u64>;
    /// The newest change's seq in the workspace (0 when empty).
    async fn feed_head(&self, workspace_id: &str) -> StoreResult<i64>;
    // profile: settings, and the workspaces the periodic trait refresh visits.
    /// The workspace's profile settings (JSON), if any were saved.
    async fn profile_settings(&self, workspace_id: &str) -> StoreResult<Option<String>>;
    // search:
    /// Profiles holding each looked-up term (most recent first for exact
    /// terms, term order for ranges), at most `per_lookup` per lookup.
    async fn search_terms(
        &self,
        workspace_id: &str,
        lookups: &[TermLookup],
        per_lookup: i64,
    ) -> StoreResult<Vec<TermHit>>;
}

/// The write side of identity resolution, inside one transaction.
#[async_trait]
pub trait WriteTx: Send {
    async fn record_state(&mut self, record: &RecordRef) -> StoreResult<Option<RecordState>>;
    /// Live profiles holding any of the keys, oldest first.
    async fn profiles_with_keys(
        &mut self,
        workspace_id: &str,
        keys: &[ScopedKey],
    ) -> StoreResult<Vec<ProfileStub>>;
    async fn profile_stub(&mut self, id: &str) -> StoreResult<ProfileStub>;
    async fn create_profile(&mut self, workspace_id: &str, id: &str, now: i64) -> StoreResult<()>;
    /// Moves everything of `absorbed` onto `survivor` and leaves an alias.
    async fn absorb_profile(&mut self, survivor: &str, absorbed: &str, now: i64)
        -> StoreResult<()>;
    /// Inserts or replaces the record and the keys it carries.
    async fn upsert_record(&mut self, record: &NewRecord<'_>) -> StoreResult<()>;
    async fn profile_records(&mut self, profile_id: &str) -> StoreResult<Vec<StoredRecord>>;
    async fn profile_view(&mut self, profile_id: &str) -> StoreResult<String>;
    async fn save_profile_view(
        &mut self,
        profile_id: &str,
        view: &str,
        now: i64,
    ) -> StoreResult<()>;
    async fn append_change(&mut self, change: &NewChange<'_>) -> StoreResult<i64>;
    /// Flags the record as a complaint (an existing one keeps its status).
    async fn set_complaint(&mut self, complaint: &NewComplaint<'_>) -> StoreResult<()>;
    /// The record is no longer a complaint: an open one goes away.
    async fn clear_complaint(&mut self, record: &RecordRef<'_>) -> StoreResult<()>;
    /// Severities of the profile's open complaints.
    async fn open_complaint_severities(&mut self, profile_id: &str) -> StoreResult<Vec<String>>;
    /// Marks an open complaint resolved; its profile, or `None` if there is
    /// no such open complaint in the workspace.
    async fn resolve_complaint(
        &mut self,
        workspace_id: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<String>>;
    /// Suggests merging two profiles, once per pair.
    async fn suggest(&mut self, suggestion: &NewSuggestion<'_>) -> StoreResult<()>;
    /// Closes an open suggestion as `accepted` or `rejected`; the suggestion,
    /// or `None` if there is no such open suggestion in the workspace.
    async fn decide_suggestion(
        &mut self,
        workspace_id: &str,
        id: i64,
        status: &str,
        now: i64,
    ) -> StoreResult<Option<SuggestionRow>>;
    /// A connection's settings JSON (for its default region).
    async fn connection_settings(&mut self, connection_id: &str) -> StoreResult<Option<String>>;
    /// The live profile an id stands for, following merges.
    async fn live_profile(&mut self, id: &str) -> StoreResult<Option<ProfileStub>>;
    /// The profile holding a mentioned order number, if any.
    async fn order_profile(
        &mut self,
        workspace_id: &str,
        order: &str,
    ) -> StoreResult<Option<String>>;
    /// Moves a sync stream to the page's cursor; false if the stream is no
    /// longer at the expected cursor, in which case the transaction must not
    /// commit.
    async fn advance_stream(&mut self, advance: &StreamAdvance<'_>) -> StoreResult<bool>;
    /// Marks a claimed delivery done; false if its lease was lost to another
    /// worker, in which case the transaction must not commit.
    async fn complete_delivery(
        &mut self,
        id: i64,
        lease_token: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Key values of the workspace that must not link.
    async fn protected_keys(&mut self, workspace_id: &str) -> StoreResult<Vec<(String, String)>>;
    async fn protect(
        &mut self,
        workspace_id: &str,
        kind: &str,
        value: &str,
        source: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// False if the value was not protected.
    async fn unprotect(&mut self, workspace_id: &str, kind: &str, value: &str)
        -> StoreResult<bool>;
    /// Records carrying any of the keys, with their profiles (at most `limit`).
    async fn key_holders(
        &mut self,
        workspace_id: &str,
        keys: &[ScopedKey],
        limit: i64,
    ) -> StoreResult<Vec<KeyHolder>>;
    /// Live profiles holding a key value, in any scope.
    async fn profiles_with_value(
        &mut self,
        workspace_id: &str,
        kind: &str,
        value: &str,
    ) -> StoreResult<Vec<String>>;
    /// The workspace's match model parameters (JSON), if estimated.
    async fn resolver_params(&mut self, workspace_id: &str) -> StoreResult<Option<String>>;
    async fn save_resolver_params(
        &mut self,
        workspace_id: &str,
        params: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// A record's stored data (the canonical record as JSON).
    async fn record_data(&mut self, record: RecordRef<'_>) -> StoreResult<Option<String>>;
    /// Distinct email and phone values a profile's records carry (bounded).
    async fn profile_values(&mut self, profile_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Records carrying each blocking value (kind `block`), at most
    /// `per_block` per value, with their profiles.
    async fn block_holders(
        &mut self,
        workspace_id: &str,
        blocks: &[ScopedKey],
        per_block: i64,
    ) -> StoreResult<Vec<KeyHolder>>;
    async fn add_link(&mut self, link: &NewLink<'_>) -> StoreResult<()>;
    /// Marks removed the active links that now join records of different
    /// profiles, where one side is in `profile_id`.
    async fn remove_crossing_links(
        &mut self,
        profile_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Whether a person said some record of one profile is not the same
    /// person as some record of the other.
    async fn cannot_link_between(&mut self, profile_a: &str, profile_b: &str) -> StoreResult<bool>;
    async fn add_cannot_link(
        &mut self,
        workspace_id: &str,
        a: RecordRef<'_>,
        b: RecordRef<'_>,
        reason: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Drops cannot-links between two profiles' records (a person merged them).
    async fn clear_cannot_links(&mut self, profile_a: &str, profile_b: &str) -> StoreResult<()>;
    /// Every record of the profile with each key it carries (one row per
    /// key; a record without keys appears once with no key).
    async fn profile_keys(&mut self, profile_id: &str) -> StoreResult<Vec<RecordKeyRow>>;
    /// `profile_keys` for every record of the workspace.
    async fn workspace_keys(&mut self, workspace_id: &str) -> StoreResult<Vec<RecordKeyRow>>;
    /// Every record of the workspace with its data, in order of arrival.
    async fn workspace_records(
        &mut self,
        workspace_id: &str,
    ) -> StoreResult<Vec<(RecordId, String)>>;
    /// Marks removed every active link of the workspace made by `rule`.
    async fn remove_links_by_rule(
        &mut self,
        workspace_id: &str,
        rule: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Every active link of the workspace.
    async fn workspace_links(&mut self, workspace_id: &str) -> StoreResult<Vec<LinkRow>>;
    async fn workspace_cannot_links(
        &mut self,
        workspace_id: &str,
    ) -> StoreResult<Vec<CannotLinkRow>>;
    /// Active links whose first record is in the profile.
    async fn profile_links(&mut self, profile_id: &str) -> StoreResult<Vec<LinkRow>>;
    /// Cannot-links with at least one record in the profile.
    async fn profile_cannot_links(&mut self, profile_id: &str) -> StoreResult<Vec<CannotLinkRow>>;
    /// Deletes a record of the workspace with its keys, links, cannot-links
    /// and complaint; the profile it was in, or `None` if there was no such record.
    async fn erase_record(
        &mut self,
        workspace_id: &str,
        record: RecordRef<'_>,
    ) -> StoreResult<Option<String>>;
    async fn move_record(&mut self, record: RecordRef<'_>, profile_id: &str) -> StoreResult<()>;
    // segments and care triggers:
    async fn profile_tags(&mut self, profile_id: &str) -> StoreResult<Vec<String>>;
    async fn change_tags(
        &mut self,
        profile_id: &str,
        add: &[String],
        remove: &[String],
        now: i64,
    ) -> StoreResult<()>;
    /// Moves manual tags, the time zone and care triggers of `absorbed` onto
    /// `survivor` (the survivor's own time zone wins); drops its dates.
    async fn absorb_profile_extras(&mut self, survivor: &str, absorbed: &str) -> StoreResult<()>;
    /// Data of the profile's customer records.
    async fn customer_record_data(&mut self, profile_id: &str) -> StoreResult<Vec<String>>;
    /// Changes whenever a segment of the workspace is created, changed or deleted.
    async fn segments_stamp(&mut self, workspace_id: &str) -> StoreResult<String>;
    /// Live segments of the workspace.
    async fn workspace_segments(&mut self, workspace_id: &str) -> StoreResult<Vec<SegmentRow>>;
    /// Inserts or replaces a segment (a deleted one carries `deleted_at`).
    async fn save_segment(&mut self, segment: &SegmentRow) -> StoreResult<()>;
    /// The segments (id, name, workspace) the profile is recorded as a member of.
    async fn profile_memberships(
        &mut self,
        profile_id: &str,
    ) -> StoreResult<Vec<(String, String, String)>>;
    async fn set_membership(
        &mut self,
        segment_id: &str,
        profile_id: &str,
        member: bool,
        now: i64,
    ) -> StoreResult<()>;
    /// Live profiles of the workspace after `after` with their views, in id order.
    async fn profile_views(
        &mut self,
        workspace_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Sets (or with `None` removes) a yearly date of a profile.
    async fn set_profile_date(
        &mut self,
        workspace_id: &str,
        profile_id: &str,
        kind: &str,
        date: Option<&str>,
    ) -> StoreResult<()>;
    async fn drop_profile_dates(&mut self, profile_id: &str) -> StoreResult<()>;
    async fn profile_timezone(&mut self, profile_id: &str) -> StoreResult<Option<String>>;
    async fn set_profile_timezone(
        &mut self,
        profile_id: &str,
        utc_offset: Option<&str>,
    ) -> StoreResult<()>;
    /// False if a trigger with the same dedupe key exists.
    async fn insert_trigger(&mut self, trigger: &NewTrigger<'_>) -> StoreResult<bool>;
    async fn due_triggers(
        &mut self,
        workspace_id: &str,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<TriggerRow>>;
    /// Marks a trigger `fired` or `suppressed` (with why).
    async fn finish_trigger(
        &mut self,
        id: i64,
        status: &str,
        reason: Option<&str>,
        now: i64,
    ) -> StoreResult<()>;
    async fn defer_trigger(&mut self, id: i64, due_at: i64) -> StoreResult<()>;
    /// Triggers fired for the profile since `since`.
    async fn fired_triggers_since(&mut self, profile_id: &str, since: i64) -> StoreResult<i64>;
    /// Order records of the workspace that happened in `[from, until)`.
    async fn orders_between(
        &mut self,
        workspace_id: &str,
        from: i64,
        until: i64,
        limit: i64,
    ) -> StoreResult<Vec<OrderRecordRow>>;
    /// Yearly dates of the workspace falling on any of the `MM-DD` days.
    async fn dates_on(
        &mut self,
        workspace_id: &str,
        month_days: &[String],
    ) -> StoreResult<Vec<ProfileDateRow>>;
    // profile: consent, settings, trait statistics and erasure.
    /// Stores a consent choice unless the stored choice for the same
    /// identifier and channel was made at the same time or later; true if stored.
    async fn record_consent(&mut self, consent: &NewConsent<'_>) -> StoreResult<bool>;
    /// Stored choices for any of the identifiers.
    async fn consents(
        &mut self,
        workspace_id: &str,
        identifiers: &[String],
    ) -> StoreResult<Vec<ConsentRow>>;
    async fn delete_consents(
        &mut self,
        workspace_id: &str,
        identifiers: &[String],
    ) -> StoreResult<()>;
    async fn profile_settings(&mut self, workspace_id: &str) -> StoreResult<Option<String>>;
    async fn save_profile_settings(
        &mut self,
        workspace_id: &str,
        settings: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// The workspace's trait statistics (JSON) and when they were computed.
    async fn trait_stats(&mut self, workspace_id: &str) -> StoreResult<Option<(String, i64)>>;
    async fn save_trait_stats(
        &mut self,
        workspace_id: &str,
        stats: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Deletes a profile (whose records are already erased) with its
    /// aliases, the suggestions about it, and the views the change feed
    /// carried of it.
    async fn erase_profile(&mut self, workspace_id: &str, profile_id: &str) -> StoreResult<()>;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
    // search:
    /// The profile's indexed terms, if it is indexed.
    async fn search_doc(&mut self, profile_id: &str) -> StoreResult<Option<SearchDoc>>;
    async fn insert_search_terms(
        &mut self,
        workspace_id: &str,
        profile_id: &str,
        recency: i64,
        terms: &[&str],
    ) -> StoreResult<()>;
    async fn delete_search_terms(
        &mut self,
        workspace_id: &str,
        profile_id: &str,
        recency: i64,
        terms: &[&str],
    ) -> StoreResult<()>;
    /// Records what is indexed for the profile; `None` drops the record.
    async fn save_search_doc(
        &mut self,
        profile_id: &str,
        doc: Option<&SearchDoc>,
    ) -> StoreResult<()>;
}
