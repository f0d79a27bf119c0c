//! WooCommerce REST API v3 order, customer and product review
//! representations (webhook bodies and collection pages) and their
//! translation into the common model.
//!
//! Every field is optional at the serde level so that a missing value is
//! reported by name here, and empty strings (WooCommerce's usual "unset")
//! count as absent.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{
    Address, Customer, LineItem, Order, OrderStatus, RecordBody, Review, SourceRecord,
};
use crate::payload::{invalid, money, parse_json, present, present_owned, push_unique};
use crate::poll::Resource;
use crate::webhook::{DecodeContext, DecodeError};

const CUSTOMER_TOPICS: &[&str] = &["customer.created", "customer.updated"];
const ORDER_TOPICS: &[&str] = &["order.created", "order.updated", "order.restored"];

/// How the REST API writes dates (`wc_rest_prepare_date_response`).
const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    if CUSTOMER_TOPICS.contains(&topic) {
        Ok(vec![customer_record(topic, parse_json(topic, body)?, ctx)?])
    } else if ORDER_TOPICS.contains(&topic) {
        Ok(vec![order_record(topic, parse_json(topic, body)?, ctx)?])
    } else {
        Ok(Vec::new())
    }
}

/// WooCommerce's star ratings run from 1 to 5; 0 means "no rating given".
pub(super) const RATING_SCALE: u32 = 5;

/// One row of a REST collection page: its id, which the poller uses to
/// check page overlaps, and the record it yields (reviews without a rating
/// yield none).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    pub(super) id: u64,
    pub(super) record: Option<SourceRecord>,
}

/// Decodes one page of `GET /orders`, `/customers` or `/products/reviews`
/// (a JSON array of the same representations the webhooks carry). A row
/// that cannot be read fails the page, naming its id and the field.
pub(super) fn decode_collection(
    resource: Resource,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<Row>, DecodeError> {
    let topic = resource.as_str();
    match resource {
        Resource::Orders => parse_json::<Vec<WcOrder>>(topic, body)?
            .into_iter()
            .map(|o| {
                let id = o.id.ok_or_else(|| invalid(topic, "missing id"))?;
                let record = order_record(topic, o, ctx).map_err(|e| with_id(e, id))?;
                Ok(Row {
                    id,
                    record: Some(record),
                })
            })
            .collect(),
        Resource::Customers => parse_json::<Vec<WcCustomer>>(topic, body)?
            .into_iter()
            .map(|c| {
                let id = c.id.ok_or_else(|| invalid(topic, "missing id"))?;
                let record = customer_record(topic, c, ctx).map_err(|e| with_id(e, id))?;
                Ok(Row {
                    id,
                    record: Some(record),
                })
            })
            .collect(),
        Resource::Reviews => parse_json::<Vec<WcReview>>(topic, body)?
            .into_iter()
            .map(|r| {
                let id = r.id.ok_or_else(|| invalid(topic, "missing id"))?;
                let record = review_record(topic, id, r, ctx).map_err(|e| with_id(e, id))?;
                Ok(Row { id, record })
            })
            .collect(),
        Resource::Messages => unreachable!("poll refuses resources WooCommerce does not have"),
    }
}

/// Prefixes a row's reason with its id (ids are not personal data).
fn with_id(error: DecodeError, id: u64) -> DecodeError {
    let DecodeError::Invalid { topic, reason } = error;
    DecodeError::Invalid {
        topic,
        reason: format!("id {id}: {reason}"),
    }
}

/// The four dates every v3 resource carries; `*_gmt` are UTC, the others
/// are in the site's time zone, which the payload does not state.
#[derive(Debug, Deserialize)]
struct WcDates {
    date_created: Option<String>,
    date_created_gmt: Option<String>,
    date_modified: Option<String>,
    date_modified_gmt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WcOrder {
    id: Option<u64>,
    number: Option<String>,
    status: Option<String>,
    currency: Option<String>,
    total: Option<String>,
    customer_id: Option<u64>,
    billing: Option<WcAddress>,
    shipping: Option<WcAddress>,
    line_items: Option<Vec<WcLineItem>>,
    #[serde(flatten)]
    dates: WcDates,
}

#[derive(Debug, Deserialize)]
struct WcCustomer {
    id: Option<u64>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    billing: Option<WcAddress>,
    #[serde(flatten)]
    dates: WcDates,
}

/// `billing` and `shipping`; only `billing` has `email`, both may have `phone`.
#[derive(Debug, Deserialize)]
struct WcAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    address_1: Option<String>,
    address_2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WcLineItem {
    name: Option<String>,
    sku: Option<String>,
    quantity: Option<i64>,
    total: Option<String>,
}

fn order_record(topic: &str, o: WcOrder, ctx: &DecodeContext) -> Result<SourceRecord, DecodeError> {
    let id = o.id.ok_or_else(|| invalid(topic, "missing id"))?;
    let version = version(topic, &o.dates)?;
    let currency =
        present(o.currency.as_deref()).ok_or_else(|| invalid(topic, "missing currency"))?;
    let total = money(topic, "total", o.total.as_deref())?;
    let line_items = o
        .line_items
        .iter()
        .flatten()
        .map(|item| line_item(topic, item))
        .collect::<Result<Vec<_>, _>>()?;

    // 0 is WooCommerce's guest checkout.
    let customer_id = o.customer_id.filter(|&c| c != 0).map(|c| c.to_string());
    let billing = o.billing.as_ref();
    let billing_field = |f: fn(&WcAddress) -> Option<&str>| {
        billing.and_then(f).and_then(|v| present_owned(Some(v)))
    };
    let email = billing_field(|b| b.email.as_deref());
    let phone = billing_field(|b| b.phone.as_deref());

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(customer_id.as_deref())
        .email(email.as_deref())
        .phone(phone.as_deref());

    let order = Order {
        number: present_owned(o.number.as_deref()).unwrap_or_else(|| id.to_string()),
        status: order_status(o.status.as_deref()),
        currency: currency.to_ascii_uppercase(),
        total,
        customer_id,
        buyer_first_name: billing_field(|b| b.first_name.as_deref()),
        buyer_last_name: billing_field(|b| b.last_name.as_deref()),
        email,
        phone,
        line_items,
        shipping_address: o.shipping.as_ref().and_then(address),
    };
    Ok(SourceRecord {
        external_id: id.to_string(),
        version,
        occurred_at: created_at(&o.dates).unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

fn order_status(status: Option<&str>) -> OrderStatus {
    match present(status) {
        Some("processing") => OrderStatus::Paid,
        Some("completed") => OrderStatus::Completed,
        Some("refunded") => OrderStatus::Refunded,
        Some("cancelled" | "failed" | "trash") => OrderStatus::Cancelled,
        // pending, on-hold, checkout-draft, and custom statuses from plugins.
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(topic: &str, item: &WcLineItem) -> Result<LineItem, DecodeError> {
    Ok(LineItem {
        sku: present_owned(item.sku.as_deref()),
        title: present_owned(item.name.as_deref()).unwrap_or_default(),
        quantity: item
            .quantity
            .ok_or_else(|| invalid(topic, "missing line_items.quantity"))?,
        total: money(topic, "line_items.total", item.total.as_deref())?,
    })
}

fn customer_record(
    topic: &str,
    c: WcCustomer,
    ctx: &DecodeContext,
) -> Result<SourceRecord, DecodeError> {
    let id = c.id.ok_or_else(|| invalid(topic, "missing id"))?;
    let version = version(topic, &c.dates)?;
    let created_at = created_at(&c.dates);
    let billing = c.billing.as_ref();
    let billing_email = billing.and_then(|b| b.email.as_deref());
    let billing_phone = billing.and_then(|b| b.phone.as_deref());
    let external_id = id.to_string();

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(Some(&external_id))
        .email(c.email.as_deref())
        .email(billing_email)
        .phone(billing_phone);

    let mut emails = Vec::new();
    push_unique(&mut emails, [c.email.as_deref(), billing_email]);
    let mut phones = Vec::new();
    push_unique(&mut phones, [billing_phone]);

    let customer = Customer {
        first_name: present_owned(c.first_name.as_deref())
            .or_else(|| present_owned(billing.and_then(|b| b.first_name.as_deref()))),
        last_name: present_owned(c.last_name.as_deref())
            .or_else(|| present_owned(billing.and_then(|b| b.last_name.as_deref()))),
        emails,
        phones,
        // WooCommerce customers have neither tags nor a marketing consent field.
        tags: Vec::new(),
        address: billing.and_then(address),
        accepts_email_marketing: None,
        created_at,
        birth_date: None,
        document_id: None,
    };
    Ok(SourceRecord {
        external_id,
        version,
        occurred_at: created_at.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Customer(customer),
    })
}

fn address(a: &WcAddress) -> Option<Address> {
    let address = Address {
        line1: present_owned(a.address_1.as_deref()),
        line2: present_owned(a.address_2.as_deref()),
        city: present_owned(a.city.as_deref()),
        region: present_owned(a.state.as_deref()),
        postcode: present_owned(a.postcode.as_deref()),
        country: present(a.country.as_deref()).map(str::to_ascii_uppercase),
    };
    (address != Address::default()).then_some(address)
}

/// The first date present of `date_modified_gmt`, `date_created_gmt`,
/// `date_modified`, `date_created`; the site-local ones are read as UTC,
/// a last resort for stores whose payloads lack the GMT fields.
fn version(topic: &str, d: &WcDates) -> Result<DateTime<Utc>, DecodeError> {
    let (field, raw) = [
        ("date_modified_gmt", &d.date_modified_gmt),
        ("date_created_gmt", &d.date_created_gmt),
        ("date_modified", &d.date_modified),
        ("date_created", &d.date_created),
    ]
    .into_iter()
    .find_map(|(field, value)| Some((field, present(value.as_deref())?)))
    .ok_or_else(|| invalid(topic, "missing date_modified_gmt"))?;
    parse_date(raw).ok_or_else(|| invalid(topic, format!("{field} is not a {DATE_FORMAT} time")))
}

/// Creation time: `date_created_gmt`, else the site-local `date_created`
/// read as UTC, which is still nearer than the modification time.
fn created_at(d: &WcDates) -> Option<DateTime<Utc>> {
    [&d.date_created_gmt, &d.date_created]
        .into_iter()
        .find_map(|value| present(value.as_deref()))
        .and_then(parse_date)
}

fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw, DATE_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// A `/products/reviews` item (a WordPress comment of type `review`).
#[derive(Debug, Deserialize)]
struct WcReview {
    id: Option<u64>,
    date_created: Option<String>,
    date_created_gmt: Option<String>,
    product_id: Option<u64>,
    /// Present since WooCommerce 6.x; older stores send only `product_id`.
    product_name: Option<String>,
    status: Option<String>,
    reviewer: Option<String>,
    reviewer_email: Option<String>,
    /// HTML in the `view` context (`wpautop` paragraphs).
    review: Option<String>,
    /// An integer 0..=5 in core; kept as a JSON number to stay exact.
    rating: Option<serde_json::Number>,
    verified: Option<bool>,
}

/// A rated, approved review; `None` for reviews without stars (rating 0,
/// which the model cannot represent) and for any status but `approved`.
/// Reviews have no modification time: version and occurrence are both the
/// creation time.
fn review_record(
    topic: &str,
    id: u64,
    r: WcReview,
    ctx: &DecodeContext,
) -> Result<Option<SourceRecord>, DecodeError> {
    if present(r.status.as_deref()).is_some_and(|s| s != "approved") {
        return Ok(None);
    }
    let Some(rating) = r.rating.as_ref() else {
        return Ok(None);
    };
    let rating = Decimal::from_str(&rating.to_string())
        .map_err(|_| invalid(topic, "rating is not a number"))?;
    if rating <= Decimal::ZERO {
        return Ok(None);
    }
    let (field, raw) = [
        ("date_created_gmt", &r.date_created_gmt),
        ("date_created", &r.date_created),
    ]
    .into_iter()
    .find_map(|(field, value)| Some((field, present(value.as_deref())?)))
    .ok_or_else(|| invalid(topic, "missing date_created_gmt"))?;
    let created = parse_date(raw)
        .ok_or_else(|| invalid(topic, format!("{field} is not a {DATE_FORMAT} time")))?;

    let email = present_owned(r.reviewer_email.as_deref());
    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.email(email.as_deref());

    let scale = Decimal::from(RATING_SCALE);
    let review = Review {
        product: present_owned(r.product_name.as_deref())
            .or_else(|| r.product_id.filter(|&p| p != 0).map(|p| p.to_string())),
        rating,
        rating_scale: scale,
        score: Review::normalised(rating, scale),
        text: r.review.as_deref().and_then(plain_text),
        reviewer_name: present_owned(r.reviewer.as_deref()),
        reviewer_email: email,
        verified: r.verified,
    };
    Ok(Some(SourceRecord {
        external_id: id.to_string(),
        version: created,
        occurred_at: created,
        keys: keys.into_keys(),
        body: RecordBody::Review(review),
    }))
}

/// The text of a review's `view` HTML: tags dropped (`<br>` and paragraph
/// ends become line breaks), the entities WordPress writes decoded, blank
/// lines collapsed. `None` when nothing is left.
fn plain_text(html: &str) -> Option<String> {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            // A lone `<` is text, not a tag.
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        if tag.starts_with("br") || tag == "/p" {
            text.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    text.push_str(rest);
    let decoded = decode_entities(&text);
    let lines: Vec<&str> = decoded
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let entity = after
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| Some((entity_char(&after[1..end])?, end)));
        match entity {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity_char(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
            char::from_u32(code)
        }
    }
}
