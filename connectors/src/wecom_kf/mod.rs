//! WeCom customer service (企业微信 · 微信客服): the conversations WeChat
//! users hold with a company's customer-service accounts.
//!
//! WeCom uses a pull model. The callback URL only hears "there is news"
//! (`kf_msg_or_event`, with a 10-minute `Token`); the messages themselves
//! are read with `POST /cgi-bin/kf/sync_msg`, a cursor-based stream that
//! keeps the last 3 days.
//!
//! - `webhook`: the URL check (`GET … echostr`, encrypted), the encrypted
//!   POST callback, dedupe keys, and [`triggers_sync`].
//! - `client`: `gettoken`, `sync_msg` paging, the cursor, errcode
//!   classification.
//! - `mapping`: the callback XML, the `sync_msg` JSON and its translation
//!   into message records.
//! - `crypto`: the WXBizMsgCrypt scheme shared with the Official Account
//!   (`crate::wxcrypt`).
//!
//! # Connection
//! - settings: `corp_id` (required): the company's CorpID (`ww…`), which
//!   every decrypted callback must end with and which `gettoken` needs.
//!   `open_kfid` (optional): limit the connection to one customer-service
//!   account (`wk…`); without it `sync_msg` returns every account the app
//!   may read.
//! - secrets (all required): `token` and `encoding_aes_key` (the callback
//!   configuration's Token and 43-character EncodingAESKey), `secret` (the
//!   customer-service app's Secret, for `gettoken`).
//! - The callback URL to enter in the WeCom admin (微信客服 → API → 回调配置)
//!   is the hub's `/webhooks/wecom_kf/{connection_id}`, for both the GET
//!   check and the POSTs. The hub's address must also be in the app's
//!   trusted IPs, or WeCom answers errcode 60020.
//!
//! # Verification
//! - URL check (GET, [`handshake`]): `msg_signature` =
//!   `sha1(sort(token, timestamp, nonce, echostr))`, then `echostr` is
//!   decrypted (its receiveid must be `corp_id`) and the plaintext is the
//!   answer.
//! - POST: `<xml><ToUserName/><AgentID/><Encrypt/></xml>` with
//!   `msg_signature`, `timestamp`, `nonce` in the query; the signature
//!   covers `Encrypt`, the receiveid must equal `settings.corp_id`, and the
//!   plaintext XML is stored (`Intake::Unwrapped`). Dedupe key:
//!   `{Event}:{Token}:{CreateTime}`, or `sha256:{hex}` of the plaintext
//!   when either is missing. Topic: the `Event` (`kf_msg_or_event`), else
//!   the `MsgType`.
//! - The answer is an empty 200 ([`acknowledgement`]), which WeCom takes as
//!   received; it retries three times when no answer comes within 5 s.
//!
//! # Records
//! - The callback decodes to no records; [`triggers_sync`] tells the hub to
//!   sync the `messages` stream instead.
//! - `messages` (polling, one `sync_msg` page per call, `limit` 1000,
//!   `voice_format` 0 = AMR): customer messages (`origin` 3) become inbound
//!   and servicer messages (`origin` 5) outbound
//!   [`Message`](crate::model::Message)s: `external_id` = `msgid`, `version`
//!   = `occurred_at` = `send_time`, `conversation_id` =
//!   `{open_kfid}:{external_userid}`, channel `wecom_kf`, `text` = the text
//!   content (other kinds: a short description such as `[image]`), media as
//!   attachment metadata named by `media_id`. Key: the `external_userid` as
//!   `customer_id`, on outbound messages too (it is the customer). System
//!   events (`origin` 4, `msgtype` `event`) yield nothing.
//!
//! # Cursor
//! `{"next_cursor": "…" | null, "watermark": "…"}`: `next_cursor` is
//! WeCom's own, persisted after every page; null starts at the oldest
//! message WeCom still keeps (3 days). `has_more` = 0 ends a sweep
//! (`caught_up`), and the same cursor then starts the next one; an empty
//! `msg_list` with `has_more` = 1 keeps paging. `watermark` is when the last
//! sweep caught up. The hub may add `"token"` (a callback's `Token`, valid
//! 10 minutes) to the cursor it passes: it is sent with that call, which
//! WeCom then rate-limits far less strictly, and is never written back.
//!
//! [`triggers_sync`]: crate::webhook::WebhookSource::triggers_sync
//! [`handshake`]: crate::webhook::WebhookSource::handshake
//! [`acknowledgement`]: crate::webhook::WebhookSource::acknowledgement

mod client;
use crate::wxcrypt as crypto;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The WeCom customer-service connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct WecomKf;
