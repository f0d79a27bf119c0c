//! Verifying a Telegram delivery: the `X-Telegram-Bot-Api-Secret-Token`
//! header must equal the connection's secret token (compared in constant
//! time); the update's `update_id` is the dedupe key.

use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{mapping, Telegram};
use crate::model::SourceRecord;
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const TOKEN_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

impl Connector for Telegram {
    fn platform(&self) -> &'static str {
        "telegram"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["secret_token"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Telegram {
    fn secret_keys(&self) -> &'static [&'static str] {
        &["secret_token"]
    }

    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let sent = headers
            .get(TOKEN_HEADER)
            .ok_or(VerifyError::MissingSignature(TOKEN_HEADER))?
            .as_bytes();
        if !token_matches(secrets, sent) {
            return Err(VerifyError::BadSignature);
        }
        let update: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| VerifyError::Malformed("body is not a Telegram update".to_owned()))?;
        let update_id = update
            .get("update_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| VerifyError::Malformed("update has no update_id".to_owned()))?;
        // An update carries exactly one optional field besides its id.
        let topic = update
            .keys()
            .find(|k| k.as_str() != "update_id")
            .map_or("unknown", String::as_str);
        Ok(Intake::Delivery {
            dedupe_key: update_id.to_string(),
            topic: topic.to_owned(),
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

/// Whether `sent` equals any of the candidate tokens. Both sides are hashed
/// first so the comparison takes the same time whatever the lengths and
/// contents, and every candidate is compared (no early exit). An empty
/// token never matches.
pub(super) fn token_matches(secrets: &[&[u8]], sent: &[u8]) -> bool {
    let sent_digest = Sha256::digest(sent);
    secrets.iter().fold(false, |found, secret| {
        let secret_digest = Sha256::digest(secret);
        let diff = sent_digest
            .iter()
            .zip(secret_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0 && !secret.is_empty()) | found
    })
}
