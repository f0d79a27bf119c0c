//! Shopify REST Order and Customer resources (the webhook bodies) and their
//! translation into the common model.
//!
//! Every field is optional at the serde level so that a missing value is
//! reported by name here, not by serde with the payload quoted.
//!
//! The GraphQL records polled by `client` are converted into these same
//! structs (`graphql`), so a webhook and a poll of one order or customer
//! build the record through one code path and agree on every field.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{Address, Customer, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{invalid, money, parse_json, present, present_owned, push_unique};
use crate::webhook::{DecodeContext, DecodeError};

const CUSTOMER_TOPICS: &[&str] = &["customers/create", "customers/update"];
const ORDER_TOPICS: &[&str] = &[
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
];

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

#[derive(Debug, Default, Deserialize)]
pub(super) struct RestOrder {
    pub(super) id: Option<u64>,
    pub(super) name: Option<String>,
    pub(super) order_number: Option<u64>,
    pub(super) email: Option<String>,
    pub(super) contact_email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) created_at: Option<String>,
    pub(super) updated_at: Option<String>,
    pub(super) cancelled_at: Option<String>,
    pub(super) closed_at: Option<String>,
    pub(super) currency: Option<String>,
    pub(super) total_price: Option<String>,
    pub(super) financial_status: Option<String>,
    pub(super) fulfillment_status: Option<String>,
    pub(super) customer: Option<RestCustomer>,
    pub(super) billing_address: Option<RestAddress>,
    pub(super) shipping_address: Option<RestAddress>,
    pub(super) line_items: Option<Vec<RestLineItem>>,
}

/// The Customer resource; also the `customer` embedded in an order.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RestCustomer {
    pub(super) id: Option<u64>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) tags: Option<String>,
    pub(super) created_at: Option<String>,
    pub(super) updated_at: Option<String>,
    pub(super) email_marketing_consent: Option<RestConsent>,
    pub(super) default_address: Option<RestAddress>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RestConsent {
    pub(super) state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RestAddress {
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) address1: Option<String>,
    pub(super) address2: Option<String>,
    pub(super) city: Option<String>,
    pub(super) province: Option<String>,
    pub(super) province_code: Option<String>,
    pub(super) zip: Option<String>,
    pub(super) country_code: Option<String>,
    pub(super) phone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RestLineItem {
    pub(super) title: Option<String>,
    pub(super) sku: Option<String>,
    pub(super) quantity: Option<i64>,
    pub(super) price: Option<String>,
}

pub(super) fn order_record(
    topic: &str,
    o: RestOrder,
    ctx: &DecodeContext,
) -> Result<SourceRecord, DecodeError> {
    let id = o.id.ok_or_else(|| invalid(topic, "missing id"))?;
    let version = required_time(topic, "updated_at", o.updated_at.as_deref())?;
    let occurred_at = optional_time(o.created_at.as_deref()).unwrap_or(version);
    let currency =
        present(o.currency.as_deref()).ok_or_else(|| invalid(topic, "missing currency"))?;
    let total = money(topic, "total_price", o.total_price.as_deref())?;
    let line_items = o
        .line_items
        .iter()
        .flatten()
        .map(|item| line_item(topic, item))
        .collect::<Result<Vec<_>, _>>()?;

    let customer = o.customer.as_ref();
    let billing = o.billing_address.as_ref();
    let customer_id = customer.and_then(|c| c.id).map(|id| id.to_string());
    let customer_email = customer.and_then(|c| c.email.as_deref());
    let customer_phone = customer.and_then(|c| c.phone.as_deref());
    let billing_phone = billing.and_then(|b| b.phone.as_deref());

    // The billing address is the buyer's; the shipping address may be a
    // gift recipient's, so its phone is never a key for the buyer.
    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(customer_id.as_deref())
        .email(o.email.as_deref())
        .email(o.contact_email.as_deref())
        .email(customer_email)
        .phone(o.phone.as_deref())
        .phone(customer_phone)
        .phone(billing_phone);

    let first = |c: Option<&str>, b: Option<&str>| present_owned(c).or_else(|| present_owned(b));
    let order = Order {
        number: present_owned(o.name.as_deref())
            .or_else(|| o.order_number.map(|n| n.to_string()))
            .unwrap_or_else(|| id.to_string()),
        status: order_status(&o),
        currency: currency.to_ascii_uppercase(),
        total,
        customer_id,
        buyer_first_name: first(
            customer.and_then(|c| c.first_name.as_deref()),
            billing.and_then(|b| b.first_name.as_deref()),
        ),
        buyer_last_name: first(
            customer.and_then(|c| c.last_name.as_deref()),
            billing.and_then(|b| b.last_name.as_deref()),
        ),
        email: [
            o.email.as_deref(),
            o.contact_email.as_deref(),
            customer_email,
        ]
        .into_iter()
        .find_map(present_owned),
        phone: [o.phone.as_deref(), customer_phone, billing_phone]
            .into_iter()
            .find_map(present_owned),
        line_items,
        shipping_address: o.shipping_address.as_ref().and_then(address),
    };
    Ok(SourceRecord {
        external_id: id.to_string(),
        version,
        occurred_at,
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// Most final state first: a cancelled or refunded order stays so whatever
/// its fulfilment says.
fn order_status(o: &RestOrder) -> OrderStatus {
    let financial = present(o.financial_status.as_deref());
    if present(o.cancelled_at.as_deref()).is_some() {
        OrderStatus::Cancelled
    } else if financial == Some("refunded") {
        OrderStatus::Refunded
    } else if present(o.fulfillment_status.as_deref()) == Some("fulfilled") {
        if present(o.closed_at.as_deref()).is_some() {
            OrderStatus::Completed
        } else {
            OrderStatus::Shipped
        }
    } else if matches!(
        financial,
        Some("paid" | "partially_refunded" | "partially_paid")
    ) {
        OrderStatus::Paid
    } else {
        OrderStatus::PendingPayment
    }
}

fn line_item(topic: &str, item: &RestLineItem) -> Result<LineItem, DecodeError> {
    let quantity = item
        .quantity
        .ok_or_else(|| invalid(topic, "missing line_items.quantity"))?;
    let price = money(topic, "line_items.price", item.price.as_deref())?;
    let total = price
        .checked_mul(Decimal::from(quantity))
        .ok_or_else(|| invalid(topic, "line_items.price times quantity overflows"))?;
    Ok(LineItem {
        sku: present_owned(item.sku.as_deref()),
        title: present_owned(item.title.as_deref()).unwrap_or_default(),
        quantity,
        total,
    })
}

pub(super) fn customer_record(
    topic: &str,
    c: RestCustomer,
    ctx: &DecodeContext,
) -> Result<SourceRecord, DecodeError> {
    let id = c.id.ok_or_else(|| invalid(topic, "missing id"))?;
    let version = required_time(topic, "updated_at", c.updated_at.as_deref())?;
    let created_at = optional_time(c.created_at.as_deref());
    let address_phone = c.default_address.as_ref().and_then(|a| a.phone.as_deref());
    let external_id = id.to_string();

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(Some(&external_id))
        .email(c.email.as_deref())
        .phone(c.phone.as_deref())
        .phone(address_phone);

    let mut emails = Vec::new();
    push_unique(&mut emails, [c.email.as_deref()]);
    let mut phones = Vec::new();
    push_unique(&mut phones, [c.phone.as_deref(), address_phone]);
    let tags = c
        .tags
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|t| present_owned(Some(t)))
        .collect();

    let customer = Customer {
        first_name: present_owned(c.first_name.as_deref()),
        last_name: present_owned(c.last_name.as_deref()),
        emails,
        phones,
        tags,
        address: c.default_address.as_ref().and_then(address),
        accepts_email_marketing: c.email_marketing_consent.as_ref().and_then(consent),
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

/// `subscribed` is consent; `pending` (double opt-in not confirmed yet) is
/// not. Other states (`redacted`, `invalid`) say nothing either way.
fn consent(c: &RestConsent) -> Option<bool> {
    match present(c.state.as_deref())? {
        "subscribed" => Some(true),
        "unsubscribed" | "not_subscribed" | "pending" => Some(false),
        _ => None,
    }
}

fn address(a: &RestAddress) -> Option<Address> {
    let address = Address {
        line1: present_owned(a.address1.as_deref()),
        line2: present_owned(a.address2.as_deref()),
        city: present_owned(a.city.as_deref()),
        region: present_owned(a.province_code.as_deref())
            .or_else(|| present_owned(a.province.as_deref())),
        postcode: present_owned(a.zip.as_deref()),
        country: present(a.country_code.as_deref()).map(str::to_ascii_uppercase),
    };
    (address != Address::default()).then_some(address)
}

fn required_time(
    topic: &str,
    field: &str,
    value: Option<&str>,
) -> Result<DateTime<Utc>, DecodeError> {
    let raw = present(value).ok_or_else(|| invalid(topic, format!("missing {field}")))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(topic, format!("{field} is not an RFC 3339 time")))
}

/// Informational times: an unreadable one is treated as absent.
fn optional_time(value: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(present(value)?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
