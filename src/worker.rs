//! Workers turn stored deliveries into records and profiles.
//!
//! A worker leases a batch of due deliveries, decodes each with its
//! platform's connector and applies the records in one transaction that also
//! marks the delivery done, so a crash at any point either leaves the
//! delivery pending (its lease runs out and another worker takes it) or
//! leaves it done with all of its effects: exactly once, in effect.
//!
//! A payload that cannot be decoded will never decode: it goes straight to
//! the dead-letter list. Storage errors are retried with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use shophub_connectors::model::SourceRecord;
use shophub_connectors::DecodeContext;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::resolve::{self, Batch};
use crate::store::{ClaimedDelivery, Store, StoreError};
use crate::sync::{Mode, SyncError, Syncer};

const BATCH: i64 = 16;
const LEASE_MS: i64 = 60_000;
/// How often an idle worker looks for due retries and for deliveries other
/// hub processes stored.
const IDLE_POLL: Duration = Duration::from_millis(500);
const MAX_ATTEMPTS: i64 = 8;

#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    syncer: Syncer,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Dead,
    Retry,
    LeaseLost,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, syncer: Syncer) -> Worker {
        Worker { store, syncer }
    }

    /// Claims one batch and processes it; returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claimed = self
            .store
            .claim_deliveries(now_ms(), LEASE_MS, BATCH)
            .await?;
        let mut workspaces: Vec<&str> = claimed.iter().map(|d| d.workspace_id.as_str()).collect();
        workspaces.sort_unstable();
        workspaces.dedup();
        for workspace in workspaces {
            let deliveries: Vec<&ClaimedDelivery> = claimed
                .iter()
                .filter(|d| d.workspace_id == workspace)
                .collect();
            self.process_batch(&deliveries).await;
        }
        Ok(claimed.len())
    }

    /// Processes until nothing is due. Tests drive workers with this.
    pub async fn run_until_idle(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    pub async fn run(self, stored: Arc<Notify>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let notified = stored.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(error = %error, "claiming deliveries failed"),
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Applies deliveries of one workspace in a single transaction (one
    /// commit for the lot); if that fails, each is processed on its own so
    /// one bad delivery cannot hold the others back.
    async fn process_batch(&self, deliveries: &[&ClaimedDelivery]) {
        let started = Instant::now();
        let mut decoded = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match self.decode(delivery).await {
                Ok(records) => decoded.push((*delivery, records)),
                Err(failure) => {
                    let outcome = self.fail(delivery, failure).await;
                    self.record(delivery, &outcome, started);
                }
            }
        }
        if decoded.is_empty() {
            return;
        }
        match self.commit_together(&decoded).await {
            Ok(true) => {
                for (delivery, _) in &decoded {
                    self.record(delivery, &Outcome::Done, started);
                }
            }
            Ok(false) | Err(_) if decoded.len() > 1 => {
                for (delivery, _) in &decoded {
                    self.process(delivery).await;
                }
            }
            Ok(false) => self.record(decoded[0].0, &Outcome::LeaseLost, started),
            Err(failure) => {
                let outcome = self.fail(decoded[0].0, failure).await;
                self.record(decoded[0].0, &outcome, started);
            }
        }
    }

    /// Processes one claimed delivery in its own transaction.
    pub async fn process(&self, delivery: &ClaimedDelivery) -> Outcome {
        let started = Instant::now();
        let outcome = match self.decode(delivery).await {
            Err(failure) => self.fail(delivery, failure).await,
            Ok(records) => match self.commit_together(&[(delivery, records)]).await {
                Ok(true) => Outcome::Done,
                Ok(false) => Outcome::LeaseLost,
                Err(failure) => self.fail(delivery, failure).await,
            },
        };
        self.record(delivery, &outcome, started);
        outcome
    }

    async fn decode(&self, delivery: &ClaimedDelivery) -> Result<Vec<SourceRecord>, Failure> {
        let connection = self
            .store
            .connection_secrets(&delivery.connection_id)
            .await?
            .ok_or_else(|| Failure::Permanent("connection no longer exists".into()))?;
        let connector = shophub_connectors::connector(&delivery.platform)
            .and_then(|c| c.webhooks())
            .ok_or_else(|| {
                Failure::Permanent(format!(
                    "platform {} is not in this build",
                    delivery.platform
                ))
            })?;
        let context = DecodeContext {
            default_region: crate::connections::default_region(&connection.settings),
        };
        let mut records = connector
            .decode(&delivery.topic, &delivery.body, &context)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        // Thin webhooks name what changed; the resource itself is fetched.
        let references = connector
            .references(&delivery.topic, &delivery.body)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        for (resource, id) in references {
            let fetched = self
                .syncer
                .fetch(&delivery.connection_id, resource, &id)
                .await
                .map_err(|e| match e {
                    SyncError::Failed(reason) | SyncError::NeedsReauth(reason) => {
                        Failure::Transient(reason)
                    }
                    SyncError::Unsupported(platform) => {
                        Failure::Permanent(format!("{platform} cannot fetch by id"))
                    }
                    other => Failure::Transient(other.to_string()),
                })?;
            records.extend(fetched);
        }
        Ok(records)
    }

    /// Applies the deliveries' records and marks them done in one
    /// transaction. Ok(false) when a lease was lost: nothing is committed.
    async fn commit_together(
        &self,
        decoded: &[(&ClaimedDelivery, Vec<SourceRecord>)],
    ) -> Result<bool, Failure> {
        let workspace_id = &decoded[0].0.workspace_id;
        let now = now_ms();
        let batches: Vec<Batch> = decoded
            .iter()
            .map(|(delivery, records)| Batch {
                connection_id: &delivery.connection_id,
                records,
            })
            .collect();
        let mut tx = self.store.begin_write(workspace_id).await?;
        resolve::apply(
            tx.as_mut(),
            workspace_id,
            &batches,
            self.syncer.rules(),
            now,
        )
        .await?;
        for (delivery, _) in decoded {
            if !tx
                .complete_delivery(delivery.id, &delivery.lease_token, now)
                .await?
            {
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a failed delivery back: dead if it can never succeed or has
    /// used its attempts, otherwise pending again after a backoff.
    async fn fail(&self, delivery: &ClaimedDelivery, failure: Failure) -> Outcome {
        let (reason, retry_at) = match failure {
            Failure::Permanent(reason) => (reason, None),
            Failure::Transient(reason) if delivery.attempts >= MAX_ATTEMPTS => (
                format!("gave up after {} attempts: {reason}", delivery.attempts),
                None,
            ),
            Failure::Transient(reason) => (
                reason,
                Some(now_ms() + retry_delay(delivery.attempts).as_millis() as i64),
            ),
        };
        let outcome = if retry_at.is_some() {
            Outcome::Retry
        } else {
            Outcome::Dead
        };
        if let Err(error) = self
            .store
            .release_delivery(
                delivery.id,
                &delivery.lease_token,
                &reason,
                retry_at,
                now_ms(),
            )
            .await
        {
            // The lease runs out and the delivery is claimed again.
            tracing::warn!(delivery = delivery.id, error = %error, "releasing delivery failed");
        }
        outcome
    }

    fn record(&self, delivery: &ClaimedDelivery, outcome: &Outcome, started: Instant) {
        if *outcome == Outcome::Done {
            self.trigger_sync(delivery);
        }
        let platform = crate::telemetry::platform_label(&delivery.platform);
        match outcome {
            Outcome::Done => {
                metrics::counter!("shophub_deliveries_processed_total", "platform" => platform)
                    .increment(1)
            }
            Outcome::Dead => {
                metrics::counter!("shophub_deliveries_dead_total", "platform" => platform)
                    .increment(1)
            }
            Outcome::Retry => {
                metrics::counter!("shophub_deliveries_retried_total", "platform" => platform)
                    .increment(1)
            }
            Outcome::LeaseLost => tracing::warn!(
                delivery = delivery.id,
                "lease lost; another worker took the delivery"
            ),
        }
        metrics::histogram!("shophub_processing_seconds", "platform" => platform)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(delivery = delivery.id, outcome = ?outcome, "processed delivery");
    }
}

impl Worker {
    /// Some deliveries only announce that data is waiting (WeCom's
    /// customer-service callback): sync that stream now, in the background.
    fn trigger_sync(&self, delivery: &ClaimedDelivery) {
        let resource = shophub_connectors::connector(&delivery.platform)
            .and_then(|c| c.webhooks())
            .and_then(|source| source.triggers_sync(&delivery.topic, &delivery.body));
        let Some(resource) = resource else { return };
        let syncer = self.syncer.clone();
        let connection_id = delivery.connection_id.clone();
        tokio::spawn(async move {
            if let Err(error) = syncer
                .run_stream(&connection_id, resource, Mode::Incremental, None, |_| {})
                .await
            {
                tracing::warn!(connection = %connection_id, error = %error, "triggered sync failed");
            }
        });
    }
}

/// Exponential backoff with jitter: about 1 s after the first failure,
/// doubling up to 5 minutes.
fn retry_delay(attempts: i64) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts.max(1) as usize - 1)
        .unwrap_or(Duration::from_secs(300))
}

enum Failure {
    Permanent(String),
    Transient(String),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        match error {
            StoreError::Corrupt(reason) => Failure::Permanent(reason),
            other => Failure::Transient(other.to_string()),
        }
    }
}
