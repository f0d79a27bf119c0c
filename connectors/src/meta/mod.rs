//! Meta's messaging platforms: Messenger (`messenger`), Instagram messaging
//! (`instagram`) and the WhatsApp Cloud API (`whatsapp`). Webhooks only:
//! Meta pushes every message, and nothing here polls.
//!
//! - `webhook`: the GET verification handshake, the `X-Hub-Signature-256`
//!   check, the dedupe key; one implementation shared by the three.
//! - `mapping`: typed notifications and their translation into
//!   [`Message`](crate::model::Message) records.
//!
//! # Connection
//! - settings: `verify_token` (required): the token typed into the App
//!   Dashboard's webhook form; Meta's `GET …?hub.mode=subscribe&
//!   hub.verify_token=…&hub.challenge=…` is answered with the challenge
//!   only when it matches (constant-time), otherwise 403.
//! - secrets: `app_secret` (required): the app's secret, which signs every
//!   notification as `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
//!   raw body>`; `previous_app_secret` (optional) is tried too, for the
//!   time a reset secret takes to reach every sender.
//!
//! # Deliveries
//! The topic is the notification's `object`. A connection decodes whatever
//! messaging object it receives, so one callback URL may serve a Page and
//! its Instagram account: `page` gives channel `messenger`, `instagram`
//! gives `instagram`, `whatsapp_business_account` gives `whatsapp`; other
//! objects decode to nothing. Every `entry[]` and every event in it is
//! read (Meta batches up to 1000).
//!
//! Messenger / Instagram (`entry[].messaging[]`, `standby[]`, and
//! `changes[]` of field `messages`):
//! - a customer's message: inbound, external id `message.mid`, customer key
//!   the PSID / IGSID (`sender.id`) as `customer_id`, conversation
//!   `{page or IG account id}:{PSID/IGSID}`, time `timestamp` (ms);
//! - the page's own message (`is_echo`): outbound, same conversation, keys
//!   of the recipient customer, sender handle the page id;
//! - a postback (tapped button): inbound, text the button's `title`,
//!   external id `postback.mid` or `postback:{page}:{PSID}:{timestamp ms}`;
//! - deliveries, reads, reactions, referrals, edits and Instagram unsends:
//!   no records.
//!
//! WhatsApp (`entry[].changes[].value` of field `messages`):
//! - each `messages[]` item: inbound, external id the `wamid`, conversation
//!   `{metadata.phone_number_id}:{wa_id}`, sender name
//!   `contacts[].profile.name`; keys `+{wa_id}` as a phone when it is a
//!   valid number, `wa_id` and the business-scoped `user_id` (BSUID, when
//!   present) as `customer_id`;
//! - media (`image`, `video`, `audio`, `sticker`, `document`): one
//!   attachment named by the media id with its `mime_type`; the caption is
//!   the text. Buttons and interactive replies give their title, locations
//!   their name and address;
//! - `reaction`, `system` and `request_welcome` messages, and every
//!   `statuses[]` item: no records.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// Messenger (Facebook Page conversations).
#[derive(Debug, Clone, Copy, Default)]
pub struct Messenger;

/// Instagram messaging (Instagram professional account conversations).
#[derive(Debug, Clone, Copy, Default)]
pub struct Instagram;

/// The WhatsApp Business Platform's Cloud API.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhatsApp;
