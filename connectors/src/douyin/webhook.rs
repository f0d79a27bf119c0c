//! Verifying a Doudian push: `event-sign` over `app_key + raw body +
//! app_secret` (MD5, or HMAC-SHA256 keyed by the secret when `sign-method`
//! says so), the dedupe key of a batch, and the orders its messages name.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::{mapping, Douyin};
use crate::model::SourceRecord;
use crate::payload::{header, present};
use crate::poll::{PollingSource, Resource};
use crate::signature::{constant_time_eq, hmac_sha256, sha256_hex, verify_hex_md5_sandwich};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGN_HEADER: &str = "event-sign";
pub(super) const APP_ID_HEADER: &str = "app-id";
pub(super) const SIGN_METHOD_HEADER: &str = "sign-method";
/// Longest dedupe key made of message ids; longer lists are hashed.
const MAX_KEY_LEN: usize = 200;

impl Connector for Douyin {
    fn platform(&self) -> &'static str {
        "douyin"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["app_key", "shop_id"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["app_secret", "access_token"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for Douyin {
    fn secret_keys(&self) -> &'static [&'static str] {
        &["app_secret"]
    }

    fn verify_connection(
        &self,
        settings: &Map<String, Value>,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        self.verify_for_connection(settings, secrets, headers, body)
    }

    fn acknowledgement(&self) -> Option<&'static str> {
        Some(r#"{"code":0,"msg":"success"}"#)
    }

    /// `secrets` are candidate app secrets. The app key the signature covers
    /// is the `app-id` header, signed together with the secret;
    /// [`Douyin::verify_for_connection`] also holds it to the connection's
    /// `app_key` and shop.
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        verify(None, secrets, headers, body)
    }

    /// Doudian pushes carry ids and statuses, never a whole order.
    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        _ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        mapping::decode(topic, body)
    }

    /// The shop orders (`p_id`) of every order and after-sale message, once
    /// each, in message order.
    fn references(&self, topic: &str, body: &[u8]) -> Result<Vec<(Resource, String)>, DecodeError> {
        let mut orders: Vec<(Resource, String)> = Vec::new();
        for message in mapping::messages(topic, body)? {
            if !message.concerns_an_order() {
                continue;
            }
            if let Some(id) = message.data(topic)?.p_id.filter(|id| !id.trim().is_empty()) {
                let id = id.trim().to_owned();
                if !orders.iter().any(|(_, seen)| *seen == id) {
                    orders.push((Resource::Orders, id));
                }
            }
        }
        Ok(orders)
    }
}

impl Douyin {
    /// [`WebhookSource::verify`] with the checks that need the connection's
    /// settings: the signature is computed with `settings.app_key`, the
    /// `app-id` header must equal it, and every message must concern the
    /// connection's shop (`shop_id`), since one app's pushes for all the
    /// shops it serves share one URL.
    pub fn verify_for_connection(
        &self,
        settings: &Map<String, Value>,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let setting = |key: &str| {
            settings
                .get(key)
                .and_then(Value::as_str)
                .and_then(|v| present(Some(v)))
        };
        let app_key = setting("app_key")
            .ok_or_else(|| VerifyError::Malformed("connection has no app_key".to_owned()))?;
        match header(headers, APP_ID_HEADER) {
            Some(sent) if sent == app_key => {}
            Some(_) => {
                return Err(VerifyError::Malformed(format!(
                    "{APP_ID_HEADER} does not match the connection"
                )))
            }
            None => {
                return Err(VerifyError::Malformed(format!(
                    "missing {APP_ID_HEADER} header"
                )))
            }
        }
        let intake = verify(Some(app_key), secrets, headers, body)?;
        if let (Intake::Delivery { topic, .. }, Some(shop_id)) = (&intake, setting("shop_id")) {
            let messages = mapping::messages(topic, body).unwrap_or_default();
            let foreign = messages.iter().any(|m| {
                m.data(topic)
                    .ok()
                    .and_then(|d| d.shop_id)
                    .is_some_and(|id| id.trim() != shop_id)
            });
            if foreign {
                return Err(VerifyError::Malformed(
                    "push is for another shop (shop_id)".to_owned(),
                ));
            }
        }
        Ok(intake)
    }
}

fn verify(
    app_key: Option<&str>,
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Intake, VerifyError> {
    let sign = headers
        .get(SIGN_HEADER)
        .ok_or(VerifyError::MissingSignature(SIGN_HEADER))?;
    let sign = sign.to_str().map_err(|_| VerifyError::BadSignature)?;
    let app_key = app_key
        .or_else(|| header(headers, APP_ID_HEADER))
        .ok_or_else(|| VerifyError::Malformed(format!("missing {APP_ID_HEADER} header")))?;
    let matches = match header(headers, SIGN_METHOD_HEADER).map(str::to_ascii_lowercase) {
        None => verify_hex_md5_sandwich(secrets, app_key.as_bytes(), body, sign),
        Some(method) if method == "md5" => {
            verify_hex_md5_sandwich(secrets, app_key.as_bytes(), body, sign)
        }
        Some(method) if method == "hmac-sha256" => {
            hmac_signature_matches(secrets, app_key.as_bytes(), body, sign)
        }
        Some(_) => {
            return Err(VerifyError::Malformed(format!(
                "unsupported {SIGN_METHOD_HEADER}"
            )))
        }
    };
    if !matches {
        return Err(VerifyError::BadSignature);
    }
    let messages = mapping::messages("doudian.push", body)
        .map_err(|_| VerifyError::Malformed("body is not a list of messages".to_owned()))?;
    if messages.is_empty() {
        // Nothing to store; the platform only needs its 200.
        return Ok(Intake::Ping);
    }
    let mut tags: Vec<&str> = messages
        .iter()
        .filter_map(|m| present(m.tag.as_deref()))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    if tags.is_empty() {
        return Err(VerifyError::Malformed("messages have no tag".to_owned()));
    }
    Ok(Intake::Delivery {
        dedupe_key: dedupe_key(&messages, body),
        topic: tags.join(","),
    })
}

/// One delivery may batch several messages, and a retry repeats the batch:
/// the sorted message ids identify it. Without ids, the exact bytes do.
fn dedupe_key(messages: &[mapping::Message], body: &[u8]) -> String {
    let ids: Option<Vec<&str>> = messages
        .iter()
        .map(|m| present(m.msg_id.as_deref()))
        .collect();
    match ids {
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            let joined = ids.join(",");
            if joined.len() <= MAX_KEY_LEN {
                format!("msg:{joined}")
            } else {
                format!("msgs:{}", sha256_hex(joined.as_bytes()))
            }
        }
        None => format!("sha256:{}", sha256_hex(body)),
    }
}

/// HMAC-SHA256 keyed by the secret over `app_key + body + secret`.
fn hmac_signature_matches(secrets: &[&[u8]], app_key: &[u8], body: &[u8], hex_sign: &str) -> bool {
    let Ok(expected) = hex::decode(hex_sign.trim()) else {
        return false;
    };
    secrets.iter().fold(false, |found, secret| {
        let message = [app_key, body, secret].concat();
        constant_time_eq(&hmac_sha256(secret, &message), &expected) | found
    })
}
