//! Care and follow-up triggers: events merchants act on (a payment
//! reminder, a birthday greeting, a win-back), emitted into the change feed
//! as `trigger.<kind>` `{"trigger", "channel", ...details}`.
//!
//! Triggers are found two ways: state changes noticed when a profile is
//! recomputed (`observe`, called from `segments::apply`: first order,
//! lifecycle change, new complaint), and time-based ones found by the
//! periodic `sweep` (order pending payment past the delay, birthday,
//! membership anniversary). Either way they are stored `pending` once per
//! dedupe key, and the sweep releases them: never without granted consent
//! for the trigger's channel, never inside the person's quiet hours (the
//! trigger waits for the window's end), and never over the frequency cap.

mod config;
mod detect;
mod local;
mod release;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{TriggerConfig, KINDS};
pub use detect::observe;
pub use local::parse_offset;

use crate::store::{Store, StoreResult};

/// What one sweep did, summed over workspaces.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub found: usize,
    pub fired: usize,
    pub suppressed: usize,
    pub deferred: usize,
}

/// Finds time-based triggers and releases due ones, one write transaction
/// per workspace.
pub async fn sweep(
    store: &dyn Store,
    config: &TriggerConfig,
    now: i64,
) -> StoreResult<SweepReport> {
    let mut report = SweepReport::default();
    for workspace_id in store.workspace_ids().await? {
        let mut tx = store.begin_write(&workspace_id).await?;
        report.found += detect::pending_payments(tx.as_mut(), &workspace_id, config, now).await?;
        report.found += detect::yearly_dates(tx.as_mut(), &workspace_id, config, now).await?;
        release::release(tx.as_mut(), &workspace_id, config, now, &mut report).await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// Sweeps every `sweep_interval_seconds` until shutdown; the first sweep
/// comes one interval after start.
pub async fn run(store: Arc<dyn Store>, config: TriggerConfig, shutdown: CancellationToken) {
    let interval = Duration::from_secs(config.sweep_interval_seconds.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match sweep(store.as_ref(), &config, crate::clock::now_ms()).await {
            Ok(report) if report != SweepReport::default() => tracing::info!(
                found = report.found,
                fired = report.fired,
                suppressed = report.suppressed,
                deferred = report.deferred,
                "care triggers swept"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "care trigger sweep failed"),
        }
    }
}
