//! Postmark inbound webhooks: one JSON document per mail (`From`,
//! `FromName`, `FromFull`, `To`, `ToFull`, `Cc`, `CcFull`, `Subject`, `Date`
//! in the sender's format, `MessageID` (Postmark's own id), `TextBody`,
//! `HtmlBody`, `StrippedTextReply`, `Headers[{Name, Value}]`,
//! `Attachments[{Name, ContentType, ContentLength, Content}]`).
//!
//! Postmark signs nothing; the webhook URL carries Basic credentials, which
//! arrive as `Authorization: Basic …` and are compared in constant time.
//! The mail's own `Message-ID` (for threading and the record id) is in
//! `Headers`; `MessageID` is only the fallback.

use base64::Engine as _;
use http::HeaderMap;
use serde::Deserialize;

use super::envelope::Envelope;
use super::mime::{self, Mailbox};
use super::thread::{self, OwnAddresses, OWN_ADDRESSES};
use super::{secure_eq, Postmark, TOPIC};
use crate::model::{Attachment, SourceRecord};
use crate::payload::{header, parse_json, present};
use crate::signature::sha256_hex;
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

pub(super) const USERNAME: &str = "basic_username";
pub(super) const PASSWORD: &str = "basic_password";
const AUTHORIZATION: &str = "Authorization";

impl Connector for Postmark {
    fn platform(&self) -> &'static str {
        "postmark"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[OWN_ADDRESSES]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[USERNAME, PASSWORD]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Postmark {
    fn secret_keys(&self) -> &'static [&'static str] {
        &[USERNAME, PASSWORD]
    }

    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let authorization = header(request.headers, AUTHORIZATION)
            .ok_or(VerifyError::MissingSignature(AUTHORIZATION))?;
        let (scheme, encoded) = authorization
            .split_once(' ')
            .ok_or(VerifyError::BadSignature)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(VerifyError::BadSignature);
        }
        let presented = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| VerifyError::BadSignature)?;
        let (Some(username), Some(password)) = (request.secret(USERNAME), request.secret(PASSWORD))
        else {
            return Err(VerifyError::BadSignature);
        };
        let expected = format!("{username}:{password}");
        if !secure_eq(&presented, expected.as_bytes()) {
            return Err(VerifyError::BadSignature);
        }
        let id: IdOnly = serde_json::from_slice(request.body).map_err(|_| {
            VerifyError::Malformed("body is not a Postmark inbound JSON".to_owned())
        })?;
        let dedupe_key = match present(id.message_id.as_deref()) {
            Some(id) => format!("postmark:{id}"),
            None => format!("sha256:{}", sha256_hex(request.body)),
        };
        let own = OwnAddresses::from_setting(request.settings.get(OWN_ADDRESSES));
        Ok(Intake::Unwrapped {
            dedupe_key,
            topic: TOPIC.to_owned(),
            body: Envelope::new(header(request.headers, "content-type"), own.to_list())
                .wrap(request.body),
        })
    }

    /// The credentials are named secrets; the hub calls `verify_request`.
    fn verify(
        &self,
        _secrets: &[&[u8]],
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Intake, VerifyError> {
        Err(VerifyError::MissingSignature(AUTHORIZATION))
    }

    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        if topic != TOPIC {
            return Ok(Vec::new());
        }
        let (envelope, body) = Envelope::unwrap(topic, body)?;
        let own = OwnAddresses::from_list(&envelope.own_addresses);
        let inbound: Inbound = parse_json(topic, body)?;

        let block = mime::header_block(
            inbound
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_deref().unwrap_or_default())),
        );
        let mut email = mime::parse_header_block(&block);

        let from = inbound
            .from_full
            .as_ref()
            .and_then(Recipient::mailbox)
            .or_else(|| {
                let from = present(inbound.from.as_deref())?;
                mime::address_list(from).into_iter().next()
            });
        if let Some(mut from) = from {
            if from.name.is_none() {
                from.name = present(inbound.from_name.as_deref()).map(str::to_owned);
            }
            email.from = Some(from);
        }
        let to = recipients(&inbound.to_full, inbound.to.as_deref());
        if !to.is_empty() {
            email.to = to;
        }
        let cc = recipients(&inbound.cc_full, inbound.cc.as_deref());
        if !cc.is_empty() {
            email.cc = cc;
        }
        if let Some(subject) = present(inbound.subject.as_deref()) {
            email.subject = Some(subject.to_owned());
        }
        if let Some(date) = present(inbound.date.as_deref()).and_then(mime::parse_date) {
            email.date = Some(date);
        }
        email.text = inbound
            .text_body
            .as_deref()
            .and_then(mime::normalise_text)
            .or_else(|| inbound.html_body.as_deref().and_then(mime::html_text));
        email.attachments = inbound
            .attachments
            .iter()
            .map(|a| Attachment {
                name: present(a.name.as_deref()).map(str::to_owned),
                content_type: present(a.content_type.as_deref()).map(str::to_owned),
                size: a.content_length,
            })
            .collect();
        email.fallback_id = match present(inbound.message_id.as_deref()) {
            Some(id) => id.to_owned(),
            None => sha256_hex(body),
        };
        let platform_time = email.received;
        Ok(thread::to_record(topic, &email, platform_time, &own, ctx)?
            .into_iter()
            .collect())
    }
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
}

/// The fields read from an inbound JSON; `Content` of attachments is never
/// read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inbound {
    from: Option<String>,
    from_name: Option<String>,
    from_full: Option<Recipient>,
    to: Option<String>,
    #[serde(default)]
    to_full: Vec<Recipient>,
    cc: Option<String>,
    #[serde(default)]
    cc_full: Vec<Recipient>,
    subject: Option<String>,
    date: Option<String>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    text_body: Option<String>,
    html_body: Option<String>,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    attachments: Vec<InboundAttachment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Recipient {
    email: Option<String>,
    name: Option<String>,
}

impl Recipient {
    fn mailbox(&self) -> Option<Mailbox> {
        Some(Mailbox {
            name: present(self.name.as_deref()).map(str::to_owned),
            address: present(self.email.as_deref())?.to_owned(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameValue {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InboundAttachment {
    name: Option<String>,
    content_type: Option<String>,
    content_length: Option<u64>,
}

/// `ToFull`/`CcFull`, or the plain header string when those are empty.
fn recipients(full: &[Recipient], plain: Option<&str>) -> Vec<Mailbox> {
    let list: Vec<Mailbox> = full.iter().filter_map(Recipient::mailbox).collect();
    if !list.is_empty() {
        return list;
    }
    present(plain).map(mime::address_list).unwrap_or_default()
}
