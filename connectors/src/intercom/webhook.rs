//! Verifying an Intercom notification: `X-Hub-Signature: sha1=<hex>` is the
//! HMAC-SHA1 of the raw body under the app's client secret; the `ping`
//! topic is a handshake; the notification id is the dedupe key.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::Sha1;

use super::{mapping, Intercom};
use crate::model::SourceRecord;
use crate::payload::present;
use crate::signature::sha256_hex;
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGNATURE_HEADER: &str = "X-Hub-Signature";

/// The topic Intercom sends when a subscription is saved.
pub(super) const PING_TOPIC: &str = "ping";

type HmacSha1 = Hmac<Sha1>;

impl Connector for Intercom {
    fn platform(&self) -> &'static str {
        "intercom"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["client_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Intercom {
    fn secret_keys(&self) -> &'static [&'static str] {
        &["client_secret"]
    }

    /// [`verify`](WebhookSource::verify), then the optional `app_id`
    /// setting: a notification of another workspace is acknowledged without
    /// being stored.
    fn verify_connection(
        &self,
        settings: &Map<String, Value>,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let (intake, app_id) = check(secrets, headers, body)?;
        let wanted = settings
            .get("app_id")
            .and_then(Value::as_str)
            .and_then(|v| present(Some(v)));
        match (wanted, app_id.as_deref()) {
            (Some(wanted), Some(sent)) if wanted != sent => Ok(Intake::Ping),
            _ => Ok(intake),
        }
    }

    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        check(secrets, headers, body).map(|(intake, _)| intake)
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

/// Just what the request path needs from the envelope.
#[derive(Deserialize)]
struct Envelope {
    id: Option<Value>,
    topic: Option<String>,
    app_id: Option<Value>,
}

/// The intake and the notification's workspace (`app_id`).
fn check(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Intake, Option<String>), VerifyError> {
    let envelope = serde_json::from_slice::<Envelope>(body).ok();
    let topic = envelope.as_ref().and_then(|e| present(e.topic.as_deref()));
    let Some(signature) = headers.get(SIGNATURE_HEADER) else {
        // The subscription handshake stores nothing, so it needs no proof.
        return match topic {
            Some(PING_TOPIC) => Ok((Intake::Ping, None)),
            _ => Err(VerifyError::MissingSignature(SIGNATURE_HEADER)),
        };
    };
    let signature = signature.to_str().map_err(|_| VerifyError::BadSignature)?;
    if !signature_matches(secrets, body, signature) {
        return Err(VerifyError::BadSignature);
    }
    let Some(envelope) = envelope.as_ref() else {
        return Err(VerifyError::Malformed(
            "body is not an Intercom notification".to_owned(),
        ));
    };
    let topic =
        topic.ok_or_else(|| VerifyError::Malformed("notification has no topic".to_owned()))?;
    let app_id = mapping::id_text(envelope.app_id.as_ref());
    if topic == PING_TOPIC {
        return Ok((Intake::Ping, app_id));
    }
    let dedupe_key = mapping::id_text(envelope.id.as_ref())
        .unwrap_or_else(|| format!("sha256:{}", sha256_hex(body)));
    Ok((
        Intake::Delivery {
            dedupe_key,
            topic: topic.to_owned(),
        },
        app_id,
    ))
}

/// Whether `header_value` is `sha1=` + the hex HMAC-SHA1 of `body` under any
/// of `secrets`. Every candidate is tried (no early exit), each comparison
/// constant-time; a missing prefix or bad hex is a mismatch.
pub(super) fn signature_matches(secrets: &[&[u8]], body: &[u8], header_value: &str) -> bool {
    let Some(hex_digest) = header_value.trim().strip_prefix("sha1=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    secrets.iter().fold(false, |found, secret| {
        let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&expected).is_ok() | found
    })
}
