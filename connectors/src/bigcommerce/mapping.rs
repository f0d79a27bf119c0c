//! BigCommerce v2 orders (with their products) and v3 customers, and their
//! translation into the common model.
//!
//! v2 writes dates in RFC 2822 (`Tue, 20 Nov 2012 00:00:00 +0000`) and money
//! as decimal strings (`"225.0000"`); v3 writes ISO 8601 dates. Every field
//! is optional at the serde level so a missing value is reported by name,
//! never with the payload quoted.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Address, Customer, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{present, present_owned, push_unique};

/// `GET /v2/orders` and `GET /v2/orders/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BcOrder {
    pub id: Option<u64>,
    pub customer_id: Option<u64>,
    pub date_created: Option<String>,
    pub date_modified: Option<String>,
    pub status_id: Option<u64>,
    pub total_inc_tax: Option<Value>,
    pub currency_code: Option<String>,
    pub billing_address: Option<BcBillingAddress>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct BcBillingAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// `GET /v2/orders/{id}/products`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BcOrderProduct {
    name: Option<String>,
    sku: Option<String>,
    quantity: Option<i64>,
    total_inc_tax: Option<Value>,
    /// Set on the components of a bundle; the bundle line carries the price.
    parent_order_product_id: Option<u64>,
}

/// `GET /v3/customers` items (with `include=addresses`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BcCustomer {
    pub id: Option<u64>,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    date_created: Option<String>,
    pub date_modified: Option<String>,
    addresses: Option<Vec<BcCustomerAddress>>,
}

#[derive(Debug, Clone, Deserialize)]
struct BcCustomerAddress {
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    state_or_province: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

/// A v2 order's `date_modified`, the version the poller sorts by.
pub(super) fn order_version(o: &BcOrder) -> Result<DateTime<Utc>, String> {
    rfc2822("date_modified", o.date_modified.as_deref())
}

/// A v3 customer's `date_modified`.
pub(super) fn customer_version(c: &BcCustomer) -> Result<DateTime<Utc>, String> {
    iso("date_modified", c.date_modified.as_deref())
}

pub(super) fn order_record(
    o: &BcOrder,
    products: &[BcOrderProduct],
    default_region: Option<&str>,
) -> Result<SourceRecord, String> {
    let id = o.id.ok_or("order without id")?;
    let version = order_version(o)?;
    let occurred_at = rfc2822("date_created", o.date_created.as_deref()).unwrap_or(version);
    let currency = present(o.currency_code.as_deref()).ok_or("order without currency_code")?;
    let total = money("total_inc_tax", o.total_inc_tax.as_ref())?;
    let line_items = products
        .iter()
        .filter(|p| p.parent_order_product_id.is_none())
        .map(line_item)
        .collect::<Result<Vec<_>, _>>()?;

    // 0 is BigCommerce's guest checkout.
    let customer_id = o.customer_id.filter(|&c| c != 0).map(|c| c.to_string());
    let billing = o.billing_address.as_ref();
    let email = billing.and_then(|b| present_owned(b.email.as_deref()));
    let phone = billing.and_then(|b| present_owned(b.phone.as_deref()));

    let mut keys = KeySet::new(default_region);
    keys.customer_id(customer_id.as_deref())
        .email(email.as_deref())
        .phone(phone.as_deref());

    let order = Order {
        number: id.to_string(),
        status: order_status(o.status_id),
        currency: currency.to_ascii_uppercase(),
        total,
        customer_id,
        buyer_first_name: billing.and_then(|b| present_owned(b.first_name.as_deref())),
        buyer_last_name: billing.and_then(|b| present_owned(b.last_name.as_deref())),
        email,
        phone,
        line_items,
        // Shipping addresses live at /v2/orders/{id}/shipping_addresses; not fetched.
        shipping_address: None,
    };
    Ok(SourceRecord {
        external_id: id.to_string(),
        version,
        occurred_at,
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// BigCommerce's fixed status ids (custom labels keep these ids).
pub(super) fn order_status(status_id: Option<u64>) -> OrderStatus {
    match status_id {
        // Shipped
        Some(2) => OrderStatus::Shipped,
        // Refunded
        Some(4) => OrderStatus::Refunded,
        // Cancelled, Declined
        Some(5 | 6) => OrderStatus::Cancelled,
        // Completed
        Some(10) => OrderStatus::Completed,
        // Partially Shipped, Awaiting Pickup, Awaiting Shipment, Awaiting
        // Fulfillment, Disputed, Partially Refunded: paid for.
        Some(3 | 8 | 9 | 11 | 13 | 14) => OrderStatus::Paid,
        // Incomplete (0), Pending (1), Awaiting Payment (7), Manual
        // Verification Required (12), and anything unknown.
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(p: &BcOrderProduct) -> Result<LineItem, String> {
    Ok(LineItem {
        sku: present_owned(p.sku.as_deref()),
        title: present_owned(p.name.as_deref()).unwrap_or_default(),
        quantity: p.quantity.ok_or("order product without quantity")?,
        total: money("products.total_inc_tax", p.total_inc_tax.as_ref())?,
    })
}

pub(super) fn customer_record(
    c: &BcCustomer,
    default_region: Option<&str>,
) -> Result<SourceRecord, String> {
    let id = c.id.ok_or("customer without id")?;
    let version = customer_version(c)?;
    let created_at = iso("date_created", c.date_created.as_deref()).ok();
    let external_id = id.to_string();
    let addresses = c.addresses.as_deref().unwrap_or_default();

    let mut phones = Vec::new();
    push_unique(
        &mut phones,
        std::iter::once(c.phone.as_deref()).chain(addresses.iter().map(|a| a.phone.as_deref())),
    );
    let mut emails = Vec::new();
    push_unique(&mut emails, [c.email.as_deref()]);

    let mut keys = KeySet::new(default_region);
    keys.customer_id(Some(&external_id))
        .email(c.email.as_deref());
    for phone in &phones {
        keys.phone(Some(phone));
    }

    let customer = Customer {
        first_name: present_owned(c.first_name.as_deref()),
        last_name: present_owned(c.last_name.as_deref()),
        emails,
        phones,
        tags: Vec::new(),
        address: addresses.iter().find_map(address),
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

fn address(a: &BcCustomerAddress) -> Option<Address> {
    let address = Address {
        line1: present_owned(a.address1.as_deref()),
        line2: present_owned(a.address2.as_deref()),
        city: present_owned(a.city.as_deref()),
        region: present_owned(a.state_or_province.as_deref()),
        postcode: present_owned(a.postal_code.as_deref()),
        country: present(a.country_code.as_deref()).map(str::to_ascii_uppercase),
    };
    (address != Address::default()).then_some(address)
}

/// An exact amount from a decimal string (v2's usual form) or a JSON number.
fn money(field: &str, value: Option<&Value>) -> Result<Decimal, String> {
    let text = match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => return Err(format!("missing {field}")),
        Some(_) => return Err(format!("{field} is not a decimal amount")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("{field} is not a decimal amount"))
}

fn rfc2822(field: &str, value: Option<&str>) -> Result<DateTime<Utc>, String> {
    let raw = present(value).ok_or_else(|| format!("missing {field}"))?;
    DateTime::parse_from_rfc2822(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{field} is not an RFC 2822 time"))
}

fn iso(field: &str, value: Option<&str>) -> Result<DateTime<Utc>, String> {
    let raw = present(value).ok_or_else(|| format!("missing {field}"))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{field} is not an ISO 8601 time"))
}
