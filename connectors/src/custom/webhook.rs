//! Verifying a Standard Webhooks delivery (v1, symmetric).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`; the
//! `webhook-signature` header lists `v1,<base64>` entries separated by
//! spaces (several during the sender's own key rotation), and a request is
//! genuine when any `v1` entry matches any candidate secret. Entries of
//! other versions (`v1a`, the asymmetric form) are ignored.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::{canonical, Custom};
use crate::model::SourceRecord;
use crate::payload::header;
use crate::signature::verify_hmac_sha256;
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

/// The topic of every custom delivery.
pub const TOPIC: &str = "records";

/// How far a delivery's timestamp may be from the hub's clock, either way
/// (the reference libraries' tolerance).
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const ID_HEADER: &str = "webhook-id";
const TIMESTAMP_HEADER: &str = "webhook-timestamp";
const SIGNATURE_HEADER: &str = "webhook-signature";
/// Svix sends the same scheme under its own names.
const SVIX_HEADERS: [&str; 3] = ["svix-id", "svix-timestamp", "svix-signature"];

const SECRET_PREFIX: &str = "whsec_";

impl WebhookSource for Custom {
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        verify_at(secrets, headers, body, Utc::now())
    }

    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        canonical::decode(topic, body, ctx)
    }
}

/// [`WebhookSource::verify`] against an explicit clock.
pub fn verify_at(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Intake, VerifyError> {
    let [svix_id, svix_timestamp, svix_signature] = SVIX_HEADERS;
    let id = header(headers, ID_HEADER)
        .or_else(|| header(headers, svix_id))
        .ok_or(VerifyError::MissingSignature(ID_HEADER))?;
    let timestamp = header(headers, TIMESTAMP_HEADER)
        .or_else(|| header(headers, svix_timestamp))
        .ok_or(VerifyError::MissingSignature(TIMESTAMP_HEADER))?;
    let signatures = header(headers, SIGNATURE_HEADER)
        .or_else(|| header(headers, svix_signature))
        .ok_or(VerifyError::MissingSignature(SIGNATURE_HEADER))?;

    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| signing_key(s)).collect();
    if keys.is_empty() {
        return Err(VerifyError::Malformed(
            "no webhook secret is a whsec_ base64 secret".to_owned(),
        ));
    }
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();

    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);

    let matched = signatures
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, digest)| {
            base64::engine::general_purpose::STANDARD
                .decode(digest)
                .ok()
        })
        .fold(false, |found, digest| {
            verify_hmac_sha256(&keys, &signed, &digest) | found
        });
    if !matched {
        return Err(VerifyError::BadSignature);
    }

    let sent: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::Malformed("webhook-timestamp is not unix seconds".to_owned()))?;
    let tolerance = TIMESTAMP_TOLERANCE.as_secs() as i64;
    let age = now.timestamp() - sent;
    if age > tolerance {
        return Err(VerifyError::Malformed(
            "webhook-timestamp is more than 5 minutes old".to_owned(),
        ));
    }
    if -age > tolerance {
        return Err(VerifyError::Malformed(
            "webhook-timestamp is more than 5 minutes in the future".to_owned(),
        ));
    }
    Ok(Intake::Delivery {
        dedupe_key: id.to_owned(),
        topic: TOPIC.to_owned(),
    })
}

/// The HMAC key of a `whsec_<base64>` secret (or of a bare base64 one).
fn signing_key(secret: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(secret).ok()?.trim();
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
}
