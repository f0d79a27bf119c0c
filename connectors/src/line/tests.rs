use base64::Engine as _;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::webhook::signature_matches;
use super::Line;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, RecordKind, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::{hmac_sha256, sha256_hex};
use crate::webhook::{
    DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const SECRET: &[u8] = b"line-channel-secret";
const USER: &str = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa";

// --- helpers ----------------------------------------------------------------

fn sample_body() -> Value {
    fixtures::load("line-webhook.json")["body"].clone()
}

fn batch_body() -> Value {
    let mut value: Value = serde_json::from_str(include_str!("fixtures/batch.json")).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body))
}

fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-line-signature",
        HeaderValue::from_str(&sign(secret, body)).unwrap(),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fn verify(body: &[u8]) -> Result<Intake, VerifyError> {
    Line.verify(&[SECRET], &signed_headers(SECRET, body), body)
}

fn delivery(body: &[u8]) -> (String, String) {
    match verify(body).unwrap() {
        Intake::Delivery { dedupe_key, topic } => (dedupe_key, topic),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn decode(body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    Line.decode("message", &bytes(body), &DecodeContext::default())
}

fn message_of(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn customer(id: &str) -> Vec<IdentityKey> {
    vec![IdentityKey {
        kind: KeyKind::CustomerId,
        value: id.to_owned(),
    }]
}

fn at_millis(millis: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).unwrap()
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_with_its_secret() {
    let c = crate::connector("line").expect("line in registry");
    assert_eq!(c.platform(), "line");
    assert!(c.required_settings().is_empty());
    assert_eq!(c.required_secrets(), &["channel_secret"]);
    assert!(c.webhooks().is_some());
    assert!(c.polling().is_none());
    assert_eq!(Line.secret_keys(), &["channel_secret"]);
}

// --- verify -----------------------------------------------------------------

#[test]
fn shared_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "line-x-line-signature")
        .expect("line vector");
    let secret = v["inputs"]["secret"].as_str().unwrap();
    let body = v["inputs"]["body"].as_str().unwrap();
    let expected = v["expected"]["x-line-signature"].as_str().unwrap();
    assert_eq!(sign(secret.as_bytes(), body.as_bytes()), expected);
    assert!(signature_matches(
        &[secret.as_bytes()],
        body.as_bytes(),
        expected
    ));
    assert!(!signature_matches(&[SECRET], body.as_bytes(), expected));

    // Through `verify`: the signature passes, and the body (not a LINE
    // webhook) is then refused as malformed rather than as a bad signature.
    let mut headers = HeaderMap::new();
    headers.insert("x-line-signature", HeaderValue::from_str(expected).unwrap());
    assert_eq!(
        Line.verify(&[secret.as_bytes()], &headers, body.as_bytes()),
        Err(VerifyError::Malformed(
            "body is not a LINE webhook".to_owned()
        ))
    );
    assert_eq!(
        Line.verify(&[b"other"], &headers, body.as_bytes()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_accepts_the_sample_delivery() {
    let body = bytes(&sample_body());
    assert_eq!(
        verify(&body).unwrap(),
        Intake::Delivery {
            dedupe_key: "events:01FZ74A0TDDPYRVKNK77XKC3ZR".to_owned(),
            topic: "message".to_owned(),
        }
    );
}

#[test]
fn verify_rejects_a_tampered_body() {
    let body = bytes(&sample_body());
    let headers = signed_headers(SECRET, &body);
    let mut tampered = sample_body();
    tampered["events"][0]["message"]["text"] = json!("Refund me twice");
    assert_eq!(
        Line.verify(&[SECRET], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_wrong_secret() {
    let body = bytes(&sample_body());
    let headers = signed_headers(b"reissued-secret", &body);
    assert_eq!(
        Line.verify(&[SECRET], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Line.verify(&[], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_missing_or_garbled_signature() {
    let body = bytes(&sample_body());
    assert_eq!(
        Line.verify(&[SECRET], &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature("X-Line-Signature"))
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-line-signature",
        HeaderValue::from_static("%%% not base64"),
    );
    assert_eq!(
        Line.verify(&[SECRET], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    // A truncated digest is no prefix match.
    let digest = hmac_sha256(SECRET, &body);
    let short = base64::engine::general_purpose::STANDARD.encode(&digest[..16]);
    headers.insert("x-line-signature", HeaderValue::from_str(&short).unwrap());
    assert_eq!(
        Line.verify(&[SECRET], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn the_hub_path_reads_the_channel_secret() {
    let body = bytes(&sample_body());
    let headers = signed_headers(SECRET, &body);
    let settings = Map::new();
    let secrets = |v: Value| v.as_object().cloned().unwrap();
    let named = secrets(json!({"channel_secret": "line-channel-secret"}));
    let request = WebhookRequest {
        settings: &settings,
        secrets: &named,
        query: "",
        headers: &headers,
        body: &body,
    };
    assert!(matches!(
        Line.verify_request(&request),
        Ok(Intake::Delivery { .. })
    ));
    // The generic `webhook_secret` is not what LINE signs with.
    let generic = secrets(json!({"webhook_secret": "line-channel-secret"}));
    let request = WebhookRequest {
        secrets: &generic,
        ..request
    };
    assert_eq!(
        Line.verify_request(&request),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn the_console_verify_request_is_a_ping() {
    let body = br#"{"destination":"Uf0000000000000000000000000000000","events":[]}"#;
    assert_eq!(verify(body), Ok(Intake::Ping));
    // Still only when signed.
    assert_eq!(
        Line.verify(&[SECRET], &HeaderMap::new(), body),
        Err(VerifyError::MissingSignature("X-Line-Signature"))
    );
    assert_eq!(
        Line.verify(&[SECRET], &signed_headers(b"x", body), body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn a_signed_body_without_events_is_malformed() {
    for body in [&b"{not json"[..], br#"{"destination":"U1"}"#, b"[]"] {
        assert_eq!(
            verify(body),
            Err(VerifyError::Malformed(
                "body is not a LINE webhook".to_owned()
            )),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// --- dedupe -----------------------------------------------------------------

#[test]
fn a_batch_is_keyed_by_its_sorted_event_ids() {
    let (key, topic) = delivery(&bytes(&batch_body()));
    assert_eq!(
        key,
        "events:01HF0000000000000000000001,01HF0000000000000000000002,\
         01HF0000000000000000000003,01HF0000000000000000000004,\
         01HF0000000000000000000005,01HF0000000000000000000006,\
         01HF0000000000000000000007"
    );
    assert_eq!(topic, "follow,message,postback");
}

#[test]
fn a_redelivery_has_the_same_key_whatever_the_order() {
    let body = batch_body();
    let mut redelivered = body.clone();
    let events = redelivered["events"].as_array_mut().unwrap();
    events.reverse();
    for event in events.iter_mut() {
        event["deliveryContext"]["isRedelivery"] = json!(true);
    }
    assert_ne!(bytes(&body), bytes(&redelivered));
    assert_eq!(delivery(&bytes(&body)).0, delivery(&bytes(&redelivered)).0);
    // The redelivery decodes to the same records with the same versions.
    let mut first = decode(&body).unwrap();
    let mut again = decode(&redelivered).unwrap();
    first.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    again.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    assert_eq!(first, again);
}

#[test]
fn different_events_have_different_keys() {
    let body = sample_body();
    let mut other = sample_body();
    other["events"][0]["webhookEventId"] = json!("01FZ74A0TDDPYRVKNK77XKC3ZS");
    assert_ne!(delivery(&bytes(&body)).0, delivery(&bytes(&other)).0);
}

#[test]
fn events_without_ids_fall_back_to_the_body_hash() {
    let mut body = batch_body();
    body["events"][2]
        .as_object_mut()
        .unwrap()
        .remove("webhookEventId");
    let raw = bytes(&body);
    assert_eq!(delivery(&raw).0, format!("sha256:{}", sha256_hex(&raw)));
}

#[test]
fn very_long_batches_hash_their_ids() {
    let events: Vec<Value> = (0..40)
        .map(|i| {
            json!({"type": "follow", "timestamp": 1700000000000_i64,
                   "webhookEventId": format!("01HF00000000000000000{i:05}"),
                   "source": {"type": "user", "userId": "U1"}})
        })
        .collect();
    let body = bytes(&json!({"destination": "U0", "events": events}));
    let (key, topic) = delivery(&body);
    assert!(key.starts_with("events-sha256:"), "{key}");
    assert_eq!(key.len(), "events-sha256:".len() + 64);
    assert_eq!(topic, "follow");
}

// --- decode -----------------------------------------------------------------

#[test]
fn sample_decodes_exactly() {
    let records = decode(&sample_body()).unwrap();
    assert_eq!(
        records,
        vec![SourceRecord {
            external_id: "444573844083572737".to_owned(),
            version: at_millis(1_700_000_000_000),
            occurred_at: at_millis(1_700_000_000_000),
            keys: customer("U4af4980629..."),
            body: RecordBody::Message(Message {
                conversation_id: "U4af4980629...".to_owned(),
                channel: "line".to_owned(),
                direction: Direction::Inbound,
                sender_name: None,
                sender_handle: Some("U4af4980629...".to_owned()),
                text: Some("Where is my order?".to_owned()),
                subject: None,
                attachments: vec![],
            }),
        }]
    );
    assert_eq!(records[0].kind(), RecordKind::Message);
}

#[test]
fn batch_decodes_every_message_from_a_user_exactly() {
    let records = decode(&batch_body()).unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    // Follow, postback and the group sticker without a userId yield nothing.
    assert_eq!(
        ids,
        vec![
            "444573844083572737",
            "444573844083572738",
            "444573844083572739",
            "444573844083572741"
        ]
    );

    let image = &records[1];
    assert_eq!(image.version, at_millis(1_700_000_001_500));
    assert_eq!(image.occurred_at, at_millis(1_700_000_001_500));
    assert_eq!(image.keys, customer(USER));
    assert_eq!(
        message_of(image),
        &Message {
            conversation_id: "Ca56f94637cbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
            channel: "line".to_owned(),
            direction: Direction::Inbound,
            sender_name: None,
            sender_handle: Some(USER.to_owned()),
            text: None,
            subject: None,
            attachments: vec![Attachment {
                name: None,
                content_type: Some("image".to_owned()),
                size: None,
            }],
        }
    );

    let file = &records[2];
    assert_eq!(file.version, at_millis(1_700_000_002_000));
    assert_eq!(file.keys, customer("U7c3d0000000000000000000000000000"));
    let file_message = message_of(file);
    assert_eq!(
        file_message.conversation_id,
        "Ra8dbf4673cccccccccccccccccccccc"
    );
    assert_eq!(
        file_message.sender_handle.as_deref(),
        Some("U7c3d0000000000000000000000000000")
    );
    assert_eq!(
        file_message.attachments,
        vec![Attachment {
            name: Some("invoice.pdf".to_owned()),
            content_type: Some("file".to_owned()),
            size: Some(2048),
        }]
    );

    let audio = &records[3];
    assert_eq!(audio.version, at_millis(1_700_000_006_000));
    assert_eq!(message_of(audio).conversation_id, USER);
    assert_eq!(message_of(audio).text, None);
    assert_eq!(
        message_of(audio).attachments,
        vec![Attachment {
            name: None,
            content_type: Some("audio".to_owned()),
            size: None,
        }]
    );
}

#[test]
fn file_size_may_be_a_string() {
    let mut body = batch_body();
    body["events"][2]["message"]["fileSize"] = json!("4096");
    let records = decode(&body).unwrap();
    assert_eq!(message_of(&records[2]).attachments[0].size, Some(4096));
}

#[test]
fn events_that_identify_nobody_yield_no_records() {
    let body = json!({"destination": "U0", "events": [
        {"type": "unfollow", "timestamp": 1700000000000_i64, "webhookEventId": "01A",
         "source": {"type": "user", "userId": USER}},
        {"type": "unsend", "timestamp": 1700000000000_i64, "webhookEventId": "01B",
         "source": {"type": "user", "userId": USER}, "unsend": {"messageId": "1"}},
        {"type": "message", "timestamp": 1700000000000_i64, "webhookEventId": "01C",
         "source": {"type": "room", "roomId": "R1"},
         "message": {"id": "2", "type": "text", "text": "hi"}},
        {"type": "message", "timestamp": 1700000000000_i64, "webhookEventId": "01D",
         "message": {"id": "3", "type": "text", "text": "hi"}}
    ]});
    assert_eq!(decode(&body).unwrap(), vec![]);
}

#[test]
fn broken_message_events_are_named_without_values() {
    let mut body = sample_body();
    body["events"][0]["message"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let err = decode(&body).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: "message".to_owned(),
            reason: "event 0: missing message.id".to_owned(),
        }
    );

    let mut body = sample_body();
    body["events"][0]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    assert_eq!(
        decode(&body).unwrap_err().to_string(),
        "payload is not valid for topic message: event 0: missing timestamp"
    );

    let mut body = sample_body();
    body["events"][0]["source"] = json!({"type": "group", "userId": USER});
    let text = decode(&body).unwrap_err().to_string();
    assert!(text.ends_with("event 0: missing source.groupId"), "{text}");
    assert!(!text.contains(USER), "{text}");

    let err = Line
        .decode("message", b"{not json", &DecodeContext::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload is not valid for topic message: body is not valid JSON"
    );
}
