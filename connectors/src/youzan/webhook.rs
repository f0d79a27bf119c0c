//! Verifying a Youzan push: hex MD5 of `client_id + raw body + client_secret`
//! in `Event-Sign`, the console's test push, the dedupe key, and the order
//! numbers of thin trade messages.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::{mapping, Youzan};
use crate::model::SourceRecord;
use crate::payload::{header, parse_json, present};
use crate::poll::{PollingSource, Resource};
use crate::signature::{sha256_hex, verify_hex_md5_sandwich};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGN_HEADER: &str = "Event-Sign";
pub(super) const CLIENT_ID_HEADER: &str = "Client-Id";
pub(super) const TYPE_HEADER: &str = "Event-Type";

impl Connector for Youzan {
    fn platform(&self) -> &'static str {
        "youzan"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["client_id", "kdt_id"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["client_secret", "access_token"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for Youzan {
    fn secret_keys(&self) -> &'static [&'static str] {
        &["client_secret"]
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

    /// `secrets` are candidate client secrets. The client id the signature
    /// covers comes from the `Client-Id` header (or the body's `client_id`):
    /// it is signed together with the secret, so a forged id cannot pass.
    /// [`Youzan::verify_for_connection`] also holds it to the connection's
    /// `client_id` and shop.
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        verify(None, secrets, headers, body)
    }

    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        mapping::decode(topic, body, ctx)
    }

    /// Trade messages without `full_order_info` (`trade_TradeSuccess`,
    /// refunds) carry only the order number: the worker fetches the order.
    fn references(&self, topic: &str, body: &[u8]) -> Result<Vec<(Resource, String)>, DecodeError> {
        let push: mapping::Push = parse_json(topic, body)?;
        if push.test == Some(true) || !mapping::is_trade_topic(topic) {
            return Ok(Vec::new());
        }
        let message = mapping::trade_message(topic, &push)?;
        if message
            .as_ref()
            .is_some_and(|m| m.full_order_info.is_some())
        {
            return Ok(Vec::new());
        }
        // For trade messages the envelope's `id` is the order number; for
        // refund messages it is the refund's, so only `msg.tid` counts there.
        let tid = message
            .and_then(|m| m.tid)
            .or_else(|| push.id.filter(|_| !topic.starts_with("trade_refund")));
        Ok(present(tid.as_deref())
            .map(|tid| vec![(Resource::Orders, tid.to_owned())])
            .unwrap_or_default())
    }
}

impl Youzan {
    /// [`WebhookSource::verify`] with the checks that need the connection's
    /// settings: the signature is computed with `settings.client_id`, a
    /// `Client-Id` header must name the same app, and the push must concern
    /// the connection's shop (`kdt_id`, or `root_kdt_id` for chain stores),
    /// since one app's pushes for every authorised shop share one URL.
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
        let client_id = setting("client_id")
            .ok_or_else(|| VerifyError::Malformed("connection has no client_id".to_owned()))?;
        if let Some(sent) = header(headers, CLIENT_ID_HEADER) {
            if sent != client_id {
                return Err(VerifyError::Malformed(format!(
                    "{CLIENT_ID_HEADER} does not match the connection"
                )));
            }
        }
        let intake = verify(Some(client_id), secrets, headers, body)?;
        if let (Intake::Delivery { .. }, Some(kdt_id)) = (&intake, setting("kdt_id")) {
            let shop: ShopStamp = serde_json::from_slice(body).unwrap_or_default();
            let ours = [&shop.kdt_id, &shop.root_kdt_id]
                .into_iter()
                .flatten()
                .any(|id| id == kdt_id);
            if shop.kdt_id.is_some() && !ours {
                return Err(VerifyError::Malformed(
                    "push is for another shop (kdt_id)".to_owned(),
                ));
            }
        }
        Ok(intake)
    }
}

#[derive(Default, serde::Deserialize)]
struct ShopStamp {
    #[serde(default, deserialize_with = "mapping::flex")]
    kdt_id: Option<String>,
    #[serde(default, deserialize_with = "mapping::flex")]
    root_kdt_id: Option<String>,
}

fn verify(
    client_id: Option<&str>,
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Intake, VerifyError> {
    let Some(sign) = headers.get(SIGN_HEADER) else {
        // The console's connectivity test must be answered 200; it carries
        // no data, so an unsigned one is only acknowledged.
        return if is_test(body) {
            Ok(Intake::Ping)
        } else {
            Err(VerifyError::MissingSignature(SIGN_HEADER))
        };
    };
    let sign = sign.to_str().map_err(|_| VerifyError::BadSignature)?;
    let push: Option<mapping::Push> = serde_json::from_slice(body).ok();
    let client_id = client_id
        .or_else(|| header(headers, CLIENT_ID_HEADER))
        .or_else(|| present(push.as_ref().and_then(|p| p.client_id.as_deref())))
        .map(str::to_owned)
        .ok_or_else(|| VerifyError::Malformed(format!("missing {CLIENT_ID_HEADER} header")))?;
    if !verify_hex_md5_sandwich(secrets, client_id.as_bytes(), body, sign) {
        return Err(VerifyError::BadSignature);
    }
    let push = push.unwrap_or_default();
    if push.test == Some(true) {
        return Ok(Intake::Ping);
    }
    let topic = header(headers, TYPE_HEADER)
        .or_else(|| present(push.kind.as_deref()))
        .ok_or_else(|| VerifyError::Malformed(format!("missing {TYPE_HEADER} header")))?;
    // `msg_id` is the message's own id, repeated on every resend.
    let dedupe_key = present(push.msg_id.as_deref())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sha256:{}", sha256_hex(body)));
    Ok(Intake::Delivery {
        dedupe_key,
        topic: topic.to_owned(),
    })
}

fn is_test(body: &[u8]) -> bool {
    serde_json::from_slice::<mapping::Push>(body).is_ok_and(|p| p.test == Some(true))
}
