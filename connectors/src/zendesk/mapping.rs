//! Zendesk Support API representations (incremental ticket export, ticket
//! comments, sideloaded users) and their translation into messages.
//!
//! Every field the API may omit is optional at the serde level, so that a
//! missing value is reported by name here and never by serde quoting it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{present, present_owned};

/// The channel every Zendesk message is filed under.
pub(super) const CHANNEL: &str = "zendesk";

/// One page of `GET /api/v2/incremental/tickets/cursor.json`.
#[derive(Debug, Deserialize)]
pub(super) struct ExportPage {
    #[serde(default)]
    pub(super) tickets: Vec<Ticket>,
    /// Sideloaded with `include=users`.
    #[serde(default)]
    pub(super) users: Vec<User>,
    pub(super) after_cursor: Option<String>,
    pub(super) end_of_stream: Option<bool>,
}

/// `GET /api/v2/tickets/{id}.json?include=users`.
#[derive(Debug, Deserialize)]
pub(super) struct TicketShow {
    pub(super) ticket: Ticket,
    #[serde(default)]
    pub(super) users: Vec<User>,
}

/// `GET /api/v2/tickets/{id}/comments.json?page[size]=…&include=users`.
#[derive(Debug, Deserialize)]
pub(super) struct CommentsPage {
    #[serde(default)]
    pub(super) comments: Vec<Comment>,
    #[serde(default)]
    pub(super) users: Vec<User>,
    pub(super) meta: Option<CursorMeta>,
}

/// The `meta` block of Zendesk's cursor pagination.
#[derive(Debug, Deserialize)]
pub(super) struct CursorMeta {
    #[serde(default)]
    pub(super) has_more: bool,
    pub(super) after_cursor: Option<String>,
}

/// `GET /api/v2/users/show_many.json?ids=…`.
#[derive(Debug, Deserialize)]
pub(super) struct UserList {
    #[serde(default)]
    pub(super) users: Vec<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) subject: Option<String>,
    pub(super) raw_subject: Option<String>,
    pub(super) status: Option<String>,
    pub(super) requester_id: Option<u64>,
    pub(super) updated_at: Option<String>,
}

impl Ticket {
    /// Deleted tickets (exported unless excluded) have no comments to read.
    pub(super) fn is_deleted(&self) -> bool {
        present(self.status.as_deref()) == Some("deleted")
    }

    pub(super) fn updated(&self) -> Result<DateTime<Utc>, String> {
        let raw = present(self.updated_at.as_deref())
            .ok_or_else(|| format!("ticket {}: missing updated_at", self.id))?;
        parse_time(raw).ok_or_else(|| format!("ticket {}: updated_at is not a time", self.id))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct User {
    pub(super) id: u64,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    /// `end-user`, `agent` or `admin`.
    pub(super) role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Comment {
    pub(super) id: u64,
    /// `-1` for comments Zendesk itself wrote.
    pub(super) author_id: Option<i64>,
    pub(super) body: Option<String>,
    pub(super) plain_body: Option<String>,
    /// Internal notes are `false`.
    pub(super) public: Option<bool>,
    #[serde(default)]
    pub(super) attachments: Vec<CommentAttachment>,
    pub(super) created_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct CommentAttachment {
    pub(super) file_name: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) size: Option<u64>,
}

/// Users by id, filled from every sideload a poll or fetch received.
pub(super) type Users = HashMap<u64, User>;

pub(super) fn add_users(users: &mut Users, list: Vec<User>) {
    for user in list {
        users.insert(user.id, user);
    }
}

pub(super) fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The public comments of one ticket as messages, oldest first as the API
/// lists them.
///
/// Every message carries the requester's keys (email, phone, Zendesk user
/// id), whoever wrote it: the customer of a ticket is its requester, and an
/// agent's reply is addressed to them. Inbound means written by an end user
/// (or, when the author's role is unknown, by the requester). A ticket whose
/// requester cannot be identified yields nothing.
///
/// The version is the ticket's `updated_at` (a comment has no modification
/// time of its own; the ticket's changes when its subject or requester do),
/// or the comment's creation if that is later.
pub(super) fn ticket_messages(
    ticket: &Ticket,
    comments: &[Comment],
    users: &Users,
    default_region: Option<&str>,
) -> Result<Vec<SourceRecord>, String> {
    let updated = ticket.updated()?;
    let requester = ticket.requester_id.and_then(|id| users.get(&id));
    let mut keys = KeySet::new(default_region);
    keys.customer_id(ticket.requester_id.map(|id| id.to_string()).as_deref());
    if let Some(user) = requester {
        keys.email(user.email.as_deref());
        keys.phone(user.phone.as_deref());
    }
    let keys = keys.into_keys();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let subject = present_owned(ticket.subject.as_deref())
        .or_else(|| present_owned(ticket.raw_subject.as_deref()));

    let mut records = Vec::new();
    for comment in comments.iter().filter(|c| c.public != Some(false)) {
        let raw = present(comment.created_at.as_deref()).ok_or_else(|| {
            format!(
                "ticket {} comment {}: missing created_at",
                ticket.id, comment.id
            )
        })?;
        let created = parse_time(raw).ok_or_else(|| {
            format!(
                "ticket {} comment {}: created_at is not a time",
                ticket.id, comment.id
            )
        })?;
        let author = comment
            .author_id
            .and_then(|id| u64::try_from(id).ok())
            .and_then(|id| users.get(&id));
        let direction = match author.and_then(|a| present(a.role.as_deref())) {
            Some("end-user") => Direction::Inbound,
            Some(_) => Direction::Outbound,
            None if comment.author_id.is_some()
                && comment.author_id
                    == ticket.requester_id.and_then(|id| i64::try_from(id).ok()) =>
            {
                Direction::Inbound
            }
            None => Direction::Outbound,
        };
        let text = present_owned(comment.plain_body.as_deref())
            .or_else(|| present_owned(comment.body.as_deref()));
        let attachments = comment
            .attachments
            .iter()
            .map(|a| Attachment {
                name: present_owned(a.file_name.as_deref()),
                content_type: present_owned(a.content_type.as_deref()),
                size: a.size,
            })
            .collect();
        records.push(SourceRecord {
            external_id: comment.id.to_string(),
            version: updated.max(created),
            occurred_at: created,
            keys: keys.clone(),
            body: RecordBody::Message(Message {
                conversation_id: ticket.id.to_string(),
                channel: CHANNEL.to_owned(),
                direction,
                sender_name: author.and_then(|a| present_owned(a.name.as_deref())),
                sender_handle: author
                    .and_then(|a| present_owned(a.email.as_deref()))
                    .or_else(|| {
                        comment
                            .author_id
                            .filter(|id| *id > 0)
                            .map(|id| id.to_string())
                    }),
                text,
                subject: subject.clone(),
                attachments,
            }),
        });
    }
    Ok(records)
}
