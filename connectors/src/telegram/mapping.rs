//! Telegram `Update` and `Message` objects and their translation into
//! message records.
//!
//! Fields are optional at the serde level so a missing value is reported by
//! name; ids are integers (chat ids are negative for groups).

use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{invalid, parse_json, present, present_owned};
use crate::webhook::{DecodeContext, DecodeError};

/// The channel id written on every record.
pub(super) const CHANNEL: &str = "telegram";

#[derive(Debug, Deserialize)]
struct Update {
    message: Option<TgMessage>,
    edited_message: Option<TgMessage>,
}

#[derive(Debug, Deserialize)]
struct TgMessage {
    message_id: Option<i64>,
    from: Option<User>,
    /// Present when the message was sent on behalf of a chat.
    sender_chat: Option<IgnoredAny>,
    /// Unix seconds.
    date: Option<i64>,
    edit_date: Option<i64>,
    chat: Option<Chat>,
    text: Option<String>,
    caption: Option<String>,
    photo: Option<Vec<PhotoSize>>,
    document: Option<FileObject>,
    voice: Option<FileObject>,
    audio: Option<FileObject>,
    video: Option<FileObject>,
    contact: Option<Contact>,
    // Content without text or a stored attachment: still a message.
    sticker: Option<IgnoredAny>,
    animation: Option<IgnoredAny>,
    video_note: Option<IgnoredAny>,
    location: Option<IgnoredAny>,
    venue: Option<IgnoredAny>,
    poll: Option<IgnoredAny>,
    dice: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: Option<i64>,
    is_bot: Option<bool>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct PhotoSize {
    file_size: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
}

/// `Document`, `Voice`, `Audio` and `Video` share these fields (`Voice`
/// has no `file_name`).
#[derive(Debug, Deserialize)]
struct FileObject {
    file_name: Option<String>,
    mime_type: Option<String>,
    file_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    phone_number: Option<String>,
    user_id: Option<i64>,
}

pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    let update: Update = parse_json(topic, body)?;
    let (message, edited) = match (update.message, update.edited_message) {
        (Some(message), _) => (message, false),
        (None, Some(message)) => (message, true),
        (None, None) => return Ok(Vec::new()),
    };
    let field = if edited { "edited_message" } else { "message" };
    Ok(message_record(message, edited, ctx)
        .map_err(|reason| invalid(topic, format!("{field}: {reason}")))?
        .into_iter()
        .collect())
}

/// `None` when the message is not a person's (bots, chats) or is a service
/// message.
fn message_record(
    m: TgMessage,
    edited: bool,
    ctx: &DecodeContext,
) -> Result<Option<SourceRecord>, String> {
    let Some(from) = m.from.as_ref() else {
        return Ok(None);
    };
    if from.is_bot == Some(true) || m.sender_chat.is_some() {
        return Ok(None);
    }
    let user_id = from.id.ok_or("missing from.id")?;

    let text = present_owned(m.text.as_deref()).or_else(|| present_owned(m.caption.as_deref()));
    let attachments = attachments(&m);
    let other_content = [
        m.sticker.is_some(),
        m.animation.is_some(),
        m.video_note.is_some(),
        m.location.is_some(),
        m.venue.is_some(),
        m.poll.is_some(),
        m.dice.is_some(),
        m.contact.is_some(),
    ]
    .contains(&true);
    if text.is_none() && attachments.is_empty() && !other_content {
        return Ok(None);
    }

    let message_id = m.message_id.ok_or("missing message_id")?;
    let chat_id = m
        .chat
        .as_ref()
        .and_then(|c| c.id)
        .ok_or("missing chat.id")?;
    let occurred_at = seconds(m.date.ok_or("missing date")?, "date")?;
    let version = match (edited, m.edit_date) {
        (true, Some(edit_date)) => seconds(edit_date, "edit_date")?,
        (true, None) => return Err("missing edit_date".to_owned()),
        (false, _) => occurred_at,
    };

    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(Some(&user_id.to_string()));
    if let Some(contact) = &m.contact {
        // Only the sender's own number identifies the sender.
        if contact.user_id == Some(user_id) {
            let phone = present(contact.phone_number.as_deref()).map(international);
            keys.phone(phone.as_deref());
        }
    }

    let name = [from.first_name.as_deref(), from.last_name.as_deref()]
        .into_iter()
        .filter_map(present)
        .collect::<Vec<_>>()
        .join(" ");
    let handle = present_owned(from.username.as_deref()).unwrap_or_else(|| user_id.to_string());

    Ok(Some(SourceRecord {
        external_id: format!("{chat_id}:{message_id}"),
        version,
        occurred_at,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id: chat_id.to_string(),
            channel: CHANNEL.to_owned(),
            direction: Direction::Inbound,
            sender_name: Some(name).filter(|n| !n.is_empty()),
            sender_handle: Some(handle),
            text,
            subject: None,
            attachments,
        }),
    }))
}

fn attachments(m: &TgMessage) -> Vec<Attachment> {
    let mut list = Vec::new();
    // `photo` lists one image in several sizes: the largest stands for it.
    if let Some(largest) = m.photo.iter().flatten().max_by_key(|p| {
        (
            p.file_size.unwrap_or(0),
            p.width.unwrap_or(0) * p.height.unwrap_or(0),
        )
    }) {
        list.push(Attachment {
            name: None,
            content_type: Some("image".to_owned()),
            size: largest.file_size,
        });
    }
    for file in [&m.document, &m.voice, &m.audio, &m.video]
        .into_iter()
        .flatten()
    {
        list.push(Attachment {
            name: present_owned(file.file_name.as_deref()),
            content_type: present_owned(file.mime_type.as_deref()),
            size: file.file_size,
        });
    }
    list
}

/// A Telegram account's number, which Telegram writes with or without `+`:
/// always international, so digits alone get the `+` back.
fn international(raw: &str) -> String {
    if raw.starts_with('+') {
        raw.to_owned()
    } else {
        format!("+{raw}")
    }
}

fn seconds(value: i64, field: &str) -> Result<DateTime<Utc>, String> {
    DateTime::<Utc>::from_timestamp(value, 0).ok_or_else(|| format!("{field} is out of range"))
}
