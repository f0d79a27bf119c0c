//! TOP `Trade` and TMC message structs and their translation into the model.
//!
//! Buyer data on Taobao is masked or encrypted, so the only identity keys a
//! trade yields are the shop-scoped buyer ids: `ouid` (stable per buyer per
//! shop) and `buyer_open_uid` (stable per buyer per app). Both become
//! `CustomerId` keys; `Order.customer_id` prefers `ouid`. The `oaid` (an
//! encrypted recipient id that changes with the week, the shop and the app)
//! is never read, and receiver fields (name, mobile, address) are never keys:
//! they describe the recipient, who need not be the buyer, and arrive masked
//! (`138****5678`). Masked values are dropped rather than stored.
//!
//! Every field is optional at the serde level so that a missing value is
//! reported by name here, not by serde with the payload quoted.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{Address, LineItem, Order, OrderStatus, RecordBody, SourceRecord};
use crate::payload::{invalid, money, parse_json, present, present_owned};
use crate::webhook::DecodeError;

/// TOP writes every time as `yyyy-MM-dd HH:mm:ss` in China Standard Time.
const TOP_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The topic name used in decode errors of full trades.
pub(super) const TRADE_TOPIC: &str = "taobao.trade.fullinfo.get";

/// Trades on Taobao are priced in renminbi.
const CURRENCY: &str = "CNY";

/// TMC topics whose messages name a trade by `tid`: trade life-cycle
/// messages (`taobao_trade_TradeCreate`, `TradeChanged`, `TradeClose`, ...)
/// and refund messages, which change the trade's status too.
const TRADE_TOPIC_PREFIXES: &[&str] = &["taobao_trade_", "taobao_refund_"];

fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A TOP time (GMT+8, second precision) as UTC.
pub(super) fn parse_top_time(raw: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(raw.trim(), TOP_TIME_FORMAT).ok()?;
    china_time()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A UTC instant written the way TOP reads times (GMT+8, whole seconds).
pub(super) fn format_top_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&china_time())
        .format(TOP_TIME_FORMAT)
        .to_string()
}

/// A scalar TOP writes as a JSON number or as a string (ids, counts, money).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Scalar {
    Number(serde_json::Number),
    Text(String),
}

impl Scalar {
    /// The value as text, or `None` when blank.
    pub(super) fn text(&self) -> Option<String> {
        match self {
            Scalar::Number(n) => Some(n.to_string()),
            Scalar::Text(s) => present_owned(Some(s)),
        }
    }
}

fn scalar_text(value: &Option<Scalar>) -> Option<String> {
    value.as_ref().and_then(Scalar::text)
}

/// A trade as `taobao.trade.fullinfo.get` returns it (the fields this
/// connector asks for; see `client::TRADE_FIELDS`).
#[derive(Debug, Deserialize)]
pub(super) struct Trade {
    tid: Option<Scalar>,
    status: Option<String>,
    payment: Option<Scalar>,
    created: Option<String>,
    modified: Option<String>,
    buyer_open_uid: Option<String>,
    ouid: Option<String>,
    receiver_state: Option<String>,
    receiver_city: Option<String>,
    receiver_district: Option<String>,
    receiver_zip: Option<String>,
    orders: Option<SubOrders>,
}

/// `orders` is `{"order": [...]}` in TOP's standard JSON and a plain list
/// in its simplified form (`simplify=true`, and the shared sample).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SubOrders {
    List(Vec<SubOrder>),
    Wrapped {
        #[serde(default)]
        order: Vec<SubOrder>,
    },
}

impl SubOrders {
    fn items(&self) -> &[SubOrder] {
        match self {
            SubOrders::List(items) | SubOrders::Wrapped { order: items } => items,
        }
    }
}

/// A sub-order (`Order`): one product line of a trade.
#[derive(Debug, Deserialize)]
struct SubOrder {
    title: Option<String>,
    num: Option<Scalar>,
    price: Option<Scalar>,
    outer_sku_id: Option<String>,
    outer_iid: Option<String>,
}

/// One entry of `taobao.trades.sold.increment.get` (asked for `tid,modified`).
#[derive(Debug, Deserialize)]
pub(super) struct ListedTrade {
    pub(super) tid: Option<Scalar>,
    pub(super) modified: Option<String>,
}

/// A TMC message as `taobao.tmc.messages.consume` returns it.
#[derive(Debug, Deserialize)]
pub(super) struct TmcMessage {
    pub(super) id: Option<Scalar>,
    pub(super) topic: Option<String>,
    /// The message body: a JSON object written as a string.
    pub(super) content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TmcContent {
    tid: Option<Scalar>,
}

/// The `tid` a trade or refund message is about; `None` for other topics
/// and for contents without a readable `tid`.
pub(super) fn message_tid(message: &TmcMessage) -> Option<String> {
    let topic = present(message.topic.as_deref())?;
    if !TRADE_TOPIC_PREFIXES.iter().any(|p| topic.starts_with(p)) {
        return None;
    }
    let content = present(message.content.as_deref())?;
    let content: TmcContent = serde_json::from_str(content).ok()?;
    scalar_text(&content.tid)
}

/// Decodes one full trade (for fixtures and tests; the client goes through
/// [`trade_record`] after its own parse).
#[cfg(test)]
pub(super) fn decode_trade(body: &[u8]) -> Result<SourceRecord, DecodeError> {
    trade_record(&parse_json::<Trade>(TRADE_TOPIC, body)?)
}

/// Parses a full trade from the JSON value TOP answered.
pub(super) fn parse_trade(value: &serde_json::Value) -> Result<Trade, DecodeError> {
    let bytes = serde_json::to_vec(value).map_err(|_| invalid(TRADE_TOPIC, "trade is not JSON"))?;
    parse_json(TRADE_TOPIC, &bytes)
}

pub(super) fn trade_record(t: &Trade) -> Result<SourceRecord, DecodeError> {
    let topic = TRADE_TOPIC;
    let tid = scalar_text(&t.tid).ok_or_else(|| invalid(topic, "missing tid"))?;
    let version = required_time(topic, "modified", t.modified.as_deref())?;
    let occurred_at = t
        .created
        .as_deref()
        .and_then(parse_top_time)
        .unwrap_or(version);
    let total = money(topic, "payment", scalar_text(&t.payment).as_deref())?;
    let line_items = t
        .orders
        .as_ref()
        .map(SubOrders::items)
        .unwrap_or_default()
        .iter()
        .map(line_item)
        .collect::<Result<Vec<_>, _>>()?;

    let ouid = unmasked(t.ouid.as_deref());
    let open_uid = unmasked(t.buyer_open_uid.as_deref());
    let mut keys = KeySet::new(None);
    keys.customer_id(ouid.as_deref())
        .customer_id(open_uid.as_deref());

    let order = Order {
        number: tid.clone(),
        status: order_status(t.status.as_deref()),
        currency: CURRENCY.to_owned(),
        total,
        customer_id: ouid.or(open_uid),
        buyer_first_name: None,
        buyer_last_name: None,
        email: None,
        phone: None,
        line_items,
        shipping_address: shipping_address(t),
    };
    Ok(SourceRecord {
        external_id: tid,
        version,
        occurred_at,
        keys: keys.into_keys(),
        body: RecordBody::Order(order),
    })
}

/// TOP trade statuses. Unknown (future) statuses read as pending payment,
/// which never counts as money spent.
pub(super) fn order_status(status: Option<&str>) -> OrderStatus {
    match present(status).unwrap_or_default() {
        // Paid, not (fully) shipped; partial shipment and group-buy holds included.
        "WAIT_SELLER_SEND_GOODS" | "SELLER_CONSIGNED_PART" | "PAID_FORBID_CONSIGN" => {
            OrderStatus::Paid
        }
        "WAIT_BUYER_CONFIRM_GOODS" | "TRADE_BUYER_SIGNED" => OrderStatus::Shipped,
        "TRADE_FINISHED" => OrderStatus::Completed,
        // Closed after payment: the buyer was refunded in full.
        "TRADE_CLOSED" => OrderStatus::Refunded,
        // Closed before payment by the buyer, the seller or Taobao.
        "TRADE_CLOSED_BY_TAOBAO" => OrderStatus::Cancelled,
        // TRADE_NO_CREATE_PAY, WAIT_BUYER_PAY, PAY_PENDING, WAIT_PRE_AUTH_CONFIRM
        _ => OrderStatus::PendingPayment,
    }
}

fn line_item(item: &SubOrder) -> Result<LineItem, DecodeError> {
    let topic = TRADE_TOPIC;
    let quantity = scalar_text(&item.num)
        .ok_or_else(|| invalid(topic, "missing orders.num"))?
        .parse::<i64>()
        .map_err(|_| invalid(topic, "orders.num is not a whole number"))?;
    let price = money(topic, "orders.price", scalar_text(&item.price).as_deref())?;
    let total = price
        .checked_mul(Decimal::from(quantity))
        .ok_or_else(|| invalid(topic, "orders.price times num overflows"))?;
    Ok(LineItem {
        sku: unmasked(item.outer_sku_id.as_deref()).or_else(|| unmasked(item.outer_iid.as_deref())),
        title: present_owned(item.title.as_deref()).unwrap_or_default(),
        quantity,
        total,
    })
}

/// The coarse, unmasked parts of the receiver's address. The street line is
/// always masked (`**********`) and the receiver's name and phone are not
/// the buyer's, so none of them is kept.
fn shipping_address(t: &Trade) -> Option<Address> {
    let city = unmasked(t.receiver_city.as_deref());
    let district = unmasked(t.receiver_district.as_deref());
    let address = Address {
        line1: None,
        // Province-administered counties come as a district without a city.
        line2: if city.is_some() {
            district.clone()
        } else {
            None
        },
        city: city.or(district),
        region: unmasked(t.receiver_state.as_deref()),
        postcode: unmasked(t.receiver_zip.as_deref()),
        country: None,
    };
    (address != Address::default()).then_some(address)
}

/// The trimmed value unless blank or masked with `*`.
fn unmasked(value: Option<&str>) -> Option<String> {
    present(value)
        .filter(|v| !v.contains('*'))
        .map(str::to_owned)
}

fn required_time(
    topic: &str,
    field: &str,
    value: Option<&str>,
) -> Result<DateTime<Utc>, DecodeError> {
    let raw = present(value).ok_or_else(|| invalid(topic, format!("missing {field}")))?;
    parse_top_time(raw)
        .ok_or_else(|| invalid(topic, format!("{field} is not a yyyy-MM-dd HH:mm:ss time")))
}
