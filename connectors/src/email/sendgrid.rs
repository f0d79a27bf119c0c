//! SendGrid Inbound Parse: a `multipart/form-data` POST of either parsed
//! fields (`headers` (the raw header block), `from`, `to`, `cc`, `subject`,
//! `text`, `html`, `envelope` (JSON `{to: [..], from}`), `charsets` (JSON of
//! field name to charset), `attachments` (a count), the files
//! `attachment1`…, `attachment-info`, `dkim`, `SPF`, `spam_score`…) or, with
//! "POST the raw, full MIME message", the mail itself in `email`.
//!
//! Inbound Parse signs nothing: the Parse URL carries the connection's
//! `url_token` as `?token=…`, compared in constant time.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Map;

use super::envelope::Envelope;
use super::mime::{self, Email, Form};
use super::thread::{self, OwnAddresses, OWN_ADDRESSES};
use super::{secure_eq, Sendgrid, TOPIC};
use crate::model::{Attachment, SourceRecord};
use crate::payload::{header, invalid};
use crate::signature::sha256_hex;
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

pub(super) const URL_TOKEN: &str = "url_token";
/// The query parameter that carries the token.
pub(super) const TOKEN_PARAM: &str = "token";

impl Connector for Sendgrid {
    fn platform(&self) -> &'static str {
        "sendgrid"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[OWN_ADDRESSES]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[URL_TOKEN]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Sendgrid {
    fn secret_keys(&self) -> &'static [&'static str] {
        &[URL_TOKEN]
    }

    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let presented = request
            .query_param(TOKEN_PARAM)
            .filter(|t| !t.is_empty())
            .ok_or(VerifyError::MissingSignature(TOKEN_PARAM))?;
        let expected = request.secret(URL_TOKEN).ok_or(VerifyError::BadSignature)?;
        if !secure_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err(VerifyError::BadSignature);
        }
        let content_type = header(request.headers, "content-type");
        let form = Form::parse(content_type, request.body)
            .map_err(|reason| VerifyError::Malformed(reason.to_owned()))?;
        if form.fields.is_empty() {
            return Err(VerifyError::Malformed("the form has no fields".to_owned()));
        }
        let message_id = match form.get("email") {
            Some(raw) => mime::message_id_of(&raw.value),
            None => form
                .get("headers")
                .and_then(|h| mime::parse_header_block(&h.value).message_id),
        };
        let dedupe_key = match message_id {
            Some(id) => format!("message-id:{id}"),
            None => format!("sha256:{}", sha256_hex(request.body)),
        };
        let own = OwnAddresses::from_setting(request.settings.get(OWN_ADDRESSES));
        Ok(Intake::Unwrapped {
            dedupe_key,
            topic: TOPIC.to_owned(),
            body: Envelope::new(content_type, own.to_list()).wrap(request.body),
        })
    }

    /// The token is in the query string; the hub calls `verify_request`.
    fn verify(
        &self,
        _secrets: &[&[u8]],
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Intake, VerifyError> {
        Err(VerifyError::MissingSignature(TOKEN_PARAM))
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
        let form = Form::parse(envelope.content_type.as_deref(), body)
            .map_err(|reason| invalid(topic, reason))?;
        let mut email = match form.get("email") {
            Some(raw) => mime::parse_mime(&raw.value)
                .ok_or_else(|| invalid(topic, "the email field is not a mail"))?,
            None => parsed_email(&form),
        };
        let smtp = form
            .text("envelope")
            .and_then(|json| serde_json::from_str::<SmtpEnvelope>(&json).ok());
        if let Some(SmtpEnvelope { from: Some(from) }) = &smtp {
            if mime::bounce_envelope_sender(from) {
                email.automatic = true;
            }
        }
        let platform_time = email.received;
        Ok(thread::to_record(topic, &email, platform_time, &own, ctx)?
            .into_iter()
            .collect())
    }
}

/// The `envelope` field; `from` is the SMTP `MAIL FROM` (empty for bounces).
#[derive(Deserialize)]
struct SmtpEnvelope {
    from: Option<String>,
}

/// A parsed post. Headers come from the raw `headers` block; the `from`,
/// `to`, `cc` and `subject` fields (in the charsets `charsets` names) stand
/// in when the block lacks them or could not be decoded.
fn parsed_email(form: &Form) -> Email {
    let charsets: Map<String, serde_json::Value> = form
        .text("charsets")
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let field = |name: &str| {
        let value = &form.get(name)?.value;
        let charset = charsets.get(name).and_then(|c| c.as_str());
        Some(mime::decode_charset(value, charset))
    };
    let block = form
        .get("headers")
        .map(|h| h.value.clone())
        .unwrap_or_default();
    let mut email = mime::parse_header_block(&block);

    let readable = matches!(&email.subject, Some(s) if !s.contains('\u{FFFD}'));
    if !readable {
        if let Some(subject) = field("subject").and_then(|s| mime::decode_words(&s)) {
            email.subject = Some(subject);
        }
    }
    if email.from.is_none() {
        email.from = field("from").and_then(|f| mime::address_list(&f).into_iter().next());
    }
    if email.to.is_empty() {
        email.to = field("to")
            .map(|t| mime::address_list(&t))
            .unwrap_or_default();
    }
    if email.cc.is_empty() {
        email.cc = field("cc")
            .map(|c| mime::address_list(&c))
            .unwrap_or_default();
    }

    let plain = field("text");
    email.text = plain
        .as_deref()
        .and_then(mime::normalise_text)
        .or_else(|| field("html").and_then(|html| mime::html_text(&html)));

    let info: Map<String, serde_json::Value> = form
        .text("attachment-info")
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    email.attachments = form
        .fields
        .iter()
        .filter(|f| f.filename.is_some() || is_attachment_field(&f.name))
        .map(|file| {
            let described = info.get(&file.name);
            let described_str = |key: &str| {
                described
                    .and_then(|d| d.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            Attachment {
                name: file
                    .filename
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| described_str("filename")),
                content_type: file.content_type.clone().or_else(|| described_str("type")),
                size: Some(file.value.len() as u64),
            }
        })
        .collect();

    let mut stable = block;
    stable.push(b'\n');
    stable.extend_from_slice(plain.unwrap_or_default().as_bytes());
    email.fallback_id = sha256_hex(&stable);
    email
}

/// `attachment1`, `attachment2`…: SendGrid's names for the file parts.
fn is_attachment_field(name: &str) -> bool {
    name.strip_prefix("attachment")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
