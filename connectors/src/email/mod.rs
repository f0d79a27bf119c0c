//! Email: inbound mail pushed by Mailgun routes, SendGrid Inbound Parse and
//! Postmark inbound webhooks, each mail becoming one `Message` record on the
//! `email` channel.
//!
//! - `mailgun`, `sendgrid`, `postmark`: each platform's request check,
//!   dedupe key and payload reading.
//! - `mime`: RFC 5322/MIME (through `mail-parser`), header blocks, charsets,
//!   form bodies (`multipart/form-data`, urlencoded) and auto-reply/bounce
//!   detection, into one platform-neutral `mime::Email`.
//! - `thread`: the merchant's own addresses, direction, thread root and the
//!   record itself.
//! - `envelope`: what the request path stores for the worker.
//!
//! # Connection (all three)
//! - settings: `own_addresses` (required): the merchant's addresses, as a
//!   JSON array of strings or one comma-separated string; compared
//!   lower-cased, `*@shop.example` (or `@shop.example`) covers a whole domain
//!   and `support+tag@…` counts as `support@…`. The hub's connection check
//!   currently accepts only a non-empty string for a required setting, so the
//!   comma-separated form is the one a connection can be created with today.
//! - Mailgun secrets: `webhook_signing_key` (required, the account's "HTTP
//!   webhook signing key"), `previous_webhook_signing_key` (optional, during
//!   a rotation).
//! - SendGrid secrets: `url_token` (required). Inbound Parse signs nothing;
//!   the merchant sets the Parse URL to
//!   `https://HUB/webhooks/sendgrid/{connection_id}?token={url_token}` and a
//!   request without that exact `token` query parameter is refused.
//! - Postmark secrets: `basic_username`, `basic_password` (required). The
//!   merchant sets the inbound webhook URL to
//!   `https://{basic_username}:{basic_password}@HUB/webhooks/postmark/{connection_id}`
//!   and Postmark sends them as `Authorization: Basic …`.
//!
//! All comparisons of secrets are constant-time.
//!
//! # Deliveries
//! Each platform has one topic, [`TOPIC`]. The worker's `decode` gets only the
//! stored bytes, not the connection's settings nor the request's
//! `Content-Type`, so verification answers `Intake::Unwrapped` with an
//! envelope: one JSON line (`content_type`, the `own_addresses` in force when
//! the mail arrived) followed by the exact request body. That body is the
//! whole post, attachment bytes included: records never carry them, but the
//! inbox row does.
//!
//! Dedupe keys:
//! - Mailgun: `mailgun-token:{token}`. Mailgun's advice is to refuse a token
//!   seen before; the hub's inbox is unique per (connection, dedupe key) and
//!   keeps keys, so a replayed token is answered 200 `duplicate` and is not
//!   processed again. Timestamps more than 9 hours old (Mailgun retries for
//!   about 8 hours, possibly with the first signature) or more than 5
//!   minutes ahead are refused.
//! - SendGrid: `message-id:{Message-ID}` from the mail's headers, else
//!   `sha256:{hex of the body}`.
//! - Postmark: `postmark:{MessageID}` (Postmark's id of the inbound message),
//!   else `sha256:{hex of the body}`.
//!
//! # Records
//! One mail is one `Message` record, channel `email`:
//! - `external_id`: the `Message-ID` without `<>`; without one, a SHA-256 of
//!   the raw mail (of the stable parsed fields where there is no raw mail;
//!   Postmark's `MessageID` first).
//! - `conversation_id`: the thread root: the first id in `References`, else
//!   `In-Reply-To`, else the mail's own id.
//! - `version` and `occurred_at`: the `Date` header, else the platform's
//!   time (Mailgun's signed `timestamp`; the newest `Received` header for
//!   SendGrid and Postmark). Never the time of decoding: a mail with neither
//!   fails to decode.
//! - `text`: the text/plain body parts, else the HTML converted to text,
//!   line ends normalised to `\n` and trimmed. `subject` decoded (RFC 2047).
//!   Multi-byte East Asian charsets (GB2312/GBK/GB18030, Big5, Shift_JIS,
//!   EUC-*) are decoded by `mail-parser` only with its `full_encoding`
//!   feature; without it they are read as UTF-8 (garbled). Single-byte
//!   charsets (ISO-8859-x, windows-125x, KOI8) always work.
//! - `attachments`: file name, content type and decoded size only.
//! - direction: outbound when `From` is one of `own_addresses` (the
//!   customer is then the first `To`/`Cc` address that is not), inbound
//!   otherwise (the customer is the sender). The only key is the customer's
//!   email; own addresses never become keys. A mail with no customer address
//!   produces no record.
//! - Auto-replies and bounces produce no record: `Auto-Submitted` other than
//!   `no`, `X-Autoreply`, `X-Autorespond`, `Precedence: bulk|junk|auto_reply`,
//!   `X-Failed-Recipients`, a `multipart/report` body (delivery and read
//!   reports), a null return path (`Return-Path: <>` or an empty SMTP
//!   envelope sender), or a `MAILER-DAEMON`/`postmaster` sender.

mod envelope;
mod mailgun;
pub(crate) mod mime;
mod postmark;
mod sendgrid;
pub(crate) mod thread;

#[cfg(test)]
mod tests;

/// The one topic every email delivery is stored under.
pub const TOPIC: &str = "inbound";

/// Mailgun inbound routes (`forward()` and `store(notify=…)` posts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mailgun;

/// SendGrid Inbound Parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sendgrid;

/// Postmark inbound webhooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postmark;

/// Constant-time equality of a presented credential and the expected one
/// (lengths are hidden too: both are compared as HMACs under a fixed key).
fn secure_eq(presented: &[u8], expected: &[u8]) -> bool {
    const KEY: &[u8] = b"shophub email credential comparison";
    crate::signature::verify_hmac_sha256(
        &[KEY],
        presented,
        &crate::signature::hmac_sha256(KEY, expected),
    )
}
