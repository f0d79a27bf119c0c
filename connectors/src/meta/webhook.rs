//! Meta's webhook edge, the same for Messenger, Instagram and WhatsApp: the
//! GET verification handshake, the `X-Hub-Signature-256` check, and the
//! dedupe key of a (possibly batched) notification.

use http::HeaderMap;

use super::{mapping, Instagram, Messenger, WhatsApp};
use crate::model::SourceRecord;
use crate::payload::{parse_json, present};
use crate::signature::{hmac_sha256, sha256_hex, verify_hex_hmac_sha256, verify_hmac_sha256};
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

pub(super) const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const SIGNATURE_PREFIX: &str = "sha256=";
/// The connection setting holding the token typed into the App Dashboard.
pub(super) const VERIFY_TOKEN_SETTING: &str = "verify_token";
/// The app secret signs every notification; `previous_app_secret` is an
/// optional second candidate while a reset secret propagates.
pub(super) const SECRET_KEYS: &[&str] = &["app_secret", "previous_app_secret"];
/// Longest dedupe key made of message ids; longer lists are hashed.
const MAX_KEY_LEN: usize = 200;

macro_rules! meta_connector {
    ($name:ident, $platform:literal) => {
        impl Connector for $name {
            fn platform(&self) -> &'static str {
                $platform
            }

            fn required_settings(&self) -> &'static [&'static str] {
                &[VERIFY_TOKEN_SETTING]
            }

            fn required_secrets(&self) -> &'static [&'static str] {
                &["app_secret"]
            }

            fn webhooks(&self) -> Option<&dyn WebhookSource> {
                Some(self)
            }
        }

        impl WebhookSource for $name {
            fn secret_keys(&self) -> &'static [&'static str] {
                SECRET_KEYS
            }

            fn handshake(
                &self,
                request: &WebhookRequest<'_>,
            ) -> Option<Result<String, VerifyError>> {
                Some(handshake(request))
            }

            fn verify(
                &self,
                secrets: &[&[u8]],
                headers: &HeaderMap,
                body: &[u8],
            ) -> Result<Intake, VerifyError> {
                verify(secrets, headers, body)
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
    };
}

meta_connector!(Messenger, "messenger");
meta_connector!(Instagram, "instagram");
meta_connector!(WhatsApp, "whatsapp");

/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: the
/// challenge, verbatim, when the token is the connection's `verify_token`.
pub(super) fn handshake(request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
    let refuse = |reason: &str| Err(VerifyError::Malformed(reason.to_owned()));
    if request.query_param("hub.mode").as_deref() != Some("subscribe") {
        return refuse("hub.mode is not subscribe");
    }
    let Some(expected) = request.setting(VERIFY_TOKEN_SETTING) else {
        return refuse("the connection has no verify_token setting");
    };
    let Some(given) = request.query_param("hub.verify_token") else {
        return refuse("missing hub.verify_token");
    };
    if !same_token(expected, &given) {
        return refuse("hub.verify_token does not match the connection's verify_token");
    }
    match request.query_param("hub.challenge") {
        Some(challenge) if !challenge.is_empty() => Ok(challenge),
        _ => refuse("missing hub.challenge"),
    }
}

/// Constant-time equality: both tokens are MACed under a fixed key and the
/// tags compared by the `hmac` crate's constant-time check, so neither the
/// content nor the length of the expected token shows in the timing.
fn same_token(expected: &str, given: &str) -> bool {
    const KEY: &[u8] = b"shophub meta verify_token";
    let tag = hmac_sha256(KEY, expected.as_bytes());
    verify_hmac_sha256(&[KEY], given.as_bytes(), &tag)
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`
/// against every candidate secret. The legacy SHA-1 `X-Hub-Signature` is
/// not accepted on its own.
pub(super) fn check_signature(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), VerifyError> {
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or(VerifyError::MissingSignature(SIGNATURE_HEADER))?;
    let value = value.to_str().map_err(|_| VerifyError::BadSignature)?;
    let digest = value
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(VerifyError::BadSignature)?;
    if verify_hex_hmac_sha256(secrets, body, digest) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// Signature first; then the topic is the notification's `object`
/// (`page`, `instagram`, `whatsapp_business_account`).
pub(super) fn verify(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Intake, VerifyError> {
    check_signature(secrets, headers, body)?;
    let object: mapping::ObjectOnly = parse_json("notification", body)
        .map_err(|_| VerifyError::Malformed("body is not a JSON notification".to_owned()))?;
    let topic = present(object.object.as_deref())
        .ok_or_else(|| VerifyError::Malformed("notification has no object field".to_owned()))?
        .to_owned();
    let dedupe_key = dedupe_key(&topic, body);
    Ok(Intake::Delivery { dedupe_key, topic })
}

/// Meta retries a failed delivery with the same body, and may send the
/// same message again in another batch. A notification that yields
/// records is keyed by their ids, sorted (`mids:` + ids joined by `,`, or
/// `mids:sha256:` + the hash of that list when it is long): the same
/// messages are the same delivery whatever else rides along, since
/// everything else decodes to nothing. Notifications without messages
/// (statuses, reads, deliveries) are keyed by the hash of the exact body.
pub(super) fn dedupe_key(topic: &str, body: &[u8]) -> String {
    let mut ids: Vec<String> = mapping::decode(topic, body, &DecodeContext::default())
        .map(|records| records.into_iter().map(|r| r.external_id).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return format!("sha256:{}", sha256_hex(body));
    }
    ids.sort();
    ids.dedup();
    let joined = ids.join(",");
    if joined.len() + "mids:".len() <= MAX_KEY_LEN {
        format!("mids:{joined}")
    } else {
        format!("mids:sha256:{}", sha256_hex(joined.as_bytes()))
    }
}
