//! Verifying a LINE delivery: base64 HMAC-SHA256 of the raw body under the
//! channel secret, the console's empty verify request, and the dedupe key of
//! a batch of events.

use http::HeaderMap;
use serde::Deserialize;

use super::{mapping, Line};
use crate::model::SourceRecord;
use crate::payload::present;
use crate::signature::{sha256_hex, verify_base64_hmac_sha256};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGNATURE_HEADER: &str = "X-Line-Signature";

/// Longest dedupe key made of event ids; longer lists are hashed.
const MAX_KEY_LEN: usize = 512;

impl Connector for Line {
    fn platform(&self) -> &'static str {
        "line"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["channel_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Line {
    fn secret_keys(&self) -> &'static [&'static str] {
        &["channel_secret"]
    }

    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::MissingSignature(SIGNATURE_HEADER))?
            .to_str()
            .map_err(|_| VerifyError::BadSignature)?;
        if !signature_matches(secrets, body, signature) {
            return Err(VerifyError::BadSignature);
        }
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| VerifyError::Malformed("body is not a LINE webhook".to_owned()))?;
        if envelope.events.is_empty() {
            // The console's "Verify" button sends a signed body without events.
            return Ok(Intake::Ping);
        }
        let mut types: Vec<&str> = envelope
            .events
            .iter()
            .map(|e| present(e.kind.as_deref()).unwrap_or("unknown"))
            .collect();
        types.sort_unstable();
        types.dedup();
        Ok(Intake::Delivery {
            dedupe_key: dedupe_key(&envelope.events, body),
            topic: types.join(","),
        })
    }

    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        mapping::decode(topic, body, ctx)
    }
}

/// Whether `signature` (base64) is the HMAC-SHA256 of `body` under any of
/// `secrets`, compared in constant time.
pub(super) fn signature_matches(secrets: &[&[u8]], body: &[u8], signature: &str) -> bool {
    verify_base64_hmac_sha256(secrets, body, signature)
}

/// Just what the request path needs from the body.
#[derive(Deserialize)]
struct Envelope {
    events: Vec<Stamp>,
}

#[derive(Deserialize)]
struct Stamp {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "webhookEventId")]
    webhook_event_id: Option<String>,
}

/// The sorted event ids identify a batch and its redeliveries; without ids
/// the exact bytes do.
fn dedupe_key(events: &[Stamp], body: &[u8]) -> String {
    let ids: Option<Vec<&str>> = events
        .iter()
        .map(|e| present(e.webhook_event_id.as_deref()))
        .collect();
    match ids {
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            let joined = ids.join(",");
            if joined.len() <= MAX_KEY_LEN {
                format!("events:{joined}")
            } else {
                format!("events-sha256:{}", sha256_hex(joined.as_bytes()))
            }
        }
        None => format!("sha256:{}", sha256_hex(body)),
    }
}
