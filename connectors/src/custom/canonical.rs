//! The hub's canonical records, as a merchant's own system pushes them (and
//! as `shophub import` reads them, one per line, through [`decode_value`]).
//!
//! ```json
//! {"kind": "customer", "external_id": "c-1", "updated_at": "2025-01-02T03:04:05Z",
//!  "name": "Ada Lovelace", "emails": ["ada@example.com"], "phones": ["+44 20 7946 0018"],
//!  "address": {"line1", "line2", "city", "region", "postal_code", "country"},
//!  "birth_date": "1990-05-17", "document_id": …}
//! {"kind": "order", "external_id": "o-1", "updated_at": …, "created_at": …,
//!  "customer_external_id": "c-1", "name": …, "email": …, "phone": …,
//!  "status": "pending|paid|shipped|completed|refunded|cancelled", "currency": "CNY",
//!  "total": "199.00", "line_items": [{"sku", "title", "quantity", "price"}],
//!  "shipping_address": {…}}
//! {"kind": "message", "external_id": …, "conversation_id": …, "channel": …,
//!  "direction": "inbound|outbound", "sender": {"handle", "name", "email", "phone"},
//!  "text": …, "sent_at": …}
//! {"kind": "review", "external_id": …, "product": …, "rating": 4, "rating_scale": 5,
//!  "text": …, "reviewer": {"name", "email", "handle"}, "created_at": …}
//! ```
//!
//! Rules:
//! - `kind` and `external_id` (a string or an integer) are required; unknown
//!   fields are ignored; optional fields may be absent or `null`.
//! - Times are RFC 3339. The version is `updated_at`, else `created_at`
//!   (`sent_at` for messages); one of them is required. `occurred_at` is
//!   `created_at` / `sent_at`, else the version.
//! - Money (`total`, `price`) and ratings are exact decimals: strings are
//!   read as written; JSON numbers through their shortest decimal form,
//!   which is exact up to about 15 significant digits (send strings beyond).
//! - A customer's or buyer's `name` is one full name. A name written only in
//!   Latin letters is split at its first space (`Mary Ann Smith` → `Mary` /
//!   `Ann Smith`); any other name (`张伟`) is kept whole as the first name,
//!   because splitting it would guess. Explicit `first_name` / `last_name`
//!   fields win over `name`.
//! - Identity keys: emails and phones (read with the connection's
//!   `default_region`), and the customer's `external_id` or an order's
//!   `customer_external_id` as the connection-scoped customer id. A message
//!   gives its sender's email and phone only when it is inbound (an outbound
//!   sender is the shop); a message or review may name the customer through
//!   `customer_external_id` too. A review gives the reviewer's email.
//! - Order `status` is one of the six words above (`pending_payment` and
//!   `canceled` are read too); `currency` is a three-letter code; line
//!   `quantity` defaults to 1 and the line total is `price` × `quantity`.
//! - Errors name the field and the problem, never a value.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::identity::KeySet;
use crate::model::{
    Address, Customer, Direction, LineItem, Message, Order, OrderStatus, RecordBody, Review,
    SourceRecord,
};
use crate::payload::{invalid, push_unique};
use crate::webhook::{DecodeContext, DecodeError};

/// A delivery body: one record, an array of records, `{"records": [...]}`,
/// or a Standard Webhooks envelope `{"type", "data": <any of those>}`.
/// Errors of one record in a list say which (`records[2]: missing kind`).
pub fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid(topic, "body is not valid JSON"))?;
    let (items, listed) = records_of(&value, true).map_err(|reason| invalid(topic, reason))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            decode_value(item, ctx).map_err(|reason| {
                invalid(
                    topic,
                    if listed {
                        format!("records[{i}]: {reason}")
                    } else {
                        reason
                    },
                )
            })
        })
        .collect()
}

/// The records in a body, and whether they came as a list.
fn records_of(value: &Value, envelope_allowed: bool) -> Result<(Vec<&Value>, bool), String> {
    match value {
        Value::Array(items) => Ok((items.iter().collect(), true)),
        Value::Object(o) if o.contains_key("records") => match &o["records"] {
            Value::Array(items) => Ok((items.iter().collect(), true)),
            _ => Err("records is not a list".to_owned()),
        },
        Value::Object(o)
            if envelope_allowed
                && !o.contains_key("kind")
                && o.contains_key("type")
                && o.contains_key("data") =>
        {
            records_of(&o["data"], false)
        }
        Value::Object(_) => Ok((vec![value], false)),
        _ => Err("body is not a record, a list of records or {\"records\": [...]}".to_owned()),
    }
}

/// One canonical record. The error names the problem, never the values.
pub fn decode_value(value: &Value, ctx: &DecodeContext) -> Result<SourceRecord, String> {
    let record = value.as_object().ok_or("record is not a JSON object")?;
    let kind = text(record, "kind")?.ok_or("missing kind")?;
    let external_id = match record.get("external_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err("missing external_id".to_owned())
        }
        Some(_) => return Err("external_id is not a string or an integer".to_owned()),
    };
    let region = ctx.default_region.as_deref();
    match kind.as_str() {
        "customer" => customer(record, external_id, region),
        "order" => order(record, external_id, region),
        "message" => message(record, external_id, region),
        "review" => review(record, external_id, region),
        _ => Err("unknown kind (expected customer, order, message or review)".to_owned()),
    }
}

fn customer(
    r: &Map<String, Value>,
    external_id: String,
    region: Option<&str>,
) -> Result<SourceRecord, String> {
    let created_at = time(r, "created_at")?;
    let version = time(r, "updated_at")?
        .or(created_at)
        .ok_or("missing updated_at")?;
    let (first_name, last_name) = names(r)?;
    let mut emails = Vec::new();
    push_unique(
        &mut emails,
        list(r, "emails")?.iter().map(|s| Some(s.as_str())),
    );
    push_unique(&mut emails, [text(r, "email")?.as_deref()]);
    let mut phones = Vec::new();
    push_unique(
        &mut phones,
        list(r, "phones")?.iter().map(|s| Some(s.as_str())),
    );
    push_unique(&mut phones, [text(r, "phone")?.as_deref()]);

    let mut keys = KeySet::new(region);
    keys.customer_id(Some(&external_id));
    for email in &emails {
        keys.email(Some(email));
    }
    for phone in &phones {
        keys.phone(Some(phone));
    }
    let customer = Customer {
        first_name,
        last_name,
        emails,
        phones,
        tags: list(r, "tags")?,
        address: address(r, "address")?,
        accepts_email_marketing: boolean(r, "accepts_email_marketing")?,
        created_at,
        birth_date: date(r, "birth_date")?,
        document_id: text(r, "document_id")?,
    };
    Ok(SourceRecord {
        external_id,
        version,
        occurred_at: created_at.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Customer(customer),
    })
}

fn order(
    r: &Map<String, Value>,
    external_id: String,
    region: Option<&str>,
) -> Result<SourceRecord, String> {
    let created_at = time(r, "created_at")?;
    let version = time(r, "updated_at")?
        .or(created_at)
        .ok_or("missing updated_at")?;
    let status = match text(r, "status")?
        .ok_or("missing status")?
        .to_ascii_lowercase()
        .as_str()
    {
        "pending" | "pending_payment" => OrderStatus::PendingPayment,
        "paid" => OrderStatus::Paid,
        "shipped" => OrderStatus::Shipped,
        "completed" => OrderStatus::Completed,
        "refunded" => OrderStatus::Refunded,
        "cancelled" | "canceled" => OrderStatus::Cancelled,
        _ => {
            return Err(
                "status is not one of pending, paid, shipped, completed, refunded, cancelled"
                    .to_owned(),
            )
        }
    };
    let currency = text(r, "currency")?.ok_or("missing currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err("currency is not a three-letter code".to_owned());
    }
    let total = decimal(r, "total")?.ok_or("missing total")?;
    let line_items = match r.get("line_items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_object() {
                Some(item) => line_item(item).map_err(|e| format!("line_items[{i}].{e}")),
                None => Err(format!("line_items[{i}] is not an object")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("line_items is not a list".to_owned()),
    };
    let customer_id = text(r, "customer_external_id")?;
    let (buyer_first_name, buyer_last_name) = names(r)?;
    let email = text(r, "email")?;
    let phone = text(r, "phone")?;

    let mut keys = KeySet::new(region);
    keys.customer_id(customer_id.as_deref())
        .email(email.as_deref())
        .phone(phone.as_deref());
    let order = Order {
        number: text(r, "number")?.unwrap_or_else(|| external_id.clone()),
        status,
        currency: currency.to_ascii_uppercase(),
        total,
        customer_id,
        buyer_first_name,
        buyer_last_name,
        email,
        phone,
        line_items,
        shipping_address: address(r, "shipping_address")?,
    };
    Ok(SourceRecord {
        external_id,
        version,
        occurred_at: created_at.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// Errors here are completed by the caller with `line_items[i].`.
fn line_item(item: &Map<String, Value>) -> Result<LineItem, String> {
    let quantity = match item.get("quantity") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|q| *q >= 0)
            .ok_or("quantity is not a whole number")?,
        Some(_) => return Err("quantity is not a whole number".to_owned()),
    };
    let price = decimal(item, "price")?.ok_or("price is missing")?;
    let total = price
        .checked_mul(Decimal::from(quantity))
        .ok_or("price times quantity overflows")?;
    Ok(LineItem {
        sku: text(item, "sku")?,
        title: text(item, "title")?.unwrap_or_default(),
        quantity,
        total,
    })
}

fn message(
    r: &Map<String, Value>,
    external_id: String,
    region: Option<&str>,
) -> Result<SourceRecord, String> {
    let sent_at = time(r, "sent_at")?;
    let created_at = time(r, "created_at")?;
    let occurred = sent_at.or(created_at);
    let version = time(r, "updated_at")?
        .or(occurred)
        .ok_or("missing sent_at")?;
    let direction = match text(r, "direction")?.ok_or("missing direction")?.as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        _ => return Err("direction is not inbound or outbound".to_owned()),
    };
    let sender = object(r, "sender")?;
    let sender_field = |name: &str| match sender {
        Some(s) => text(s, name).map_err(|e| format!("sender.{e}")),
        None => Ok(None),
    };
    let mut keys = KeySet::new(region);
    keys.customer_id(text(r, "customer_external_id")?.as_deref());
    if direction == Direction::Inbound {
        keys.email(sender_field("email")?.as_deref())
            .phone(sender_field("phone")?.as_deref());
    }
    let message = Message {
        conversation_id: text(r, "conversation_id")?.ok_or("missing conversation_id")?,
        channel: text(r, "channel")?.ok_or("missing channel")?,
        direction,
        sender_name: sender_field("name")?,
        sender_handle: sender_field("handle")?,
        text: text(r, "text")?,
        subject: text(r, "subject")?,
        attachments: Vec::new(),
    };
    Ok(SourceRecord {
        external_id,
        version,
        occurred_at: occurred.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Message(message),
    })
}

fn review(
    r: &Map<String, Value>,
    external_id: String,
    region: Option<&str>,
) -> Result<SourceRecord, String> {
    let created_at = time(r, "created_at")?;
    let version = time(r, "updated_at")?
        .or(created_at)
        .ok_or("missing created_at")?;
    let rating = decimal(r, "rating")?.ok_or("missing rating")?;
    let scale = decimal(r, "rating_scale")?.unwrap_or(Decimal::from(5));
    if scale <= Decimal::ZERO {
        return Err("rating_scale is not positive".to_owned());
    }
    if rating < Decimal::ZERO || rating > scale {
        return Err("rating is outside 0..=rating_scale".to_owned());
    }
    let reviewer = object(r, "reviewer")?;
    let reviewer_field = |name: &str| match reviewer {
        Some(s) => text(s, name).map_err(|e| format!("reviewer.{e}")),
        None => Ok(None),
    };
    let reviewer_email = reviewer_field("email")?;
    let mut keys = KeySet::new(region);
    keys.customer_id(text(r, "customer_external_id")?.as_deref())
        .email(reviewer_email.as_deref());
    let review = Review {
        product: text(r, "product")?,
        rating,
        rating_scale: scale,
        score: Review::normalised(rating, scale),
        text: text(r, "text")?,
        reviewer_name: reviewer_field("name")?,
        reviewer_email,
        verified: boolean(r, "verified")?,
    };
    Ok(SourceRecord {
        external_id,
        version,
        occurred_at: created_at.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Review(review),
    })
}

/// `first_name` / `last_name` when given, else `name` by the rule in the
/// module docs.
fn names(r: &Map<String, Value>) -> Result<(Option<String>, Option<String>), String> {
    let first = text(r, "first_name")?;
    let last = text(r, "last_name")?;
    if first.is_some() || last.is_some() {
        return Ok((first, last));
    }
    Ok(match text(r, "name")? {
        Some(name) => split_name(&name),
        None => (None, None),
    })
}

pub(super) fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let latin = name.chars().all(|c| {
        c.is_ascii_alphabetic()
            || matches!(c, ' ' | '-' | '\'' | '’' | '.')
            || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}') && c.is_alphabetic()
    });
    match name.split_once(' ') {
        Some((first, last)) if latin => {
            let last = last.trim();
            (
                Some(first.to_owned()),
                (!last.is_empty()).then(|| last.to_owned()),
            )
        }
        _ => (Some(name.to_owned()), None),
    }
}

fn address(r: &Map<String, Value>, field: &str) -> Result<Option<Address>, String> {
    let Some(a) = object(r, field)? else {
        return Ok(None);
    };
    let part = |name: &str| text(a, name).map_err(|e| format!("{field}.{e}"));
    let address = Address {
        line1: part("line1")?,
        line2: part("line2")?,
        city: part("city")?,
        region: part("region")?,
        postcode: part("postal_code")?,
        country: part("country")?.map(|c| c.to_ascii_uppercase()),
    };
    Ok((address != Address::default()).then_some(address))
}

/// A trimmed string field; absent, `null` and blank are `None`.
fn text(r: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned)),
        Some(_) => Err(format!("{field} is not a string")),
    }
}

fn object<'a>(
    r: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(format!("{field} is not an object")),
    }
}

fn list(r: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{field} is not a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("{field} is not a list of strings")),
    }
}

fn boolean(r: &Map<String, Value>, field: &str) -> Result<Option<bool>, String> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{field} is not true or false")),
    }
}

/// A calendar date, `YYYY-MM-DD`.
fn date(r: &Map<String, Value>, field: &str) -> Result<Option<NaiveDate>, String> {
    match text(r, field)? {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{field} is not a YYYY-MM-DD date")),
    }
}

fn time(r: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("{field} is not an RFC 3339 time")),
        Some(_) => Err(format!("{field} is not an RFC 3339 time")),
    }
}

fn decimal(r: &Map<String, Value>, field: &str) -> Result<Option<Decimal>, String> {
    let raw = match r.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("{field} is not a decimal number")),
    };
    Decimal::from_str(&raw)
        .or_else(|_| Decimal::from_scientific(&raw))
        .map(Some)
        .map_err(|_| format!("{field} is not a decimal number"))
}
