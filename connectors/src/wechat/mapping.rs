//! The XML WeChat pushes to an Official Account (user messages and events)
//! and its translation into the model.
//!
//! Every element is optional at the serde level so that a missing one is
//! reported by name, and empty ones (`<EventKey><![CDATA[]]></EventKey>`)
//! count as absent. Elements this connector does not read are ignored.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{invalid, present, present_owned};
use crate::signature::sha256_hex;
use crate::webhook::{DecodeContext, DecodeError};

/// The channel name on every message record.
pub(super) const CHANNEL: &str = "wechat";

/// One pushed message or event (`<xml>…</xml>`), the fields of all the
/// documented kinds together.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Push {
    /// The official account's original id (`gh_…`).
    #[serde(rename = "ToUserName")]
    to_user_name: Option<String>,
    /// The sender's openid.
    #[serde(rename = "FromUserName")]
    from_user_name: Option<String>,
    /// Unix seconds.
    #[serde(rename = "CreateTime")]
    create_time: Option<String>,
    #[serde(rename = "MsgType")]
    msg_type: Option<String>,
    /// 64-bit id of a user message; events have none.
    #[serde(rename = "MsgId")]
    msg_id: Option<String>,
    /// The event kind when `MsgType` is `event`.
    #[serde(rename = "Event")]
    event: Option<String>,
    /// text
    #[serde(rename = "Content")]
    content: Option<String>,
    /// image, voice, video, shortvideo
    #[serde(rename = "MediaId")]
    media_id: Option<String>,
    /// voice: `amr`, `speex`…
    #[serde(rename = "Format")]
    format: Option<String>,
    /// voice, when speech recognition is on: the recognised text.
    #[serde(rename = "Recognition")]
    recognition: Option<String>,
    /// location
    #[serde(rename = "Location_X")]
    location_x: Option<String>,
    #[serde(rename = "Location_Y")]
    location_y: Option<String>,
    #[serde(rename = "Label")]
    label: Option<String>,
    /// link (and mini-program cards)
    #[serde(rename = "Title")]
    title: Option<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "Url")]
    url: Option<String>,
    /// Only where the platform adds it (accounts bound to an Open Platform
    /// account); both spellings occur in WeChat's XML and JSON.
    #[serde(rename = "UnionId")]
    union_id: Option<String>,
    #[serde(rename = "unionid")]
    union_id_lower: Option<String>,
}

/// The safe-mode envelope: `<xml><ToUserName/><Encrypt/></xml>` (in
/// compatible mode the plaintext elements come alongside and are ignored).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Envelope {
    #[serde(rename = "Encrypt")]
    pub(super) encrypt: Option<String>,
}

/// Parses WeChat XML; the error never quotes the body.
pub(super) fn parse_xml<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

fn parse_push(topic: &str, body: &[u8]) -> Result<Push, DecodeError> {
    parse_xml(body).ok_or_else(|| invalid(topic, "body is not WeChat message XML"))
}

/// How the hub stores a verified push: its dedupe key and topic.
///
/// WeChat retries a push up to three times (and re-encrypts each retry in
/// safe mode), so the key comes from the message itself: `MsgId` for user
/// messages; for events, which have none, the documented `FromUserName +
/// CreateTime`, with the event kind added so two different events of one
/// user in the same second stay apart. Topics are the `MsgType` (`text`,
/// `image`…) or `event.{Event}` (`event.subscribe`, `event.CLICK`).
/// `None`: not WeChat message XML at all.
pub(super) fn stamp(body: &[u8]) -> Option<(String, String)> {
    let push: Push = parse_xml(body)?;
    let msg_type = present(push.msg_type.as_deref())?;
    let fallback = || format!("sha256:{}", sha256_hex(body));
    if msg_type == "event" {
        let event = present(push.event.as_deref()).unwrap_or("unknown");
        let key = match (
            present(push.from_user_name.as_deref()),
            present(push.create_time.as_deref()),
        ) {
            (Some(from), Some(time)) => format!("event:{from}:{time}:{event}"),
            _ => fallback(),
        };
        Some((key, format!("event.{event}")))
    } else {
        let key = present(push.msg_id.as_deref())
            .map(|id| format!("msg:{id}"))
            .unwrap_or_else(fallback);
        Some((key, msg_type.to_owned()))
    }
}

/// Turns a stored plaintext push into records: one inbound message per user
/// message; events (subscribe, unsubscribe, SCAN, LOCATION, CLICK, VIEW,
/// template and mass-send reports…) yield none.
pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let push = parse_push(topic, body)?;
    let msg_type = present(push.msg_type.as_deref())
        .ok_or_else(|| invalid(topic, "missing MsgType"))?
        .to_owned();
    if msg_type == "event" {
        return Ok(Vec::new());
    }
    Ok(vec![message_record(topic, &msg_type, push, ctx)?])
}

fn message_record(
    topic: &str,
    msg_type: &str,
    push: Push,
    ctx: &DecodeContext,
) -> Result<SourceRecord, DecodeError> {
    let openid = present_owned(push.from_user_name.as_deref())
        .ok_or_else(|| invalid(topic, "missing FromUserName"))?;
    let account = present(push.to_user_name.as_deref())
        .ok_or_else(|| invalid(topic, "missing ToUserName"))?;
    let msg_id =
        present_owned(push.msg_id.as_deref()).ok_or_else(|| invalid(topic, "missing MsgId"))?;
    let created = unix_seconds(topic, push.create_time.as_deref())?;
    let conversation_id = format!("{account}:{openid}");

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(Some(&openid))
        .wechat_unionid(push.union_id.as_deref())
        .wechat_unionid(push.union_id_lower.as_deref());

    let (text, attachments) = content(msg_type, &push);
    Ok(SourceRecord {
        external_id: msg_id,
        version: created,
        occurred_at: created,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id,
            channel: CHANNEL.to_owned(),
            direction: Direction::Inbound,
            sender_name: None,
            sender_handle: Some(openid),
            text,
            subject: None,
            attachments,
        }),
    })
}

/// `CreateTime` is whole Unix seconds.
fn unix_seconds(topic: &str, raw: Option<&str>) -> Result<DateTime<Utc>, DecodeError> {
    let raw = present(raw).ok_or_else(|| invalid(topic, "missing CreateTime"))?;
    raw.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| invalid(topic, "CreateTime is not a Unix time"))
}

/// The message text (the user's own for text messages and recognised
/// voice, else a short description) and media metadata (`MediaId` as the
/// name: the content itself is never fetched).
fn content(msg_type: &str, push: &Push) -> (Option<String>, Vec<Attachment>) {
    let media = |content_type: Option<String>| -> Vec<Attachment> {
        present(push.media_id.as_deref())
            .map(|id| Attachment {
                name: Some(id.to_owned()),
                content_type,
                size: None,
            })
            .into_iter()
            .collect()
    };
    match msg_type {
        // The user's words exactly as sent (CDATA keeps spaces and newlines).
        "text" => (push.content.clone().filter(|c| !c.is_empty()), Vec::new()),
        "image" => (
            Some("[image]".to_owned()),
            media(Some("image/*".to_owned())),
        ),
        "voice" => {
            let content_type = match present(push.format.as_deref()) {
                Some(format) => format!("audio/{}", format.to_ascii_lowercase()),
                None => "audio/*".to_owned(),
            };
            let text =
                present_owned(push.recognition.as_deref()).unwrap_or_else(|| "[voice]".to_owned());
            (Some(text), media(Some(content_type)))
        }
        "video" => (
            Some("[video]".to_owned()),
            media(Some("video/*".to_owned())),
        ),
        "shortvideo" => (
            Some("[short video]".to_owned()),
            media(Some("video/*".to_owned())),
        ),
        "location" => {
            let coordinates = match (
                present(push.location_x.as_deref()),
                present(push.location_y.as_deref()),
            ) {
                (Some(x), Some(y)) => Some(format!("({x}, {y})")),
                _ => None,
            };
            let parts: Vec<&str> = [present(push.label.as_deref()), coordinates.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (Some(described("[location]", &parts)), Vec::new())
        }
        "link" => {
            let parts: Vec<&str> = [&push.title, &push.description, &push.url]
                .into_iter()
                .filter_map(|part| present(part.as_deref()))
                .collect();
            (Some(described("[link]", &parts)), Vec::new())
        }
        other => {
            let label = match present(push.title.as_deref()) {
                Some(title) => format!("[{other}] {title}"),
                None => format!("[{other}]"),
            };
            (Some(label), media(None))
        }
    }
}

/// `label` followed by the present parts: the first on the same line, the
/// rest on their own lines.
fn described(label: &str, parts: &[&str]) -> String {
    match parts.split_first() {
        Some((first, rest)) => {
            let mut text = format!("{label} {first}");
            for part in rest {
                text.push('\n');
                text.push_str(part);
            }
            text
        }
        None => label.to_owned(),
    }
}
