//! What WeCom sends: the callback XML (the encrypted envelope and the
//! decrypted event) and the `sync_msg` JSON, with the translation of
//! `msg_list` entries into message records.
//!
//! Every field is optional at the serde level, so that a missing one is
//! reported by name (or, for system events, not needed at all), and empty
//! strings count as absent.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::identity::KeySet;
use crate::model::{Attachment, Direction, Message, RecordBody, SourceRecord};
use crate::payload::{present, present_owned};
use crate::poll::ConnectorError;
use crate::signature::sha256_hex;

/// The channel name on every message record.
pub(super) const CHANNEL: &str = "wecom_kf";
/// The callback event that announces new messages or events.
pub(super) const KF_MSG_OR_EVENT: &str = "kf_msg_or_event";

/// `origin` of a message the WeChat customer sent.
const ORIGIN_CUSTOMER: i64 = 3;
/// `origin` of a message a servicer sent from the WeCom client.
const ORIGIN_SERVICER: i64 = 5;

// --- callback ---------------------------------------------------------------

/// The encrypted envelope POSTed to the callback URL.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Envelope {
    #[serde(rename = "Encrypt")]
    pub(super) encrypt: Option<String>,
}

/// The decrypted callback: `kf_msg_or_event` and its siblings. Its
/// `ToUserName` (the CorpID) and `OpenKfId` are not needed: the receiveid
/// already proved the company, and the sync reads every account anyway.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Callback {
    /// Unix seconds.
    #[serde(rename = "CreateTime")]
    pub(super) create_time: Option<String>,
    #[serde(rename = "MsgType")]
    pub(super) msg_type: Option<String>,
    #[serde(rename = "Event")]
    pub(super) event: Option<String>,
    /// For `sync_msg`, valid 10 minutes.
    #[serde(rename = "Token")]
    pub(super) token: Option<String>,
}

/// Parses WeCom XML; failures never quote the body.
pub(super) fn parse_xml<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

/// The dedupe key and topic of a decrypted callback; `None` when it is not
/// WeCom callback XML with an `Event` or `MsgType`.
///
/// WeCom retries a callback up to three times, re-encrypting each time, so
/// the key comes from the plaintext: the event, its `Token` and
/// `CreateTime`; without those, the plaintext's SHA-256.
pub(super) fn stamp(plaintext: &[u8]) -> Option<(String, String)> {
    let callback: Callback = parse_xml(plaintext)?;
    let topic = present(callback.event.as_deref())
        .or_else(|| present(callback.msg_type.as_deref()))?
        .to_owned();
    let key = match (
        present(callback.token.as_deref()),
        present(callback.create_time.as_deref()),
    ) {
        (Some(token), Some(time)) => format!("{topic}:{token}:{time}"),
        _ => format!("sha256:{}", sha256_hex(plaintext)),
    };
    Some((key, topic))
}

// --- gettoken and sync_msg ----------------------------------------------------

/// `GET /cgi-bin/gettoken`.
#[derive(Debug, Deserialize)]
pub(super) struct TokenResponse {
    #[serde(default)]
    pub(super) errcode: i64,
    #[serde(default)]
    pub(super) errmsg: Option<String>,
    #[serde(default)]
    pub(super) access_token: Option<String>,
}

/// `POST /cgi-bin/kf/sync_msg`.
#[derive(Debug, Deserialize)]
pub(super) struct SyncMsgResponse {
    #[serde(default)]
    pub(super) errcode: i64,
    #[serde(default)]
    pub(super) errmsg: Option<String>,
    #[serde(default)]
    pub(super) next_cursor: Option<String>,
    /// 0 or 1 (read leniently: a bool is accepted too).
    #[serde(default)]
    pub(super) has_more: Option<Value>,
    #[serde(default)]
    pub(super) msg_list: Vec<KfMessage>,
}

impl SyncMsgResponse {
    pub(super) fn has_more(&self) -> bool {
        match &self.has_more {
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !matches!(s.trim(), "" | "0" | "false"),
            _ => false,
        }
    }
}

/// One `msg_list` entry. System events carry only some of these.
#[derive(Debug, Default, Deserialize)]
pub(super) struct KfMessage {
    pub(super) msgid: Option<String>,
    pub(super) open_kfid: Option<String>,
    pub(super) external_userid: Option<String>,
    /// Unix seconds.
    pub(super) send_time: Option<i64>,
    /// 3 customer, 4 system event, 5 servicer.
    pub(super) origin: Option<i64>,
    pub(super) servicer_userid: Option<String>,
    pub(super) msgtype: Option<String>,
    pub(super) text: Option<TextContent>,
    pub(super) image: Option<Media>,
    pub(super) voice: Option<Media>,
    pub(super) video: Option<Media>,
    pub(super) file: Option<Media>,
    pub(super) location: Option<Location>,
    pub(super) link: Option<Link>,
    pub(super) miniprogram: Option<MiniProgram>,
    pub(super) msgmenu: Option<MsgMenu>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TextContent {
    pub(super) content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Media {
    pub(super) media_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Location {
    pub(super) name: Option<String>,
    pub(super) address: Option<String>,
    /// Numbers as documented; strings are read too rather than failing
    /// the whole page over a description.
    pub(super) latitude: Option<Value>,
    pub(super) longitude: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Link {
    pub(super) title: Option<String>,
    pub(super) desc: Option<String>,
    pub(super) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct MiniProgram {
    pub(super) title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct MsgMenu {
    pub(super) head_content: Option<String>,
}

/// The record of one `msg_list` entry: `None` for system events and
/// anything neither the customer nor a servicer sent, and for entries of
/// another account than `only_kfid`. An entry that should be a message but
/// lacks a field fails the page (naming the field and the `msgid`), so the
/// stream stops there instead of skipping it.
pub(super) fn message_record(
    entry: &KfMessage,
    only_kfid: Option<&str>,
    default_region: Option<&str>,
) -> Result<Option<SourceRecord>, ConnectorError> {
    let msgtype = present(entry.msgtype.as_deref());
    let direction = match entry.origin {
        _ if msgtype == Some("event") => return Ok(None),
        Some(ORIGIN_CUSTOMER) => Direction::Inbound,
        Some(ORIGIN_SERVICER) => Direction::Outbound,
        _ => return Ok(None),
    };
    let msgid = present_owned(entry.msgid.as_deref())
        .ok_or_else(|| malformed("a msg_list entry has no msgid"))?;
    let missing = |field: &str| malformed(format!("msg_list entry {msgid} has no {field}"));
    let open_kfid = present(entry.open_kfid.as_deref()).ok_or_else(|| missing("open_kfid"))?;
    if only_kfid.is_some_and(|only| only != open_kfid) {
        return Ok(None);
    }
    let customer = present_owned(entry.external_userid.as_deref())
        .ok_or_else(|| missing("external_userid"))?;
    let msgtype = msgtype.ok_or_else(|| missing("msgtype"))?;
    let sent = entry
        .send_time
        .ok_or_else(|| missing("send_time"))
        .and_then(|secs| {
            DateTime::<Utc>::from_timestamp(secs, 0).ok_or_else(|| {
                malformed(format!(
                    "msg_list entry {msgid} has an impossible send_time"
                ))
            })
        })?;

    let sender_handle = match direction {
        Direction::Inbound => Some(customer.clone()),
        Direction::Outbound => present_owned(entry.servicer_userid.as_deref()),
    };
    let mut keys = KeySet::new(default_region);
    keys.customer_id(Some(&customer));
    let (text, attachments) = content(msgtype, entry);
    Ok(Some(SourceRecord {
        external_id: msgid.clone(),
        version: sent,
        occurred_at: sent,
        keys: keys.into_keys(),
        body: RecordBody::Message(Message {
            conversation_id: format!("{open_kfid}:{customer}"),
            channel: CHANNEL.to_owned(),
            direction,
            sender_name: None,
            sender_handle,
            text,
            subject: None,
            attachments,
        }),
    }))
}

fn malformed(reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Malformed(reason.into())
}

/// The text (the sender's own for text messages, else a short description)
/// and media metadata: the `media_id` as the name, never the content.
fn content(msgtype: &str, entry: &KfMessage) -> (Option<String>, Vec<Attachment>) {
    let media = |media: &Option<Media>, content_type: Option<&str>| -> Vec<Attachment> {
        media
            .as_ref()
            .and_then(|m| present(m.media_id.as_deref()))
            .map(|id| Attachment {
                name: Some(id.to_owned()),
                content_type: content_type.map(str::to_owned),
                size: None,
            })
            .into_iter()
            .collect()
    };
    match msgtype {
        // The words exactly as sent.
        "text" => (
            entry
                .text
                .as_ref()
                .and_then(|t| t.content.clone())
                .filter(|c| !c.is_empty()),
            Vec::new(),
        ),
        "image" => (
            Some("[image]".to_owned()),
            media(&entry.image, Some("image/*")),
        ),
        // Requested with voice_format 0: AMR.
        "voice" => (
            Some("[voice]".to_owned()),
            media(&entry.voice, Some("audio/amr")),
        ),
        "video" => (
            Some("[video]".to_owned()),
            media(&entry.video, Some("video/*")),
        ),
        "file" => (Some("[file]".to_owned()), media(&entry.file, None)),
        "location" => {
            let location = entry.location.as_ref();
            let coordinates = location.and_then(|l| {
                match (
                    coordinate(l.latitude.as_ref()),
                    coordinate(l.longitude.as_ref()),
                ) {
                    (Some(lat), Some(lon)) => Some(format!("({lat}, {lon})")),
                    _ => None,
                }
            });
            let parts: Vec<&str> = [
                location.and_then(|l| present(l.name.as_deref())),
                location.and_then(|l| present(l.address.as_deref())),
                coordinates.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect();
            (Some(described("[location]", &parts)), Vec::new())
        }
        "link" => {
            let link = entry.link.as_ref();
            let parts: Vec<&str> = [
                link.and_then(|l| present(l.title.as_deref())),
                link.and_then(|l| present(l.desc.as_deref())),
                link.and_then(|l| present(l.url.as_deref())),
            ]
            .into_iter()
            .flatten()
            .collect();
            (Some(described("[link]", &parts)), Vec::new())
        }
        "miniprogram" => {
            let title = entry
                .miniprogram
                .as_ref()
                .and_then(|m| present(m.title.as_deref()));
            (
                Some(described(
                    "[miniprogram]",
                    &title.into_iter().collect::<Vec<_>>(),
                )),
                Vec::new(),
            )
        }
        "msgmenu" => {
            let head = entry
                .msgmenu
                .as_ref()
                .and_then(|m| present(m.head_content.as_deref()));
            (
                Some(described(
                    "[msgmenu]",
                    &head.into_iter().collect::<Vec<_>>(),
                )),
                Vec::new(),
            )
        }
        other => (Some(format!("[{other}]")), Vec::new()),
    }
}

/// A coordinate as WeCom wrote it (a number, or a numeric string).
fn coordinate(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => present_owned(Some(s)),
        _ => None,
    }
}

/// `label` followed by the parts: the first on the same line, the rest on
/// their own lines.
fn described(label: &str, parts: &[&str]) -> String {
    match parts.split_first() {
        Some((first, rest)) => {
            let mut text = format!("{label} {first}");
            for part in rest {
                text.push('\n');
                text.push_str(part);
            }
            text
        }
        None => label.to_owned(),
    }
}
