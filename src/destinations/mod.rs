//! Destinations: the tools the hub keeps equal to its profiles.
//!
//! Each destination reads the change feed from its own cursor (see
//! [`engine`]), turns feed events into [`Change`]s through its field mapping
//! ([`mapping`], [`plan`]) and hands them to a client: the hub's own
//! [`webhook`], [`http`] and [`file`] kinds, or a third-party client from
//! `shophub_connectors::destinations::build`.

pub mod engine;
pub mod file;
pub mod http;
pub mod input;
pub mod mapping;
pub mod plan;
pub mod secrets;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shophub_connectors::destinations::{Change, Destination, DestinationError, PushResult, Setup};

/// The kinds the hub serves itself; other kinds come from the connectors crate.
pub const HUB_KINDS: &[&str] = &["webhook", "http", "file"];
/// Every kind `POST /v1/destinations` knows.
pub const KINDS: &[&str] = &["webhook", "hubspot", "mailchimp", "klaviyo", "http", "file"];

/// A client's permanent error starting with this means the receiver asked
/// never to be called again (HTTP 410 Gone): the destination is disabled.
pub const GONE: &str = "gone:";

/// The engine's timing (`[destinations]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// How often an idle destination looks at the feed; 0 turns the engine off.
    pub interval_ms: u64,
    /// The first retry's delay; later ones double (with jitter) up to `retry_max_ms`.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// Tries of one change before it goes to the dead-letter list.
    pub max_attempts: usize,
    /// Consecutive failed runs that open the circuit breaker.
    pub breaker_failures: i64,
    /// How long an open breaker waits before one probe.
    pub breaker_cooldown_ms: u64,
    /// How long a hub process owns a destination's run.
    pub lease_ms: u64,
    /// Timeout of one request to a webhook or http receiver.
    pub request_timeout_ms: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        // 2 s doubling to an hour, 12 tries: about 2.5 hours before a change
        // is given up on.
        EngineSettings {
            interval_ms: 1000,
            retry_min_ms: 2000,
            retry_max_ms: 3_600_000,
            max_attempts: 12,
            breaker_failures: 5,
            breaker_cooldown_ms: 60_000,
            lease_ms: 60_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// Builds the client that serves a destination's kind; `Ok(None)` when no
/// client serves it (yet).
pub fn open(
    kind: &str,
    settings: &Map<String, Value>,
    secrets: &Map<String, Value>,
    http: reqwest::Client,
    now_ms: i64,
) -> Result<Option<Box<dyn Destination>>, DestinationError> {
    Ok(Some(match kind {
        "webhook" => Box::new(webhook::Webhook::new(settings, secrets, http, now_ms)?),
        "http" => Box::new(http::HttpJson::new(settings, secrets, http)?),
        "file" => Box::new(file::FileDestination::new(settings)?),
        other => {
            return shophub_connectors::destinations::build(
                other,
                Setup {
                    settings,
                    secrets,
                    http,
                },
            )
        }
    }))
}

/// Hub kinds receive every change as an event, so receivers learn what
/// happened (`profile.merged`, `segment.exited`) as well as what to do.
pub fn wants_events(kind: &str) -> bool {
    HUB_KINDS.contains(&kind)
}

/// The operation a change asks for, for logs.
pub fn op_name(change: &Change) -> String {
    match change {
        Change::Upsert { .. } => "upsert".into(),
        Change::Merge { .. } => "merge".into(),
        Change::Delete { .. } => "delete".into(),
        Change::Event { payload, kind, .. } => payload
            .get("op")
            .and_then(Value::as_str)
            .map_or_else(|| kind.clone(), str::to_string),
    }
}

/// The target URL of a webhook or http destination: `settings.url`, read
/// relative to `settings.api_base_url` when that is set.
pub fn target_url(settings: &Map<String, Value>) -> Result<url::Url, DestinationError> {
    let url = settings
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| DestinationError::Permanent("settings.url is required".into()))?;
    let parsed = match settings.get("api_base_url").and_then(Value::as_str) {
        Some(base) => url::Url::parse(base).and_then(|b| b.join(url)),
        None => url::Url::parse(url),
    }
    .map_err(|e| DestinationError::Permanent(format!("settings.url: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        _ => Err(DestinationError::Permanent(
            "settings.url must be an http or https URL".into(),
        )),
    }
}

/// Classifies a receiver's HTTP answer the way the engine retries it.
pub fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<&str>,
) -> Result<(), DestinationError> {
    use reqwest::StatusCode;
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::TOO_MANY_REQUESTS => Err(DestinationError::RateLimited {
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs),
        }),
        StatusCode::GONE => Err(DestinationError::Permanent(format!(
            "{GONE} the receiver answered 410 Gone"
        ))),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(DestinationError::Unauthorized(
            format!("the receiver answered {status}"),
        )),
        s if s.is_server_error()
            || s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::CONFLICT =>
        {
            Err(DestinationError::Transient(format!(
                "the receiver answered {status}"
            )))
        }
        s => Err(DestinationError::Permanent(format!(
            "the receiver answered {s}"
        ))),
    }
}

/// Sends each change as one request built by `request`, in order. A
/// permanent refusal is that change's own result; any other failure stops
/// the batch there (order is kept) and the rest is reported as not sent.
pub async fn push_each(
    changes: &[Change],
    mut request: impl FnMut(&Change) -> reqwest::RequestBuilder,
) -> PushResult {
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        let response = request(change).send().await.map_err(transport_error)?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match classify(response.status(), retry_after.as_deref()) {
            Ok(()) => results.push(Ok(())),
            Err(e @ DestinationError::Permanent(_)) => results.push(Err(e)),
            Err(e) if results.is_empty() => return Err(e),
            Err(e) => {
                results.push(Err(e));
                break;
            }
        }
    }
    while results.len() < changes.len() {
        results.push(Err(DestinationError::Transient(
            "not sent: an earlier request failed".into(),
        )));
    }
    Ok(results)
}

/// A request that did not get an answer is worth retrying.
pub fn transport_error(error: reqwest::Error) -> DestinationError {
    // The error's URL may carry a token in its query: leave it out.
    DestinationError::Transient(error.without_url().to_string())
}
