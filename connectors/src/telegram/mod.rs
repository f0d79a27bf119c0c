//! Telegram Bot API: webhook `Update`s authenticated by the secret token
//! set with `setWebhook`, turned into inbound chat messages.
//!
//! - `webhook`: secret token check and dedupe key.
//! - `mapping`: typed `Update`/`Message` objects and their translation into
//!   [`Message`](crate::model::Message) records.
//!
//! # Connection
//! - settings: none required; `default_region` as for every connection
//!   (unused: shared phone numbers are international).
//! - secrets: `secret_token` (required): the `secret_token` passed to
//!   `setWebhook` (1 to 256 characters `A-Z a-z 0-9 _ -`). The hub's
//!   webhook URL for the connection is what `setWebhook` must point at; this
//!   connector does not call the Bot API, so the bot token is not needed.
//!
//! # Deliveries
//! `POST` with one `Update` as JSON and the header
//! `X-Telegram-Bot-Api-Secret-Token` carrying the secret itself (no MAC),
//! compared in constant time. The token proves the sender but signs
//! nothing, so replays are caught by the dedupe key: `update_id`.
//! Topic: the update's kind (`message`, `edited_message`, `channel_post`,
//! `callback_query`, ...). A non-2xx answer makes Telegram retry.
//!
//! # Records
//! `message` and `edited_message` become one inbound message each:
//! - `external_id` = `{chat.id}:{message_id}` (message ids are per chat), so
//!   an edit updates the same record; version = `edit_date` for edits, else
//!   `date`; occurrence = `date` (Unix seconds).
//! - conversation = `chat.id`; sender name = `from.first_name` +
//!   `from.last_name`; handle = `from.username`, else `from.id`.
//! - text = `text`, else `caption`. Attachments (metadata only):
//!   `photo` (the largest size; content type `image`, Telegram sends none),
//!   `document`, `voice`, `audio` and `video` (`file_name`, `mime_type`,
//!   `file_size` as sent).
//! - keys: `from.id` as `customer_id` (a global numeric user id); the phone
//!   of a shared `contact` only when it is the sender's own
//!   (`contact.user_id == from.id`), read as international (Telegram sends
//!   the account's number with or without the leading `+`).
//! - no records: channel posts, messages from bots (`from.is_bot`),
//!   messages sent on behalf of a chat (`sender_chat`, anonymous admins,
//!   automatic forwards), messages without `from`, service messages (members
//!   joining, pins, ...), and every other update kind.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Telegram Bot API connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Telegram;
