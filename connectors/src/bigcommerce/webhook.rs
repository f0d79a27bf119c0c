//! Receiving a BigCommerce callback.
//!
//! BigCommerce does not sign callbacks (its docs list TLS, minimal payloads
//! and custom hook headers as the security measures; the signature headers
//! some third parties mention are not documented by BigCommerce). The hub
//! therefore registers every hook (`POST /v3/hooks`) with
//! `"headers": {"X-Shophub-Webhook-Secret": <webhook_secret>}`, which
//! BigCommerce echoes on every callback, and a request is genuine when that
//! header equals one of the connection's webhook secrets (compared in
//! constant time). The payload only names what changed; the worker fetches
//! the resource itself, so a forged id could at worst cause a refetch.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::BigCommerce;
use crate::model::SourceRecord;
use crate::payload::{invalid, parse_json, present};
use crate::poll::Resource;
use crate::signature::{hmac_sha256, sha256_hex, verify_hmac_sha256};
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

/// The custom header the hub asks BigCommerce to send with every callback.
pub const WEBHOOK_SECRET_HEADER: &str = "X-Shophub-Webhook-Secret";

/// Both sides of the comparison are MACed under the candidate value so the
/// comparison is the constant-time `verify_slice` of two fixed-size digests.
const COMPARE_CONTEXT: &[u8] = b"shophub/bigcommerce/webhook-secret";

/// The callback envelope: `{scope, store_id, data, hash, created_at, producer}`.
#[derive(Debug, Deserialize)]
struct Callback {
    scope: Option<String>,
    hash: Option<String>,
    created_at: Option<Value>,
    data: Option<CallbackData>,
}

/// `data` varies by scope: `{type, id}` for orders and customers,
/// `{type: "customer", id: <address id>, address: {customer_id}}` for
/// customer addresses, `{type: "transaction", order_id}` for order
/// transactions, `{type: "cart", id, orderId}` for `store/cart/converted`.
#[derive(Debug, Deserialize)]
struct CallbackData {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<Value>,
    order_id: Option<Value>,
    #[serde(rename = "orderId")]
    cart_order_id: Option<Value>,
    address: Option<AddressRef>,
}

#[derive(Debug, Deserialize)]
struct AddressRef {
    customer_id: Option<Value>,
}

impl WebhookSource for BigCommerce {
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        let presented = headers
            .get(WEBHOOK_SECRET_HEADER)
            .ok_or(VerifyError::MissingSignature(WEBHOOK_SECRET_HEADER))?;
        // An empty configured secret never authenticates anything.
        let candidates: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        let presented_mac = hmac_sha256(presented.as_bytes(), COMPARE_CONTEXT);
        if presented.is_empty() || !verify_hmac_sha256(&candidates, COMPARE_CONTEXT, &presented_mac)
        {
            return Err(VerifyError::BadSignature);
        }
        let callback: Callback = serde_json::from_slice(body)
            .map_err(|_| VerifyError::Malformed("body is not a BigCommerce callback".to_owned()))?;
        let scope = present(callback.scope.as_deref())
            .ok_or_else(|| VerifyError::Malformed("callback has no scope".to_owned()))?;
        Ok(Intake::Delivery {
            dedupe_key: dedupe_key(scope, &callback, body),
            topic: scope.to_owned(),
        })
    }

    /// Callbacks carry no record: everything comes from
    /// [`PollingSource::fetch`](crate::PollingSource::fetch).
    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        _ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        parse_json::<Callback>(topic, body)?;
        Ok(Vec::new())
    }

    fn references(&self, topic: &str, body: &[u8]) -> Result<Vec<(Resource, String)>, DecodeError> {
        let callback: Callback = parse_json(topic, body)?;
        let Some(data) = callback.data else {
            return Err(invalid(topic, "missing data"));
        };
        let kind = present(data.kind.as_deref());
        let reference = if topic.starts_with("store/customer/address/") {
            let id = data
                .address
                .as_ref()
                .and_then(|a| id_text(a.customer_id.as_ref()));
            Some((
                Resource::Customers,
                id.ok_or_else(|| invalid(topic, "missing data.address.customer_id"))?,
            ))
        } else if topic.starts_with("store/customer/") && kind == Some("customer") {
            Some((
                Resource::Customers,
                required_id(topic, "data.id", data.id.as_ref())?,
            ))
        } else if topic.starts_with("store/order/transaction/") {
            Some((
                Resource::Orders,
                required_id(topic, "data.order_id", data.order_id.as_ref())?,
            ))
        } else if topic.starts_with("store/order/") && kind == Some("order") {
            Some((
                Resource::Orders,
                required_id(topic, "data.id", data.id.as_ref())?,
            ))
        } else if topic == "store/cart/converted" {
            Some((
                Resource::Orders,
                required_id(topic, "data.orderId", data.cart_order_id.as_ref())?,
            ))
        } else {
            None
        };
        Ok(reference.into_iter().collect())
    }
}

/// `hash` is a SHA-1 of `data` alone, so every update of one order carries
/// the same hash; a retry of one event repeats the whole body, including
/// `created_at`. The key is therefore scope + hash + created_at, and the
/// exact body's hash when either is missing.
fn dedupe_key(scope: &str, callback: &Callback, body: &[u8]) -> String {
    let created_at = callback.created_at.as_ref().and_then(|v| id_text(Some(v)));
    match (present(callback.hash.as_deref()), created_at) {
        (Some(hash), Some(created_at)) => format!("{scope}:{hash}:{created_at}"),
        _ => format!("sha256:{}", sha256_hex(body)),
    }
}

fn required_id(topic: &str, field: &str, value: Option<&Value>) -> Result<String, DecodeError> {
    id_text(value).ok_or_else(|| invalid(topic, format!("missing {field}")))
}

/// Ids arrive as JSON numbers (orders, customers) or strings (carts).
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => present(Some(s)).map(str::to_owned),
        _ => None,
    }
}
