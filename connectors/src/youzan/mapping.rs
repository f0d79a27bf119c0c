//! Youzan's trade JSON (`full_order_info`, the same shape in pushes,
//! `youzan.trades.sold.get` and `youzan.trade.get`) and its translation into
//! the common model.
//!
//! Every field is optional at the serde level so a missing value is reported
//! by name; ids and amounts are accepted as strings or numbers because the
//! API versions disagree. Times are Beijing time (UTC+8) without an offset.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer};

use crate::identity::KeySet;
use crate::model::{Address, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{invalid, money, parse_json, present, present_owned};
use crate::webhook::{DecodeContext, DecodeError};

/// Youzan sells in renminbi; amounts are yuan as decimal strings.
const CURRENCY: &str = "CNY";
/// How Youzan writes times, in Beijing time.
pub(super) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Phones without a country code are Chinese unless the connection says otherwise.
const FALLBACK_REGION: &str = "CN";
/// `refund_state` of a fully refunded trade (0 none, 2 partly refunded).
const FULLY_REFUNDED: i64 = 12;

pub(super) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A Youzan time (`2019-09-09 16:08:34`, Beijing) in UTC.
pub(super) fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(raw.trim(), TIME_FORMAT).ok()?;
    beijing()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// An instant written the way Youzan's query parameters expect it.
pub(super) fn format_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&beijing()).format(TIME_FORMAT).to_string()
}

/// A string, or a number kept in its exact decimal text.
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

/// The push envelope. `msg` is URL-encoded JSON; `id` is the business id
/// (the order number `tid` for trade messages).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Push {
    #[serde(default, deserialize_with = "flex")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "flex")]
    pub client_id: Option<String>,
    pub msg: Option<String>,
    #[serde(default, deserialize_with = "flex")]
    pub msg_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub test: Option<bool>,
}

/// The decoded `msg` of a trade message: the full trade, or only its number.
#[derive(Debug, Deserialize)]
pub(super) struct TradeMessage {
    pub full_order_info: Option<FullOrderInfo>,
    #[serde(default, deserialize_with = "flex")]
    pub tid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FullOrderInfo {
    order_info: Option<OrderInfo>,
    buyer_info: Option<BuyerInfo>,
    pay_info: Option<PayInfo>,
    address_info: Option<AddressInfo>,
    orders: Option<Vec<LineOrder>>,
}

#[derive(Debug, Deserialize)]
struct OrderInfo {
    #[serde(default, deserialize_with = "flex")]
    tid: Option<String>,
    status: Option<String>,
    created: Option<String>,
    update_time: Option<String>,
    refund_state: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct BuyerInfo {
    yz_open_id: Option<String>,
    #[serde(default, deserialize_with = "flex")]
    buyer_id: Option<String>,
    /// Only set when the buyer bound a phone in their account; unmasked.
    buyer_phone: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PayInfo {
    /// What the buyer pays, yuan.
    #[serde(default, deserialize_with = "flex")]
    payment: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AddressInfo {
    /// May come masked (`137****0000`) or encrypted, so it is only a key
    /// when it reads as a plain number.
    receiver_tel: Option<String>,
    delivery_province: Option<String>,
    delivery_city: Option<String>,
    delivery_district: Option<String>,
    delivery_address: Option<String>,
    delivery_postal_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LineOrder {
    title: Option<String>,
    num: Option<i64>,
    /// The line's final amount after discounts, yuan.
    #[serde(default, deserialize_with = "flex")]
    payment: Option<String>,
    outer_sku_id: Option<String>,
    outer_item_id: Option<String>,
}

/// Trade messages (`trade_TradeCreate`, `trade_TradeBuyerPay`,
/// `trade_refund_…`) are the ones that concern orders.
pub(super) fn is_trade_topic(topic: &str) -> bool {
    topic.starts_with("trade_")
}

pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let push: Push = parse_json(topic, body)?;
    if push.test == Some(true) || !is_trade_topic(topic) {
        return Ok(Vec::new());
    }
    match trade_message(topic, &push)? {
        Some(TradeMessage {
            full_order_info: Some(info),
            ..
        }) => Ok(vec![order_record(topic, info, ctx)?]),
        // Thin messages name the order; `references` asks for it.
        _ => Ok(Vec::new()),
    }
}

/// The decoded `msg`, or `None` when the push carries none.
pub(super) fn trade_message(topic: &str, push: &Push) -> Result<Option<TradeMessage>, DecodeError> {
    let Some(msg) = present(push.msg.as_deref()) else {
        return Ok(None);
    };
    // Youzan URL-encodes the JSON; a raw JSON `msg` is read as it is, since
    // decoding it would turn its `+` into spaces.
    let json = if msg.starts_with('{') {
        msg.to_owned()
    } else {
        url_decode(msg).ok_or_else(|| invalid(topic, "msg is not URL-encoded UTF-8"))?
    };
    parse_json(topic, json.as_bytes()).map(Some)
}

/// `application/x-www-form-urlencoded` decoding as Java's `URLDecoder` does
/// it (`+` is a space); `None` for a broken escape or invalid UTF-8.
pub(super) fn url_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(super) fn order_record(
    topic: &str,
    info: FullOrderInfo,
    ctx: &DecodeContext,
) -> Result<SourceRecord, DecodeError> {
    let order_info = info
        .order_info
        .ok_or_else(|| invalid(topic, "missing full_order_info.order_info"))?;
    let tid = present_owned(order_info.tid.as_deref())
        .ok_or_else(|| invalid(topic, "missing order_info.tid"))?;
    let created = time(topic, "order_info.created", order_info.created.as_deref())?;
    let version = match time(
        topic,
        "order_info.update_time",
        order_info.update_time.as_deref(),
    )? {
        Some(updated) => updated,
        None => created.ok_or_else(|| invalid(topic, "missing order_info.update_time"))?,
    };
    let total = money(
        topic,
        "pay_info.payment",
        info.pay_info.as_ref().and_then(|p| p.payment.as_deref()),
    )?;
    let line_items = info
        .orders
        .iter()
        .flatten()
        .map(|line| line_item(topic, line))
        .collect::<Result<Vec<_>, _>>()?;

    let buyer = info.buyer_info.as_ref();
    let open_id = buyer.and_then(|b| present_owned(b.yz_open_id.as_deref()));
    // 0 stands for "no Youzan account" on some channels.
    let buyer_id = buyer
        .and_then(|b| present_owned(b.buyer_id.as_deref()))
        .filter(|id| id != "0");
    let buyer_phone = buyer.and_then(|b| present_owned(b.buyer_phone.as_deref()));
    let address = info.address_info.as_ref();
    let receiver_tel = address.and_then(|a| present_owned(a.receiver_tel.as_deref()));

    let region = ctx.default_region.as_deref().unwrap_or(FALLBACK_REGION);
    let mut keys = KeySet::new(Some(region));
    // `phone` refuses masked and encrypted values, so they never become keys.
    // The receiver's phone is not the buyer's: a gift would join two people.
    keys.customer_id(open_id.as_deref())
        .customer_id(buyer_id.as_deref())
        .phone(buyer_phone.as_deref());

    let order = Order {
        number: tid.clone(),
        status: order_status(order_info.status.as_deref(), order_info.refund_state),
        currency: CURRENCY.to_owned(),
        total,
        customer_id: open_id.or(buyer_id),
        // Youzan has a nickname and a recipient name, neither of them the
        // buyer's legal name.
        buyer_first_name: None,
        buyer_last_name: None,
        email: None,
        phone: buyer_phone.or(receiver_tel),
        line_items,
        shipping_address: address.and_then(shipping_address),
    };
    Ok(SourceRecord {
        external_id: tid,
        version,
        occurred_at: created.unwrap_or(version),
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

fn order_status(status: Option<&str>, refund_state: Option<i64>) -> OrderStatus {
    if refund_state == Some(FULLY_REFUNDED) {
        return OrderStatus::Refunded;
    }
    match present(status) {
        Some("TRADE_PAID" | "WAIT_CONFIRM" | "WAIT_SELLER_SEND_GOODS") => OrderStatus::Paid,
        Some("WAIT_BUYER_CONFIRM_GOODS") => OrderStatus::Shipped,
        Some("TRADE_SUCCESS") => OrderStatus::Completed,
        Some("TRADE_CLOSED" | "TRADE_CLOSE") => OrderStatus::Cancelled,
        // WAIT_BUYER_PAY and anything Youzan adds later.
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(topic: &str, line: &LineOrder) -> Result<LineItem, DecodeError> {
    Ok(LineItem {
        sku: present_owned(line.outer_sku_id.as_deref())
            .or_else(|| present_owned(line.outer_item_id.as_deref())),
        title: present_owned(line.title.as_deref()).unwrap_or_default(),
        quantity: line
            .num
            .ok_or_else(|| invalid(topic, "missing orders.num"))?,
        total: money(topic, "orders.payment", line.payment.as_deref())?,
    })
}

fn shipping_address(a: &AddressInfo) -> Option<Address> {
    let mut address = Address {
        line1: present_owned(a.delivery_address.as_deref()),
        line2: present_owned(a.delivery_district.as_deref()),
        city: present_owned(a.delivery_city.as_deref()),
        region: present_owned(a.delivery_province.as_deref()),
        postcode: present_owned(a.delivery_postal_code.as_deref()),
        country: None,
    };
    if address == Address::default() {
        return None;
    }
    address.country = Some("CN".to_owned());
    Some(address)
}

/// A present time field in UTC, `None` when absent, an error naming the
/// field when it is not a Youzan time.
fn time(topic: &str, field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match present(raw) {
        None => Ok(None),
        Some(raw) => parse_time(raw)
            .map(Some)
            .ok_or_else(|| invalid(topic, format!("{field} is not a {TIME_FORMAT} time"))),
    }
}
