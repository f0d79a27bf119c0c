//! The merchant's own addresses, the direction of a mail, its thread root,
//! and the `Message` record.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::mime::{self, Email, Mailbox};
use crate::identity::{normalise_email, KeySet};
use crate::model::{Direction, Message, RecordBody, SourceRecord};
use crate::payload::invalid;
use crate::webhook::{DecodeContext, DecodeError};

/// The setting that lists the merchant's addresses.
pub(crate) const OWN_ADDRESSES: &str = "own_addresses";

/// The merchant's addresses: exact ones and whole domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnAddresses {
    exact: BTreeSet<String>,
    domains: BTreeSet<String>,
}

impl OwnAddresses {
    /// From the `own_addresses` setting: an array of strings or one string,
    /// entries separated by commas, semicolons or white space. Entries that
    /// are neither an address nor `*@domain`/`@domain` are ignored.
    pub fn from_setting(value: Option<&Value>) -> Self {
        let mut own = Self::default();
        match value {
            Some(Value::String(list)) => own.add_all(list),
            Some(Value::Array(items)) => {
                for item in items.iter().filter_map(Value::as_str) {
                    own.add_all(item);
                }
            }
            _ => {}
        }
        own
    }

    /// From the normalised list stored in a delivery's envelope.
    pub fn from_list(list: &[String]) -> Self {
        let mut own = Self::default();
        for entry in list {
            own.add_all(entry);
        }
        own
    }

    /// The normalised list: exact addresses, then `*@domain` entries.
    pub fn to_list(&self) -> Vec<String> {
        self.exact
            .iter()
            .cloned()
            .chain(self.domains.iter().map(|d| format!("*@{d}")))
            .collect()
    }

    fn add_all(&mut self, list: &str) {
        for entry in list.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
            let entry = entry
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase();
            if let Some(domain) = entry.strip_prefix("*@").or_else(|| entry.strip_prefix('@')) {
                if !domain.is_empty() && !domain.contains('@') {
                    self.domains.insert(domain.to_owned());
                }
            } else if entry.contains('@') && !entry.starts_with('@') && !entry.ends_with('@') {
                self.exact.insert(entry);
            }
        }
    }

    /// Whether `address` is the merchant's: listed, in a listed domain, or a
    /// listed address with a `+tag`.
    pub fn contains(&self, address: &str) -> bool {
        let address = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        if self.exact.contains(&address) {
            return true;
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        if self.domains.contains(domain) {
            return true;
        }
        match local.split_once('+') {
            Some((base, _tag)) => self.exact.contains(&format!("{base}@{domain}")),
            None => false,
        }
    }
}

/// The thread a mail belongs to: the first id in `References` (the root
/// the client recorded), else `In-Reply-To`, else the mail's own id.
pub(super) fn thread_root(email: &Email) -> Option<&str> {
    email
        .references
        .first()
        .or_else(|| email.in_reply_to.first())
        .or(email.message_id.as_ref())
        .map(String::as_str)
}

/// Who the mail is with: the direction, and the customer's mailbox.
pub(super) fn counterpart<'a>(
    email: &'a Email,
    own: &OwnAddresses,
) -> Option<(Direction, &'a Mailbox)> {
    let from = email.from.as_ref()?;
    if own.contains(&from.address) {
        let customer = email
            .to
            .iter()
            .chain(&email.cc)
            .find(|m| !own.contains(&m.address) && normalise_email(&m.address).is_some())?;
        Some((Direction::Outbound, customer))
    } else {
        Some((Direction::Inbound, from))
    }
}

/// The record of one mail, or `None` when it identifies nobody (auto-reply,
/// bounce, no customer address). `platform_time` stands in for a missing
/// `Date` header; without either the mail cannot be versioned.
pub(crate) fn to_record(
    topic: &str,
    email: &Email,
    platform_time: Option<DateTime<Utc>>,
    own: &OwnAddresses,
    ctx: &DecodeContext,
) -> Result<Option<SourceRecord>, DecodeError> {
    let from_system = email
        .from
        .as_ref()
        .is_some_and(|from| mime::system_sender(&from.address));
    if email.automatic || from_system {
        return Ok(None);
    }
    let Some((direction, customer)) = counterpart(email, own) else {
        return Ok(None);
    };
    let mut keys = KeySet::new(ctx.default_region.as_deref());
    keys.email(Some(&customer.address));
    let keys = keys.into_keys();
    if keys.is_empty() {
        return Ok(None);
    }
    let time = email
        .date
        .or(platform_time)
        .ok_or_else(|| invalid(topic, "mail has no Date header and no platform time"))?;
    let external_id = email
        .message_id
        .clone()
        .unwrap_or_else(|| email.fallback_id.clone());
    if external_id.is_empty() {
        return Err(invalid(
            topic,
            "mail has no Message-ID and no content to identify it",
        ));
    }
    let conversation_id = thread_root(email).unwrap_or(&external_id).to_owned();
    let from = email.from.as_ref();
    Ok(Some(SourceRecord {
        external_id,
        version: time,
        occurred_at: time,
        keys,
        body: RecordBody::Message(Message {
            conversation_id,
            channel: "email".to_owned(),
            direction,
            sender_name: from.and_then(|f| f.name.clone()),
            sender_handle: from.map(|f| f.address.trim().to_lowercase()),
            text: email.text.clone(),
            subject: email.subject.clone(),
            attachments: email.attachments.clone(),
        }),
    }))
}
