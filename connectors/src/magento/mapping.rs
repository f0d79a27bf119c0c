//! Magento 2 REST order and customer resources and their translation into
//! the common model.
//!
//! Magento writes times as `YYYY-MM-DD HH:MM:SS` in UTC and money as JSON
//! numbers (read exactly through their decimal text). Every field is
//! optional at the serde level so a missing value is reported by name,
//! never with the payload quoted.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Address, Customer, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{present, present_owned, push_unique};

/// How Magento writes `created_at` / `updated_at` (UTC).
pub(super) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `GET /V1/orders` items (`Magento\Sales\Api\Data\OrderInterface`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct MgOrder {
    entity_id: Option<u64>,
    increment_id: Option<String>,
    state: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    grand_total: Option<Value>,
    total_paid: Option<Value>,
    order_currency_code: Option<String>,
    /// Absent (or null) for guest checkouts.
    customer_id: Option<u64>,
    customer_is_guest: Option<Value>,
    customer_email: Option<String>,
    customer_firstname: Option<String>,
    customer_lastname: Option<String>,
    billing_address: Option<MgAddress>,
    items: Option<Vec<MgItem>>,
    extension_attributes: Option<MgOrderExtension>,
}

#[derive(Debug, Clone, Deserialize)]
struct MgOrderExtension {
    shipping_assignments: Option<Vec<MgShippingAssignment>>,
}

#[derive(Debug, Clone, Deserialize)]
struct MgShippingAssignment {
    shipping: Option<MgShipping>,
}

#[derive(Debug, Clone, Deserialize)]
struct MgShipping {
    address: Option<MgAddress>,
}

/// Order addresses write `region` as text; customer addresses as an object
/// `{region_code, region, region_id}`.
#[derive(Debug, Clone, Deserialize)]
struct MgAddress {
    id: Option<u64>,
    firstname: Option<String>,
    lastname: Option<String>,
    street: Option<Vec<String>>,
    city: Option<String>,
    region: Option<Value>,
    region_code: Option<String>,
    postcode: Option<String>,
    country_id: Option<String>,
    telephone: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct MgItem {
    name: Option<String>,
    sku: Option<String>,
    qty_ordered: Option<Value>,
    price: Option<Value>,
    row_total: Option<Value>,
    row_total_incl_tax: Option<Value>,
    /// Set on the simple child of a configurable or bundle line.
    parent_item_id: Option<u64>,
}

/// `GET /V1/customers/search` items (`Magento\Customer\Api\Data\CustomerInterface`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct MgCustomer {
    id: Option<u64>,
    email: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    dob: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    default_billing: Option<Value>,
    addresses: Option<Vec<MgAddress>>,
    extension_attributes: Option<MgCustomerExtension>,
}

#[derive(Debug, Clone, Deserialize)]
struct MgCustomerExtension {
    is_subscribed: Option<bool>,
}

pub(super) fn order_record(
    o: &MgOrder,
    default_region: Option<&str>,
) -> Result<SourceRecord, String> {
    let id = o.entity_id.ok_or("order without entity_id")?;
    let version = time("updated_at", o.updated_at.as_deref())?;
    let occurred_at = time("created_at", o.created_at.as_deref()).unwrap_or(version);
    let currency =
        present(o.order_currency_code.as_deref()).ok_or("order without order_currency_code")?;
    let total = money("grand_total", o.grand_total.as_ref())?;
    let line_items = o
        .items
        .iter()
        .flatten()
        .filter(|item| item.parent_item_id.is_none())
        .map(line_item)
        .collect::<Result<Vec<_>, _>>()?;

    let guest = matches!(&o.customer_is_guest, Some(Value::Bool(true)))
        || o.customer_is_guest.as_ref().and_then(Value::as_u64) == Some(1);
    let customer_id = o.customer_id.filter(|_| !guest).map(|c| c.to_string());
    let billing = o.billing_address.as_ref();
    let billing_email = billing.and_then(|b| b.email.as_deref());
    let phone = billing.and_then(|b| present_owned(b.telephone.as_deref()));

    // The billing address is the buyer's; the shipping address may be a
    // gift recipient's, so its phone is never a key.
    let mut keys = KeySet::new(default_region);
    keys.customer_id(customer_id.as_deref())
        .email(o.customer_email.as_deref())
        .email(billing_email)
        .phone(phone.as_deref());

    let first = |a: Option<&str>, b: Option<&str>| present_owned(a).or_else(|| present_owned(b));
    let shipping = o
        .extension_attributes
        .as_ref()
        .and_then(|e| e.shipping_assignments.as_ref())
        .and_then(|s| s.iter().find_map(|a| a.shipping.as_ref()?.address.as_ref()));
    let order = Order {
        number: present_owned(o.increment_id.as_deref()).unwrap_or_else(|| id.to_string()),
        status: order_status(o),
        currency: currency.to_ascii_uppercase(),
        total,
        customer_id,
        buyer_first_name: first(
            o.customer_firstname.as_deref(),
            billing.and_then(|b| b.firstname.as_deref()),
        ),
        buyer_last_name: first(
            o.customer_lastname.as_deref(),
            billing.and_then(|b| b.lastname.as_deref()),
        ),
        email: first(o.customer_email.as_deref(), billing_email),
        phone,
        line_items,
        shipping_address: shipping.and_then(address),
    };
    Ok(SourceRecord {
        external_id: id.to_string(),
        version,
        occurred_at,
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// From the order's `state` (the fixed lifecycle; `status` labels can be
/// custom), falling back to `status` when the state is absent.
fn order_status(o: &MgOrder) -> OrderStatus {
    let paid = o
        .total_paid
        .as_ref()
        .and_then(|v| money("total_paid", Some(v)).ok())
        .is_some_and(|p| p > Decimal::ZERO);
    let state = present(o.state.as_deref()).or_else(|| present(o.status.as_deref()));
    match state {
        Some("canceled") => OrderStatus::Cancelled,
        Some("closed") => OrderStatus::Refunded,
        Some("complete") => OrderStatus::Completed,
        Some("processing") => OrderStatus::Paid,
        // On hold can happen before or after payment.
        Some("holded") if paid => OrderStatus::Paid,
        // new, pending_payment, payment_review, holded (unpaid), unknown.
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(item: &MgItem) -> Result<LineItem, String> {
    let quantity = money("items.qty_ordered", item.qty_ordered.as_ref())?;
    let total = match (&item.row_total_incl_tax, &item.row_total) {
        (Some(v), _) if !v.is_null() => money("items.row_total_incl_tax", Some(v))?,
        (_, Some(v)) if !v.is_null() => money("items.row_total", Some(v))?,
        _ => money("items.price", item.price.as_ref())?
            .checked_mul(quantity)
            .ok_or("items.price times qty_ordered overflows")?,
    };
    Ok(LineItem {
        sku: present_owned(item.sku.as_deref()),
        title: present_owned(item.name.as_deref()).unwrap_or_default(),
        // Fractional quantities (sold by weight) are rounded to whole units.
        quantity: quantity
            .round()
            .to_i64()
            .ok_or("items.qty_ordered is out of range")?,
        total,
    })
}

pub(super) fn customer_record(
    c: &MgCustomer,
    default_region: Option<&str>,
) -> Result<SourceRecord, String> {
    let id = c.id.ok_or("customer without id")?;
    let version = time("updated_at", c.updated_at.as_deref())?;
    let created_at = time("created_at", c.created_at.as_deref()).ok();
    let external_id = id.to_string();
    let addresses = c.addresses.as_deref().unwrap_or_default();
    let default_billing = c.default_billing.as_ref().and_then(|v| match v {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    });

    let mut phones = Vec::new();
    push_unique(
        &mut phones,
        addresses.iter().map(|a| a.telephone.as_deref()),
    );
    let mut emails = Vec::new();
    push_unique(&mut emails, [c.email.as_deref()]);

    let mut keys = KeySet::new(default_region);
    keys.customer_id(Some(&external_id))
        .email(c.email.as_deref());
    for phone in &phones {
        keys.phone(Some(phone));
    }

    let billing = addresses
        .iter()
        .find(|a| a.id.is_some() && a.id == default_billing)
        .or_else(|| addresses.first());
    let customer = Customer {
        first_name: present_owned(c.firstname.as_deref()),
        last_name: present_owned(c.lastname.as_deref()),
        emails,
        phones,
        tags: Vec::new(),
        address: billing.and_then(address),
        accepts_email_marketing: c
            .extension_attributes
            .as_ref()
            .and_then(|e| e.is_subscribed),
        created_at,
        // `dob` is a date, sometimes sent with a midnight time part.
        birth_date: c
            .dob
            .as_deref()
            .and_then(|d| d.get(..10))
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
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

fn address(a: &MgAddress) -> Option<Address> {
    let street = a.street.as_deref().unwrap_or_default();
    let line = |i: usize| present_owned(street.get(i).map(String::as_str));
    let region = match &a.region {
        Some(Value::String(s)) => present_owned(Some(s)),
        Some(Value::Object(o)) => o
            .get("region_code")
            .and_then(Value::as_str)
            .and_then(|s| present_owned(Some(s)))
            .or_else(|| {
                o.get("region")
                    .and_then(Value::as_str)
                    .and_then(|s| present_owned(Some(s)))
            }),
        _ => None,
    }
    .or_else(|| present_owned(a.region_code.as_deref()));
    let address = Address {
        line1: line(0),
        line2: (1..street.len()).find_map(line),
        city: present_owned(a.city.as_deref()),
        region,
        postcode: present_owned(a.postcode.as_deref()),
        country: present(a.country_id.as_deref()).map(str::to_ascii_uppercase),
    };
    (address != Address::default()).then_some(address)
}

/// An exact amount from a JSON number (Magento's form) or a decimal string.
fn money(field: &str, value: Option<&Value>) -> Result<Decimal, String> {
    let text = match value {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => return Err(format!("missing {field}")),
        Some(_) => return Err(format!("{field} is not a decimal amount")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("{field} is not a decimal amount"))
}

pub(super) fn time(field: &str, value: Option<&str>) -> Result<DateTime<Utc>, String> {
    let raw = present(value).ok_or_else(|| format!("missing {field}"))?;
    NaiveDateTime::parse_from_str(raw, TIME_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| format!("{field} is not a YYYY-MM-DD HH:MM:SS time"))
}
