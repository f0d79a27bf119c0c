//! Deterministic identity resolution, applied inside the worker's transaction.
//!
//! Records that share a key (normalised email, E.164 phone, or a platform
//! customer id within its connection) belong to one profile; a record that
//! links several profiles merges them into the oldest, whose id survives and
//! the others become aliases of it. A record older than or equal to the
//! stored version of the same record changes nothing, so replays and
//! out-of-order deliveries are harmless.

use std::collections::BTreeSet;

use serde_json::json;
use shophub_connectors::model::{RecordBody, SourceRecord};

use crate::complaints::ComplaintRules;
use crate::profile;
use crate::store::{
    NewChange, NewComplaint, NewRecord, ProfileStub, RecordRef, ScopedKey, StoreError, StoreResult,
    WriteTx,
};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub records: usize,
    pub stale: usize,
    pub changes: usize,
}

pub fn new_profile_id() -> String {
    format!("prof_{}", uuid::Uuid::now_v7().simple())
}

/// The record's keys with their scope filled in.
pub fn scoped_keys(record: &SourceRecord, connection_id: &str) -> Vec<ScopedKey> {
    record
        .keys
        .iter()
        .map(|key| ScopedKey {
            kind: key.kind.as_str(),
            scope: if key.kind.is_connection_scoped() {
                connection_id.to_string()
            } else {
                String::new()
            },
            value: key.value.clone(),
        })
        .collect()
}

/// Records decoded from one delivery, with the connection they came from.
pub struct Batch<'a> {
    pub connection_id: &'a str,
    pub records: &'a [SourceRecord],
}

impl<'a> Batch<'a> {
    fn tagged(&self) -> Vec<(&'a str, &'a SourceRecord)> {
        self.records
            .iter()
            .map(|record| (self.connection_id, record))
            .collect()
    }
}

/// Applies the records of one or more deliveries of a workspace. Profiles
/// they touch are recomputed once, at the end.
pub async fn apply(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    batches: &[Batch<'_>],
    rules: &ComplaintRules,
    now: i64,
) -> StoreResult<Applied> {
    let mut applied = Applied::default();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();

    for (connection_id, record) in batches.iter().flat_map(Batch::tagged) {
        let kind = record.kind().as_str();
        let at = RecordRef {
            connection_id,
            kind,
            external_id: &record.external_id,
        };
        let existing = tx.record_state(&at).await?;
        let version = record.version.timestamp_millis();
        if existing
            .as_ref()
            .is_some_and(|state| state.version >= version)
        {
            applied.stale += 1;
            continue;
        }

        let keys = scoped_keys(record, connection_id);
        let mut candidates = tx.profiles_with_keys(workspace_id, &keys).await?;
        if let Some(state) = &existing {
            if !candidates.iter().any(|p| p.id == state.profile_id) {
                candidates.push(tx.profile_stub(&state.profile_id).await?);
            }
        }
        candidates.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));

        let profile_id = match candidates.split_first() {
            None => {
                let id = new_profile_id();
                tx.create_profile(workspace_id, &id, now).await?;
                created.insert(id.clone());
                id
            }
            Some((survivor, absorbed)) => {
                merge(
                    tx,
                    workspace_id,
                    survivor,
                    absorbed,
                    now,
                    &mut created,
                    &mut touched,
                    &mut applied,
                )
                .await?;
                survivor.id.clone()
            }
        };

        let data = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (channel, conversation_id) = match &record.body {
            RecordBody::Message(m) => (Some(m.channel.as_str()), Some(m.conversation_id.as_str())),
            _ => (None, None),
        };
        tx.upsert_record(&NewRecord {
            workspace_id,
            connection_id,
            kind,
            external_id: &record.external_id,
            version,
            occurred_at: record.occurred_at.timestamp_millis(),
            data: &data,
            profile_id: &profile_id,
            keys: &keys,
            channel,
            conversation_id,
            now,
        })
        .await?;
        match rules.classify(record) {
            Some(complaint) => {
                let severity = complaint.severity.as_str();
                let reason = &complaint.reason;
                tx.set_complaint(&NewComplaint {
                    workspace_id,
                    record: &at,
                    severity,
                    reason,
                    now,
                })
                .await?;
            }
            None => tx.clear_complaint(&at).await?,
        }
        touched.insert(profile_id);
        applied.records += 1;
    }

    for id in &touched {
        if refresh_profile(tx, workspace_id, id, created.contains(id), now).await? {
            applied.changes += 1;
        }
    }
    Ok(applied)
}

/// Recomputes a profile's view from its records and open complaints, and
/// announces it in the change feed if it is new or changed. Returns whether
/// a change was appended.
pub async fn refresh_profile(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    id: &str,
    is_new: bool,
    now: i64,
) -> StoreResult<bool> {
    let records = tx.profile_records(id).await?;
    let mut view = profile::compute(&records).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    view.traits.complaints = profile::ComplaintCounts::of(&tx.open_complaint_severities(id).await?);
    let view_json = serde_json::to_string(&view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if !is_new && tx.profile_view(id).await? == view_json {
        return Ok(false);
    }
    tx.save_profile_view(id, &view_json, now).await?;
    let kind = if is_new {
        "profile.created"
    } else {
        "profile.updated"
    };
    let data = json!({ "profile": view }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind,
        profile_id: id,
        data: &data,
        now,
    })
    .await?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn merge(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    survivor: &ProfileStub,
    absorbed: &[ProfileStub],
    now: i64,
    created: &mut BTreeSet<String>,
    touched: &mut BTreeSet<String>,
    applied: &mut Applied,
) -> StoreResult<()> {
    if absorbed.is_empty() {
        return Ok(());
    }
    for gone in absorbed {
        tx.absorb_profile(&survivor.id, &gone.id, now).await?;
        touched.remove(&gone.id);
        // A profile created and absorbed in the same delivery was never
        // announced; the survivor's change covers it.
        created.remove(&gone.id);
    }
    let absorbed_ids: Vec<&str> = absorbed.iter().map(|p| p.id.as_str()).collect();
    let data = json!({ "survivor": survivor.id, "absorbed": absorbed_ids }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind: "profile.merged",
        profile_id: &survivor.id,
        data: &data,
        now,
    })
    .await?;
    applied.changes += 1;
    Ok(())
}
