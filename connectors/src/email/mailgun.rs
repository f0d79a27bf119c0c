//! Mailgun inbound routes: `forward()` posts (urlencoded, or
//! multipart/form-data when the mail has attachments) and
//! `store(notify=…)` notifications.
//!
//! Every post carries `timestamp`, `token` and `signature` =
//! hex(HMAC-SHA256(webhook signing key, timestamp + token)). A route whose
//! URL ends in `mime` posts the whole mail as `body-mime`; otherwise Mailgun
//! posts parsed fields: `from`, `sender` (SMTP `MAIL FROM`), `recipient`,
//! `subject`, `body-plain`, `body-html`, `stripped-text`, `message-headers`
//! (a JSON list of `[name, value]` pairs in the mail's order), each header as
//! a field of its own (`Message-Id`, `In-Reply-To`, `References`, `Date`…),
//! `attachment-count` and the files `attachment-1`…`attachment-N`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use http::HeaderMap;
use serde_json::Value;

use super::envelope::Envelope;
use super::mime::{self, Email, Form};
use super::thread::{self, OwnAddresses, OWN_ADDRESSES};
use super::{Mailgun, TOPIC};
use crate::model::{Attachment, SourceRecord};
use crate::payload::{header, invalid};
use crate::signature::{sha256_hex, verify_hex_hmac_sha256};
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

pub(super) const SIGNING_KEY: &str = "webhook_signing_key";
pub(super) const PREVIOUS_SIGNING_KEY: &str = "previous_webhook_signing_key";

/// How old a signed timestamp may be. Mailgun retries a failed post for
/// about 8 hours (10 min, 15 min, 30 min, 1 h, 2 h, 4 h) and may resend the
/// first signature, so a shorter window would drop mail after an outage;
/// replays inside the window are refused by the token dedupe key.
pub(super) const MAX_AGE: Duration = Duration::hours(9);
/// How far ahead of our clock a timestamp may be.
pub(super) const MAX_SKEW: Duration = Duration::minutes(5);
/// Mailgun's tokens are 50 characters; anything much longer is not one.
const MAX_TOKEN_LEN: usize = 256;

/// Mail headers Mailgun also posts as fields of their own, read when
/// `message-headers` is missing.
const HEADER_FIELDS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-Id",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "Precedence",
    "X-Autoreply",
    "X-Autorespond",
    "X-Failed-Recipients",
    "Return-Path",
    "Content-Type",
    "Received",
];

impl Connector for Mailgun {
    fn platform(&self) -> &'static str {
        "mailgun"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[OWN_ADDRESSES]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[SIGNING_KEY]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Mailgun {
    fn secret_keys(&self) -> &'static [&'static str] {
        &[SIGNING_KEY, PREVIOUS_SIGNING_KEY]
    }

    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let secrets: Vec<&[u8]> = self
            .secret_keys()
            .iter()
            .filter_map(|key| request.secret(key))
            .map(str::as_bytes)
            .collect();
        verify_at(
            request.settings.get(OWN_ADDRESSES),
            &secrets,
            request.headers,
            request.body,
            Utc::now(),
        )
    }

    /// Verification needs the connection's own addresses; the hub calls
    /// `verify_request`.
    fn verify(
        &self,
        _secrets: &[&[u8]],
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Intake, VerifyError> {
        Err(VerifyError::Malformed(
            "mailgun deliveries are verified with the connection's settings".to_owned(),
        ))
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
        let mut email = match form.get("body-mime") {
            Some(mime) => mime::parse_mime(&mime.value)
                .ok_or_else(|| invalid(topic, "body-mime is not a mail"))?,
            None => parsed_email(&form),
        };
        if form
            .text("sender")
            .is_some_and(|sender| mime::bounce_envelope_sender(&sender))
        {
            email.automatic = true;
        }
        let platform_time = form.text("timestamp").and_then(|t| unix_time(&t));
        Ok(thread::to_record(topic, &email, platform_time, &own, ctx)?
            .into_iter()
            .collect())
    }
}

/// The whole check with an explicit clock.
pub(super) fn verify_at(
    own_addresses: Option<&Value>,
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Intake, VerifyError> {
    let content_type = header(headers, "content-type");
    let form = Form::parse(content_type, body)
        .map_err(|reason| VerifyError::Malformed(reason.to_owned()))?;
    let field = |name: &'static str| {
        form.text(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or(VerifyError::MissingSignature(name))
    };
    let timestamp = field("timestamp")?;
    let token = field("token")?;
    let signature = field("signature")?;
    let signed = format!("{timestamp}{token}");
    if !verify_hex_hmac_sha256(secrets, signed.as_bytes(), &signature) {
        return Err(VerifyError::BadSignature);
    }
    let sent = unix_time(&timestamp)
        .ok_or_else(|| VerifyError::Malformed("timestamp is not Unix seconds".to_owned()))?;
    if sent < now - MAX_AGE || sent > now + MAX_SKEW {
        return Err(VerifyError::Malformed(
            "timestamp is outside the accepted window".to_owned(),
        ));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed("token is too long".to_owned()));
    }
    let own = OwnAddresses::from_setting(own_addresses);
    Ok(Intake::Unwrapped {
        // The inbox refuses a key it has seen: a replayed token is
        // answered "duplicate" and never processed twice.
        dedupe_key: format!("mailgun-token:{token}"),
        topic: TOPIC.to_owned(),
        body: Envelope::new(content_type, own.to_list()).wrap(body),
    })
}

fn unix_time(value: &str) -> Option<DateTime<Utc>> {
    let seconds: i64 = value.trim().parse().ok()?;
    Utc.timestamp_opt(seconds, 0).single()
}

/// A parsed (non-MIME) post: the header block from `message-headers` (or
/// the per-header fields), the body from `body-plain`/`body-html`, and the
/// file parts' metadata.
fn parsed_email(form: &Form) -> Email {
    let pairs: Option<Vec<(String, String)>> = form
        .text("message-headers")
        .and_then(|json| serde_json::from_str::<Vec<Vec<Value>>>(&json).ok())
        .map(|list| {
            list.into_iter()
                .filter_map(|pair| match pair.as_slice() {
                    [Value::String(name), Value::String(value), ..] => {
                        Some((name.clone(), value.clone()))
                    }
                    _ => None,
                })
                .collect()
        });
    let pairs = pairs.unwrap_or_else(|| {
        HEADER_FIELDS
            .iter()
            .filter_map(|name| {
                let field = form.get_ignore_case(name)?;
                Some((
                    (*name).to_owned(),
                    String::from_utf8_lossy(&field.value).into_owned(),
                ))
            })
            .collect()
    });
    let block = mime::header_block(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut email = mime::parse_header_block(&block);
    if email.from.is_none() {
        email.from = form
            .text("from")
            .and_then(|from| mime::address_list(&from).into_iter().next());
    }
    if email.subject.is_none() {
        email.subject = form.text("subject").and_then(|s| mime::decode_words(&s));
    }
    let plain = form.text("body-plain");
    email.text = plain.as_deref().and_then(mime::normalise_text).or_else(|| {
        form.text("body-html")
            .and_then(|html| mime::html_text(&html))
    });
    email.attachments = form
        .files()
        .filter(|f| f.name.starts_with("attachment-"))
        .map(|f| Attachment {
            name: f.filename.clone().filter(|n| !n.trim().is_empty()),
            content_type: f.content_type.clone(),
            size: Some(f.value.len() as u64),
        })
        .collect();
    let mut stable = block;
    stable.push(b'\n');
    stable.extend_from_slice(plain.unwrap_or_default().as_bytes());
    email.fallback_id = sha256_hex(&stable);
    email
}
