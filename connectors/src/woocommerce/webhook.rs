//! Verifying a WooCommerce delivery: base64 HMAC-SHA256 of the raw body
//! under the webhook's secret, or the unsigned `webhook_id=N` ping.

use http::HeaderMap;
use serde::Deserialize;

use super::{mapping, WooCommerce};
use crate::model::SourceRecord;
use crate::payload::{header, present};
use crate::poll::PollingSource;
use crate::signature::{sha256_hex, verify_base64_hmac_sha256};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const SIGNATURE_HEADER: &str = "X-WC-Webhook-Signature";
pub(super) const TOPIC_HEADER: &str = "X-WC-Webhook-Topic";

impl Connector for WooCommerce {
    fn platform(&self) -> &'static str {
        "woocommerce"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["store_url"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    /// Polling additionally needs `secrets.consumer_key` and
    /// `secrets.consumer_secret`; without them every call answers
    /// `Unauthorized` naming the missing key.
    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for WooCommerce {
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let Some(signature) = headers.get(SIGNATURE_HEADER) else {
            // The activation ping is unsigned and must be answered 200, or
            // WooCommerce refuses to activate the webhook. It carries no data.
            return if is_ping(body) {
                Ok(Intake::Ping)
            } else {
                Err(VerifyError::MissingSignature(SIGNATURE_HEADER))
            };
        };
        let signature = signature.to_str().map_err(|_| VerifyError::BadSignature)?;
        if !verify_base64_hmac_sha256(secrets, body, signature) {
            return Err(VerifyError::BadSignature);
        }
        let topic = header(headers, TOPIC_HEADER)
            .ok_or_else(|| VerifyError::Malformed(format!("missing {TOPIC_HEADER} header")))?;
        Ok(Intake::Delivery {
            dedupe_key: dedupe_key(topic, body),
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

/// The ping body is exactly the form encoding of one numeric `webhook_id`.
fn is_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

/// Just enough of any resource to tell one version of it from another.
#[derive(Deserialize)]
struct ResourceStamp {
    id: Option<u64>,
    date_modified_gmt: Option<String>,
}

/// `X-WC-Webhook-Delivery-ID` is new on every attempt, so the key comes from
/// the body: the same resource version under the same topic is the same
/// event. Bodies without a modification time (`*.deleted` sends only the id)
/// fall back to a hash of the exact bytes.
fn dedupe_key(topic: &str, body: &[u8]) -> String {
    serde_json::from_slice::<ResourceStamp>(body)
        .ok()
        .and_then(|stamp| {
            let modified = present(stamp.date_modified_gmt.as_deref())?;
            Some(format!("{topic}:{}:{modified}", stamp.id?))
        })
        .unwrap_or_else(|| format!("sha256:{}", sha256_hex(body)))
}
