//! WeChat Official Account (公众号): the messages users send to the
//! account, pushed as XML to the server URL, in plain or safe (AES) mode.
//! Webhooks only: there is no API to poll past messages.
//!
//! - `webhook`: the URL check (`GET … echostr`), signature checks in the
//!   query string, safe-mode decryption, dedupe keys.
//! - `crypto`: SHA-1 signatures, constant-time comparison, the
//!   AES-256-CBC envelope with its 32-byte padding.
//! - `mapping`: the pushed XML and its translation into message records.
//!
//! # Connection
//! - settings: `app_id` (required): the account's AppID, which every
//!   safe-mode plaintext must end with.
//! - secrets: `token` (required): the server configuration's Token.
//!   `encoding_aes_key` (optional, needed for safe and compatible mode): the
//!   43-character EncodingAESKey.
//! - The server URL to enter in the admin panel is the hub's
//!   `/webhooks/wechat/{connection_id}`, for both the GET check and the
//!   POSTs.
//!
//! # Verification
//! - URL check (GET, answered by `handshake`): plain, `signature` =
//!   `sha1(sort(token, timestamp, nonce))` and the answer is `echostr`
//!   verbatim. When `msg_signature` is present (WeCom-style encrypted
//!   check), `msg_signature` = `sha1(sort(token, timestamp, nonce,
//!   echostr))` and the answer is the decrypted `echostr`. An
//!   `encrypt_type=aes` without `msg_signature` is checked as plain: the
//!   Official Account's URL check stays plain even in safe mode.
//! - POST, plain mode: `signature` as above, then the raw XML is stored
//!   (`Intake::Delivery`). This signature does not cover the body (WeChat's
//!   design), and WeChat documents no timestamp window, so none is
//!   enforced: a captured query string can be replayed with any body.
//!   Safe mode closes that, and is what merchants should choose.
//! - POST, safe or compatible mode (`encrypt_type=aes` or `msg_signature`
//!   in the query): `msg_signature` = `sha1(sort(token, timestamp, nonce,
//!   Encrypt))` over the `<Encrypt>` element of the body, then `Encrypt` is
//!   decrypted, its trailing appid must equal `settings.app_id`, and the
//!   plaintext XML is stored (`Intake::Unwrapped`).
//! - Digests are compared in constant time. Errors name parameters and
//!   secrets, never values.
//! - The hub must answer `success` ([`WebhookSource::acknowledgement`]):
//!   anything else is shown to the user as a reply or as "该公众号暂时无法提供
//!   服务".
//!
//! # Records
//! - Dedupe: `msg:{MsgId}` for user messages; events have no MsgId and use
//!   `event:{FromUserName}:{CreateTime}:{Event}` (WeChat recommends
//!   FromUserName + CreateTime). Topic: the `MsgType`, or `event.{Event}`.
//! - User messages (text, image, voice, video, shortvideo, location, link,
//!   and any other `MsgType` with a `MsgId`) become one inbound
//!   [`Message`](crate::model::Message) each: `external_id` = MsgId,
//!   `version` = `occurred_at` = CreateTime, `conversation_id` =
//!   `{ToUserName}:{FromUserName}`, `sender_handle` = the openid, `text` =
//!   Content (voice: the speech recognition result when present; other
//!   kinds: a short description such as `[image]`), media as attachment
//!   metadata named by `MediaId`.
//! - Keys: the openid as `customer_id` (scoped to the account, which is the
//!   connection); a `UnionId`/`unionid` element, when present, as
//!   `wechat_unionid`. WeChat pushes no email or phone.
//! - Events (subscribe, unsubscribe, SCAN, LOCATION, CLICK, VIEW, job
//!   reports…) produce no records.
//!
//! [`WebhookSource::acknowledgement`]: crate::webhook::WebhookSource::acknowledgement

use crate::wxcrypt as crypto;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The WeChat Official Account connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wechat;
