//! Polling: the contract between the hub's poll runner and a platform's API.
//!
//! A connector fetches one page at a time and says where to continue; it
//! never sleeps, loops, retries or stores anything. The hub's runner owns the
//! schedule, the per-account rate budget, retries with backoff, and commits
//! each page's records together with the cursor that follows them, so a crash
//! never skips a page or applies one twice.
//!
//! The cursor is the connector's own JSON: each platform resumes in its own
//! terms (a GraphQL end cursor, a page number inside a `modified_after`
//! sweep, a time window). A sweep re-reads a short overlap before its
//! watermark; records are versioned, so re-reading is harmless while
//! skipping would not be.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::SourceRecord;

/// How far back a new sweep starts before the watermark, for platforms whose
/// clocks and indexes lag a little behind their writes.
pub const LOOKBACK: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Orders,
    Customers,
    Reviews,
    /// Conversations: chat, helpdesk tickets, mailboxes.
    Messages,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Orders => "orders",
            Resource::Customers => "customers",
            Resource::Reviews => "reviews",
            Resource::Messages => "messages",
        }
    }

    pub fn parse(name: &str) -> Option<Resource> {
        [
            Resource::Orders,
            Resource::Customers,
            Resource::Reviews,
            Resource::Messages,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// What a connection's API client needs for one call.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    /// The connection's `api_base_url`, or the platform's own address.
    pub base_url: String,
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a Map<String, Value>,
    pub default_region: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl Api<'_> {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key)?.as_str().filter(|v| !v.is_empty())
    }

    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key)?.as_str().filter(|v| !v.is_empty())
    }

    /// A required secret, or `Unauthorized` naming it.
    pub fn require_secret(&self, key: &str) -> Result<&str, ConnectorError> {
        self.secret(key)
            .ok_or_else(|| ConnectorError::Unauthorized(format!("secrets.{key} is not set")))
    }
}

/// One page of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<SourceRecord>,
    /// Where the next call continues; committed with `records`.
    pub cursor: Value,
    /// True when the sweep has reached the present: the runner stops until
    /// the next scheduled sweep.
    pub caught_up: bool,
    /// Everything modified before this instant has been seen (for lag).
    pub watermark: Option<DateTime<Utc>>,
    /// The platform asked, through its rate-limit signals (leaky-bucket
    /// headers, GraphQL cost), to wait this long before the next call.
    pub pace: Option<Duration>,
}

/// Errors classified so the runner's reaction is a `match`, not a guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Credentials were refused: the connection needs re-authorisation and
    /// must stop calling the platform until it gets it.
    #[error("unauthorised: {0}")]
    Unauthorized(String),
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// Worth retrying with backoff: timeouts, 5xx, connection errors.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying the same call will not help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The platform answered something this client cannot read.
    #[error("malformed response: {0}")]
    Malformed(String),
}

#[async_trait::async_trait]
pub trait PollingSource: Send + Sync {
    fn platform(&self) -> &'static str;

    /// The platform's API address when the connection sets no `api_base_url`.
    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String>;

    fn resources(&self) -> &'static [Resource];

    /// Secret keys polling needs beyond the connection's required secrets
    /// (a webhook-only connection may lack them; it is then not polled).
    fn credentials(&self) -> &'static [&'static str] {
        &[]
    }

    /// A cursor that starts a sync of `resource` at `since`, or at the start
    /// of the shop's history.
    fn start_cursor(&self, resource: Resource, since: Option<DateTime<Utc>>) -> Value;

    /// Fetches the page after `cursor`.
    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError>;

    /// Makes sure the platform sends this connection's webhooks to
    /// `delivery_url`: creates missing subscriptions and re-enables ones the
    /// platform disabled. Returns what changed, one line each, for people.
    /// Platforms whose API cannot manage subscriptions return nothing.
    async fn ensure_webhooks(
        &self,
        _api: &Api<'_>,
        _delivery_url: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Fetches single resources by id (for thin webhooks). Platforms whose
    /// webhooks carry the whole resource need not implement it.
    async fn fetch(
        &self,
        _api: &Api<'_>,
        resource: Resource,
        _id: &str,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        Err(ConnectorError::Permanent(format!(
            "{} cannot be fetched by id here",
            resource.as_str()
        )))
    }
}
