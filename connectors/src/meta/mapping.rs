//! Meta webhook notifications (Messenger, Instagram messaging, WhatsApp
//! Cloud API) and their translation into [`Message`] records.
//!
//! One notification is `{"object", "entry": [...]}`; every entry and every
//! event inside it is read, since Meta batches. Fields are optional at the
//! serde level so that a missing value is reported here by name and
//! position (entry and item index), never with the payload quoted.
//!
//! Messenger and Instagram (`object` `page` / `instagram`) put events in
//! `entry[].messaging[]` (and `standby[]` for conversations another app of
//! the handover protocol controls); the dashboard's test button and some
//! fields send the same event as `entry[].changes[]` with `field`
//! `messages`. WhatsApp (`whatsapp_business_account`) puts them in
//! `entry[].changes[].value` with `field` `messages`.

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{invalid, parse_json, present, present_owned};
use crate::webhook::{DecodeContext, DecodeError};

/// `object` of Facebook Page (Messenger) notifications.
pub(super) const OBJECT_PAGE: &str = "page";
/// `object` of Instagram messaging notifications.
pub(super) const OBJECT_INSTAGRAM: &str = "instagram";
/// `object` of WhatsApp Business Account notifications.
pub(super) const OBJECT_WHATSAPP: &str = "whatsapp_business_account";

/// The `field` of message notifications sent as `changes[]`.
const FIELD_MESSAGES: &str = "messages";

/// Decodes a stored notification whose `object` is `topic`. Objects other
/// than the three messaging ones (page feed, permissions...) decode to
/// nothing.
pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    match topic {
        OBJECT_PAGE => messaging(topic, "messenger", body),
        OBJECT_INSTAGRAM => messaging(topic, "instagram", body),
        OBJECT_WHATSAPP => whatsapp(topic, body, ctx),
        _ => Ok(Vec::new()),
    }
}

/// Just the `object` field, read by `verify` to name the topic.
#[derive(Deserialize)]
pub(super) struct ObjectOnly {
    pub(super) object: Option<String>,
}

// --- shared scalars ---------------------------------------------------------

/// An id Meta sends as a string (some tools send numbers): kept as text.
fn flex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(present_owned(Some(&s))),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(D::Error::custom("expected a string or number id")),
    }
}

/// Messenger and Instagram send epoch milliseconds as numbers, WhatsApp
/// epoch seconds as strings, and the dashboard's test events seconds as
/// either. A value below 10^11 is read as seconds (10^11 ms is 1973,
/// 10^11 s is beyond year 5000, so the two never overlap).
fn flex_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| D::Error::custom("timestamp is not an integer"))?,
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| D::Error::custom("timestamp is not an integer"))?,
        _ => return Err(D::Error::custom("timestamp is not an integer")),
    };
    let time = if raw.abs() < 100_000_000_000 {
        DateTime::from_timestamp(raw, 0)
    } else {
        DateTime::from_timestamp_millis(raw)
    };
    time.map(Some)
        .ok_or_else(|| D::Error::custom("timestamp is out of range"))
}

/// A JSON value read into `T` with an error that names the place, not the
/// value (serde_json's own messages may quote the payload).
fn from_value<T: for<'de> Deserialize<'de>>(
    topic: &str,
    place: &str,
    value: Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(value)
        .map_err(|_| invalid(topic, format!("{place}: a field has an unexpected type")))
}

// --- Messenger and Instagram ------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct PageNotification {
    entry: Option<Vec<PageEntry>>,
}

#[derive(Debug, Default, Deserialize)]
struct PageEntry {
    #[serde(default, deserialize_with = "flex_id")]
    id: Option<String>,
    messaging: Option<Vec<MessagingEvent>>,
    standby: Option<Vec<MessagingEvent>>,
    /// Read lazily: values of other fields (page `feed`, Instagram
    /// `comments`) have shapes of their own.
    changes: Option<Vec<Change>>,
}

#[derive(Debug, Default, Deserialize)]
struct Change {
    field: Option<String>,
    value: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct MessagingEvent {
    sender: Option<Party>,
    recipient: Option<Party>,
    #[serde(default, deserialize_with = "flex_time")]
    timestamp: Option<DateTime<Utc>>,
    message: Option<MetaMessage>,
    postback: Option<Postback>,
}

#[derive(Debug, Default, Deserialize)]
struct Party {
    #[serde(default, deserialize_with = "flex_id")]
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct MetaMessage {
    mid: Option<String>,
    text: Option<String>,
    attachments: Option<Vec<MetaAttachment>>,
    is_echo: Option<bool>,
    /// Instagram: the customer unsent the message.
    is_deleted: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct MetaAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Shapes vary by type (url, sticker_id, template elements...); only a
    /// `title` is read.
    payload: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
}

fn messaging(topic: &str, channel: &str, body: &[u8]) -> Result<Vec<SourceRecord>, DecodeError> {
    let notification: PageNotification = parse_json(topic, body)?;
    let mut records = Vec::new();
    for (e, entry) in notification
        .entry
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let page_id = entry.id.as_deref();
        let lists = [("messaging", entry.messaging), ("standby", entry.standby)];
        for (list, events) in lists {
            for (i, event) in events.unwrap_or_default().into_iter().enumerate() {
                let place = format!("entry {e} {list} {i}");
                records.extend(messaging_record(topic, channel, &place, page_id, event)?);
            }
        }
        for (c, change) in entry.changes.unwrap_or_default().into_iter().enumerate() {
            if change.field.as_deref() != Some(FIELD_MESSAGES) {
                continue;
            }
            let Some(value) = change.value else { continue };
            let place = format!("entry {e} change {c}");
            let event: MessagingEvent = from_value(topic, &place, value)?;
            records.extend(messaging_record(topic, channel, &place, page_id, event)?);
        }
    }
    Ok(records)
}

/// One messaging event as a record: customer messages inbound, the page's
/// echoes outbound, postbacks inbound with the button's title as text.
/// Deliveries, reads, reactions, referrals, edits and unsends are `None`.
fn messaging_record(
    topic: &str,
    channel: &str,
    place: &str,
    entry_id: Option<&str>,
    event: MessagingEvent,
) -> Result<Option<SourceRecord>, DecodeError> {
    let sender = event.sender.and_then(|p| p.id);
    let recipient = event.recipient.and_then(|p| p.id);
    let missing = |field: &str| invalid(topic, format!("{place}: missing {field}"));

    let (external_id, echo, text, attachments) = if let Some(message) = event.message {
        if message.is_deleted == Some(true) {
            return Ok(None);
        }
        let mid = present_owned(message.mid.as_deref()).ok_or_else(|| missing("message.mid"))?;
        let attachments = message
            .attachments
            .unwrap_or_default()
            .into_iter()
            .map(page_attachment)
            .collect();
        (
            mid,
            message.is_echo == Some(true),
            present_owned(message.text.as_deref()),
            attachments,
        )
    } else if let Some(postback) = event.postback {
        // A tapped button (Get Started, a menu or template button): the
        // customer's action in the conversation, with the button's title.
        let time = event.timestamp.ok_or_else(|| missing("timestamp"))?;
        let id = match present_owned(postback.mid.as_deref()) {
            Some(mid) => mid,
            None => format!(
                "postback:{}:{}:{}",
                recipient.as_deref().or(entry_id).unwrap_or_default(),
                sender.as_deref().unwrap_or_default(),
                time.timestamp_millis()
            ),
        };
        (
            id,
            false,
            present_owned(postback.title.as_deref()),
            Vec::new(),
        )
    } else {
        return Ok(None);
    };

    let version = event.timestamp.ok_or_else(|| missing("timestamp"))?;
    // The customer is the sender of what they write and the recipient of
    // the page's echoes; the other side is the page or Instagram account.
    let (customer, account, direction) = if echo {
        (recipient, sender, Direction::Outbound)
    } else {
        (sender, recipient, Direction::Inbound)
    };
    let customer =
        customer.ok_or_else(|| missing(if echo { "recipient.id" } else { "sender.id" }))?;
    let account = account
        .or_else(|| entry_id.map(str::to_owned))
        .ok_or_else(|| missing(if echo { "sender.id" } else { "recipient.id" }))?;
    let sender_handle = match direction {
        Direction::Inbound => customer.clone(),
        Direction::Outbound => account.clone(),
    };

    let mut keys = KeySet::new(None);
    keys.customer_id(Some(&customer));
    Ok(Some(SourceRecord {
        external_id,
        version,
        occurred_at: version,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id: format!("{account}:{customer}"),
            channel: channel.to_owned(),
            direction,
            sender_name: None,
            sender_handle: Some(sender_handle),
            text,
            subject: None,
            attachments,
        }),
    }))
}

/// Messenger and Instagram attachments carry a CDN url and a coarse type,
/// no file name or MIME type: the type becomes a media range
/// (`image/*`...), and the name is the payload's `title` or, failing that,
/// the type itself (`story_mention`, `share`, `template`...).
fn page_attachment(attachment: MetaAttachment) -> Attachment {
    let kind = present_owned(attachment.kind.as_deref());
    let content_type = match kind.as_deref() {
        Some("image") => Some("image/*"),
        Some("video") | Some("ig_reel") | Some("reel") => Some("video/*"),
        Some("audio") => Some("audio/*"),
        Some("file") => Some("application/octet-stream"),
        _ => None,
    };
    let title = attachment
        .payload
        .as_ref()
        .and_then(|p| p.get("title"))
        .and_then(Value::as_str)
        .and_then(|t| present_owned(Some(t)));
    let name = match content_type {
        Some(_) => title,
        None => title.or(kind),
    };
    Attachment {
        name,
        content_type: content_type.map(str::to_owned),
        size: None,
    }
}

// --- WhatsApp ---------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct WaNotification {
    entry: Option<Vec<WaEntry>>,
}

#[derive(Debug, Default, Deserialize)]
struct WaEntry {
    changes: Option<Vec<Change>>,
}

/// `entry[].changes[].value` of the `messages` field. `statuses[]` (sent,
/// delivered, read, failed) are not read: they identify nobody new.
#[derive(Debug, Default, Deserialize)]
struct WaValue {
    metadata: Option<WaMetadata>,
    contacts: Option<Vec<WaContact>>,
    messages: Option<Vec<WaMessage>>,
}

#[derive(Debug, Default, Deserialize)]
struct WaMetadata {
    #[serde(default, deserialize_with = "flex_id")]
    phone_number_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WaContact {
    #[serde(default, deserialize_with = "flex_id")]
    wa_id: Option<String>,
    /// Business-scoped user id (BSUID), in webhooks since 2026.
    user_id: Option<String>,
    profile: Option<WaProfile>,
}

#[derive(Debug, Default, Deserialize)]
struct WaProfile {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WaMessage {
    #[serde(default, deserialize_with = "flex_id")]
    from: Option<String>,
    id: Option<String>,
    #[serde(default, deserialize_with = "flex_time")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<WaText>,
    image: Option<WaMedia>,
    video: Option<WaMedia>,
    audio: Option<WaMedia>,
    sticker: Option<WaMedia>,
    document: Option<WaMedia>,
    button: Option<WaButton>,
    /// `button_reply` / `list_reply` objects with a `title`.
    interactive: Option<Value>,
    location: Option<WaLocation>,
}

#[derive(Debug, Default, Deserialize)]
struct WaText {
    body: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WaMedia {
    id: Option<String>,
    mime_type: Option<String>,
    caption: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WaButton {
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WaLocation {
    name: Option<String>,
    address: Option<String>,
}

/// Message types that say nothing by themselves: reactions to an earlier
/// message, system notices (number changes), and the empty
/// `request_welcome` of a first contact.
const SILENT_TYPES: &[&str] = &["reaction", "system", "request_welcome"];

fn whatsapp(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let notification: WaNotification = parse_json(topic, body)?;
    let mut records = Vec::new();
    for (e, entry) in notification
        .entry
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        for (c, change) in entry.changes.unwrap_or_default().into_iter().enumerate() {
            if change.field.as_deref().is_some_and(|f| f != FIELD_MESSAGES) {
                continue;
            }
            let Some(value) = change.value else { continue };
            let place = format!("entry {e} change {c}");
            let value: WaValue = from_value(topic, &place, value)?;
            let contacts = value.contacts.unwrap_or_default();
            for (m, message) in value.messages.unwrap_or_default().into_iter().enumerate() {
                let place = format!("{place} message {m}");
                let phone_number_id = value
                    .metadata
                    .as_ref()
                    .and_then(|meta| present(meta.phone_number_id.as_deref()))
                    .ok_or_else(|| {
                        invalid(topic, format!("{place}: missing metadata.phone_number_id"))
                    })?;
                records.extend(whatsapp_record(
                    topic,
                    &place,
                    phone_number_id,
                    &contacts,
                    message,
                    ctx,
                )?);
            }
        }
    }
    Ok(records)
}

fn whatsapp_record(
    topic: &str,
    place: &str,
    phone_number_id: &str,
    contacts: &[WaContact],
    message: WaMessage,
    ctx: &DecodeContext,
) -> Result<Option<SourceRecord>, DecodeError> {
    let missing = |field: &str| invalid(topic, format!("{place}: missing {field}"));
    let kind = present(message.kind.as_deref()).unwrap_or("unknown");
    if SILENT_TYPES.contains(&kind) {
        return Ok(None);
    }
    let external_id = present_owned(message.id.as_deref()).ok_or_else(|| missing("id"))?;
    let version = message.timestamp.ok_or_else(|| missing("timestamp"))?;

    // The contact whose wa_id is the sender; a single contact is the
    // sender even when `from` is absent (username users may hide it).
    let from = present(message.from.as_deref());
    let contact = contacts
        .iter()
        .find(|c| from.is_some() && present(c.wa_id.as_deref()) == from)
        .or(match contacts {
            [only] if from.is_none() => Some(only),
            _ => None,
        });
    let wa_id = from.or_else(|| contact.and_then(|c| present(c.wa_id.as_deref())));
    let user_id = contact.and_then(|c| present(c.user_id.as_deref()));
    let sender = wa_id.or(user_id).ok_or_else(|| missing("from"))?.to_owned();
    let sender_name = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| present_owned(p.name.as_deref()));

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    // wa_id is the number in international form without its `+`; Meta
    // warns the two may differ, so only a valid number becomes a phone key.
    if let Some(digits) = wa_id.filter(|w| w.bytes().all(|b| b.is_ascii_digit())) {
        keys.phone(Some(&format!("+{digits}")));
    }
    keys.customer_id(wa_id).customer_id(user_id);

    let (text, attachments) = whatsapp_content(kind, &message);
    Ok(Some(SourceRecord {
        external_id,
        version,
        occurred_at: version,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id: format!("{phone_number_id}:{sender}"),
            channel: "whatsapp".to_owned(),
            direction: Direction::Inbound,
            sender_name,
            sender_handle: Some(sender),
            text,
            subject: None,
            attachments,
        }),
    }))
}

/// Text and attachment metadata by message type. Media is not inline: the
/// attachment's name is the media id (fetchable from the Graph API), with
/// its MIME type; a caption is the text. Types without readable text
/// (contacts, order, unsupported...) keep an empty text.
fn whatsapp_content(kind: &str, message: &WaMessage) -> (Option<String>, Vec<Attachment>) {
    let media = match kind {
        "image" => message.image.as_ref(),
        "video" => message.video.as_ref(),
        "audio" => message.audio.as_ref(),
        "sticker" => message.sticker.as_ref(),
        "document" => message.document.as_ref(),
        _ => None,
    };
    if let Some(media) = media {
        let attachment = Attachment {
            name: present_owned(media.id.as_deref()),
            content_type: present_owned(media.mime_type.as_deref()),
            size: None,
        };
        return (present_owned(media.caption.as_deref()), vec![attachment]);
    }
    let text = match kind {
        "text" => message
            .text
            .as_ref()
            .and_then(|t| present_owned(t.body.as_deref())),
        "button" => message
            .button
            .as_ref()
            .and_then(|b| present_owned(b.text.as_deref())),
        "interactive" => message.interactive.as_ref().and_then(|i| {
            ["button_reply", "list_reply"]
                .iter()
                .find_map(|reply| i.get(reply)?.get("title")?.as_str())
                .and_then(|t| present_owned(Some(t)))
        }),
        "location" => message.location.as_ref().and_then(|l| {
            let parts: Vec<&str> = [l.name.as_deref(), l.address.as_deref()]
                .into_iter()
                .filter_map(present)
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }),
        _ => None,
    };
    (text, Vec::new())
}
