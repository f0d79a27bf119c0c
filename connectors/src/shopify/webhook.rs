//! Verifying a Shopify delivery: base64 HMAC-SHA256 of the raw body under
//! the app's client secret, checked before anything reads the body.

use http::HeaderMap;

use super::{mapping, Shopify};
use crate::model::SourceRecord;
use crate::payload::header;
use crate::poll::PollingSource;
use crate::signature::{sha256_hex, verify_base64_hmac_sha256};
use crate::webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

pub(super) const HMAC_HEADER: &str = "X-Shopify-Hmac-Sha256";
pub(super) const TOPIC_HEADER: &str = "X-Shopify-Topic";
/// Shopify's documented idempotency key: repeated on every retry of an event.
pub(super) const EVENT_ID_HEADER: &str = "X-Shopify-Event-Id";
pub(super) const WEBHOOK_ID_HEADER: &str = "X-Shopify-Webhook-Id";

impl Connector for Shopify {
    fn platform(&self) -> &'static str {
        "shopify"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["shop_domain"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    /// Needs the secret `access_token` besides the required ones.
    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for Shopify {
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let signature = headers
            .get(HMAC_HEADER)
            .ok_or(VerifyError::MissingSignature(HMAC_HEADER))?;
        // A non-ASCII header value cannot be a base64 digest.
        let signature = signature.to_str().map_err(|_| VerifyError::BadSignature)?;
        if !verify_base64_hmac_sha256(secrets, body, signature) {
            return Err(VerifyError::BadSignature);
        }
        let topic = header(headers, TOPIC_HEADER)
            .ok_or_else(|| VerifyError::Malformed(format!("missing {TOPIC_HEADER} header")))?;
        let dedupe_key = header(headers, EVENT_ID_HEADER)
            .or_else(|| header(headers, WEBHOOK_ID_HEADER))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sha256:{}", sha256_hex(body)));
        Ok(Intake::Delivery {
            dedupe_key,
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
