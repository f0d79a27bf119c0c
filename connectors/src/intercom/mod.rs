//! Intercom: webhook notifications signed with the app's client secret,
//! whose conversation topics become helpdesk messages.
//!
//! - `webhook`: signature check, the `ping` handshake, dedupe key, the
//!   optional workspace filter.
//! - `mapping`: the notification envelope and Conversation model (API 2.x,
//!   with the 1.x `user` field still read), their translation into
//!   [`Message`](crate::model::Message) records, and HTML-to-text.
//!
//! # Connection
//! - settings: none required. Optional `app_id`: the workspace id
//!   (Intercom's `app_id`). Webhook subscriptions belong to the app and
//!   cover every workspace it is installed in; when `app_id` is set,
//!   notifications of other workspaces are acknowledged and dropped
//!   (answered as a ping, nothing stored) instead of being mixed into this
//!   connection. Unset: every workspace's notifications are taken.
//! - secrets: `client_secret` (required; the app's Basic information page
//!   in the Developer Hub).
//!
//! # Deliveries
//! `POST` of `{"type": "notification_event", "id", "topic", "app_id",
//! "created_at", "data": {"item": {...}}}` with the header
//! `X-Hub-Signature: sha1=<hex HMAC-SHA1(client_secret, raw body)>`.
//! - Dedupe key: the notification `id` (Intercom's retries repeat it), or
//!   `sha256:` + the body hash when it has none.
//! - Topic: the notification's `topic`. The `ping` topic Intercom sends when
//!   a subscription is saved is a [`Ping`](crate::webhook::Intake::Ping),
//!   signed or not (it stores nothing).
//!
//! # Records
//! Topics `conversation.user.created`, `conversation.user.replied`,
//! `conversation.admin.replied`, `conversation.admin.single.created` and
//! `conversation.operator.replied` (Fin and bots) carry a Conversation; each
//! message in it becomes a record:
//! - the initial message (`source`): `external_id` = the conversation id,
//!   version and occurrence = the conversation's `created_at` (else the
//!   notification's), `subject` from `source.subject`;
//! - each conversation part in the payload except notes (`part_type`
//!   `note`, `note_and_reopen`): `external_id` = the part id, version =
//!   `updated_at` (a redaction or edit moves it), occurrence = `created_at`.
//!
//! Messages without text or attachments (assignments, state changes) are
//! skipped; a redacted message is kept with its text removed.
//! - direction: inbound for `user`, `lead` and `contact` authors, outbound
//!   for `admin`, `bot`, `team` and `operator`; other authors are skipped.
//! - text: the HTML body as plain text (block tags become line breaks,
//!   entities decoded). Attachments: `name`, `content_type`, `filesize`.
//! - sender: the author's `name`; handle = a customer's email (else id), an
//!   agent's id.
//! - keys: for inbound messages the author's contact id (`customer_id`) and
//!   email; for outbound messages the conversation's customer (the `source`
//!   author when it is a contact, else the 1.x `user`, else the first of
//!   `contacts.contacts`), never the teammate. A message whose customer has
//!   neither id nor email is not emitted.
//! - Every other topic (notes, assignments, closes, contacts, tickets, ...)
//!   decodes to nothing.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Intercom connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Intercom;
