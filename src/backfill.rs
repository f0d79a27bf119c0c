//! `shophub backfill`: loads a connection's history, page by page, with a
//! progress bar. Each page commits with its cursor, so an interrupted
//! backfill resumes where it stopped when run again.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use shophub_connectors::poll::Resource;

use crate::clock::now_ms;
use crate::sync::{Mode, Progress, SyncError, Syncer};

/// Runs backfills of the given resources (all the platform has when none).
pub async fn run(
    syncer: &Syncer,
    connection_id: &str,
    since: Option<DateTime<Utc>>,
    only: Option<Resource>,
    show_progress: bool,
) -> Result<Vec<Progress>, SyncError> {
    let resources = match only {
        Some(resource) => vec![resource],
        None => syncer.resources(connection_id).await?,
    };
    if resources.is_empty() {
        return Err(SyncError::Failed(
            "this connection cannot be polled: its platform has no API client or its API credentials are missing".into(),
        ));
    }
    let mut done = Vec::new();
    for resource in resources {
        let start = syncer
            .prepare_backfill(connection_id, resource, since)
            .await?;
        let bar = show_progress.then(|| progress_bar(resource));
        if let Some(bar) = &bar {
            if start.pages > 0 {
                bar.println(format!(
                    "{}: resuming after {} records",
                    resource.as_str(),
                    start.records
                ));
            }
        }
        let started = Instant::now();
        let first_records = start.records;
        let mut oldest_seen = None;
        let result = syncer
            .run_stream(connection_id, resource, Mode::Backfill, None, |p| {
                if let Some(bar) = &bar {
                    oldest_seen = oldest_seen.or(p.position);
                    bar.set_position(fraction_done(p, oldest_seen));
                    bar.set_message(describe(p, first_records, started.elapsed()));
                }
            })
            .await;
        if let Some(bar) = &bar {
            match &result {
                Ok(p) => bar.finish_with_message(format!("{} records, complete", p.records)),
                Err(e) => bar.abandon_with_message(format!("stopped: {e} (run again to resume)")),
            }
        }
        done.push(result?);
    }
    Ok(done)
}

fn progress_bar(resource: Resource) -> ProgressBar {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {percent:>3}% eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(resource.as_str());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Progress in thousandths: how far through time the run has read, from
/// the backfill's start (or, without `--since`, the oldest record it met)
/// to now. Platforms rarely say how many records exist.
fn fraction_done(p: &Progress, oldest_seen: Option<i64>) -> u64 {
    if p.caught_up {
        return 1000;
    }
    let (Some(start), Some(mark)) = (p.since.or(oldest_seen), p.position.max(p.watermark)) else {
        return 0;
    };
    let span = (now_ms() - start).max(1) as f64;
    (((mark - start).max(0) as f64 / span) * 1000.0).clamp(0.0, 999.0) as u64
}

fn describe(p: &Progress, first_records: i64, elapsed: Duration) -> String {
    let rate = (p.records - first_records) as f64 / elapsed.as_secs_f64().max(0.001);
    format!("{} records, {:.0}/s", p.records, rate)
}
