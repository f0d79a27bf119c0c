//! The periodic refresh of time-dependent traits (days since the last
//! order, recency, lifecycle stage, projected CLV) and of the workspace
//! statistics they are scored against. It also applies changed workspace
//! settings to every profile. Only profiles whose view changed are
//! announced (`profile.updated`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::profile::{settings, stats};
use crate::resolve::refresh_profile;
use crate::store::{Store, StoreResult};

/// Profiles refreshed per write transaction, so ingestion waits at most
/// one batch for the workspace's writer.
const BATCH: i64 = 200;

/// Recomputes the workspace's statistics, then every profile; returns how
/// many profiles changed.
pub async fn refresh_workspace(
    store: &dyn Store,
    workspace_id: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut tx = store.begin_write(workspace_id).await?;
    let settings = settings::load(tx.as_mut(), workspace_id).await?;
    stats::recompute(tx.as_mut(), workspace_id, &settings, now).await?;
    tx.commit().await?;

    let mut changed = 0;
    let mut after = String::new();
    loop {
        let ids = store.profile_ids(workspace_id, &after, BATCH).await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        let mut tx = store.begin_write(workspace_id).await?;
        for id in &ids {
            // Merged or erased since the page was read.
            if tx
                .live_profile(id)
                .await?
                .is_some_and(|live| live.id == *id)
                && refresh_profile(tx.as_mut(), workspace_id, id, false, now).await?
            {
                changed += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(changed)
}

/// Refreshes every workspace; returns how many profiles changed.
pub async fn refresh_due(store: &dyn Store, now: i64) -> StoreResult<usize> {
    let mut changed = 0;
    for workspace_id in store.workspace_ids().await? {
        changed += refresh_workspace(store, &workspace_id, now).await?;
    }
    Ok(changed)
}

/// Runs `refresh_due` every `interval` (the first run one interval after
/// start) until cancelled.
pub async fn run_periodic(store: Arc<dyn Store>, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match refresh_due(store.as_ref(), now_ms()).await {
            Ok(changed) => tracing::info!(changed, "profile traits refreshed"),
            Err(error) => tracing::warn!(error = %error, "profile trait refresh failed"),
        }
    }
}
