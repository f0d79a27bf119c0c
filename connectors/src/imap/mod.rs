//! IMAP: one mailbox of the merchant's, polled incrementally over implicit
//! TLS, each mail becoming one `Message` record on the `email` channel.
//!
//! # Connection
//! - settings:
//!   - `host` (required): the IMAP server's name or IP address; the TLS
//!     certificate must be valid for it.
//!   - `username` (required): the login name.
//!   - `own_addresses` (required): the merchant's addresses, read exactly as
//!     the email connectors read them (a comma-separated string or a JSON
//!     array; `*@shop.example` covers a domain; `support+tag@…` counts as
//!     `support@…`). They decide the direction of each mail.
//!   - `port` (optional, default 993): a number or a string of digits.
//!   - `mailbox` (optional, default `INBOX`): the mailbox's IMAP name as the
//!     server lists it (modified UTF-7 for non-ASCII names, the server's
//!     hierarchy separator, e.g. `INBOX.Support` or `Sent`). One connection
//!     polls one mailbox; a second mailbox (the Sent folder, for replies
//!     written from a mail client) is a second connection.
//!   - `tls_ca_pem` (optional): PEM certificate(s) of a CA to trust besides
//!     the public roots (webpki-roots), for self-hosted servers and tests.
//!   - `default_region` (optional, as everywhere).
//!   - `api_base_url` is not used: the address is `host` and `port`
//!     (`default_base_url` only reports `imaps://{host}:{port}`).
//! - secrets: `password` (required).
//!
//! Always implicit TLS (IMAPS, RFC 8314): TLS starts on connect, before the
//! server's greeting, with TLS 1.2 or 1.3 and full certificate and host name
//! verification. There is no plaintext mode and no STARTTLS, so the password
//! never crosses the network unencrypted.
//!
//! # Polling
//! Resource `messages` only. One `poll` is one session: connect, `LOGIN`,
//! `EXAMINE` (read-only: flags such as `\Seen` are never changed, and bodies
//! are read with `BODY.PEEK[]`), `UID SEARCH`, `UID FETCH`, `LOGOUT`.
//!
//! The cursor is `{"uidvalidity": u32|null, "last_uid": u32}` plus, when a
//! backfill starts at a date, `"since"` (RFC 3339):
//! - a message's identity in the mailbox is (UIDVALIDITY, UID); UIDs only
//!   grow, so every message after `last_uid` is new. A page searches
//!   `UID SEARCH UID {last_uid+1}:{end}` in a window of [`WINDOW`] UIDs
//!   (below `UIDNEXT`), and `UID {last_uid+1}:*` when that window is empty
//!   to skip a gap; UIDs `<= last_uid` are dropped from the answer, because
//!   `n:*` also matches the highest existing UID when `n` is above it.
//! - at most [`BATCH`] messages (and about [`BATCH_BYTES`] of mail, at
//!   least one message, judged from `RFC822.SIZE`) are fetched per page with
//!   `UID FETCH … (UID INTERNALDATE BODY.PEEK[])`; the returned cursor's
//!   `last_uid` is the highest UID read (or the end of a searched window).
//!   `caught_up` is true when nothing below `UIDNEXT` is left.
//! - **UIDVALIDITY change**: when `EXAMINE` reports another UIDVALIDITY than
//!   the cursor's (the mailbox was deleted and recreated, restored, or the
//!   server rebuilt its index), the cursor's UIDs mean nothing any more and
//!   the page starts over at UID 1: a full resync of the mailbox. Records
//!   are versioned and keyed by `Message-ID`, so mails read before come
//!   again as the same versions and change nothing.
//! - `since`: `UID SEARCH` adds `SINCE {day before since}` (the server's
//!   arrival date, day granularity): older mail is not read.
//! - No `LOOKBACK` applies: UIDs are assigned in order, never reused, and a
//!   message gets its UID when it becomes visible.
//! - `watermark`: the poll's time when caught up (the whole mailbox as it
//!   was then has been read), otherwise none.
//!
//! Flag changes and expunges are not synchronised (no CONDSTORE/QRESYNC): a
//! record stays when its mail is deleted.
//!
//! # Records
//! Exactly those of the email connectors (see [`crate::email`]): the mail is
//! parsed by `email::mime` and turned into a record by `email::thread`:
//! `external_id` the `Message-ID` (a SHA-256 of the mail without one),
//! `conversation_id` the thread root (`References`, `In-Reply-To`), version
//! and `occurred_at` the `Date` header, else the message's INTERNALDATE;
//! direction from `own_addresses`; the customer's email the only key;
//! auto-replies, bounces and mails naming no customer produce no record (the
//! cursor still moves past them).
//!
//! # Errors
//! - `LOGIN` answered `NO`: `Unauthorized` (`[UNAVAILABLE]`: `Transient`).
//! - the mailbox does not exist (`EXAMINE` answered `NO`): `Permanent`.
//! - connection, DNS, TLS (including an untrusted certificate), time-outs,
//!   a closed connection: `Transient`.
//! - an answer that cannot be parsed: `Malformed`.
//! - settings missing or unusable (`host`, `username`, `port`,
//!   `own_addresses` naming no address, `tls_ca_pem` without a certificate):
//!   `Permanent`; no `password`: `Unauthorized`.
//!
//! - `client`: the session, TLS, the cursor and the page plan.
//! - `mapping`: one fetched message into a record.

mod client;
mod mapping;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::poll::{Api, Page, PollingSource, Resource};
use crate::webhook::Connector;
use crate::ConnectorError;

pub use client::{BATCH, BATCH_BYTES, DEFAULT_MAILBOX, DEFAULT_PORT, WINDOW};

/// The IMAP connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Imap;

impl Connector for Imap {
    fn platform(&self) -> &'static str {
        "imap"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["host", "username", "own_addresses"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["password"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl PollingSource for Imap {
    fn platform(&self) -> &'static str {
        "imap"
    }

    /// `imaps://{host}:{port}`: only descriptive, the session is opened
    /// from the `host` and `port` settings.
    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String> {
        let host = settings.get("host")?.as_str()?.trim();
        if host.is_empty() {
            return None;
        }
        let port = client::port_setting(settings.get("port")).ok()?;
        Some(if host.contains(':') {
            format!("imaps://[{host}]:{port}")
        } else {
            format!("imaps://{host}:{port}")
        })
    }

    fn resources(&self) -> &'static [Resource] {
        &[Resource::Messages]
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["password"]
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        client::Cursor::start(since).to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Messages {
            return Err(ConnectorError::Permanent(format!(
                "imap cannot poll {}",
                resource.as_str()
            )));
        }
        client::poll(api, cursor, &client::Limits::default()).await
    }
}
