//! Reading a destination's settings and secrets, and what the three clients
//! share in answering for a batch.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{DestinationError, Setup};

/// A required secret as a non-empty string.
pub(super) fn secret(setup: &Setup<'_>, tool: &str, key: &str) -> Result<String, DestinationError> {
    text(setup.secrets, key)
        .ok_or_else(|| DestinationError::Permanent(format!("{tool} needs secrets.{key}")))
}

/// A required setting as a non-empty string.
pub(super) fn required(
    setup: &Setup<'_>,
    tool: &str,
    key: &str,
) -> Result<String, DestinationError> {
    text(setup.settings, key)
        .ok_or_else(|| DestinationError::Permanent(format!("{tool} needs settings.{key}")))
}

/// A string setting, trimmed; absent or empty is `None`.
pub(super) fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `settings.api_base_url` when set (without a trailing slash), else `default`.
pub(super) fn base_url(
    settings: &Map<String, Value>,
    default: impl FnOnce() -> Result<String, DestinationError>,
) -> Result<String, DestinationError> {
    match text(settings, "api_base_url") {
        Some(url) => {
            let parsed = url::Url::parse(&url).map_err(|_| {
                DestinationError::Permanent("settings.api_base_url is not a URL".into())
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(DestinationError::Permanent(
                    "settings.api_base_url must be http or https".into(),
                ));
            }
            Ok(url.trim_end_matches('/').to_owned())
        }
        None => default(),
    }
}

/// What `Delete` does on the tool's side (`settings.delete_mode`): the
/// default removes the person for good, as an erasure needs; `archive` keeps
/// them recoverable, for segment-scoped destinations whose members leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeleteMode {
    Permanent,
    Archive,
}

impl DeleteMode {
    pub(super) fn from_settings(settings: &Map<String, Value>) -> Result<Self, DestinationError> {
        match text(settings, "delete_mode").as_deref() {
            None | Some("permanent") => Ok(DeleteMode::Permanent),
            Some("archive") => Ok(DeleteMode::Archive),
            Some(_) => Err(DestinationError::Permanent(
                "settings.delete_mode must be permanent or archive".into(),
            )),
        }
    }
}

/// The email as tools key it: trimmed and lower-cased.
pub(super) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Turns per-change outcomes into the batch's answer. Credentials refused or
/// a rate limit hit on any request stop the whole batch (the engine backs
/// the destination off and resends it; every request the clients make is
/// idempotent, so resending what already went through is harmless).
pub(super) fn settle(outcomes: Vec<Result<(), DestinationError>>) -> super::PushResult {
    let mut wait: Option<Option<Duration>> = None;
    for outcome in &outcomes {
        match outcome {
            Err(DestinationError::Unauthorized(m)) => {
                return Err(DestinationError::Unauthorized(m.clone()))
            }
            Err(DestinationError::RateLimited { retry_after }) => {
                let longest = match (wait.flatten(), *retry_after) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                wait = Some(longest);
            }
            _ => {}
        }
    }
    match wait {
        Some(retry_after) => Err(DestinationError::RateLimited { retry_after }),
        None => Ok(outcomes),
    }
}

/// The per-change answer for a feed event sent to a contact tool.
pub(super) fn not_an_event(tool: &str) -> DestinationError {
    DestinationError::Permanent(format!("{tool} takes contacts, not feed events"))
}
