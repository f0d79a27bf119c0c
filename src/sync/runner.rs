//! Syncing one stream: page by page, with retries, until caught up.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use shophub_connectors::model::SourceRecord;
use shophub_connectors::poll::{Api, Page, Resource};
use shophub_connectors::{ConnectorError, PollingSource};

use super::RateBudgets;
use crate::clock::now_ms;
use crate::complaints::ComplaintRules;
use crate::crypto::MasterKey;
use crate::resolve::{self, Batch};
use crate::store::{Store, StoreError, StreamAdvance, StreamRow, SyncTarget};

use std::sync::Arc;

/// Attempts at one page before the stream records the error and stops.
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The connection's ongoing stream (`orders`): a sweep from its cursor to now.
    Incremental,
    /// A history load (`backfill:orders`), resumable until complete.
    Backfill,
}

impl Mode {
    pub fn stream(self, resource: Resource) -> String {
        match self {
            Mode::Incremental => resource.as_str().to_string(),
            Mode::Backfill => format!("backfill:{}", resource.as_str()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the platform refused the credentials; the connection needs re-authorisation: {0}")]
    NeedsReauth(String),
    #[error("{0}")]
    Failed(String),
    #[error("another poller advanced this stream")]
    Conflict,
    #[error("{0} does not support polling")]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a caller sees after each committed page.
#[derive(Debug, Clone)]
pub struct Progress {
    pub stream: String,
    pub records: i64,
    pub pages: i64,
    pub since: Option<i64>,
    pub watermark: Option<i64>,
    /// The newest record version seen in this run: sweeps read in
    /// modification order, so it shows how far through time the run is
    /// even before the platform's watermark moves.
    pub position: Option<i64>,
    pub caught_up: bool,
}

#[derive(Clone)]
pub struct Syncer {
    store: Arc<dyn Store>,
    master_key: MasterKey,
    http: reqwest::Client,
    budgets: RateBudgets,
    /// Where platforms reach this hub; webhook upkeep needs it.
    public_url: Option<String>,
    rules: Arc<ComplaintRules>,
}

/// A connection's decrypted view, for building API contexts.
struct Account {
    target: SyncTarget,
    source: &'static dyn PollingSource,
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
    base_url: String,
}

impl Syncer {
    pub fn new(
        store: Arc<dyn Store>,
        master_key: MasterKey,
        public_url: Option<String>,
        rules: Arc<ComplaintRules>,
    ) -> Syncer {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("shophub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client builds");
        let public_url = public_url.map(|url| url.trim_end_matches('/').to_string());
        Syncer {
            store,
            master_key,
            http,
            budgets: RateBudgets::default(),
            public_url,
            rules,
        }
    }

    /// The HTTP client every platform call goes through.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// What counts as a complaint when records are applied.
    pub fn rules(&self) -> &ComplaintRules {
        &self.rules
    }

    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    pub fn polling(platform: &str) -> Option<&'static dyn PollingSource> {
        shophub_connectors::connector(platform)?.polling()
    }

    /// Platforms of this build that can be polled.
    pub fn polling_platforms() -> Vec<&'static str> {
        shophub_connectors::registry()
            .iter()
            .filter(|c| c.polling().is_some())
            .map(|c| c.platform())
            .collect()
    }

    fn account(&self, target: SyncTarget) -> Result<Account, SyncError> {
        let source = Self::polling(&target.platform)
            .ok_or_else(|| SyncError::Unsupported(target.platform.clone()))?;
        let settings: Map<String, Value> =
            serde_json::from_str(&target.settings).unwrap_or_default();
        let secrets = self
            .master_key
            .open(&target.secrets, &target.id)
            .map_err(|e| SyncError::Failed(e.to_string()))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| SyncError::Failed(e.to_string()))
            })?;
        let base_url = settings
            .get("api_base_url")
            .and_then(Value::as_str)
            .map(|url| url.trim_end_matches('/').to_string())
            .or_else(|| source.default_base_url(&settings))
            .ok_or_else(|| {
                SyncError::Failed("settings do not say where the platform's API is".into())
            })?;
        Ok(Account {
            target,
            source,
            settings,
            secrets,
            base_url,
        })
    }

    async fn target(&self, connection_id: &str) -> Result<SyncTarget, SyncError> {
        self.store
            .sync_target(connection_id)
            .await?
            .ok_or(SyncError::Store(StoreError::NotFound))
    }

    /// Resources the connection can poll: none when the platform cannot be
    /// polled or the connection lacks the credentials polling needs.
    pub async fn resources(&self, connection_id: &str) -> Result<Vec<Resource>, SyncError> {
        let account = self.account(self.target(connection_id).await?)?;
        let has = |key: &&str| {
            account
                .secrets
                .get(*key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        if !account.source.credentials().iter().all(has) {
            return Ok(Vec::new());
        }
        Ok(account.source.resources().to_vec())
    }

    /// Starts a backfill of `resource` at `since`, or resumes an unfinished
    /// one that started at the same point. Returns the stream to run.
    pub async fn prepare_backfill(
        &self,
        connection_id: &str,
        resource: Resource,
        since: Option<DateTime<Utc>>,
    ) -> Result<StreamRow, SyncError> {
        let target = self.target(connection_id).await?;
        let source = Self::polling(&target.platform)
            .ok_or_else(|| SyncError::Unsupported(target.platform.clone()))?;
        let stream = Mode::Backfill.stream(resource);
        let since_ms = since.map(|t| t.timestamp_millis());
        let existing = self
            .store
            .streams(connection_id)
            .await?
            .into_iter()
            .find(|s| s.stream == stream);
        let resumable = existing
            .as_ref()
            .is_some_and(|s| s.caught_up == 0 && (since.is_none() || s.since == since_ms));
        if !resumable {
            let cursor = source.start_cursor(resource, since).to_string();
            self.store
                .reset_stream(
                    &target.workspace_id,
                    connection_id,
                    &stream,
                    &cursor,
                    since_ms,
                    now_ms(),
                )
                .await?;
        }
        let start = source.start_cursor(resource, since).to_string();
        Ok(self
            .store
            .open_stream(
                &target.workspace_id,
                connection_id,
                &stream,
                &start,
                since_ms,
                now_ms(),
            )
            .await?)
    }

    /// Pages through one stream until it is caught up (or `max_pages`).
    pub async fn run_stream(
        &self,
        connection_id: &str,
        resource: Resource,
        mode: Mode,
        max_pages: Option<usize>,
        mut progress: impl FnMut(&Progress) + Send,
    ) -> Result<Progress, SyncError> {
        let account = self.account(self.target(connection_id).await?)?;
        if account.target.auth_status != "ok" {
            return Err(SyncError::NeedsReauth("waiting for new credentials".into()));
        }
        let stream = mode.stream(resource);
        let start = account.source.start_cursor(resource, None).to_string();
        let workspace_id = account.target.workspace_id.clone();
        let mut row = self
            .store
            .open_stream(
                &workspace_id,
                connection_id,
                &stream,
                &start,
                None,
                now_ms(),
            )
            .await?;
        let mut pages = 0;
        let mut position: Option<i64> = None;
        loop {
            if mode == Mode::Backfill && row.caught_up == 1 {
                return Ok(progress_of(&row));
            }
            let cursor: Value =
                serde_json::from_str(&row.cursor).map_err(|e| SyncError::Failed(e.to_string()))?;
            let page = match self.fetch_page(&account, resource, &cursor).await {
                Ok(page) => page,
                Err(error) => {
                    self.store
                        .stream_error(connection_id, &stream, &error.to_string(), now_ms())
                        .await?;
                    return Err(error);
                }
            };
            row = self.commit_page(&account, &row, &page).await?;
            pages += 1;
            let newest = page
                .records
                .iter()
                .map(|r| r.version.timestamp_millis())
                .max();
            position = position.max(newest);
            let current = Progress {
                position,
                ..progress_of(&row)
            };
            progress(&current);
            if let Some(pace) = page.pace {
                self.budgets.defer(&account.target.id, pace);
            }
            if page.caught_up || max_pages.is_some_and(|max| pages >= max) {
                return Ok(current);
            }
        }
    }

    async fn fetch_page(
        &self,
        account: &Account,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, SyncError> {
        match self.call(account, Call::Poll(resource, cursor)).await? {
            Answer::Page(page) => Ok(page),
            _ => unreachable!("a poll answers with a page"),
        }
    }

    /// Fetches resources by id, for thin webhooks that carry only ids.
    pub async fn fetch(
        &self,
        connection_id: &str,
        resource: Resource,
        id: &str,
    ) -> Result<Vec<SourceRecord>, SyncError> {
        let account = self.account(self.target(connection_id).await?)?;
        if account.target.auth_status != "ok" {
            return Err(SyncError::NeedsReauth("waiting for new credentials".into()));
        }
        match self.call(&account, Call::Fetch(resource, id)).await? {
            Answer::Records(records) => Ok(records),
            _ => unreachable!("a fetch answers with records"),
        }
    }

    /// Makes the platform's webhook subscriptions point at this hub again
    /// (created if missing, re-enabled if the platform disabled them).
    /// Returns what changed; nothing when no `public_url` is configured or
    /// the platform cannot manage subscriptions.
    pub async fn ensure_webhooks(&self, connection_id: &str) -> Result<Vec<String>, SyncError> {
        let Some(public_url) = &self.public_url else {
            return Ok(Vec::new());
        };
        // Without API credentials there is nothing to manage subscriptions with.
        if self.resources(connection_id).await?.is_empty() {
            return Ok(Vec::new());
        }
        let account = self.account(self.target(connection_id).await?)?;
        if account.target.auth_status != "ok" {
            return Err(SyncError::NeedsReauth("waiting for new credentials".into()));
        }
        let delivery_url = format!(
            "{public_url}/webhooks/{}/{}",
            account.target.platform, account.target.id
        );
        match self
            .call(&account, Call::EnsureWebhooks(&delivery_url))
            .await?
        {
            Answer::Lines(changes) => Ok(changes),
            _ => unreachable!("webhook upkeep answers with lines"),
        }
    }

    /// One call, retried with exponential backoff and jitter on transient
    /// failures and rate limits; the rate budget is honoured before each try.
    async fn call(&self, account: &Account, call: Call<'_>) -> Result<Answer, SyncError> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.budgets.wait(&account.target.id).await;
            let api = Api {
                http: &self.http,
                base_url: account.base_url.clone(),
                settings: &account.settings,
                secrets: &account.secrets,
                default_region: account
                    .settings
                    .get("default_region")
                    .and_then(Value::as_str),
                now: Utc::now(),
            };
            let result = match call {
                Call::Poll(resource, cursor) => account
                    .source
                    .poll(&api, resource, cursor)
                    .await
                    .map(Answer::Page),
                Call::Fetch(resource, id) => account
                    .source
                    .fetch(&api, resource, id)
                    .await
                    .map(Answer::Records),
                Call::EnsureWebhooks(url) => account
                    .source
                    .ensure_webhooks(&api, url)
                    .await
                    .map(Answer::Lines),
            };
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            let platform = crate::telemetry::platform_label(&account.target.platform);
            metrics::counter!("shophub_poll_errors_total", "platform" => platform, "kind" => error_kind(&error))
                .increment(1);
            let delay = backoff.next().unwrap_or(Duration::from_secs(60));
            match error {
                ConnectorError::Unauthorized(reason) => {
                    self.store
                        .set_auth_status(&account.target.id, "needs_reauth", Some(&reason))
                        .await?;
                    tracing::warn!(connection = %account.target.id, "credentials refused; polling stops until re-authorised");
                    return Err(SyncError::NeedsReauth(reason));
                }
                ConnectorError::RateLimited { retry_after } if attempt < MAX_ATTEMPTS => {
                    // The platform's word wins over our own backoff when it gives one.
                    self.budgets
                        .defer(&account.target.id, retry_after.unwrap_or(delay));
                }
                ConnectorError::Transient(_) if attempt < MAX_ATTEMPTS => {
                    self.budgets.defer(&account.target.id, delay);
                }
                other => return Err(SyncError::Failed(other.to_string())),
            }
        }
    }

    /// Applies the page's records and moves the cursor in one transaction.
    async fn commit_page(
        &self,
        account: &Account,
        row: &StreamRow,
        page: &Page,
    ) -> Result<StreamRow, SyncError> {
        let now = now_ms();
        let cursor = page.cursor.to_string();
        let watermark = page.watermark.map(|t| t.timestamp_millis());
        let mut tx = self.store.begin_write(&account.target.workspace_id).await?;
        let batch = [Batch {
            connection_id: &account.target.id,
            records: &page.records,
        }];
        resolve::apply(
            tx.as_mut(),
            &account.target.workspace_id,
            &batch,
            &self.rules,
            now,
        )
        .await?;
        let advanced = tx
            .advance_stream(&StreamAdvance {
                connection_id: &account.target.id,
                stream: &row.stream,
                expected_cursor: &row.cursor,
                cursor: &cursor,
                watermark,
                caught_up: page.caught_up,
                records: page.records.len() as i64,
                now,
            })
            .await?;
        if !advanced {
            return Err(SyncError::Conflict);
        }
        tx.commit().await?;
        let platform = crate::telemetry::platform_label(&account.target.platform);
        metrics::counter!("shophub_poll_records_total", "platform" => platform)
            .increment(page.records.len() as u64);
        let mut next = row.clone();
        next.cursor = cursor;
        next.watermark = watermark.or(row.watermark);
        next.caught_up = i64::from(page.caught_up);
        next.records += page.records.len() as i64;
        next.pages += 1;
        next.last_success_at = Some(now);
        next.last_error = None;
        Ok(next)
    }
}

#[derive(Clone, Copy)]
enum Call<'a> {
    Poll(Resource, &'a Value),
    Fetch(Resource, &'a str),
    EnsureWebhooks(&'a str),
}

enum Answer {
    Page(Page),
    Records(Vec<SourceRecord>),
    Lines(Vec<String>),
}

fn progress_of(row: &StreamRow) -> Progress {
    Progress {
        stream: row.stream.clone(),
        records: row.records,
        pages: row.pages,
        since: row.since,
        watermark: row.watermark,
        position: None,
        caught_up: row.caught_up == 1,
    }
}

fn error_kind(error: &ConnectorError) -> &'static str {
    match error {
        ConnectorError::Unauthorized(_) => "unauthorized",
        ConnectorError::RateLimited { .. } => "rate_limited",
        ConnectorError::Transient(_) => "transient",
        ConnectorError::Permanent(_) => "permanent",
        ConnectorError::Malformed(_) => "malformed",
    }
}
