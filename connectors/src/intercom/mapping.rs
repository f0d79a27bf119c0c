//! The Intercom notification envelope and Conversation model, their
//! translation into message records, and HTML bodies as plain text.
//!
//! Fields are optional at the serde level so a missing value is reported by
//! name; ids are read whether Intercom writes them as strings (2.x) or
//! numbers (some 1.x objects).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{invalid, parse_json, present, present_owned};
use crate::webhook::{DecodeContext, DecodeError};

/// The channel id written on every record.
pub(super) const CHANNEL: &str = "intercom";

/// Topics whose item is a Conversation with new messages in it.
pub(super) const MESSAGE_TOPICS: &[&str] = &[
    "conversation.user.created",
    "conversation.user.replied",
    "conversation.admin.replied",
    "conversation.admin.single.created",
    "conversation.operator.replied",
];

#[derive(Debug, Deserialize)]
struct Notification {
    created_at: Option<i64>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    item: Option<Conversation>,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    #[serde(default, deserialize_with = "flexible_id")]
    id: Option<String>,
    created_at: Option<i64>,
    source: Option<Source>,
    contacts: Option<ContactList>,
    /// API 1.x: the conversation's user or lead.
    user: Option<Author>,
    conversation_parts: Option<PartList>,
}

#[derive(Debug, Deserialize)]
struct Source {
    subject: Option<String>,
    body: Option<String>,
    author: Option<Author>,
    attachments: Option<Vec<PartAttachment>>,
    redacted: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
struct Author {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "flexible_id")]
    id: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContactList {
    contacts: Option<Vec<Author>>,
}

#[derive(Debug, Deserialize)]
struct PartList {
    conversation_parts: Option<Vec<Part>>,
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(default, deserialize_with = "flexible_id")]
    id: Option<String>,
    part_type: Option<String>,
    body: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    author: Option<Author>,
    attachments: Option<Vec<PartAttachment>>,
    redacted: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct PartAttachment {
    name: Option<String>,
    content_type: Option<String>,
    filesize: Option<u64>,
}

/// An id written as a string or a number; blank or anything else is absent.
pub(super) fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => present_owned(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flexible_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(id_text(Option::<Value>::deserialize(d)?.as_ref()))
}

pub(super) fn decode(
    topic: &str,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<SourceRecord>, DecodeError> {
    if !MESSAGE_TOPICS.contains(&topic) {
        return Ok(Vec::new());
    }
    let notification: Notification = parse_json(topic, body)?;
    let conversation = notification
        .data
        .and_then(|d| d.item)
        .ok_or_else(|| invalid(topic, "missing data.item"))?;
    let conversation_id = present_owned(conversation.id.as_deref())
        .ok_or_else(|| invalid(topic, "missing data.item.id"))?;
    let customer = customer_of(&conversation);
    let mut records = Vec::new();

    if let Some(source) = &conversation.source {
        let created = conversation
            .created_at
            .or(notification.created_at)
            .ok_or_else(|| invalid(topic, "missing data.item.created_at"))?;
        let at = seconds(topic, "data.item.created_at", created)?;
        let content = Content {
            // Conversation and part ids are separate sequences: the opening
            // message gets a prefix so it can never collide with a part.
            external_id: format!("conversation:{conversation_id}"),
            author: source.author.as_ref(),
            body: source.body.as_deref(),
            attachments: source.attachments.as_deref(),
            redacted: source.redacted == Some(true),
            subject: source.subject.as_deref().and_then(html_to_text),
            version: at,
            occurred_at: at,
        };
        records.extend(record(&conversation_id, content, customer.as_ref(), ctx));
    }

    let parts = conversation
        .conversation_parts
        .as_ref()
        .and_then(|p| p.conversation_parts.as_deref())
        .unwrap_or_default();
    for (index, part) in parts.iter().enumerate() {
        if part
            .part_type
            .as_deref()
            .is_some_and(|t| t.starts_with("note"))
        {
            continue;
        }
        let field = |name: &str| format!("conversation part {index}: {name}");
        let id =
            present_owned(part.id.as_deref()).ok_or_else(|| invalid(topic, field("missing id")))?;
        let created = part
            .created_at
            .ok_or_else(|| invalid(topic, field("missing created_at")))?;
        let occurred_at = seconds(topic, &field("created_at"), created)?;
        let version = match part.updated_at {
            Some(updated) => seconds(topic, &field("updated_at"), updated)?.max(occurred_at),
            None => occurred_at,
        };
        let content = Content {
            external_id: id,
            author: part.author.as_ref(),
            body: part.body.as_deref(),
            attachments: part.attachments.as_deref(),
            redacted: part.redacted == Some(true),
            subject: None,
            version,
            occurred_at,
        };
        records.extend(record(&conversation_id, content, customer.as_ref(), ctx));
    }
    Ok(records)
}

/// One message of a conversation: the `source` or a part.
struct Content<'a> {
    external_id: String,
    author: Option<&'a Author>,
    body: Option<&'a str>,
    attachments: Option<&'a [PartAttachment]>,
    redacted: bool,
    subject: Option<String>,
    version: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
}

/// `None` for messages with nothing in them, unknown authors, and messages
/// whose customer cannot be identified.
fn record(
    conversation_id: &str,
    content: Content<'_>,
    customer: Option<&Author>,
    ctx: &DecodeContext,
) -> Option<SourceRecord> {
    let author = content.author?;
    let direction = direction_of(author)?;
    let text = if content.redacted {
        None
    } else {
        content.body.and_then(html_to_text)
    };
    let attachments: Vec<Attachment> = content
        .attachments
        .unwrap_or_default()
        .iter()
        .map(|a| Attachment {
            name: present_owned(a.name.as_deref()),
            content_type: present_owned(a.content_type.as_deref()),
            size: a.filesize,
        })
        .collect();
    if text.is_none() && attachments.is_empty() && !content.redacted {
        return None;
    }

    // Whose message it is for the profile: the writer when that is the
    // customer, else the conversation's customer; never a teammate.
    let person = match direction {
        Direction::Inbound => enrich(author, customer),
        Direction::Outbound => customer?.clone(),
    };
    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.customer_id(person.id.as_deref())
        .email(person.email.as_deref());
    let keys = keys.into_keys();
    if keys.is_empty() {
        return None;
    }

    let sender_handle = match direction {
        Direction::Inbound => {
            present_owned(author.email.as_deref()).or_else(|| present_owned(author.id.as_deref()))
        }
        Direction::Outbound => present_owned(author.id.as_deref()),
    };
    Some(SourceRecord {
        external_id: content.external_id,
        version: content.version,
        occurred_at: content.occurred_at,
        keys,
        body: RecordBody::Message(Message {
            conversation_id: conversation_id.to_owned(),
            channel: CHANNEL.to_owned(),
            direction,
            sender_name: present_owned(author.name.as_deref()),
            sender_handle,
            text,
            subject: content.subject,
            attachments,
        }),
    })
}

fn is_customer(author: &Author) -> bool {
    matches!(author.kind.as_deref(), Some("user" | "lead" | "contact"))
}

fn direction_of(author: &Author) -> Option<Direction> {
    match author.kind.as_deref()? {
        "user" | "lead" | "contact" => Some(Direction::Inbound),
        "admin" | "bot" | "team" | "operator" => Some(Direction::Outbound),
        _ => None,
    }
}

/// The conversation's customer: the contact who wrote the first message,
/// else the 1.x `user`, else the first listed contact.
fn customer_of<'a>(conversation: &'a Conversation) -> Option<Author> {
    let from_source = conversation
        .source
        .as_ref()
        .and_then(|s| s.author.as_ref())
        .filter(|a| is_customer(a));
    let listed = conversation
        .contacts
        .as_ref()
        .and_then(|c| c.contacts.as_ref())
        .and_then(|c| c.first());
    let chosen = from_source.or(conversation.user.as_ref()).or(listed)?;
    // The contact list may know an email the chosen entry lacks, and the
    // other way round: merge entries with the same id.
    let same = |other: Option<&'a Author>| -> Option<&'a Author> {
        other.filter(|o| o.id.is_some() && o.id == chosen.id)
    };
    let email = present_owned(chosen.email.as_deref())
        .or_else(|| {
            same(conversation.user.as_ref()).and_then(|u| present_owned(u.email.as_deref()))
        })
        .or_else(|| same(listed).and_then(|l| present_owned(l.email.as_deref())));
    Some(Author {
        email,
        ..chosen.clone()
    })
}

/// The author with the conversation customer's email when they are the
/// same contact and the part itself carries none.
fn enrich(author: &Author, customer: Option<&Author>) -> Author {
    let mut person = author.clone();
    if present(person.email.as_deref()).is_none() {
        if let Some(customer) = customer.filter(|c| c.id.is_some() && c.id == author.id) {
            person.email = customer.email.clone();
        }
    }
    person
}

fn seconds(topic: &str, field: &str, value: i64) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::<Utc>::from_timestamp(value, 0)
        .ok_or_else(|| invalid(topic, format!("{field} is out of range")))
}

/// Plain text of an HTML fragment: tags dropped, block edges and `<br>`
/// as line breaks, entities decoded, blank lines and runs of spaces
/// collapsed. `None` when nothing is left.
pub(super) fn html_to_text(html: &str) -> Option<String> {
    const BLOCKS: &[&str] = &[
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "blockquote",
        "table",
    ];
    let mut raw = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        raw.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            // A lone `<` is text.
            raw.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let tag = inner.strip_prefix('/').unwrap_or(inner);
        if !(tag.starts_with(|c: char| c.is_ascii_alphabetic()) || inner.starts_with('!')) {
            // `1 < 2 > 0`: not a tag.
            raw.push('<');
            rest = after;
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if name == "br" || (BLOCKS.contains(&name.as_str()) && !raw.ends_with('\n')) {
            // `<br>` always breaks; block edges only start a new line once.
            raw.push('\n');
        }
        rest = &after[end + 1..];
    }
    raw.push_str(rest);

    let decoded = decode_entities(&raw);
    let mut lines: Vec<String> = Vec::new();
    for line in decoded.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().map_or(true, String::is_empty) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    Some(lines.join("\n")).filter(|t| !t.is_empty())
}

/// Named entities HTML bodies commonly use, and numeric ones.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &after[..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
