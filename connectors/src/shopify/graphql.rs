//! GraphQL Admin API answers: the response envelope, the query cost that
//! drives pacing, the Order and Customer nodes `client` asks for, and their
//! translation into the model.
//!
//! Nodes are converted into the REST structs of `mapping` (numeric ids,
//! snake-case status values) and built into records by the same functions
//! as webhook bodies, so a polled order and a webhook of the same order
//! share `external_id`, keys and every field. Global ids
//! (`gid://shopify/Customer/207119551`) become the numeric REST id.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::mapping::{
    customer_record, order_record, RestAddress, RestConsent, RestCustomer, RestLineItem, RestOrder,
};
use crate::model::SourceRecord;
use crate::poll::ConnectorError;
use crate::webhook::{DecodeContext, DecodeError};

/// The fragments both list queries share.
pub(super) const ADDRESS_FIELDS: &str =
    "firstName lastName address1 address2 city province provinceCode zip countryCodeV2 phone";

// --- envelope -------------------------------------------------------------

/// A GraphQL answer: `data` stays raw until the errors have been read, since
/// an error answer may carry partial or no data.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub(super) data: Option<Value>,
    pub(super) errors: Option<Value>,
    pub(super) extensions: Option<Extensions>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Extensions {
    pub(super) cost: Option<Cost>,
}

/// `extensions.cost`: what the query cost and what is left in the app's
/// leaky bucket for this shop.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cost {
    pub(super) requested_query_cost: Option<f64>,
    pub(super) actual_query_cost: Option<f64>,
    pub(super) throttle_status: Option<ThrottleStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThrottleStatus {
    pub(super) maximum_available: f64,
    pub(super) currently_available: f64,
    pub(super) restore_rate: f64,
}

impl Cost {
    /// What the next call of the same query must find in the bucket:
    /// Shopify admits a query only when its *requested* cost is available
    /// (the difference to the actual cost is refunded afterwards).
    fn needed(&self) -> Option<f64> {
        self.requested_query_cost.or(self.actual_query_cost)
    }

    /// How long until the bucket holds what the same query needs again, or
    /// `None` when it already does (or the answer does not say).
    pub(super) fn wait(&self) -> Option<Duration> {
        let status = self.throttle_status?;
        let needed = self.needed()?.min(status.maximum_available);
        let deficit = needed - status.currently_available;
        let positive = deficit.is_finite() && deficit > 0.0;
        let refills = status.restore_rate.is_finite() && status.restore_rate > 0.0;
        if !positive || !refills {
            return None;
        }
        // Whole milliseconds, rounded up, so the wait is never a hair short.
        let millis = (deficit / status.restore_rate * 1000.0).ceil();
        millis
            .is_finite()
            .then(|| Duration::from_millis(millis as u64))
    }
}

impl Envelope {
    pub(super) fn cost(&self) -> Option<Cost> {
        self.extensions.as_ref()?.cost
    }

    /// The classified failure the `errors` member describes, if any.
    pub(super) fn failure(&self) -> Option<ConnectorError> {
        let errors = self.errors.as_ref()?;
        let list = match errors {
            Value::Null => return None,
            Value::Array(list) if list.is_empty() => return None,
            Value::Array(list) => list.as_slice(),
            // The REST-style `{"errors": "[API] Invalid API key or access
            // token ..."}` that Shopify sends for a refused token.
            Value::String(text) => {
                return Some(
                    if text.contains("access token") || text.contains("API key") {
                        ConnectorError::Unauthorized("the access token was refused".to_owned())
                    } else {
                        ConnectorError::Permanent(format!("GraphQL error: {}", short(text)))
                    },
                );
            }
            _ => return Some(ConnectorError::Malformed("errors is not a list".to_owned())),
        };
        let code = |e: &Value| {
            e.pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_uppercase()
        };
        fn message(e: &Value) -> &str {
            e.get("message").and_then(Value::as_str).unwrap_or_default()
        }
        let codes: Vec<String> = list.iter().map(code).collect();
        let has = |wanted: &str| codes.iter().any(|c| c == wanted);

        if has("THROTTLED")
            || list
                .iter()
                .any(|e| message(e).eq_ignore_ascii_case("throttled"))
        {
            return Some(ConnectorError::RateLimited {
                retry_after: self.cost().and_then(|c| c.wait()),
            });
        }
        if has("ACCESS_DENIED") || has("UNAUTHORIZED") || has("FORBIDDEN") {
            return Some(ConnectorError::Unauthorized(
                "access denied: the token lacks a scope or protected customer data approval"
                    .to_owned(),
            ));
        }
        if has("INTERNAL_SERVER_ERROR") || has("SERVICE_UNAVAILABLE") || has("TIMEOUT") {
            return Some(ConnectorError::Transient(
                "Shopify reported an internal error".to_owned(),
            ));
        }
        // Query and validation errors name schema fields, not shop data.
        let named: Vec<&str> = codes
            .iter()
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .collect();
        let first = list.first().map(message).unwrap_or_default();
        Some(ConnectorError::Permanent(if named.is_empty() {
            format!("GraphQL error: {}", short(first))
        } else {
            format!("GraphQL error {}: {}", named.join(","), short(first))
        }))
    }

    /// The `data` member as `T`, after `failure` found nothing.
    pub(super) fn data<T: DeserializeOwned>(self) -> Result<T, ConnectorError> {
        let data = self
            .data
            .filter(|d| !d.is_null())
            .ok_or_else(|| ConnectorError::Malformed("answer has no data".to_owned()))?;
        serde_json::from_value(data).map_err(|e| ConnectorError::Malformed(shape_error(&e)))
    }
}

/// serde's message for a wrong type quotes the value (an email, a name), so
/// only a missing field's name is repeated.
fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(field) => format!("data is missing field {field}"),
        None => "data has a field of an unexpected type".to_owned(),
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

// --- connections ----------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connection<T> {
    pub(super) page_info: PageInfo,
    pub(super) nodes: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    pub(super) has_next_page: bool,
    pub(super) end_cursor: Option<String>,
}

impl PageInfo {
    /// The cursor of the next page, `None` on the last one.
    pub(super) fn next(&self) -> Result<Option<String>, ConnectorError> {
        if !self.has_next_page {
            return Ok(None);
        }
        self.end_cursor
            .clone()
            .filter(|c| !c.is_empty())
            .map(Some)
            .ok_or_else(|| ConnectorError::Malformed("hasNextPage without an endCursor".to_owned()))
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct OrdersData {
    pub(super) orders: Connection<GqlOrder>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CustomersData {
    pub(super) customers: Connection<GqlCustomer>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OrderLinesData {
    pub(super) order: Option<OrderLines>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderLines {
    pub(super) line_items: Connection<GqlLineItem>,
}

// --- nodes ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GqlOrder {
    pub(super) id: String,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    cancelled_at: Option<String>,
    closed_at: Option<String>,
    display_financial_status: Option<String>,
    display_fulfillment_status: Option<String>,
    total_price_set: Option<MoneyBag>,
    customer: Option<GqlCustomerRef>,
    billing_address: Option<GqlAddress>,
    shipping_address: Option<GqlAddress>,
    pub(super) line_items: Option<Connection<GqlLineItem>>,
}

/// The `customer` of an order: only what identifies the buyer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlCustomerRef {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    default_email_address: Option<EmailAddress>,
    default_phone_number: Option<PhoneNumber>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GqlCustomer {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    tags: Option<Vec<String>>,
    default_email_address: Option<EmailAddress>,
    default_phone_number: Option<PhoneNumber>,
    default_address: Option<GqlAddress>,
}

/// `CustomerEmailAddress` (API 2025-04 on; replaces the deprecated
/// `Customer.email` and `Customer.emailMarketingConsent`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailAddress {
    email_address: Option<String>,
    marketing_state: Option<String>,
}

/// `CustomerPhoneNumber` (API 2025-04 on; replaces `Customer.phone`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneNumber {
    phone_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    country_code_v2: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GqlLineItem {
    title: Option<String>,
    sku: Option<String>,
    quantity: Option<i64>,
    original_unit_price_set: Option<MoneyBag>,
}

/// `MoneyBag`: the shop-currency amount is the one REST bodies carry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag {
    shop_money: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Money {
    /// A `Decimal` scalar, sent as a string.
    amount: Option<String>,
    currency_code: Option<String>,
}

// --- ids ------------------------------------------------------------------

/// The numeric id inside a global id such as `gid://shopify/Order/450789469`
/// (an optional `?query` suffix is ignored); `None` for any other kind.
pub(super) fn legacy_id(gid: &str, kind: &str) -> Option<u64> {
    let rest = gid
        .trim()
        .strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?;
    let digits = rest.split('?').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// --- translation ----------------------------------------------------------

const ORDER_SOURCE: &str = "graphql orders";
const CUSTOMER_SOURCE: &str = "graphql customers";

/// A record the mapping refused, named by kind and id (never a value).
fn malformed(kind: &str, id: u64, e: DecodeError) -> ConnectorError {
    let DecodeError::Invalid { reason, .. } = e;
    ConnectorError::Malformed(format!("{kind} {id}: {reason}"))
}

fn gid(kind: &'static str, field: &str, value: &str) -> Result<u64, ConnectorError> {
    legacy_id(value, kind)
        .ok_or_else(|| ConnectorError::Malformed(format!("{field} is not a {kind} global id")))
}

/// `PAID` -> `paid`, `PARTIALLY_REFUNDED` -> `partially_refunded`: the REST
/// spelling of the same financial status.
fn financial_status(display: Option<&str>) -> Option<String> {
    display.map(str::to_ascii_lowercase)
}

/// REST spells fulfilment `fulfilled`, `partial` or null.
fn fulfillment_status(display: Option<&str>) -> Option<String> {
    match display? {
        "FULFILLED" => Some("fulfilled".to_owned()),
        "PARTIALLY_FULFILLED" => Some("partial".to_owned()),
        _ => None,
    }
}

fn shop_money(bag: Option<&MoneyBag>) -> Option<&Money> {
    bag?.shop_money.as_ref()
}

fn address(a: GqlAddress) -> RestAddress {
    RestAddress {
        first_name: a.first_name,
        last_name: a.last_name,
        address1: a.address1,
        address2: a.address2,
        city: a.city,
        province: a.province,
        province_code: a.province_code,
        zip: a.zip,
        country_code: a.country_code_v2,
        phone: a.phone,
    }
}

fn line_item(item: GqlLineItem) -> RestLineItem {
    RestLineItem {
        title: item.title,
        sku: item.sku,
        quantity: item.quantity,
        price: shop_money(item.original_unit_price_set.as_ref()).and_then(|m| m.amount.clone()),
    }
}

/// An order node (with every line item already fetched) as a record.
pub(super) fn order(
    node: GqlOrder,
    line_items: Vec<GqlLineItem>,
    ctx: &DecodeContext,
) -> Result<SourceRecord, ConnectorError> {
    let id = gid("Order", "orders.id", &node.id)?;
    let customer = match node.customer {
        Some(c) => Some(RestCustomer {
            id: Some(gid("Customer", "orders.customer.id", &c.id)?),
            email: c.default_email_address.and_then(|e| e.email_address),
            phone: c.default_phone_number.and_then(|p| p.phone_number),
            first_name: c.first_name,
            last_name: c.last_name,
            ..RestCustomer::default()
        }),
        None => None,
    };
    let total = shop_money(node.total_price_set.as_ref());
    let rest = RestOrder {
        id: Some(id),
        name: node.name,
        order_number: None,
        email: node.email,
        contact_email: None,
        phone: node.phone,
        created_at: node.created_at,
        updated_at: node.updated_at,
        cancelled_at: node.cancelled_at,
        closed_at: node.closed_at,
        currency: total.and_then(|m| m.currency_code.clone()),
        total_price: total.and_then(|m| m.amount.clone()),
        financial_status: financial_status(node.display_financial_status.as_deref()),
        fulfillment_status: fulfillment_status(node.display_fulfillment_status.as_deref()),
        customer,
        billing_address: node.billing_address.map(address),
        shipping_address: node.shipping_address.map(address),
        line_items: Some(line_items.into_iter().map(line_item).collect()),
    };
    order_record(ORDER_SOURCE, rest, ctx).map_err(|e| malformed("order", id, e))
}

/// A customer node as a record.
pub(super) fn customer(
    node: GqlCustomer,
    ctx: &DecodeContext,
) -> Result<SourceRecord, ConnectorError> {
    let id = gid("Customer", "customers.id", &node.id)?;
    let (email, marketing_state) = match node.default_email_address {
        Some(e) => (e.email_address, e.marketing_state),
        None => (None, None),
    };
    let rest = RestCustomer {
        id: Some(id),
        email,
        phone: node.default_phone_number.and_then(|p| p.phone_number),
        first_name: node.first_name,
        last_name: node.last_name,
        // REST sends tags as one comma-separated string (tags cannot
        // contain commas), and the mapping splits it again.
        tags: node.tags.map(|t| t.join(", ")),
        created_at: node.created_at,
        updated_at: node.updated_at,
        // `SUBSCRIBED` -> `subscribed`: the REST `email_marketing_consent.state`.
        email_marketing_consent: marketing_state.map(|s| RestConsent {
            state: Some(s.to_ascii_lowercase()),
        }),
        default_address: node.default_address.map(address),
    };
    customer_record(CUSTOMER_SOURCE, rest, ctx).map_err(|e| malformed("customer", id, e))
}
