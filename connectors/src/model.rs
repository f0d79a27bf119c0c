//! The common model: what every connector emits, whatever the platform.
//!
//! A [`SourceRecord`] is one thing a platform told us, keyed by
//! (connection, kind, external id) and versioned by the platform's own
//! modification time, so a stale delivery can never overwrite a newer one.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What kind of thing a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Customer,
    Order,
    Review,
    Message,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Customer => "customer",
            RecordKind::Order => "order",
            RecordKind::Review => "review",
            RecordKind::Message => "message",
        }
    }
}

/// One versioned fact from a platform, with the identity keys found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The platform's id of the customer or order, as a string.
    pub external_id: String,
    /// The platform's own last-modified time (`updated_at`, `date_modified_gmt`).
    pub version: DateTime<Utc>,
    /// When the thing happened or was created: orders sort by it on a timeline.
    pub occurred_at: DateTime<Utc>,
    /// Normalised identity keys, deduplicated, in a stable order.
    pub keys: Vec<IdentityKey>,
    pub body: RecordBody,
}

impl SourceRecord {
    pub fn kind(&self) -> RecordKind {
        match self.body {
            RecordBody::Customer(_) => RecordKind::Customer,
            RecordBody::Order(_) => RecordKind::Order,
            RecordBody::Review(_) => RecordKind::Review,
            RecordBody::Message(_) => RecordKind::Message,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    Customer(Customer),
    Order(Order),
    Review(Review),
    Message(Message),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// As the platform sent them (normalised forms are in the record's keys).
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub tags: Vec<String>,
    pub address: Option<Address>,
    /// Email marketing consent as the platform reported it, if it did.
    pub accepts_email_marketing: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    /// Date of birth, when the platform or a membership form has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    /// A government document number some marketplaces collect for customs
    /// clearance. Evidence for resolution only: never a key, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The number the merchant and buyer see (`#1001`, `727`).
    pub number: String,
    pub status: OrderStatus,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// Exact decimal, never a float.
    pub total: Decimal,
    /// The platform customer id of the buyer; `None` for guest checkouts.
    pub customer_id: Option<String>,
    pub buyer_first_name: Option<String>,
    pub buyer_last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub line_items: Vec<LineItem>,
    pub shipping_address: Option<Address>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Completed,
    Refunded,
    Cancelled,
}

impl OrderStatus {
    /// Whether the buyer's money counts towards what they have spent.
    pub fn counts_as_spent(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed
        )
    }
}

/// A product review. The rating stays on the platform's scale; `score` is
/// the same rating normalised to 0..=1 so reviews compare across platforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub product: Option<String>,
    pub rating: Decimal,
    pub rating_scale: Decimal,
    pub score: f64,
    pub text: Option<String>,
    pub reviewer_name: Option<String>,
    pub reviewer_email: Option<String>,
    /// Whether the platform says the reviewer bought the product.
    pub verified: Option<bool>,
}

impl Review {
    /// `rating` out of `scale`, clamped to 0..=1; 0 when the scale is not positive.
    pub fn normalised(rating: Decimal, scale: Decimal) -> f64 {
        use rust_decimal::prelude::ToPrimitive;
        if scale <= Decimal::ZERO {
            return 0.0;
        }
        (rating / scale).to_f64().unwrap_or(0.0).clamp(0.0, 1.0)
    }
}

/// One message of a conversation on a chat channel, helpdesk or mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub conversation_id: String,
    /// The channel the message travelled on, such as `whatsapp` or `email`.
    pub channel: String,
    pub direction: Direction,
    pub sender_name: Option<String>,
    /// The sender's handle on the channel (chat user id, address).
    pub sender_handle: Option<String>,
    pub text: Option<String>,
    /// Email subject, or a ticket's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Names and sizes only: attachment contents are never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: Option<String>,
    pub title: String,
    pub quantity: i64,
    /// The line's total (unit price times quantity, as the platform reports it).
    pub total: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
}

/// A normalised identifier that means "same person" wherever it appears.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKey {
    pub kind: KeyKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Trimmed, lower-cased email address; global across platforms.
    Email,
    /// E.164 phone number; global across platforms.
    Phone,
    /// The platform's customer id, or a chat platform's user id (page-scoped
    /// PSID, WeChat openid, LINE userId...); a key only within its connection.
    CustomerId,
    /// WeChat's unionid: the same for one person across all apps of one
    /// open-platform account, so it joins connections.
    WechatUnionid,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Email => "email",
            KeyKind::Phone => "phone",
            KeyKind::CustomerId => "customer_id",
            KeyKind::WechatUnionid => "wechat_unionid",
        }
    }

    /// Global keys join records across connections; scoped ones only within one.
    pub fn is_connection_scoped(self) -> bool {
        matches!(self, KeyKind::CustomerId)
    }
}
