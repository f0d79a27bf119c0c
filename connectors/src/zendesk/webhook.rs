//! Receiving a Zendesk webhook: `X-Zendesk-Webhook-Signature` is the
//! base64 HMAC-SHA256, under the webhook's signing secret, of
//! `X-Zendesk-Webhook-Signature-Timestamp` followed directly by the raw
//! body. Requests whose timestamp is more than [`TOLERANCE`] away from the
//! hub's clock are refused as replays.
//!
//! The body is whatever the admin wrote (trigger and automation webhooks)
//! or Zendesk's event JSON (event subscriptions), so it is only read for a
//! ticket id: the worker then reads the ticket's comments through
//! [`PollingSource::fetch`].

use chrono::{DateTime, Duration, Utc};
use http::HeaderMap;
use serde_json::Value;

use super::Zendesk;
use crate::model::SourceRecord;
use crate::payload::{header, invalid};
use crate::poll::{PollingSource, Resource};
use crate::signature::{sha256_hex, verify_base64_hmac_sha256};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGNATURE_HEADER: &str = "X-Zendesk-Webhook-Signature";
pub(super) const TIMESTAMP_HEADER: &str = "X-Zendesk-Webhook-Signature-Timestamp";
/// The webhook's own id: the same on every request it sends.
pub(super) const WEBHOOK_ID_HEADER: &str = "X-Zendesk-Webhook-Id";
/// One id per invocation of the webhook.
pub(super) const INVOCATION_ID_HEADER: &str = "X-Zendesk-Webhook-Invocation-Id";

/// How far the signed timestamp may be from the hub's clock, either way.
pub(super) const TOLERANCE: Duration = Duration::minutes(5);

/// The topic of requests whose body names no event type (trigger and
/// automation webhooks, whose body the admin writes).
pub(super) const TRIGGER_TOPIC: &str = "trigger";

/// Event-subscription types start with this; ticket events carry the
/// ticket in `detail`.
const TICKET_EVENT_PREFIX: &str = "zen:event-type:ticket.";
const EVENT_PREFIX: &str = "zen:event-type:";

impl Connector for Zendesk {
    fn platform(&self) -> &'static str {
        "zendesk"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["subdomain"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    /// Polling and webhook fetches additionally need `secrets.email` and
    /// `secrets.api_token`.
    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for Zendesk {
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        verify_at(Utc::now(), secrets, headers, body)
    }

    /// The records come from the ticket fetch that `references` names.
    fn decode(
        &self,
        _topic: &str,
        _body: &[u8],
        _ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        Ok(Vec::new())
    }

    fn references(&self, topic: &str, body: &[u8]) -> Result<Vec<(Resource, String)>, DecodeError> {
        if topic.starts_with(EVENT_PREFIX) && !topic.starts_with(TICKET_EVENT_PREFIX) {
            // User, organisation and other events name no ticket.
            return Ok(Vec::new());
        }
        let id = ticket_id(body).ok_or_else(|| {
            invalid(
                topic,
                "no ticket id (ticket.id, ticket_id, detail.id or id) in the body",
            )
        })?;
        Ok(vec![(Resource::Messages, id)])
    }
}

/// [`WebhookSource::verify`] at a given instant.
pub(super) fn verify_at(
    now: DateTime<Utc>,
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Intake, VerifyError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .ok_or(VerifyError::MissingSignature(SIGNATURE_HEADER))?
        .to_str()
        .map_err(|_| VerifyError::BadSignature)?;
    let timestamp = headers
        .get(TIMESTAMP_HEADER)
        .ok_or(VerifyError::MissingSignature(TIMESTAMP_HEADER))?
        .as_bytes();
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp);
    signed.extend_from_slice(body);
    if !verify_base64_hmac_sha256(secrets, &signed, signature) {
        return Err(VerifyError::BadSignature);
    }
    let sent = std::str::from_utf8(timestamp)
        .ok()
        .and_then(parse_timestamp)
        .ok_or_else(|| VerifyError::Malformed(format!("{TIMESTAMP_HEADER} is not a time")))?;
    if (now - sent).abs() > TOLERANCE {
        return Err(VerifyError::Malformed(format!(
            "{TIMESTAMP_HEADER} is more than {} minutes from now",
            TOLERANCE.num_minutes()
        )));
    }
    Ok(Intake::Delivery {
        dedupe_key: dedupe_key(headers, body),
        topic: event_type(body).unwrap_or_else(|| TRIGGER_TOPIC.to_owned()),
    })
}

/// Zendesk writes the timestamp as RFC 3339 (`2021-03-25T05:09:27Z`);
/// Unix seconds are accepted too.
fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    if !raw.is_empty() && raw.len() <= 12 && raw.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::from_timestamp(raw.parse().ok()?, 0);
    }
    None
}

/// `X-Zendesk-Webhook-Id` names the webhook, not the request, so on its own
/// it would fold every delivery of one webhook into one. The invocation id
/// (with the webhook's id) names one firing; without it the exact bytes do.
fn dedupe_key(headers: &HeaderMap, body: &[u8]) -> String {
    match header(headers, INVOCATION_ID_HEADER) {
        Some(invocation) => {
            let webhook = header(headers, WEBHOOK_ID_HEADER).unwrap_or("-");
            format!("zendesk:{webhook}:{invocation}")
        }
        None => format!("sha256:{}", sha256_hex(body)),
    }
}

/// The event subscription's `type`, when the body is such an event.
fn event_type(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("type")?.as_str()?.trim();
    let plain = !kind.is_empty() && kind.len() <= 120 && kind.bytes().all(|b| b.is_ascii_graphic());
    (plain && kind.starts_with(EVENT_PREFIX)).then(|| kind.to_owned())
}

/// The ticket a body is about: `detail.id` of a ticket event, else
/// `ticket.id`, `ticket_id` or `id` of a JSON trigger body, else the
/// `ticket_id` or `id` field of a form-encoded one.
pub(super) fn ticket_id(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let is_event = value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with(EVENT_PREFIX));
        let paths: &[&[&str]] = if is_event {
            &[&["detail", "id"]]
        } else {
            &[
                &["ticket", "id"],
                &["ticket_id"],
                &["ticket", "ticket_id"],
                &["id"],
            ]
        };
        return paths.iter().find_map(|path| {
            let mut at = &value;
            for key in *path {
                at = at.get(key)?;
            }
            numeric_id(at)
        });
    }
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    ["ticket_id", "id"].iter().find_map(|name| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| numeric_id(&Value::String(v.clone())))
    })
}

fn numeric_id(value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let valid = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.bytes().any(|b| b != b'0');
    valid.then_some(text)
}
