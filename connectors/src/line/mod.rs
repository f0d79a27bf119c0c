//! LINE Messaging API: signed webhook deliveries of a channel's events,
//! turned into inbound chat messages.
//!
//! - `webhook`: signature check, the console's verify request, dedupe key.
//! - `mapping`: typed webhook event objects and their translation into
//!   [`Message`](crate::model::Message) records.
//!
//! # Connection
//! - settings: none required; `default_region` as for every connection.
//! - secrets: `channel_secret` (required; Basic settings of the Messaging
//!   API channel in the LINE Developers Console). Reissuing it invalidates
//!   the old one at once, so there is no rotation candidate.
//!
//! # Deliveries
//! `POST` with the body `{"destination", "events": [...]}` and the header
//! `x-line-signature` = base64 HMAC-SHA256 of the raw body keyed by the
//! channel secret; LINE publishes no source IPs, so the signature is the
//! only authentication. One delivery may batch several events.
//! - An empty `events` list is the console's "Verify" request: a
//!   [`Ping`](crate::webhook::Intake::Ping).
//! - Dedupe key: `events:` + the sorted `webhookEventId`s (ULIDs) joined by
//!   `,` (hashed when very long), or `sha256:` + the body hash when an event
//!   has none. A redelivery (`deliveryContext.isRedelivery`) carries the same
//!   ids, and even when batched differently it decodes to the same records
//!   and versions, so storing it again changes nothing.
//! - Topic: the distinct event `type`s, sorted, joined by `,`
//!   (`message`, `follow,message`). Decoding reads the events, not the topic.
//!
//! # Records
//! Every `message` event whose `source` names a user (`source.userId`)
//! becomes an inbound message: `external_id` = `message.id`, conversation =
//! the `userId` for one-to-one chats, the `groupId` or `roomId` for group
//! chats and multi-person chats; version and occurrence = the event's
//! `timestamp` (milliseconds). LINE message events are never edited
//! (`unsend` is a separate event, ignored here), so a redelivery yields the
//! same record and version.
//! - text: `message.text` for `text` messages only.
//! - attachments (metadata only): `image`, `video`, `audio` and `file`
//!   messages, with `content_type` = the LINE message type (LINE sends no
//!   MIME type) and, for files, `fileName` and `fileSize`. Stickers and
//!   locations become messages without text.
//! - keys: `source.userId` as `customer_id` (provider-scoped). The webhook
//!   carries no display name (that needs the profile API), so
//!   `sender_name` is empty and `sender_handle` is the userId.
//! - `follow`, `unfollow`, `postback`, `join`, `unsend` and the other event
//!   types, and message events without a `userId` (group members who did not
//!   consent), identify no message from a person: no records.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The LINE Messaging API connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Line;
