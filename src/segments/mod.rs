//! Segments: saved filters over the profile view, with membership kept
//! current as profiles change.
//!
//! `apply` runs inside `resolve::refresh_profile` for every profile that is
//! recomputed: it fills the view's `tags` and `segments`, records entering
//! and leaving in `segment_members`, and appends `segment.entered` /
//! `segment.exited` in the same transaction. Compiled filters are cached per
//! workspace and reloaded when the workspace's segment stamp (count and
//! latest change) moves, so a change made by another hub process is seen too.
//! Creating, changing or deleting a segment re-evaluates it over the existing
//! profiles (`reevaluate`), in batches of one transaction each.

pub mod filter;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{json, Value};
use shophub_connectors::model::SourceRecord;

use crate::profile::ProfileView;
use crate::store::{NewChange, Store, StoreError, StoreResult, WriteTx};

/// Profiles re-evaluated per transaction when a segment changes.
const BATCH: i64 = 500;

pub struct Compiled {
    pub id: String,
    pub name: String,
    pub filter: filter::Filter,
}

type Cache = HashMap<String, (String, Arc<Vec<Compiled>>)>;
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The workspace's live segments, compiled, from the cache when current.
async fn compiled(tx: &mut dyn WriteTx, workspace_id: &str) -> StoreResult<Arc<Vec<Compiled>>> {
    let stamp = tx.segments_stamp(workspace_id).await?;
    if let Some((cached, segments)) = CACHE.lock().expect("cache lock").get(workspace_id) {
        if *cached == stamp {
            return Ok(segments.clone());
        }
    }
    let rows = tx.workspace_segments(workspace_id).await?;
    let mut segments = Vec::with_capacity(rows.len());
    for row in rows {
        let value: Value =
            serde_json::from_str(&row.filter).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Filters are validated when saved; one that no longer parses is a bug.
        let filter = filter::parse(&value).map_err(StoreError::Corrupt)?;
        segments.push(Compiled {
            id: row.id,
            name: row.name,
            filter,
        });
    }
    let segments = Arc::new(segments);
    CACHE
        .lock()
        .expect("cache lock")
        .insert(workspace_id.to_string(), (stamp, segments.clone()));
    Ok(segments)
}

/// Fills `view.tags` and `view.segments`, records membership changes with
/// their feed events, and notes care triggers the change implies.
pub async fn apply(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    id: &str,
    view: &mut ProfileView,
    now: i64,
) -> StoreResult<()> {
    let customers: Vec<SourceRecord> = tx
        .customer_record_data(id)
        .await?
        .iter()
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect();
    let mut tags: BTreeSet<String> = tx.profile_tags(id).await?.into_iter().collect();
    tags.extend(crate::tags::platform_tags(&customers));
    view.tags = tags.into_iter().collect();

    let current = serde_json::to_value(&*view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let segments = compiled(tx, workspace_id).await?;
    let members: BTreeSet<&str> = segments
        .iter()
        .filter(|s| s.filter.matches(&current))
        .map(|s| s.id.as_str())
        .collect();
    let recorded = tx.profile_memberships(id).await?;
    for (segment_id, name, _) in &recorded {
        if !members.contains(segment_id.as_str()) {
            tx.set_membership(segment_id, id, false, now).await?;
            announce(
                tx,
                workspace_id,
                id,
                "segment.exited",
                segment_id,
                name,
                now,
            )
            .await?;
        }
    }
    for segment in segments.iter().filter(|s| members.contains(s.id.as_str())) {
        if !recorded.iter().any(|(known, _, _)| *known == segment.id) {
            tx.set_membership(&segment.id, id, true, now).await?;
            announce(
                tx,
                workspace_id,
                id,
                "segment.entered",
                &segment.id,
                &segment.name,
                now,
            )
            .await?;
        }
    }
    view.segments = members.into_iter().map(str::to_string).collect();

    let previous: Value = serde_json::from_str(&tx.profile_view(id).await?).unwrap_or(Value::Null);
    crate::triggers::observe(tx, workspace_id, id, &previous, &current, &customers, now).await
}

/// A profile that is gone (absorbed or erased) leaves its segments, and its
/// yearly dates stop.
pub async fn forget(tx: &mut dyn WriteTx, profile_id: &str, now: i64) -> StoreResult<()> {
    for (segment_id, name, workspace_id) in tx.profile_memberships(profile_id).await? {
        tx.set_membership(&segment_id, profile_id, false, now)
            .await?;
        announce(
            tx,
            &workspace_id,
            profile_id,
            "segment.exited",
            &segment_id,
            &name,
            now,
        )
        .await?;
    }
    tx.drop_profile_dates(profile_id).await
}

/// Where profiles merge: the absorbed one's tags and time zone follow the
/// survivor (whose view is refreshed by the merge) and it leaves its segments.
pub async fn absorbed(
    tx: &mut dyn WriteTx,
    survivor: &str,
    absorbed: &str,
    now: i64,
) -> StoreResult<()> {
    tx.absorb_profile_extras(survivor, absorbed).await?;
    forget(tx, absorbed, now).await
}

async fn announce(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    kind: &str,
    segment_id: &str,
    name: &str,
    now: i64,
) -> StoreResult<()> {
    let data = json!({ "segment_id": segment_id, "name": name }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind,
        profile_id,
        data: &data,
        now,
    })
    .await?;
    Ok(())
}

/// After a segment was created, changed or deleted: every profile whose
/// membership in it differs from what its filter (or its absence) says is
/// refreshed, which records the change and emits the events. Runs in
/// batches of `BATCH` profiles, one write transaction each, so ingestion
/// interleaves. Returns how many profiles changed membership.
pub async fn reevaluate(
    store: &dyn Store,
    workspace_id: &str,
    segment_id: &str,
    filter: Option<&filter::Filter>,
) -> StoreResult<usize> {
    let mut after = String::new();
    let mut changed = 0;
    loop {
        let now = crate::clock::now_ms();
        let mut tx = store.begin_write(workspace_id).await?;
        let batch = tx.profile_views(workspace_id, &after, BATCH).await?;
        let Some((last, _)) = batch.last() else {
            return Ok(changed);
        };
        after = last.clone();
        for (id, view) in &batch {
            let view: Value = serde_json::from_str(view).unwrap_or(Value::Null);
            let member = view["segments"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(segment_id)));
            let should = filter.is_some_and(|f| f.matches(&view));
            if member != should {
                crate::resolve::refresh_profile(tx.as_mut(), workspace_id, id, false, now).await?;
                changed += 1;
            }
        }
        tx.commit().await?;
    }
}
