//! Signed webhooks, the Standard Webhooks way
//! (<https://www.standardwebhooks.com/>): `webhook-id` (stable across
//! retries), `webhook-timestamp` (unix seconds) and `webhook-signature`, a
//! space-separated `v1,<base64 HMAC-SHA256>` per active secret over
//! `{id}.{timestamp}.{body}`. The body is `{"type", "timestamp", "data"}`.
//!
//! 2xx is delivered; 429 (honouring `Retry-After`), 408, 409, 5xx and
//! timeouts are retried; 410 Gone disables the destination (the receiver
//! said the endpoint is gone for good); other 4xx are dead-lettered.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use shophub_connectors::destinations::{Change, Destination, DestinationError, PushResult, Rate};

use super::{push_each, secrets, target_url};

pub struct Webhook {
    url: url::Url,
    keys: Vec<Vec<u8>>,
    http: reqwest::Client,
    rate: Rate,
    timeout: Duration,
}

impl Webhook {
    pub fn new(
        settings: &Map<String, Value>,
        secrets: &Map<String, Value>,
        http: reqwest::Client,
        now_ms: i64,
    ) -> Result<Webhook, DestinationError> {
        let keys = secrets::active_keys(secrets, now_ms).map_err(DestinationError::Permanent)?;
        if keys.is_empty() {
            return Err(DestinationError::Permanent("no signing secret".into()));
        }
        Ok(Webhook {
            url: target_url(settings)?,
            keys,
            http,
            rate: rate_of(settings),
            timeout: timeout_of(settings),
        })
    }
}

/// `settings.rate_per_second` (default 10).
pub fn rate_of(settings: &Map<String, Value>) -> Rate {
    let requests = settings
        .get("rate_per_second")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(10);
    Rate {
        requests: u32::try_from(requests).unwrap_or(u32::MAX),
        per: Duration::from_secs(1),
    }
}

/// `settings.timeout_ms` (default 10 s).
pub fn timeout_of(settings: &Map<String, Value>) -> Duration {
    Duration::from_millis(
        settings
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(10_000),
    )
}

/// The `webhook-signature` header value: one `v1,` signature per key.
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The message a change becomes: its id, type and body.
pub fn message(change: &Change) -> (String, String, Value) {
    let (id, kind, timestamp, data) = match change {
        Change::Event {
            id,
            kind,
            timestamp,
            payload,
        } => (id.clone(), kind.clone(), *timestamp, payload.clone()),
        other => {
            // Hub kinds always get events; this keeps a direct call honest.
            let data = serde_json::to_value(other).expect("a change serialises");
            (
                String::new(),
                super::op_name(other),
                chrono::Utc::now().timestamp(),
                data,
            )
        }
    };
    let at = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    (
        id,
        kind.clone(),
        json!({"type": kind, "timestamp": at, "data": data}),
    )
}

#[async_trait::async_trait]
impl Destination for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn max_batch(&self) -> usize {
        // One message per request, so the rate limiter counts requests.
        1
    }

    fn max_rate(&self) -> Rate {
        self.rate
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        // Nothing after a refused message is tried: order is kept.
        push_each(changes, |change| {
            let (id, _, body) = message(change);
            let body = body.to_string();
            // Signed at send time: receivers reject stale timestamps.
            let timestamp = chrono::Utc::now().timestamp();
            self.http
                .post(self.url.clone())
                .timeout(self.timeout)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    signature(&self.keys, &id, timestamp, &body),
                )
                .body(body)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_example() {
        // The example in the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
