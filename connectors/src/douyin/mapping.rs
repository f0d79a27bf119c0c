//! Doudian's shop order JSON (the `shop_order_list` items of
//! `order.searchList`, the `shop_order_detail` of `order.orderDetail`), the
//! push messages, and their translation into the common model.
//!
//! Amounts are integer fen; times are Unix seconds. Receiver data is
//! encrypted (`encrypt_post_tel`) or masked (`mask_post_tel`), so the only
//! identity key an order has is the shop-scoped buyer id `doudian_open_id`.

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use crate::identity::KeySet;
use crate::model::{Address, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{invalid, parse_json, present, present_owned};
use crate::webhook::DecodeError;

const CURRENCY: &str = "CNY";
/// `after_sale_info.refund_status` of a completed refund.
const REFUND_SUCCEEDED: i64 = 3;

pub(super) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A string, or a number kept in its exact text (ids exceed 2^53).
pub(super) fn flex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Flex>::deserialize(d)?.map(|v| match v {
        Flex::Text(s) => s,
        Flex::Number(n) => n.to_string(),
    }))
}

/// An integer written as a number or a numeric string.
fn flex_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match flex(d)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("expected an integer")),
    }
}

/// One pushed message. `data` is a JSON string (an object is read too).
#[derive(Debug, Deserialize)]
pub(super) struct Message {
    #[serde(default, deserialize_with = "flex")]
    pub tag: Option<String>,
    #[serde(default, alias = "msgId", deserialize_with = "flex")]
    pub msg_id: Option<String>,
    pub data: Option<MessageDataField>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum MessageDataField {
    Text(String),
    Inline(MessageData),
}

/// What order and refund messages share: the shop order (`p_id`) and shop.
#[derive(Debug, Default, Deserialize)]
pub(super) struct MessageData {
    #[serde(default, deserialize_with = "flex")]
    pub p_id: Option<String>,
    #[serde(default, deserialize_with = "flex")]
    pub shop_id: Option<String>,
}

impl Message {
    pub(super) fn data(&self, topic: &str) -> Result<MessageData, DecodeError> {
        match &self.data {
            None => Ok(MessageData::default()),
            Some(MessageDataField::Inline(data)) => Ok(MessageData {
                p_id: data.p_id.clone(),
                shop_id: data.shop_id.clone(),
            }),
            Some(MessageDataField::Text(text)) if text.trim().is_empty() => {
                Ok(MessageData::default())
            }
            Some(MessageDataField::Text(text)) => serde_json::from_str(text)
                .map_err(|_| invalid(topic, "a message's data is not a JSON object")),
        }
    }

    /// Trade (1xx) and after-sale (2xx) messages concern a shop order.
    pub(super) fn concerns_an_order(&self) -> bool {
        present(self.tag.as_deref())
            .is_some_and(|tag| tag.len() == 3 && (tag.starts_with('1') || tag.starts_with('2')))
    }
}

pub(super) fn messages(topic: &str, body: &[u8]) -> Result<Vec<Message>, DecodeError> {
    parse_json(topic, body)
}

/// Pushes hold no full orders: reading them only checks they are well formed.
pub(super) fn decode(topic: &str, body: &[u8]) -> Result<Vec<SourceRecord>, DecodeError> {
    for message in messages(topic, body)? {
        message.data(topic)?;
    }
    Ok(Vec::new())
}

#[derive(Debug, Deserialize)]
pub(super) struct ShopOrder {
    #[serde(default, deserialize_with = "flex")]
    order_id: Option<String>,
    #[serde(default, deserialize_with = "flex_i64")]
    order_status: Option<i64>,
    #[serde(default, deserialize_with = "flex_i64")]
    create_time: Option<i64>,
    #[serde(default, deserialize_with = "flex_i64")]
    update_time: Option<i64>,
    /// What the buyer paid, fen.
    #[serde(default, deserialize_with = "flex_i64")]
    pay_amount: Option<i64>,
    /// The buyer, scoped to the shop.
    doudian_open_id: Option<String>,
    mask_post_tel: Option<String>,
    post_addr: Option<PostAddr>,
    mask_post_addr: Option<PostAddr>,
    sku_order_list: Option<Vec<SkuOrder>>,
}

#[derive(Debug, Deserialize)]
struct PostAddr {
    province: Option<Area>,
    city: Option<Area>,
    town: Option<Area>,
    street: Option<Area>,
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Area {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SkuOrder {
    product_name: Option<String>,
    #[serde(default, deserialize_with = "flex_i64")]
    item_num: Option<i64>,
    #[serde(default, deserialize_with = "flex_i64")]
    pay_amount: Option<i64>,
    /// The merchant's own code for the product.
    code: Option<String>,
    #[serde(default, deserialize_with = "flex")]
    out_sku_id: Option<String>,
    after_sale_info: Option<AfterSaleInfo>,
}

#[derive(Debug, Deserialize)]
struct AfterSaleInfo {
    #[serde(default, deserialize_with = "flex_i64")]
    refund_status: Option<i64>,
}

pub(super) fn order_record(topic: &str, o: ShopOrder) -> Result<SourceRecord, DecodeError> {
    let id =
        present_owned(o.order_id.as_deref()).ok_or_else(|| invalid(topic, "missing order_id"))?;
    let version = seconds(topic, "update_time", o.update_time)?
        .ok_or_else(|| invalid(topic, "missing update_time"))?;
    let created = seconds(topic, "create_time", o.create_time)?;
    let total = fen(topic, "pay_amount", o.pay_amount)?;
    let skus = o.sku_order_list.unwrap_or_default();
    let line_items = skus
        .iter()
        .map(|sku| line_item(topic, sku))
        .collect::<Result<Vec<_>, _>>()?;
    let refunded = !skus.is_empty()
        && skus.iter().all(|sku| {
            sku.after_sale_info.as_ref().and_then(|a| a.refund_status) == Some(REFUND_SUCCEEDED)
        });

    let open_id = present_owned(o.doudian_open_id.as_deref());
    let mut keys = KeySet::default();
    keys.customer_id(open_id.as_deref());

    let order = Order {
        number: id.clone(),
        status: if refunded {
            OrderStatus::Refunded
        } else {
            order_status(o.order_status)
        },
        currency: CURRENCY.to_owned(),
        total,
        customer_id: open_id,
        buyer_first_name: None,
        buyer_last_name: None,
        email: None,
        // Masked (`138****5678`): kept as weak evidence, never a key.
        phone: present_owned(o.mask_post_tel.as_deref()),
        line_items,
        shipping_address: address(o.post_addr.as_ref(), o.mask_post_addr.as_ref()),
    };
    Ok(SourceRecord {
        external_id: id,
        version,
        occurred_at: created.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// `order_status`: 1 awaiting payment, 105 paid, 2 being prepared, 101 partly
/// shipped, 3 shipped, 4 cancelled, 5 completed.
fn order_status(status: Option<i64>) -> OrderStatus {
    match status {
        Some(105 | 2) => OrderStatus::Paid,
        Some(101 | 3) => OrderStatus::Shipped,
        Some(4) => OrderStatus::Cancelled,
        Some(5) => OrderStatus::Completed,
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(topic: &str, sku: &SkuOrder) -> Result<LineItem, DecodeError> {
    Ok(LineItem {
        sku: present_owned(sku.code.as_deref())
            .or_else(|| present_owned(sku.out_sku_id.as_deref())),
        title: present_owned(sku.product_name.as_deref()).unwrap_or_default(),
        quantity: sku
            .item_num
            .ok_or_else(|| invalid(topic, "missing sku_order_list.item_num"))?,
        total: fen(topic, "sku_order_list.pay_amount", sku.pay_amount)?,
    })
}

/// Province, city, district and street names are plain; the detail line is
/// taken from the masked address, the plain one being encrypted.
fn address(plain: Option<&PostAddr>, masked: Option<&PostAddr>) -> Option<Address> {
    let area = |pick: fn(&PostAddr) -> Option<&Area>| {
        [plain, masked]
            .into_iter()
            .flatten()
            .find_map(|a| pick(a).and_then(|area| present_owned(area.name.as_deref())))
    };
    let district: Vec<String> = [area(|a| a.town.as_ref()), area(|a| a.street.as_ref())]
        .into_iter()
        .flatten()
        .collect();
    let mut address = Address {
        line1: masked.and_then(|a| present_owned(a.detail.as_deref())),
        line2: (!district.is_empty()).then(|| district.join(" ")),
        city: area(|a| a.city.as_ref()),
        region: area(|a| a.province.as_ref()),
        postcode: None,
        country: None,
    };
    if address == Address::default() {
        return None;
    }
    address.country = Some("CN".to_owned());
    Some(address)
}

fn fen(topic: &str, field: &str, value: Option<i64>) -> Result<Decimal, DecodeError> {
    value
        .map(|fen| Decimal::new(fen, 2))
        .ok_or_else(|| invalid(topic, format!("missing {field}")))
}

fn seconds(
    topic: &str,
    field: &str,
    value: Option<i64>,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match value {
        None | Some(0) => Ok(None),
        Some(secs) => DateTime::from_timestamp(secs, 0)
            .map(Some)
            .ok_or_else(|| invalid(topic, format!("{field} is not a Unix time"))),
    }
}
