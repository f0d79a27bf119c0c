//! LINE webhook event objects and their translation into message records.
//!
//! Fields are optional at the serde level so a missing value is reported by
//! name (with the event's position, never its content).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{invalid, parse_json, present, present_owned};
use crate::webhook::{DecodeContext, DecodeError};

/// The channel id written on every record.
pub(super) const CHANNEL: &str = "line";

#[derive(Debug, Deserialize)]
struct Body {
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Milliseconds since the epoch.
    timestamp: Option<i64>,
    source: Option<Source>,
    message: Option<LineMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
    group_id: Option<String>,
    room_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineMessage {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    file_name: Option<String>,
    /// A number in the reference; older SDKs typed it as a string.
    file_size: Option<Value>,
}

pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let body: Body = parse_json(topic, body)?;
    let mut records = Vec::new();
    for (index, event) in body.events.into_iter().enumerate() {
        if event.kind.as_deref() != Some("message") {
            continue;
        }
        if let Some(record) = message_record(event, ctx)
            .map_err(|reason| invalid(topic, format!("event {index}: {reason}")))?
        {
            records.push(record);
        }
    }
    Ok(records)
}

/// One `message` event; `None` when it names no user.
fn message_record(event: Event, ctx: &DecodeContext) -> Result<Option<SourceRecord>, String> {
    let Some(source) = event.source else {
        return Ok(None);
    };
    let Some(user_id) = present_owned(source.user_id.as_deref()) else {
        return Ok(None);
    };
    let conversation_id = match source.kind.as_deref() {
        Some("group") => present_owned(source.group_id.as_deref())
            .ok_or_else(|| "missing source.groupId".to_owned())?,
        Some("room") => present_owned(source.room_id.as_deref())
            .ok_or_else(|| "missing source.roomId".to_owned())?,
        _ => user_id.clone(),
    };
    let message = event.message.ok_or_else(|| "missing message".to_owned())?;
    let id = present_owned(message.id.as_deref()).ok_or_else(|| "missing message.id".to_owned())?;
    let millis = event
        .timestamp
        .ok_or_else(|| "missing timestamp".to_owned())?;
    let at = DateTime::<Utc>::from_timestamp_millis(millis)
        .ok_or_else(|| "timestamp is out of range".to_owned())?;

    let kind = present(message.kind.as_deref()).unwrap_or_default();
    let text = match kind {
        "text" => present_owned(message.text.as_deref()),
        _ => None,
    };
    let attachments = match kind {
        "image" | "video" | "audio" => vec![Attachment {
            name: None,
            content_type: Some(kind.to_owned()),
            size: None,
        }],
        "file" => vec![Attachment {
            name: present_owned(message.file_name.as_deref()),
            content_type: Some(kind.to_owned()),
            size: message.file_size.as_ref().and_then(size_of),
        }],
        _ => Vec::new(),
    };

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(Some(&user_id));

    Ok(Some(SourceRecord {
        external_id: id,
        version: at,
        occurred_at: at,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id,
            channel: CHANNEL.to_owned(),
            direction: Direction::Inbound,
            sender_name: None,
            sender_handle: Some(user_id),
            text,
            subject: None,
            attachments,
        }),
    }))
}

/// A byte count written as a JSON number or a decimal string.
fn size_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
