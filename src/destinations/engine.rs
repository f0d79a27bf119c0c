//! The sync engine: one task per destination, so a failing or throttled
//! tool never slows another, nor ingestion.
//!
//! A run takes the destination's lease (several hubs on one database never
//! both deliver a batch), reads the feed after its cursor, plans the changes
//! ([`super::plan`]), waits for the rate limiter, pushes, and commits the new
//! cursor, the delivered hashes, the log and any dead letters in one
//! transaction that only succeeds while the lease is still held. A failed
//! push leaves the cursor where it was: the same changes, with the same
//! message ids, go out again after an exponential backoff with jitter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde_json::{Map, Value};
use shophub_connectors::destinations::{Change, Destination, DestinationError, Rate};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{Planned, Planner};
use super::{op_name, EngineSettings, GONE};
use crate::clock::now_ms;
use crate::crypto::MasterKey;
use crate::store::{
    DestinationProgress, DestinationRow, NewDeadLetter, NewLogEntry, Store, StoreError, StoreResult,
};

/// Feed rows read per run; their changes are then cut to the batch size.
const READ_AHEAD: i64 = 200;

#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    master_key: MasterKey,
    http: reqwest::Client,
    settings: EngineSettings,
    owner: String,
}

/// How a run ended, for the task's pacing.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// More is waiting: run again now.
    More,
    /// Nothing to do, not due, or failed: wait a tick.
    Idle,
    /// Deleted or disabled: the task ends.
    Stopped,
}

/// Spaces requests to a tool's documented rate.
#[derive(Default)]
pub struct Limiter {
    next: Option<Instant>,
}

impl Limiter {
    pub async fn wait(&mut self, rate: Rate) {
        let gap = rate.per / rate.requests.max(1);
        let now = Instant::now();
        if let Some(next) = self.next.filter(|n| *n > now) {
            tokio::time::sleep_until(next).await;
        }
        self.next = Some(Instant::now().max(self.next.unwrap_or(now)) + gap);
    }
}

/// `open` while a tripped breaker waits; `half_open` when its wait is over
/// and the next run is a one-change probe; a success closes it.
pub fn breaker_state(row: &DestinationRow, now: i64) -> &'static str {
    match row.breaker_open_until {
        None => "closed",
        Some(until) if until > now => "open",
        Some(_) => "half_open",
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, master_key: MasterKey, settings: EngineSettings) -> Engine {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .user_agent(concat!("shophub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        Engine {
            store,
            master_key,
            http,
            settings,
            owner: format!("dst_{}", uuid::Uuid::now_v7().simple()),
        }
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Keeps one task per active destination until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let engine = Arc::new(self);
        let tick = Duration::from_millis(engine.settings.interval_ms.max(10));
        let mut tasks: HashMap<String, JoinHandle<()>> = HashMap::new();
        while !shutdown.is_cancelled() {
            tasks.retain(|_, task| !task.is_finished());
            match engine.store.active_destinations().await {
                Ok(ids) => {
                    for id in ids {
                        if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(id) {
                            let id = slot.key().clone();
                            slot.insert(tokio::spawn(
                                engine.clone().run_destination(id, shutdown.clone()),
                            ));
                        }
                    }
                }
                Err(error) => tracing::warn!(error = %error, "listing destinations failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        for (_, task) in tasks {
            let _ = task.await;
        }
    }

    async fn run_destination(self: Arc<Self>, id: String, shutdown: CancellationToken) {
        let tick = Duration::from_millis(self.settings.interval_ms.max(10));
        let mut limiter = Limiter::default();
        while !shutdown.is_cancelled() {
            // A push in flight finishes: its result is committed or retried.
            let outcome = self.run_once(&id, &mut limiter).await;
            let pause = match outcome {
                Ok(Outcome::More) => Duration::ZERO,
                Ok(Outcome::Idle) => tick,
                Ok(Outcome::Stopped) => break,
                Err(error) => {
                    tracing::warn!(destination = %id, error = %error, "destination run failed");
                    tick
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// One run for one destination, if it is due and its lease is free.
    pub async fn run_once(&self, id: &str, limiter: &mut Limiter) -> StoreResult<Outcome> {
        let now = now_ms();
        let Some(destination) = self.store.destination(id).await? else {
            return Ok(Outcome::Stopped);
        };
        if destination.status != "active" {
            return Ok(Outcome::Stopped);
        }
        let lease = i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX / 2);
        if !self
            .store
            .claim_destination(id, &self.owner, now + lease, now)
            .await?
        {
            return Ok(Outcome::Idle);
        }
        let outcome = self.run_claimed(&destination, limiter).await;
        self.store.release_destination(id, &self.owner).await?;
        outcome
    }

    /// The destination's client with its secrets opened.
    pub fn client(
        &self,
        destination: &DestinationRow,
        sealed: &[u8],
    ) -> Result<Option<Box<dyn Destination>>, DestinationError> {
        let secrets: Map<String, Value> = self
            .master_key
            .open(sealed, &destination.id)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                DestinationError::Permanent("the secrets do not open with this master key".into())
            })?;
        let settings: Map<String, Value> =
            serde_json::from_str(&destination.settings).unwrap_or_default();
        super::open(
            &destination.kind,
            &settings,
            &secrets,
            self.http.clone(),
            now_ms(),
        )
    }

    async fn run_claimed(
        &self,
        destination: &DestinationRow,
        limiter: &mut Limiter,
    ) -> StoreResult<Outcome> {
        let sealed = self
            .store
            .destination_secrets(&destination.id)
            .await?
            .unwrap_or_default();
        let client = match self.client(destination, &sealed) {
            Ok(Some(client)) => client,
            Ok(None) => {
                let error = DestinationError::Permanent(format!(
                    "kind {} is not supported",
                    destination.kind
                ));
                return self.failed(destination, error, &[], 0).await;
            }
            Err(error) => return self.failed(destination, error, &[], 0).await,
        };
        let limit = batch_limit(destination, client.as_ref());
        let replays = self
            .store
            .dead_letters(&destination.id, "queued", limit as i64)
            .await?;
        if !replays.is_empty() {
            return self
                .replay(destination, client.as_ref(), limiter, replays)
                .await;
        }
        let rows = self
            .store
            .changes(&destination.workspace_id, destination.cursor, READ_AHEAD)
            .await?;
        let Some(last_row) = rows.last() else {
            return Ok(Outcome::Idle);
        };
        let read_all = rows.len() < READ_AHEAD as usize;
        let last_seq_read = last_row.seq;
        let planned = Planner::new(self.store.as_ref(), destination)
            .plan(&rows)
            .await?;
        let (batch, cursor_if_done) = take_batch(planned, limit);
        let more = !read_all || cursor_if_done < last_seq_read;
        if batch.is_empty() {
            // Nothing this destination needs in these rows: move past them.
            let progress = self.progress(destination, cursor_if_done, true);
            self.commit(progress).await?;
            return Ok(if more { Outcome::More } else { Outcome::Idle });
        }
        limiter.wait(client.max_rate()).await;
        let changes: Vec<Change> = batch.iter().map(|p| p.change.clone()).collect();
        let results = match client.push(&changes).await {
            Ok(results) => results,
            Err(error) => return self.failed(destination, error, &batch, 0).await,
        };
        let mut progress = self.progress(destination, cursor_if_done, true);
        let mut results = results.into_iter();
        for (index, planned) in batch.iter().enumerate() {
            match results.next().unwrap_or_else(|| {
                Err(DestinationError::Malformed(
                    "no result for the change".into(),
                ))
            }) {
                Ok(()) => {
                    progress.contacts.extend(planned.contacts.iter().cloned());
                    progress.log.push(log_entry(planned, "sent", None));
                }
                Err(DestinationError::Permanent(reason)) if !reason.starts_with(GONE) => {
                    progress.log.push(log_entry(planned, "dead", Some(&reason)));
                    progress.dead.push(dead_letter(planned, &reason));
                }
                Err(error) => {
                    // Delivered so far stays delivered; the rest is retried.
                    let done = progress;
                    return self
                        .failed_after(destination, error, &batch, index, done)
                        .await;
                }
            }
        }
        self.commit(progress).await?;
        Ok(Outcome::More)
    }

    async fn replay(
        &self,
        destination: &DestinationRow,
        client: &dyn Destination,
        limiter: &mut Limiter,
        replays: Vec<crate::store::DeadLetterRow>,
    ) -> StoreResult<Outcome> {
        let changes: Vec<Change> = replays
            .iter()
            .map(|r| {
                serde_json::from_str(&r.change).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        limiter.wait(client.max_rate()).await;
        let mut progress = self.progress(destination, destination.cursor, true);
        match client.push(&changes).await {
            Err(error) => {
                progress.succeeded = false;
                progress.error = Some(format!("replay: {error}"));
                self.back_off(&mut progress, destination, &error, destination.attempts + 1);
            }
            Ok(results) => {
                for ((row, change), result) in replays.iter().zip(&changes).zip(results) {
                    let planned = Planned {
                        seq: row.seq,
                        profile_id: row.profile_id.clone(),
                        message_id: message_id_of(change),
                        change: change.clone(),
                        contacts: Vec::new(),
                    };
                    match result {
                        Ok(()) => {
                            progress.replayed.push(row.id);
                            progress.log.push(log_entry(&planned, "replayed", None));
                        }
                        Err(error) => {
                            progress.redead.push((row.id, error.to_string()));
                            progress.log.push(log_entry(
                                &planned,
                                "dead",
                                Some(&error.to_string()),
                            ));
                        }
                    }
                }
            }
        }
        self.commit(progress).await?;
        Ok(Outcome::More)
    }

    fn progress(
        &self,
        destination: &DestinationRow,
        cursor: i64,
        succeeded: bool,
    ) -> DestinationProgress {
        let now = now_ms();
        DestinationProgress {
            destination_id: destination.id.clone(),
            owner: self.owner.clone(),
            cursor,
            next_run_at: now,
            attempts: 0,
            consecutive_failures: 0,
            breaker_open_until: None,
            succeeded,
            error: None,
            status: None,
            contacts: Vec::new(),
            log: Vec::new(),
            dead: Vec::new(),
            replayed: Vec::new(),
            redead: Vec::new(),
            now,
        }
    }

    async fn failed(
        &self,
        destination: &DestinationRow,
        error: DestinationError,
        batch: &[Planned],
        index: usize,
    ) -> StoreResult<Outcome> {
        let mut progress = self.progress(destination, destination.cursor, false);
        progress.succeeded = false;
        self.failed_after(destination, error, batch, index, progress)
            .await
    }

    /// The change at `index` failed: keep what went before, then retry it
    /// later, dead-letter it when its tries are used up, or disable the
    /// destination when the receiver is gone.
    async fn failed_after(
        &self,
        destination: &DestinationRow,
        error: DestinationError,
        batch: &[Planned],
        index: usize,
        mut progress: DestinationProgress,
    ) -> StoreResult<Outcome> {
        let head = batch.get(index);
        progress.cursor = head
            .map_or(destination.cursor, |h| h.seq - 1)
            .max(destination.cursor);
        progress.succeeded = index > 0;
        progress.error = Some(error.to_string());
        if let DestinationError::Permanent(reason) = &error {
            if reason.starts_with(GONE) {
                progress.status = Some("disabled".into());
                if let Some(head) = head {
                    progress.log.push(log_entry(head, "failed", Some(reason)));
                }
                self.commit(progress).await?;
                return Ok(Outcome::Stopped);
            }
        }
        // Tries count for the change at the head of the feed.
        let attempts = match index > 0 || destination.cursor < progress.cursor {
            true => 1,
            false => destination.attempts + 1,
        };
        let throttled = matches!(error, DestinationError::RateLimited { .. });
        if let Some(head) = head {
            let result = if throttled { "throttled" } else { "failed" };
            progress
                .log
                .push(log_entry(head, result, Some(&error.to_string())));
        }
        let exhausted = !throttled && attempts >= self.settings.max_attempts as i64;
        match (exhausted, head) {
            (true, Some(head)) => {
                // Given up: the head's row goes to the dead-letter list and
                // the feed moves on.
                for planned in batch[index..].iter().filter(|p| p.seq == head.seq) {
                    progress.dead.push(dead_letter(planned, &error.to_string()));
                    progress
                        .log
                        .push(log_entry(planned, "dead", Some(&error.to_string())));
                }
                progress.cursor = head.seq;
                progress.consecutive_failures = destination.consecutive_failures + 1;
                progress.next_run_at = progress.now;
            }
            _ => self.back_off(&mut progress, destination, &error, attempts),
        }
        self.commit(progress).await?;
        Ok(Outcome::Idle)
    }

    /// Sets when to try again: the tool's `Retry-After`, else the backoff
    /// for this try; and opens the breaker after too many failed runs.
    fn back_off(
        &self,
        progress: &mut DestinationProgress,
        destination: &DestinationRow,
        error: &DestinationError,
        attempts: i64,
    ) {
        let now = progress.now;
        match error {
            DestinationError::RateLimited { retry_after } => {
                // Throttling is the tool pacing us, not failing: no try used.
                let wait = retry_after.unwrap_or_else(|| self.delay(1));
                progress.attempts = destination.attempts;
                progress.consecutive_failures = destination.consecutive_failures;
                progress.next_run_at = now + millis(wait);
            }
            _ => {
                progress.attempts = attempts;
                progress.consecutive_failures = destination.consecutive_failures + 1;
                progress.next_run_at = now + millis(self.delay(attempts));
            }
        }
        if progress.consecutive_failures >= self.settings.breaker_failures {
            let until =
                now + i64::try_from(self.settings.breaker_cooldown_ms).unwrap_or(i64::MAX / 2);
            progress.breaker_open_until = Some(until);
            progress.next_run_at = progress.next_run_at.max(until);
        }
    }

    /// The wait before try `attempt + 1`: exponential with jitter.
    fn delay(&self, attempt: i64) -> Duration {
        let max = Duration::from_millis(self.settings.retry_max_ms);
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.retry_min_ms))
            .with_max_delay(max)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(usize::try_from(attempt.max(1) - 1).unwrap_or(0))
            .unwrap_or(max)
            .min(max)
    }

    async fn commit(&self, progress: DestinationProgress) -> StoreResult<()> {
        if !self.store.save_destination_progress(&progress).await? {
            tracing::warn!(destination = %progress.destination_id, "lease lost during a run; another hub retries it");
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Changes per push: the client's limit, `settings.max_batch` if smaller,
/// and one while the breaker is half open.
pub fn batch_limit(destination: &DestinationRow, client: &dyn Destination) -> usize {
    if breaker_state(destination, now_ms()) != "closed" {
        return 1;
    }
    let configured = serde_json::from_str::<Map<String, Value>>(&destination.settings)
        .ok()
        .and_then(|s| s.get("max_batch").and_then(Value::as_u64))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    client.max_batch().min(configured).max(1)
}

/// Whole feed rows up to `limit` changes (at least one row), and the cursor
/// once they are all delivered.
pub fn take_batch(rows: Vec<super::plan::PlannedRow>, limit: usize) -> (Vec<Planned>, i64) {
    let mut batch = Vec::new();
    let mut cursor = 0;
    for row in rows {
        if !batch.is_empty() && batch.len() + row.changes.len() > limit {
            break;
        }
        cursor = row.seq;
        batch.extend(row.changes);
    }
    (batch, cursor)
}

fn message_id_of(change: &Change) -> String {
    match change {
        Change::Event { id, .. } => id.clone(),
        _ => String::new(),
    }
}

fn log_entry(planned: &Planned, result: &str, error: Option<&str>) -> NewLogEntry {
    NewLogEntry {
        profile_id: planned.profile_id.clone(),
        seq: planned.seq,
        message_id: planned.message_id.clone(),
        op: op_name(&planned.change),
        result: result.to_string(),
        error: error.map(str::to_string),
    }
}

fn dead_letter(planned: &Planned, error: &str) -> NewDeadLetter {
    NewDeadLetter {
        profile_id: planned.profile_id.clone(),
        seq: planned.seq,
        change: serde_json::to_string(&planned.change).expect("a change serialises"),
        error: error.to_string(),
    }
}
