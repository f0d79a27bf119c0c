use std::collections::HashSet;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::envelope::Envelope;
use super::mime::{self, Form};
use super::thread::{self, OwnAddresses};
use super::{mailgun, Mailgun, Postmark, Sendgrid, TOPIC};
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::{hmac_sha256, sha256_hex};
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

// ---------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------

const GB2312_REPLY: &[u8] = include_bytes!("fixtures/reply-gb2312.eml");
const BIG5_FIRST: &[u8] = include_bytes!("fixtures/first-big5.eml");
const LATIN1: &[u8] = include_bytes!("fixtures/latin1-attachments.eml");
const HTML_ONLY: &[u8] = include_bytes!("fixtures/html-only.eml");
const OUTBOUND: &[u8] = include_bytes!("fixtures/outbound-reply.eml");
const BOUNCE: &[u8] = include_bytes!("fixtures/bounce-dsn.eml");
const AUTO_REPLY: &[u8] = include_bytes!("fixtures/auto-reply.eml");
const MAILGUN_FORWARD: &str = include_str!("fixtures/mailgun-forward.json");

/// The merchant's addresses as a connection would set them.
const OWN: &str =
    "Support@Shop.Example, archive@shop.example; sales@shop.example *@mail.shop.example";

const MAILGUN_KEY: &str = "key-test-signing";
const BOUNDARY: &str = "----shophub-test-boundary";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn own() -> OwnAddresses {
    OwnAddresses::from_setting(Some(&json!(OWN)))
}

fn ctx() -> DecodeContext {
    DecodeContext::default()
}

fn message_of(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn email_key(value: &str) -> IdentityKey {
    IdentityKey {
        kind: KeyKind::Email,
        value: value.to_owned(),
    }
}

/// The record of a raw mail through the shared path (no platform time).
fn record_of(raw: &[u8]) -> Result<Option<SourceRecord>, DecodeError> {
    let email = mime::parse_mime(raw).expect("a mail");
    thread::to_record(TOPIC, &email, None, &own(), &ctx())
}

fn one_record(raw: &[u8]) -> SourceRecord {
    record_of(raw).unwrap().expect("a record")
}

/// A mail assembled from header lines and a plain body.
fn mail(headers: &[&str], body: &str) -> Vec<u8> {
    let mut raw = headers.join("\r\n");
    raw.push_str("\r\n\r\n");
    raw.push_str(body);
    raw.push_str("\r\n");
    raw.into_bytes()
}

const PLAIN_HEADERS: &[&str] = &[
    "Message-ID: <plain.1@example.com>",
    "From: Ada <ada@example.com>",
    "To: support@shop.example",
    "Subject: Hello",
    "Date: Tue, 7 Jan 2025 10:00:00 +0000",
    "Content-Type: text/plain; charset=utf-8",
];

fn plain_with(extra: &[&str]) -> Vec<u8> {
    let mut headers: Vec<&str> = PLAIN_HEADERS.to_vec();
    headers.extend_from_slice(extra);
    mail(&headers, "Hi there")
}

/// One part of a `multipart/form-data` body.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    value: &'a [u8],
}

fn field<'a>(name: &'a str, value: &'a [u8]) -> Part<'a> {
    Part {
        name,
        filename: None,
        content_type: None,
        value,
    }
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = part.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(part.value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn urlencoded(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn headers_with(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn unwrapped(intake: Intake) -> (String, String, Vec<u8>) {
    match intake {
        Intake::Unwrapped {
            dedupe_key,
            topic,
            body,
        } => (dedupe_key, topic, body),
        other => panic!("expected an unwrapped delivery, got {other:?}"),
    }
}

/// Verifies through the hub's entry point and decodes what it would store.
fn verify_and_decode(
    source: &dyn WebhookSource,
    request: &WebhookRequest<'_>,
) -> (String, Vec<SourceRecord>) {
    let (key, topic, stored) = unwrapped(source.verify_request(request).unwrap());
    assert_eq!(topic, TOPIC);
    let records = source.decode(&topic, &stored, &ctx()).unwrap();
    (key, records)
}

// ---------------------------------------------------------------------------
// Connectors
// ---------------------------------------------------------------------------

#[test]
fn connectors_declare_ids_settings_and_secrets() {
    let all: [(&dyn Connector, &str, &[&str]); 3] = [
        (&Mailgun, "mailgun", &["webhook_signing_key"]),
        (&Sendgrid, "sendgrid", &["url_token"]),
        (&Postmark, "postmark", &["basic_username", "basic_password"]),
    ];
    for (connector, id, secrets) in all {
        assert_eq!(connector.platform(), id);
        assert_eq!(connector.required_settings(), &["own_addresses"]);
        assert_eq!(connector.required_secrets(), secrets);
        assert!(connector.webhooks().is_some(), "{id}");
        assert!(connector.polling().is_none(), "{id}");
        assert_eq!(crate::connector(id).map(|c| c.platform()), Some(id));
    }
}

#[test]
fn other_topics_decode_to_nothing() {
    for source in [&Mailgun as &dyn WebhookSource, &Sendgrid, &Postmark] {
        assert_eq!(
            source.decode("delivered", b"anything", &ctx()).unwrap(),
            vec![]
        );
    }
}

#[test]
fn a_stored_body_without_envelope_is_an_error() {
    let err = Postmark.decode(TOPIC, b"{}", &ctx()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: TOPIC.to_owned(),
            reason: "stored delivery has no envelope line".to_owned()
        }
    );
}

#[test]
fn envelope_round_trips_binary_bodies() {
    let body = b"line one\nline two\x00\xff\r\n";
    let envelope = Envelope::new(Some("text/plain;\n x"), vec!["a@b.c".into()]);
    let stored = envelope.wrap(body);
    let (back, rest) = Envelope::unwrap(TOPIC, &stored).unwrap();
    assert_eq!(back, envelope);
    assert_eq!(rest, body);
}

// ---------------------------------------------------------------------------
// Own addresses, direction and threading
// ---------------------------------------------------------------------------

#[test]
fn own_addresses_from_array_or_string_with_domains_and_tags() {
    let from_string = own();
    let from_array = OwnAddresses::from_setting(Some(&json!([
        "support@shop.example",
        " ARCHIVE@shop.example ",
        "sales@shop.example",
        "@mail.shop.example",
        "not an address",
        42
    ])));
    assert_eq!(from_string, from_array);
    assert_eq!(
        from_string.to_list(),
        vec![
            "archive@shop.example",
            "sales@shop.example",
            "support@shop.example",
            "*@mail.shop.example"
        ]
    );
    for address in [
        "support@shop.example",
        "<SUPPORT@SHOP.EXAMPLE>",
        "support+12345@shop.example",
        "anyone@mail.shop.example",
    ] {
        assert!(from_string.contains(address), "{address}");
    }
    for address in [
        "buyer@example.com",
        "support@shop.example.org",
        "other@shop.example",
        "anyone@sub.mail.shop.example",
        "supportx@shop.example",
    ] {
        assert!(!from_string.contains(address), "{address}");
    }
    assert_eq!(OwnAddresses::from_setting(None), OwnAddresses::default());
    assert_eq!(
        OwnAddresses::from_list(&from_string.to_list()),
        from_string,
        "the envelope's list reads back the same"
    );
}

#[test]
fn thread_root_is_first_reference_then_in_reply_to_then_own_id() {
    // References present: its first id, even with In-Reply-To.
    let gbk = mime::parse_mime(GB2312_REPLY).unwrap();
    assert_eq!(
        gbk.references,
        vec![
            "order-1001@shop.example",
            "CAGB2312.first.1@mail.example.cn",
            "shop.reply.2@shop.example"
        ]
    );
    assert_eq!(thread::thread_root(&gbk), Some("order-1001@shop.example"));
    // In-Reply-To only.
    let latin = one_record(LATIN1);
    assert_eq!(
        message_of(&latin).conversation_id,
        "order-1002@shop.example"
    );
    // Neither: the mail starts its own thread.
    let first = one_record(BIG5_FIRST);
    assert_eq!(first.external_id, "big5.first@mail.example.tw");
    assert_eq!(
        message_of(&first).conversation_id,
        "big5.first@mail.example.tw"
    );
}

#[test]
fn inbound_reply_is_keyed_by_its_sender() {
    let record = one_record(GB2312_REPLY);
    assert_eq!(record.external_id, "CAGB2312.reply.3@mail.example.cn");
    assert_eq!(record.keys, vec![email_key("li.lei@example.cn")]);
    assert_eq!(record.version, utc("2025-01-02T08:00:00Z"));
    assert_eq!(record.occurred_at, record.version);
    let message = message_of(&record);
    assert_eq!(message.direction, Direction::Inbound);
    assert_eq!(message.channel, "email");
    assert_eq!(message.conversation_id, "order-1001@shop.example");
    assert_eq!(message.sender_handle.as_deref(), Some("li.lei@example.cn"));
}

#[test]
fn outbound_reply_is_keyed_by_the_customer_not_the_merchant() {
    let record = one_record(OUTBOUND);
    // To: archive@ (own), li.lei@ (customer); Cc: sales+crm@ (own by tag).
    assert_eq!(record.keys, vec![email_key("li.lei@example.cn")]);
    assert_eq!(record.external_id, "shop.reply.2@shop.example");
    assert_eq!(record.version, utc("2025-01-02T07:00:00Z"));
    let message = message_of(&record);
    assert_eq!(message.direction, Direction::Outbound);
    assert_eq!(message.sender_name.as_deref(), Some("Shop Support"));
    assert_eq!(
        message.sender_handle.as_deref(),
        Some("support@shop.example")
    );
    assert_eq!(message.conversation_id, "order-1001@shop.example");
    assert_eq!(message.subject.as_deref(), Some("Re: Order #1001"));
    assert_eq!(
        message.text.as_deref(),
        Some("Your parcel left our warehouse today.")
    );
}

#[test]
fn mail_between_own_addresses_identifies_nobody() {
    let raw = mail(
        &[
            "Message-ID: <internal@shop.example>",
            "From: support@shop.example",
            "To: sales@shop.example",
            "Cc: someone@mail.shop.example",
            "Date: Tue, 7 Jan 2025 10:00:00 +0000",
        ],
        "internal note",
    );
    assert_eq!(record_of(&raw).unwrap(), None);
}

#[test]
fn without_own_addresses_every_mail_is_inbound() {
    let email = mime::parse_mime(OUTBOUND).unwrap();
    let record = thread::to_record(TOPIC, &email, None, &OwnAddresses::default(), &ctx())
        .unwrap()
        .unwrap();
    assert_eq!(message_of(&record).direction, Direction::Inbound);
    assert_eq!(record.keys, vec![email_key("support@shop.example")]);
}

#[test]
fn date_header_wins_then_platform_time_then_error() {
    let dated = mime::parse_mime(&plain_with(&[])).unwrap();
    let platform = utc("2030-01-01T00:00:00Z");
    let record = thread::to_record(TOPIC, &dated, Some(platform), &own(), &ctx())
        .unwrap()
        .unwrap();
    assert_eq!(record.version, utc("2025-01-07T10:00:00Z"));

    let undated = mime::parse_mime(&mail(
        &[
            "Message-ID: <u@example.com>",
            "From: ada@example.com",
            "To: support@shop.example",
        ],
        "no date",
    ))
    .unwrap();
    let record = thread::to_record(TOPIC, &undated, Some(platform), &own(), &ctx())
        .unwrap()
        .unwrap();
    assert_eq!(record.version, platform);
    assert_eq!(record.occurred_at, platform);

    let err = thread::to_record(TOPIC, &undated, None, &own(), &ctx()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: TOPIC.to_owned(),
            reason: "mail has no Date header and no platform time".to_owned()
        }
    );
}

#[test]
fn mail_without_message_id_is_identified_by_its_hash() {
    let record = one_record(HTML_ONLY);
    assert_eq!(record.external_id, sha256_hex(HTML_ONLY));
    assert_eq!(message_of(&record).conversation_id, sha256_hex(HTML_ONLY));
}

#[test]
fn sender_without_a_usable_address_identifies_nobody() {
    let raw = mail(
        &[
            "Message-ID: <x@example.com>",
            "From: Someone <not-an-address>",
            "To: support@shop.example",
            "Date: Tue, 7 Jan 2025 10:00:00 +0000",
        ],
        "hi",
    );
    assert_eq!(record_of(&raw).unwrap(), None);
    let no_from = mail(
        &[
            "Message-ID: <y@example.com>",
            "To: support@shop.example",
            "Date: Tue, 7 Jan 2025 10:00:00 +0000",
        ],
        "hi",
    );
    assert_eq!(record_of(&no_from).unwrap(), None);
}

// ---------------------------------------------------------------------------
// Auto-replies and bounces
// ---------------------------------------------------------------------------

#[test]
fn bounces_and_auto_replies_produce_no_records() {
    assert_eq!(record_of(BOUNCE).unwrap(), None);
    assert_eq!(record_of(AUTO_REPLY).unwrap(), None);
    for extra in [
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-replied; owner-email=\"x@example.com\"",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: JUNK",
        "Precedence: auto_reply",
        "X-Failed-Recipients: gone@example.com",
        "Return-Path: <>",
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=z",
    ] {
        let raw = plain_with(&[extra]);
        assert_eq!(record_of(&raw).unwrap(), None, "{extra}");
    }
}

#[test]
fn mail_system_senders_are_bounces() {
    for from in [
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "From: postmaster@example.net",
    ] {
        let raw = mail(
            &[
                "Message-ID: <b@example.net>",
                from,
                "To: support@shop.example",
                "Date: Tue, 7 Jan 2025 10:00:00 +0000",
            ],
            "Delivery failed",
        );
        assert_eq!(record_of(&raw).unwrap(), None, "{from}");
    }
}

#[test]
fn human_mail_with_harmless_headers_is_kept() {
    for extra in [
        "Auto-Submitted: no",
        "Auto-Submitted: No",
        "Precedence: list",
        "X-Autoreply: no",
        "Return-Path: <ada@example.com>",
    ] {
        let raw = plain_with(&[extra]);
        let record = record_of(&raw).unwrap();
        assert!(record.is_some(), "{extra}");
    }
}

// ---------------------------------------------------------------------------
// MIME decoding: charsets, bodies, attachments
// ---------------------------------------------------------------------------

#[test]
fn latin1_quoted_printable_and_encoded_words_decode_exactly() {
    let record = one_record(LATIN1);
    assert_eq!(record.external_id, "latin1.2@mail.example.de");
    assert_eq!(record.version, utc("2025-01-04T09:15:30Z"));
    assert_eq!(record.keys, vec![email_key("juergen@example.de")]);
    let message = message_of(&record);
    assert_eq!(message.subject.as_deref(), Some("Bestellung für Jürgen"));
    assert_eq!(message.sender_name.as_deref(), Some("Jürgen Müller"));
    assert_eq!(
        message.text.as_deref(),
        Some("Grüße aus Köln,\noù est ma commande ?")
    );
}

#[test]
fn attachments_are_metadata_only() {
    let record = one_record(LATIN1);
    let message = message_of(&record);
    assert_eq!(
        message.attachments,
        vec![
            Attachment {
                name: Some("Rechnung für 1002.pdf".to_owned()),
                content_type: Some("application/pdf".to_owned()),
                size: Some(272),
            },
            Attachment {
                name: Some("photo.png".to_owned()),
                content_type: Some("image/png".to_owned()),
                size: Some(40),
            },
        ]
    );
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains("PDF-1.4"), "{json}");
    assert!(
        !json.contains("JVBERi0"),
        "no base64 content either: {json}"
    );
    assert!(!json.contains("PNG"), "{json}");
}

#[test]
fn html_only_mail_is_converted_to_text() {
    let record = one_record(HTML_ONLY);
    let message = message_of(&record);
    assert_eq!(message.subject.as_deref(), Some("Größe tauschen"));
    assert_eq!(message.text.as_deref(), Some("Hallo,\nGröße M bitte."));
    assert_eq!(message.sender_name.as_deref(), Some("Ada"));
    assert!(message.attachments.is_empty());
}

#[test]
fn non_utf8_single_byte_charsets_decode() {
    for (charset, bytes, text) in [
        ("iso-8859-1", &b"Gr\xfc\xdfe"[..], "Grüße"),
        ("ISO-8859-2", &b"Za\xbf\xf3\xb3\xe6"[..], "Zażółć"),
        ("windows-1251", &b"\xcf\xf0\xe8\xe2\xe5\xf2"[..], "Привет"),
        ("koi8-r", &b"\xf0\xd2\xc9\xd7\xc5\xd4"[..], "Привет"),
    ] {
        let mut raw = mail(
            &[
                "Message-ID: <cs@example.com>",
                "From: ada@example.com",
                "To: support@shop.example",
                "Date: Tue, 7 Jan 2025 10:00:00 +0000",
                &format!("Content-Type: text/plain; charset={charset}"),
                "Content-Transfer-Encoding: 8bit",
            ],
            "",
        );
        raw.truncate(raw.len() - 2);
        raw.extend_from_slice(bytes);
        let record = one_record(&raw);
        assert_eq!(message_of(&record).text.as_deref(), Some(text), "{charset}");
        assert_eq!(
            mime::decode_charset(bytes, Some(charset)),
            text,
            "{charset}"
        );
    }
    assert_eq!(mime::decode_charset("ok ✓".as_bytes(), None), "ok ✓");
    assert_eq!(
        mime::decode_charset("ok ✓".as_bytes(), Some("UTF-8")),
        "ok ✓"
    );
}

// GB2312/GBK/GB18030/Big5 go through `encoding_rs`, which `mail-parser`
// only uses with its `full_encoding` feature; without it those charsets are
// read as UTF-8. These tests run once the feature is enabled.

#[test]
fn gb2312_body_subject_and_name_decode() {
    let record = one_record(GB2312_REPLY);
    let message = message_of(&record);
    assert_eq!(message.subject.as_deref(), Some("回复：订单 #1001"));
    assert_eq!(message.sender_name.as_deref(), Some("李雷"));
    assert_eq!(
        message.text.as_deref(),
        Some("你好，我的包裹在哪里？\n谢谢")
    );
    assert_eq!(
        mime::decode_charset(&[0xc4, 0xe3, 0xba, 0xc3], Some("GBK")),
        "你好"
    );
    assert_eq!(
        mime::decode_charset(&[0xc4, 0xe3, 0xba, 0xc3], Some("gb18030")),
        "你好"
    );
}

#[test]
fn big5_body_and_subject_decode() {
    let record = one_record(BIG5_FIRST);
    let message = message_of(&record);
    assert_eq!(message.subject.as_deref(), Some("訂單查詢"));
    assert_eq!(message.text.as_deref(), Some("請問我的訂單何時出貨？"));
}

#[test]
fn chinese_fixtures_keep_their_structure_whatever_the_charset_support() {
    // Ids, threading, direction and dates do not depend on the charset.
    let record = one_record(BIG5_FIRST);
    assert_eq!(record.keys, vec![email_key("chen@example.tw")]);
    assert_eq!(record.version, utc("2025-01-03T01:30:00Z"));
    assert_eq!(message_of(&record).sender_name.as_deref(), Some("Chen"));
    let email = mime::parse_mime(GB2312_REPLY).unwrap();
    assert_eq!(email.in_reply_to, vec!["shop.reply.2@shop.example"]);
    assert_eq!(email.received, Some(utc("2025-01-02T08:00:05Z")));
    assert!(email.text.is_some());
}

#[test]
fn utf8_encoded_word_subjects_decode() {
    assert_eq!(
        mime::decode_words("=?UTF-8?B?w4ljaGFuZ2UgZGUgdGFpbGxl?= =?UTF-8?Q?_=E2=9C=93?=")
            .as_deref(),
        Some("Échange de taille ✓")
    );
    assert_eq!(
        mime::decode_words("plain subject").as_deref(),
        Some("plain subject")
    );
}

// ---------------------------------------------------------------------------
// Form bodies
// ---------------------------------------------------------------------------

#[test]
fn multipart_form_fields_keep_exact_bytes() {
    let body = multipart(&[
        field("headers", b"Message-ID: <a@b>\r\nSubject: hi\r\n"),
        field("text", b"\xc4\xe3\xba\xc3 raw"),
        field("empty", b""),
        Part {
            name: "attachment1",
            filename: Some("résumé.pdf"),
            content_type: Some("Application/PDF"),
            value: b"%PDF\x00\xff\r\n--not-the-boundary\r\n",
        },
    ]);
    let form = Form::parse(Some(&multipart_type()), &body).unwrap();
    let names: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["headers", "text", "empty", "attachment1"]);
    assert_eq!(form.get("text").unwrap().value, b"\xc4\xe3\xba\xc3 raw");
    assert_eq!(form.get("empty").unwrap().value, b"");
    let file = form.get("attachment1").unwrap();
    assert_eq!(file.value, b"%PDF\x00\xff\r\n--not-the-boundary\r\n");
    assert_eq!(file.filename.as_deref(), Some("résumé.pdf"));
    assert_eq!(file.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(form.files().count(), 1);

    // A quoted boundary parameter works the same.
    let quoted = format!("multipart/form-data; charset=utf-8; boundary=\"{BOUNDARY}\"");
    assert_eq!(Form::parse(Some(&quoted), &body).unwrap(), form);
}

#[test]
fn form_errors_name_the_problem() {
    let body = multipart(&[field("a", b"1")]);
    assert_eq!(
        Form::parse(Some("multipart/form-data; boundary=other"), &body).unwrap_err(),
        "the form body has no parts (wrong or missing boundary)"
    );
    assert_eq!(
        Form::parse(Some("application/json"), b"{}").unwrap_err(),
        "the body is neither multipart/form-data nor urlencoded"
    );
}

#[test]
fn urlencoded_forms_decode_to_bytes() {
    let form = Form::parse(
        Some("application/x-www-form-urlencoded"),
        b"a=1+2%20%E2%9C%93&b=%C4%E3&c&d=100%&e=%zz",
    )
    .unwrap();
    assert_eq!(form.text("a").as_deref(), Some("1 2 ✓"));
    assert_eq!(form.get("b").unwrap().value, b"\xc4\xe3");
    assert_eq!(form.text("c").as_deref(), Some(""));
    assert_eq!(form.text("d").as_deref(), Some("100%"));
    assert_eq!(form.text("e").as_deref(), Some("%zz"));
    assert_eq!(
        Form::parse(None, b"x=y").unwrap().text("x").as_deref(),
        Some("y")
    );
}

// ---------------------------------------------------------------------------
// Mailgun
// ---------------------------------------------------------------------------

fn mailgun_sign(key: &str, timestamp: &str, token: &str) -> String {
    hex::encode(hmac_sha256(
        key.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    ))
}

fn mailgun_forward_fields() -> Vec<(String, String)> {
    let value: Value = serde_json::from_str(MAILGUN_FORWARD).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "_note")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// A signed urlencoded post of `fields` at `now`.
fn mailgun_post(fields: &[(String, String)], token: &str, now: DateTime<Utc>) -> Vec<u8> {
    let timestamp = now.timestamp().to_string();
    let signature = mailgun_sign(MAILGUN_KEY, &timestamp, token);
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("timestamp", &timestamp));
    pairs.push(("token", token));
    pairs.push(("signature", &signature));
    urlencoded(&pairs)
}

fn form_headers() -> HeaderMap {
    headers_with(&[("content-type", "application/x-www-form-urlencoded")])
}

fn mailgun_verify(
    body: &[u8],
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Intake, VerifyError> {
    mailgun::verify_at(
        Some(&json!(OWN)),
        &[MAILGUN_KEY.as_bytes()],
        headers,
        body,
        now,
    )
}

#[test]
fn mailgun_shared_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let vector = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "mailgun-webhook")
        .unwrap();
    let key = vector["inputs"]["signing_key"].as_str().unwrap();
    let timestamp = vector["inputs"]["timestamp"].as_str().unwrap();
    let token = vector["inputs"]["token"].as_str().unwrap();
    let signature = vector["expected"]["signature"].as_str().unwrap();
    assert_eq!(mailgun_sign(key, timestamp, token), signature);

    let body = urlencoded(&[
        ("timestamp", timestamp),
        ("token", token),
        ("signature", signature),
        ("body-mime", std::str::from_utf8(OUTBOUND).unwrap()),
    ]);
    let now = Utc.timestamp_opt(1_700_000_060, 0).unwrap();
    let intake = mailgun::verify_at(
        None,
        &[b"old-key", key.as_bytes()],
        &form_headers(),
        &body,
        now,
    )
    .unwrap();
    let (dedupe_key, topic, stored) = unwrapped(intake);
    assert_eq!(dedupe_key, format!("mailgun-token:{token}"));
    assert_eq!(topic, "inbound");
    let (envelope, rest) = Envelope::unwrap(TOPIC, &stored).unwrap();
    assert_eq!(rest, &body[..]);
    assert_eq!(
        envelope.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn mailgun_rejects_bad_or_missing_signatures() {
    let now = Utc::now();
    let fields = mailgun_forward_fields();
    let good = mailgun_post(&fields, "tok-1", now);
    assert!(mailgun_verify(&good, &form_headers(), now).is_ok());

    // Wrong key.
    let wrong = mailgun::verify_at(None, &[b"another-key"], &form_headers(), &good, now);
    assert_eq!(wrong.unwrap_err(), VerifyError::BadSignature);
    // No key configured.
    let none = mailgun::verify_at(None, &[], &form_headers(), &good, now);
    assert_eq!(none.unwrap_err(), VerifyError::BadSignature);
    // A token swapped under a genuine signature.
    let timestamp = now.timestamp().to_string();
    let signature = mailgun_sign(MAILGUN_KEY, &timestamp, "tok-1");
    let swapped = urlencoded(&[
        ("timestamp", &timestamp),
        ("token", "tok-2"),
        ("signature", &signature),
    ]);
    assert_eq!(
        mailgun_verify(&swapped, &form_headers(), now).unwrap_err(),
        VerifyError::BadSignature
    );
    // Missing fields, named.
    for (missing, body) in [
        (
            "signature",
            urlencoded(&[("timestamp", &timestamp), ("token", "tok-1")]),
        ),
        (
            "token",
            urlencoded(&[("timestamp", &timestamp), ("signature", &signature)]),
        ),
        (
            "timestamp",
            urlencoded(&[("token", "tok-1"), ("signature", &signature)]),
        ),
    ] {
        assert_eq!(
            mailgun_verify(&body, &form_headers(), now).unwrap_err(),
            VerifyError::MissingSignature(missing)
        );
    }
    // Not a form at all.
    assert!(matches!(
        mailgun_verify(
            b"{}",
            &headers_with(&[("content-type", "application/json")]),
            now
        ),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn mailgun_rejects_stale_and_future_timestamps() {
    let fields = mailgun_forward_fields();
    let sent = utc("2025-01-01T12:00:00Z");
    let body = mailgun_post(&fields, "tok-time", sent);
    let ok_at = [sent, sent + Duration::hours(8), sent - Duration::minutes(4)];
    for now in ok_at {
        assert!(mailgun_verify(&body, &form_headers(), now).is_ok(), "{now}");
    }
    let stale = mailgun_verify(
        &body,
        &form_headers(),
        sent + mailgun::MAX_AGE + Duration::seconds(1),
    );
    assert_eq!(
        stale.unwrap_err(),
        VerifyError::Malformed("timestamp is outside the accepted window".to_owned())
    );
    let future = mailgun_verify(
        &body,
        &form_headers(),
        sent - mailgun::MAX_SKEW - Duration::seconds(1),
    );
    assert_eq!(
        future.unwrap_err(),
        VerifyError::Malformed("timestamp is outside the accepted window".to_owned())
    );
}

#[test]
fn mailgun_replayed_token_is_refused_by_the_inbox_dedupe_key() {
    let now = Utc::now();
    let fields = mailgun_forward_fields();
    let body = mailgun_post(&fields, "replayed-token", now);
    // The hub's inbox: unique per dedupe key, answers "duplicate" on a repeat.
    let mut inbox = HashSet::new();
    let first = unwrapped(mailgun_verify(&body, &form_headers(), now).unwrap()).0;
    assert_eq!(first, "mailgun-token:replayed-token");
    assert!(inbox.insert(first), "first delivery is stored");
    let replay =
        unwrapped(mailgun_verify(&body, &form_headers(), now + Duration::minutes(1)).unwrap()).0;
    assert!(!inbox.insert(replay), "the replay is a duplicate");
    // A new token for the same mail is a new delivery (the record dedupes it).
    let other = mailgun_post(&fields, "fresh-token", now);
    let fresh = unwrapped(mailgun_verify(&other, &form_headers(), now).unwrap()).0;
    assert!(inbox.insert(fresh));
}

#[test]
fn mailgun_parsed_fields_decode_exactly() {
    let now = Utc::now();
    let body = mailgun_post(&mailgun_forward_fields(), "tok-parsed", now);
    let settings = map(json!({ "own_addresses": ["support@shop.example"] }));
    let secrets = map(json!({ "webhook_signing_key": MAILGUN_KEY }));
    let headers = form_headers();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: "",
        headers: &headers,
        body: &body,
    };
    let (key, records) = verify_and_decode(&Mailgun, &request);
    assert_eq!(key, "mailgun-token:tok-parsed");
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.external_id, "CAF=abc@mail.example.com");
    assert_eq!(record.version, utc("2025-01-01T12:00:00Z"));
    assert_eq!(record.keys, vec![email_key("buyer@example.com")]);
    let message = message_of(record);
    assert_eq!(
        message,
        &Message {
            conversation_id: "order-1001@shop.example".to_owned(),
            channel: "email".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Ada Lovelace".to_owned()),
            sender_handle: Some("buyer@example.com".to_owned()),
            text: Some(
                "Where is my parcel?\n\nOn Wed, 1 Jan 2025, Shop wrote:\n> Your order has shipped."
                    .to_owned()
            ),
            subject: Some("Re: Order #1001".to_owned()),
            attachments: vec![],
        }
    );
}

#[test]
fn mailgun_without_message_headers_reads_the_header_fields() {
    let now = Utc::now();
    let fields: Vec<(String, String)> = mailgun_forward_fields()
        .into_iter()
        .filter(|(k, _)| k != "message-headers")
        .collect();
    let body = mailgun_post(&fields, "tok-fields", now);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &form_headers(), now).unwrap());
    let records = Mailgun.decode(TOPIC, &stored, &ctx()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].external_id, "CAF=abc@mail.example.com");
    assert_eq!(
        message_of(&records[0]).conversation_id,
        "order-1001@shop.example"
    );
    assert_eq!(records[0].version, utc("2025-01-01T12:00:00Z"));
}

#[test]
fn mailgun_multipart_attachments_are_metadata_only() {
    let now = Utc::now();
    let timestamp = now.timestamp().to_string();
    let signature = mailgun_sign(MAILGUN_KEY, &timestamp, "tok-files");
    let fields = mailgun_forward_fields();
    let mut parts: Vec<Part<'_>> = fields
        .iter()
        .filter(|(k, _)| k != "attachment-count")
        .map(|(k, v)| field(k, v.as_bytes()))
        .collect();
    let content = b"\x89PNG\r\n\x1a\nSECRET-IMAGE-BYTES";
    parts.extend([
        field("timestamp", timestamp.as_bytes()),
        field("token", b"tok-files"),
        field("signature", signature.as_bytes()),
        field("attachment-count", b"1"),
        Part {
            name: "attachment-1",
            filename: Some("label.png"),
            content_type: Some("image/png"),
            value: content,
        },
    ]);
    let body = multipart(&parts);
    let headers = headers_with(&[("content-type", &multipart_type())]);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &headers, now).unwrap());
    let records = Mailgun.decode(TOPIC, &stored, &ctx()).unwrap();
    let message = message_of(&records[0]);
    assert_eq!(
        message.attachments,
        vec![Attachment {
            name: Some("label.png".to_owned()),
            content_type: Some("image/png".to_owned()),
            size: Some(content.len() as u64),
        }]
    );
    let json = serde_json::to_string(&records[0]).unwrap();
    assert!(!json.contains("SECRET-IMAGE-BYTES"), "{json}");
}

#[test]
fn mailgun_body_mime_decodes_the_raw_mail() {
    let now = Utc::now();
    let timestamp = now.timestamp().to_string();
    let signature = mailgun_sign(MAILGUN_KEY, &timestamp, "tok-mime");
    let body = multipart(&[
        field("recipient", b"support@shop.example"),
        field("sender", b"juergen@example.de"),
        field("from", "Jürgen Müller <juergen@example.de>".as_bytes()),
        field("subject", "Bestellung für Jürgen".as_bytes()),
        field("body-mime", LATIN1),
        field("timestamp", timestamp.as_bytes()),
        field("token", b"tok-mime"),
        field("signature", signature.as_bytes()),
    ]);
    let headers = headers_with(&[("content-type", &multipart_type())]);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &headers, now).unwrap());
    let records = Mailgun.decode(TOPIC, &stored, &ctx()).unwrap();
    assert_eq!(records, vec![one_record(LATIN1)]);
}

#[test]
fn mailgun_uses_its_timestamp_when_the_mail_has_no_date() {
    let sent = utc("2025-02-03T04:05:06Z");
    let raw = mail(
        &[
            "Message-ID: <nodate@example.com>",
            "From: ada@example.com",
            "To: support@shop.example",
        ],
        "no date header",
    );
    let fields = vec![
        ("body-mime".to_owned(), String::from_utf8(raw).unwrap()),
        ("sender".to_owned(), "ada@example.com".to_owned()),
    ];
    let body = mailgun_post(&fields, "tok-nodate", sent);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &form_headers(), sent).unwrap());
    let records = Mailgun.decode(TOPIC, &stored, &ctx()).unwrap();
    assert_eq!(records[0].version, sent);
}

#[test]
fn mailgun_null_envelope_sender_and_bounce_mime_produce_nothing() {
    let now = Utc::now();
    let mut fields = mailgun_forward_fields();
    for (k, v) in fields.iter_mut() {
        if k == "sender" {
            v.clear();
        }
    }
    let body = mailgun_post(&fields, "tok-bounce", now);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &form_headers(), now).unwrap());
    assert_eq!(Mailgun.decode(TOPIC, &stored, &ctx()).unwrap(), vec![]);

    let fields = vec![(
        "body-mime".to_owned(),
        String::from_utf8(BOUNCE.to_vec()).unwrap(),
    )];
    let body = mailgun_post(&fields, "tok-dsn", now);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &form_headers(), now).unwrap());
    assert_eq!(Mailgun.decode(TOPIC, &stored, &ctx()).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------
// SendGrid
// ---------------------------------------------------------------------------

const SENDGRID_TOKEN: &str = "sg-url-token-7f3a";

/// The shared sample's form fields, optionally changed.
fn sendgrid_fields(change: impl FnOnce(&mut Map<String, Value>)) -> Vec<(String, Vec<u8>)> {
    let mut sample = fixtures::resource("sendgrid-inbound-parse.json");
    change(sample.as_object_mut().unwrap());
    sample
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .collect()
}

fn sendgrid_body(fields: &[(String, Vec<u8>)], files: &[Part<'_>]) -> Vec<u8> {
    let mut parts: Vec<Part<'_>> = fields.iter().map(|(k, v)| field(k, v)).collect();
    parts.extend(files.iter().map(|p| Part {
        name: p.name,
        filename: p.filename,
        content_type: p.content_type,
        value: p.value,
    }));
    multipart(&parts)
}

fn sendgrid_verify(query: &str, body: &[u8]) -> Result<Intake, VerifyError> {
    let settings = map(json!({ "own_addresses": OWN }));
    let secrets = map(json!({ "url_token": SENDGRID_TOKEN }));
    let headers = headers_with(&[("content-type", &multipart_type())]);
    Sendgrid.verify_request(&WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query,
        headers: &headers,
        body,
    })
}

fn sendgrid_decode(body: &[u8]) -> Result<Vec<SourceRecord>, DecodeError> {
    let (_, topic, stored) =
        unwrapped(sendgrid_verify(&format!("token={SENDGRID_TOKEN}"), body).unwrap());
    Sendgrid.decode(&topic, &stored, &ctx())
}

/// A realistic header block for the sample (its own is abbreviated).
const SENDGRID_HEADERS: &str = "Received: from mail.example.com (mail.example.com [203.0.113.5]) by mx.sendgrid.net with ESMTP id x1; Wed, 01 Jan 2025 12:00:07 +0000 (UTC)\nMessage-ID: <CAF=abc@mail.example.com>\nIn-Reply-To: <order-1001@shop.example>\nFrom: Ada Lovelace <buyer@example.com>\nTo: support@parse.example.com\nSubject: Re: Order #1001\n";

#[test]
fn sendgrid_token_in_the_url_is_checked() {
    let body = sendgrid_body(&sendgrid_fields(|_| {}), &[]);
    let (key, topic, _) =
        unwrapped(sendgrid_verify(&format!("token={SENDGRID_TOKEN}"), &body).unwrap());
    assert_eq!(key, "message-id:CAF=abc@mail.example.com");
    assert_eq!(topic, "inbound");
    assert_eq!(
        sendgrid_verify("token=wrong", &body).unwrap_err(),
        VerifyError::BadSignature
    );
    assert_eq!(
        sendgrid_verify(&format!("token={SENDGRID_TOKEN}x"), &body).unwrap_err(),
        VerifyError::BadSignature
    );
    assert_eq!(
        sendgrid_verify("", &body).unwrap_err(),
        VerifyError::MissingSignature("token")
    );
    assert_eq!(
        sendgrid_verify("other=1&token=", &body).unwrap_err(),
        VerifyError::MissingSignature("token")
    );
    // A connection without the secret refuses everything.
    let settings = Map::new();
    let secrets = Map::new();
    let headers = headers_with(&[("content-type", &multipart_type())]);
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: "token=anything",
        headers: &headers,
        body: &body,
    };
    assert_eq!(
        Sendgrid.verify_request(&request).unwrap_err(),
        VerifyError::BadSignature
    );
    assert_eq!(
        Sendgrid.verify(&[], &headers, &body).unwrap_err(),
        VerifyError::MissingSignature("token")
    );
}

#[test]
fn sendgrid_dedupe_falls_back_to_the_body_hash() {
    let body = sendgrid_body(
        &sendgrid_fields(|m| {
            m.insert("headers".into(), json!("Subject: no id\n"));
        }),
        &[],
    );
    let (key, _, _) =
        unwrapped(sendgrid_verify(&format!("token={SENDGRID_TOKEN}"), &body).unwrap());
    assert_eq!(key, format!("sha256:{}", sha256_hex(&body)));
}

#[test]
fn sendgrid_sample_without_any_time_fails_naming_the_date() {
    // The shared sample's header block is abbreviated: no Date, no dated
    // Received line, so the mail cannot be versioned.
    let body = sendgrid_body(&sendgrid_fields(|_| {}), &[]);
    assert_eq!(
        sendgrid_decode(&body).unwrap_err(),
        DecodeError::Invalid {
            topic: TOPIC.to_owned(),
            reason: "mail has no Date header and no platform time".to_owned()
        }
    );
}

#[test]
fn sendgrid_parsed_fields_decode_exactly() {
    let body = sendgrid_body(
        &sendgrid_fields(|m| {
            m.insert("headers".into(), json!(SENDGRID_HEADERS));
        }),
        &[],
    );
    let records = sendgrid_decode(&body).unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.external_id, "CAF=abc@mail.example.com");
    // No Date header: the receiving MX's Received time.
    assert_eq!(record.version, utc("2025-01-01T12:00:07Z"));
    assert_eq!(record.keys, vec![email_key("buyer@example.com")]);
    assert_eq!(
        message_of(record),
        &Message {
            conversation_id: "order-1001@shop.example".to_owned(),
            channel: "email".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Ada Lovelace".to_owned()),
            sender_handle: Some("buyer@example.com".to_owned()),
            text: Some("Where is my parcel?".to_owned()),
            subject: Some("Re: Order #1001".to_owned()),
            attachments: vec![],
        }
    );
}

#[test]
fn sendgrid_fields_are_read_in_their_charsets() {
    // The raw header block carries the subject as 8-bit windows-1252, which
    // is not UTF-8; the extracted `subject` field and its charset win.
    let mut fields = sendgrid_fields(|m| {
        m.insert(
            "charsets".into(),
            json!(r#"{"to":"UTF-8","subject":"windows-1252","from":"UTF-8","text":"iso-8859-1","html":"iso-8859-1"}"#),
        );
    });
    for (name, value) in fields.iter_mut() {
        match name.as_str() {
            "headers" => {
                *value = b"Message-ID: <cs@example.com>\nDate: Thu, 02 Jan 2025 10:00:00 +0000\nSubject: Caf\xe9 \x93cr\xe8me\x94\n".to_vec();
            }
            "subject" => *value = b"Caf\xe9 \x93cr\xe8me\x94".to_vec(),
            "text" => *value = b"Gr\xfc\xdfe, o\xf9 est ma commande?".to_vec(),
            _ => {}
        }
    }
    let body = sendgrid_body(&fields, &[]);
    let records = sendgrid_decode(&body).unwrap();
    let message = message_of(&records[0]);
    assert_eq!(message.subject.as_deref(), Some("Café “crème”"));
    assert_eq!(message.text.as_deref(), Some("Grüße, où est ma commande?"));
    assert_eq!(records[0].version, utc("2025-01-02T10:00:00Z"));
}

#[test]
fn sendgrid_gb2312_text_field_decodes() {
    let mut fields = sendgrid_fields(|m| {
        m.insert("headers".into(), json!(SENDGRID_HEADERS));
        m.insert(
            "charsets".into(),
            json!(r#"{"text":"gb2312","subject":"UTF-8"}"#),
        );
    });
    for (name, value) in fields.iter_mut() {
        if name == "text" {
            *value = vec![0xc4, 0xe3, 0xba, 0xc3];
        }
    }
    let records = sendgrid_decode(&sendgrid_body(&fields, &[])).unwrap();
    assert_eq!(message_of(&records[0]).text.as_deref(), Some("你好"));
}

#[test]
fn sendgrid_attachments_are_metadata_only() {
    let fields = sendgrid_fields(|m| {
        m.insert("headers".into(), json!(SENDGRID_HEADERS));
        m.insert("attachments".into(), json!("2"));
        m.insert(
            "attachment-info".into(),
            json!(r#"{"attachment1":{"filename":"invoice.pdf","name":"invoice.pdf","type":"application/pdf"},"attachment2":{"filename":"noname.bin","type":"application/octet-stream"}}"#),
        );
    });
    let pdf = b"%PDF-1.7 SECRET-PDF-BYTES \x00\x01\x02";
    let files = [
        Part {
            name: "attachment1",
            filename: Some("invoice.pdf"),
            content_type: Some("application/pdf"),
            value: pdf,
        },
        Part {
            name: "attachment2",
            filename: Some(""),
            content_type: None,
            value: b"12345",
        },
    ];
    let records = sendgrid_decode(&sendgrid_body(&fields, &files)).unwrap();
    assert_eq!(
        message_of(&records[0]).attachments,
        vec![
            Attachment {
                name: Some("invoice.pdf".to_owned()),
                content_type: Some("application/pdf".to_owned()),
                size: Some(pdf.len() as u64),
            },
            Attachment {
                name: Some("noname.bin".to_owned()),
                content_type: Some("application/octet-stream".to_owned()),
                size: Some(5),
            },
        ]
    );
    let json = serde_json::to_string(&records[0]).unwrap();
    assert!(!json.contains("SECRET-PDF-BYTES"), "{json}");
}

#[test]
fn sendgrid_raw_mime_mode_decodes_the_email_field() {
    let fields = vec![
        ("to".to_owned(), b"support@shop.example".to_vec()),
        ("from".to_owned(), b"juergen@example.de".to_vec()),
        (
            "envelope".to_owned(),
            br#"{"to":["support@shop.example"],"from":"juergen@example.de"}"#.to_vec(),
        ),
        ("email".to_owned(), LATIN1.to_vec()),
    ];
    let body = sendgrid_body(&fields, &[]);
    let (key, _, _) =
        unwrapped(sendgrid_verify(&format!("token={SENDGRID_TOKEN}"), &body).unwrap());
    assert_eq!(key, "message-id:latin1.2@mail.example.de");
    assert_eq!(sendgrid_decode(&body).unwrap(), vec![one_record(LATIN1)]);
}

#[test]
fn sendgrid_bounces_produce_nothing() {
    let dsn = vec![
        (
            "envelope".to_owned(),
            br#"{"to":["support@shop.example"],"from":""}"#.to_vec(),
        ),
        ("email".to_owned(), BOUNCE.to_vec()),
    ];
    assert_eq!(sendgrid_decode(&sendgrid_body(&dsn, &[])).unwrap(), vec![]);
    // A human-looking mail with an empty SMTP sender is a bounce too.
    let fields = sendgrid_fields(|m| {
        m.insert("headers".into(), json!(SENDGRID_HEADERS));
        m.insert(
            "envelope".into(),
            json!(r#"{"to":["support@parse.example.com"],"from":""}"#),
        );
    });
    assert_eq!(
        sendgrid_decode(&sendgrid_body(&fields, &[])).unwrap(),
        vec![]
    );
}

// ---------------------------------------------------------------------------
// Postmark
// ---------------------------------------------------------------------------

fn postmark_sample() -> Value {
    fixtures::resource("postmark-inbound.json")
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn postmark_verify(authorization: Option<&str>, body: &[u8]) -> Result<Intake, VerifyError> {
    let settings = map(json!({ "own_addresses": OWN }));
    let secrets = map(json!({ "basic_username": "postmark", "basic_password": "s3cret:pass" }));
    let mut pairs = vec![("content-type", "application/json")];
    if let Some(value) = authorization {
        pairs.push(("authorization", value));
    }
    let headers = headers_with(&pairs);
    Postmark.verify_request(&WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: "",
        headers: &headers,
        body,
    })
}

fn postmark_decode(sample: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    let body = serde_json::to_vec(sample).unwrap();
    let (_, topic, stored) =
        unwrapped(postmark_verify(Some(&basic("postmark", "s3cret:pass")), &body).unwrap());
    Postmark.decode(&topic, &stored, &ctx())
}

#[test]
fn postmark_basic_auth_is_checked() {
    let body = serde_json::to_vec(&postmark_sample()).unwrap();
    let (key, topic, _) =
        unwrapped(postmark_verify(Some(&basic("postmark", "s3cret:pass")), &body).unwrap());
    assert_eq!(key, "postmark:<postmark-assigned uuid>");
    assert_eq!(topic, "inbound");
    // Case-insensitive scheme.
    let lower = basic("postmark", "s3cret:pass").replacen("Basic", "basic", 1);
    assert!(postmark_verify(Some(&lower), &body).is_ok());

    for bad in [
        basic("postmark", "wrong"),
        basic("other", "s3cret:pass"),
        basic("postmark", "s3cret:pas"),
        "Bearer cG9zdG1hcms6czNjcmV0OnBhc3M=".to_owned(),
        "Basic !!!not-base64".to_owned(),
        "Basic".to_owned(),
    ] {
        assert_eq!(
            postmark_verify(Some(&bad), &body).unwrap_err(),
            VerifyError::BadSignature,
            "{bad}"
        );
    }
    assert_eq!(
        postmark_verify(None, &body).unwrap_err(),
        VerifyError::MissingSignature("Authorization")
    );
    assert!(matches!(
        postmark_verify(Some(&basic("postmark", "s3cret:pass")), b"not json"),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn postmark_sample_decodes_exactly() {
    let records = postmark_decode(&postmark_sample()).unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    // The mail's own Message-ID from Headers, not Postmark's MessageID.
    assert_eq!(record.external_id, "CAF=abc@mail.example.com");
    assert_eq!(record.version, utc("2025-01-01T12:00:00Z"));
    assert_eq!(record.occurred_at, utc("2025-01-01T12:00:00Z"));
    assert_eq!(record.keys, vec![email_key("buyer@example.com")]);
    assert_eq!(
        message_of(record),
        &Message {
            conversation_id: "order-1001@shop.example.com".to_owned(),
            channel: "email".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Ada Lovelace".to_owned()),
            sender_handle: Some("buyer@example.com".to_owned()),
            text: Some("Where is my parcel?\n\nOn ... wrote: ...".to_owned()),
            subject: Some("Re: Order #1001".to_owned()),
            attachments: vec![],
        }
    );
}

#[test]
fn postmark_falls_back_to_its_message_id_and_html() {
    let mut sample = postmark_sample();
    sample["Headers"] = json!([{ "Name": "X-Spam-Status", "Value": "No" }]);
    sample["TextBody"] = json!("");
    sample["HtmlBody"] = json!("<div>Where is <b>my</b> parcel?</div>");
    let records = postmark_decode(&sample).unwrap();
    let record = &records[0];
    assert_eq!(record.external_id, "<postmark-assigned uuid>");
    assert_eq!(
        message_of(record).conversation_id,
        "<postmark-assigned uuid>"
    );
    assert_eq!(
        message_of(record).text.as_deref(),
        Some("Where is my parcel?")
    );
}

#[test]
fn postmark_attachments_are_metadata_only() {
    let mut sample = postmark_sample();
    sample["Attachments"] = json!([
        {
            "Name": "receipt.pdf",
            "Content": "JVBERi0xLjQKU0VDUkVULUNPTlRFTlQ=",
            "ContentType": "application/pdf",
            "ContentLength": 22,
            "ContentID": ""
        }
    ]);
    let records = postmark_decode(&sample).unwrap();
    assert_eq!(
        message_of(&records[0]).attachments,
        vec![Attachment {
            name: Some("receipt.pdf".to_owned()),
            content_type: Some("application/pdf".to_owned()),
            size: Some(22),
        }]
    );
    let json = serde_json::to_string(&records[0]).unwrap();
    assert!(!json.contains("JVBERi0"), "{json}");
}

#[test]
fn postmark_outbound_copy_is_keyed_by_the_customer() {
    let mut sample = postmark_sample();
    sample["From"] = json!("support@shop.example");
    sample["FromName"] = json!("Shop Support");
    sample["FromFull"] =
        json!({ "Email": "support@shop.example", "Name": "Shop Support", "MailboxHash": "" });
    sample["To"] = json!("Ada Lovelace <buyer@example.com>");
    sample["ToFull"] =
        json!([{ "Email": "buyer@example.com", "Name": "Ada Lovelace", "MailboxHash": "" }]);
    sample["CcFull"] =
        json!([{ "Email": "support+12345@shop.example", "Name": "", "MailboxHash": "12345" }]);
    let records = postmark_decode(&sample).unwrap();
    assert_eq!(records[0].keys, vec![email_key("buyer@example.com")]);
    let message = message_of(&records[0]);
    assert_eq!(message.direction, Direction::Outbound);
    assert_eq!(
        message.sender_handle.as_deref(),
        Some("support@shop.example")
    );
}

#[test]
fn postmark_auto_replies_and_bounces_produce_nothing() {
    let mut auto = postmark_sample();
    auto["Headers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "Name": "Auto-Submitted", "Value": "auto-replied" }));
    assert_eq!(postmark_decode(&auto).unwrap(), vec![]);

    let mut precedence = postmark_sample();
    precedence["Headers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "Name": "Precedence", "Value": "junk" }));
    assert_eq!(postmark_decode(&precedence).unwrap(), vec![]);

    let mut daemon = postmark_sample();
    daemon["FromFull"] =
        json!({ "Email": "MAILER-DAEMON@mx.example.com", "Name": "Mail Delivery System" });
    assert_eq!(postmark_decode(&daemon).unwrap(), vec![]);
}

#[test]
fn postmark_without_a_date_uses_the_received_header() {
    let mut sample = postmark_sample();
    sample["Date"] = json!("");
    sample["Headers"].as_array_mut().unwrap().push(json!({
        "Name": "Received",
        "Value": "by p-pm-inboundg02a-aws-useast1a.inbound.postmarkapp.com (Postfix, from userid 996) id 8ED1A453CA4; Wed, 01 Jan 2025 12:00:04 +0000 (UTC)"
    }));
    let records = postmark_decode(&sample).unwrap();
    assert_eq!(records[0].version, utc("2025-01-01T12:00:04Z"));
}

// ---------------------------------------------------------------------------
// Per-platform threading, rotation and the hub's entry points
// ---------------------------------------------------------------------------

#[test]
fn direct_verify_without_the_connection_is_refused() {
    let headers = form_headers();
    assert!(matches!(
        Mailgun.verify(&[MAILGUN_KEY.as_bytes()], &headers, b"a=b"),
        Err(VerifyError::Malformed(_))
    ));
    assert_eq!(
        Postmark.verify(&[b"x"], &headers, b"{}").unwrap_err(),
        VerifyError::MissingSignature("Authorization")
    );
}

#[test]
fn mailgun_accepts_the_previous_key_during_a_rotation() {
    let now = Utc::now();
    let body = mailgun_post(&mailgun_forward_fields(), "tok-rotation", now);
    let settings = map(json!({ "own_addresses": ["Support@Shop.Example", "*@mail.shop.example"] }));
    let secrets = map(json!({
        "webhook_signing_key": "key-new",
        "previous_webhook_signing_key": MAILGUN_KEY
    }));
    let headers = form_headers();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: "",
        headers: &headers,
        body: &body,
    };
    let (_, _, stored) = unwrapped(Mailgun.verify_request(&request).unwrap());
    let (envelope, _) = Envelope::unwrap(TOPIC, &stored).unwrap();
    assert_eq!(
        envelope.own_addresses,
        vec!["support@shop.example", "*@mail.shop.example"]
    );
    let only_new = map(json!({ "webhook_signing_key": "key-new" }));
    let request = WebhookRequest {
        secrets: &only_new,
        ..request
    };
    assert_eq!(
        Mailgun.verify_request(&request).unwrap_err(),
        VerifyError::BadSignature
    );
}

#[test]
fn mailgun_thread_root_falls_back_to_in_reply_to() {
    let now = Utc::now();
    let fields: Vec<(String, String)> = mailgun_forward_fields()
        .into_iter()
        .filter(|(k, _)| k != "message-headers" && k != "References")
        .collect();
    let body = mailgun_post(&fields, "tok-irt", now);
    let (_, _, stored) = unwrapped(mailgun_verify(&body, &form_headers(), now).unwrap());
    let records = Mailgun.decode(TOPIC, &stored, &ctx()).unwrap();
    assert_eq!(
        message_of(&records[0]).conversation_id,
        "shop.reply.2@shop.example"
    );
}

#[test]
fn sendgrid_outbound_copy_threads_by_references_and_keys_the_customer() {
    let fields = vec![
        (
            "envelope".to_owned(),
            br#"{"to":["archive@shop.example"],"from":"support@shop.example"}"#.to_vec(),
        ),
        ("email".to_owned(), OUTBOUND.to_vec()),
    ];
    let records = sendgrid_decode(&sendgrid_body(&fields, &[])).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].keys, vec![email_key("li.lei@example.cn")]);
    let message = message_of(&records[0]);
    assert_eq!(message.direction, Direction::Outbound);
    assert_eq!(message.conversation_id, "order-1001@shop.example");
}

#[test]
fn postmark_references_give_the_thread_root() {
    let mut sample = postmark_sample();
    sample["Headers"].as_array_mut().unwrap().push(json!({
        "Name": "References",
        "Value": "<root.0@shop.example>\r\n <order-1001@shop.example.com>"
    }));
    let records = postmark_decode(&sample).unwrap();
    assert_eq!(
        message_of(&records[0]).conversation_id,
        "root.0@shop.example"
    );
}
