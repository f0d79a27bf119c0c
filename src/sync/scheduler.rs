//! Reconciliation: every connection that can be polled is swept on a fixed
//! interval, so whatever its webhooks missed (platforms drop deliveries and
//! disable subscriptions) arrives anyway. Several hub processes share the
//! work through a per-connection lease.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Mode, Syncer};
use crate::clock::now_ms;
use crate::store::Store;

/// How often the scheduler looks for due connections.
const TICK: Duration = Duration::from_secs(5);
/// A sweep that has not finished in this time is presumed dead.
const LEASE_MS: i64 = 15 * 60 * 1000;

pub async fn run_scheduler(
    syncer: Syncer,
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let owner = format!("sync_{}", uuid::Uuid::now_v7().simple());
    let platforms = Syncer::polling_platforms();
    while !shutdown.is_cancelled() {
        match store.due_syncs(&platforms, now_ms(), 16).await {
            Ok(due) => {
                for target in due {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    tokio::select! {
                        _ = sweep(&syncer, store.as_ref(), &owner, &target.id, interval) => {}
                        // Stopping mid-page is safe: a page and its cursor commit together.
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, "looking for due syncs failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

async fn sweep(
    syncer: &Syncer,
    store: &dyn Store,
    owner: &str,
    connection_id: &str,
    interval: Duration,
) {
    let now = now_ms();
    match store
        .claim_sync(connection_id, owner, now + LEASE_MS, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(connection = connection_id, error = %error, "claiming sync failed");
            return;
        }
    }
    let resources = syncer.resources(connection_id).await.unwrap_or_default();
    for resource in resources {
        match syncer
            .run_stream(connection_id, resource, Mode::Incremental, None, |_| {})
            .await
        {
            Ok(progress) => {
                tracing::debug!(connection = connection_id, stream = %progress.stream, records = progress.records, "swept")
            }
            Err(error) => {
                tracing::warn!(connection = connection_id, resource = resource.as_str(), error = %error, "sweep failed");
                if matches!(error, super::SyncError::NeedsReauth(_)) {
                    break;
                }
            }
        }
    }
    // Platforms drop subscriptions that failed for a while; put them back.
    match syncer.ensure_webhooks(connection_id).await {
        Ok(changes) if !changes.is_empty() => {
            tracing::info!(
                connection = connection_id,
                changes = changes.join(", "),
                "webhook subscriptions restored"
            )
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(connection = connection_id, error = %error, "webhook upkeep failed")
        }
    }
    let next = now_ms() + interval.as_millis() as i64;
    if let Err(error) = store.release_sync(connection_id, owner, next).await {
        tracing::warn!(connection = connection_id, error = %error, "releasing sync lease failed");
    }
}
