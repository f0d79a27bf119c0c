use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::webhook::token_matches;
use super::Telegram;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, RecordKind, SourceRecord,
};
use crate::payload::fixtures;
use crate::webhook::{
    DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const TOKEN: &str = "shophub_tg-Secret_0123456789";

// --- helpers ----------------------------------------------------------------

fn sample_update() -> Value {
    fixtures::load("telegram-update.json")["body"].clone()
}

fn own(name: &str) -> Value {
    let text = match name {
        "edited-message" => include_str!("fixtures/edited-message.json"),
        "group-photo" => include_str!("fixtures/group-photo.json"),
        "shared-contact" => include_str!("fixtures/shared-contact.json"),
        other => panic!("no fixture {other}"),
    };
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn headers_with(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-telegram-bot-api-secret-token",
        HeaderValue::from_str(token).unwrap(),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fn verify(body: &[u8]) -> Result<Intake, VerifyError> {
    Telegram.verify(&[TOKEN.as_bytes()], &headers_with(TOKEN), body)
}

fn decode(topic: &str, body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    Telegram.decode(topic, &bytes(body), &DecodeContext::default())
}

fn decode_one(topic: &str, body: &Value) -> SourceRecord {
    let mut records = decode(topic, body).unwrap();
    assert_eq!(records.len(), 1, "{topic}");
    records.remove(0)
}

fn message_of(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_with_its_secret() {
    let c = crate::connector("telegram").expect("telegram in registry");
    assert_eq!(c.platform(), "telegram");
    assert!(c.required_settings().is_empty());
    assert_eq!(c.required_secrets(), &["secret_token"]);
    assert!(c.webhooks().is_some());
    assert!(c.polling().is_none());
    assert_eq!(Telegram.secret_keys(), &["secret_token"]);
}

// --- verify -----------------------------------------------------------------

#[test]
fn verify_accepts_the_secret_token() {
    assert_eq!(
        verify(&bytes(&sample_update())),
        Ok(Intake::Delivery {
            dedupe_key: "123456789".to_owned(),
            topic: "message".to_owned(),
        })
    );
    assert_eq!(
        verify(&bytes(&own("edited-message"))),
        Ok(Intake::Delivery {
            dedupe_key: "123456790".to_owned(),
            topic: "edited_message".to_owned(),
        })
    );
}

#[test]
fn verify_rejects_a_wrong_token() {
    let body = bytes(&sample_update());
    for wrong in [
        "shophub_tg-Secret_012345678",
        "shophub_tg-Secret_01234567890",
        "SHOPHUB_TG-SECRET_0123456789",
        "x",
    ] {
        assert_eq!(
            Telegram.verify(&[TOKEN.as_bytes()], &headers_with(wrong), &body),
            Err(VerifyError::BadSignature),
            "{wrong}"
        );
    }
    assert_eq!(
        Telegram.verify(&[], &headers_with(TOKEN), &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_missing_token() {
    let body = bytes(&sample_update());
    assert_eq!(
        Telegram.verify(&[TOKEN.as_bytes()], &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature(
            "X-Telegram-Bot-Api-Secret-Token"
        ))
    );
}

#[test]
fn token_comparison_tries_every_candidate() {
    assert!(token_matches(&[b"old", TOKEN.as_bytes()], TOKEN.as_bytes()));
    assert!(token_matches(&[TOKEN.as_bytes(), b"new"], TOKEN.as_bytes()));
    assert!(!token_matches(&[b"old", b"new"], TOKEN.as_bytes()));
    assert!(!token_matches(&[b""], b""));
}

#[test]
fn the_hub_path_reads_the_secret_token() {
    let body = bytes(&sample_update());
    let headers = headers_with(TOKEN);
    let settings = Map::new();
    let named = json!({"secret_token": TOKEN}).as_object().cloned().unwrap();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &named,
        query: "",
        headers: &headers,
        body: &body,
    };
    assert!(matches!(
        Telegram.verify_request(&request),
        Ok(Intake::Delivery { .. })
    ));
    let generic = json!({"webhook_secret": TOKEN})
        .as_object()
        .cloned()
        .unwrap();
    let request = WebhookRequest {
        secrets: &generic,
        ..request
    };
    assert_eq!(
        Telegram.verify_request(&request),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn an_authentic_body_without_update_id_is_malformed() {
    assert_eq!(
        verify(br#"{"message": {"message_id": 1}}"#),
        Err(VerifyError::Malformed("update has no update_id".to_owned()))
    );
    assert_eq!(
        verify(b"not json"),
        Err(VerifyError::Malformed(
            "body is not a Telegram update".to_owned()
        ))
    );
}

#[test]
fn duplicates_share_the_update_id_key() {
    // A retry repeats the update byte for byte; a re-serialised copy too
    // keeps its id, while the next update has another.
    let body = sample_update();
    let mut reordered = Map::new();
    reordered.insert("message".to_owned(), body["message"].clone());
    reordered.insert("update_id".to_owned(), body["update_id"].clone());
    let first = verify(&bytes(&body)).unwrap();
    assert_eq!(verify(&bytes(&body)).unwrap(), first);
    assert_eq!(verify(&bytes(&Value::Object(reordered))).unwrap(), first);
    let mut next = sample_update();
    next["update_id"] = json!(123456790);
    assert_ne!(verify(&bytes(&next)).unwrap(), first);
}

// --- decode -----------------------------------------------------------------

#[test]
fn sample_decodes_exactly() {
    let record = decode_one("message", &sample_update());
    assert_eq!(
        record,
        SourceRecord {
            external_id: "111111111:42".to_owned(),
            version: at(1_700_000_000),
            occurred_at: at(1_700_000_000),
            keys: vec![key(KeyKind::CustomerId, "111111111")],
            body: RecordBody::Message(Message {
                conversation_id: "111111111".to_owned(),
                channel: "telegram".to_owned(),
                direction: Direction::Inbound,
                sender_name: Some("Ada".to_owned()),
                sender_handle: Some("ada".to_owned()),
                text: Some("Where is my order?".to_owned()),
                subject: None,
                attachments: vec![],
            }),
        }
    );
    assert_eq!(record.kind(), RecordKind::Message);
}

#[test]
fn an_edit_updates_the_same_record_with_a_newer_version() {
    let original = decode_one("message", &sample_update());
    let edited = decode_one("edited_message", &own("edited-message"));
    assert_eq!(edited.external_id, original.external_id);
    assert_eq!(edited.occurred_at, original.occurred_at);
    assert_eq!(edited.version, at(1_700_000_060));
    assert!(edited.version > original.version);
    assert_eq!(edited.keys, original.keys);
    assert_eq!(
        message_of(&edited).text.as_deref(),
        Some("Where is my order #1001?")
    );
    assert_eq!(
        message_of(&edited).conversation_id,
        message_of(&original).conversation_id
    );
}

#[test]
fn decoding_reads_the_body_not_the_topic() {
    // The worker passes the stored topic; the body decides.
    let a = decode("message", &own("edited-message")).unwrap();
    let b = decode("edited_message", &own("edited-message")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].version, at(1_700_000_060));
}

#[test]
fn group_photo_with_caption_decodes_exactly() {
    let record = decode_one("message", &own("group-photo"));
    assert_eq!(record.external_id, "-1001234567890:7");
    assert_eq!(record.version, at(1_700_000_100));
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "222222222")]);
    assert_eq!(
        message_of(&record),
        &Message {
            conversation_id: "-1001234567890".to_owned(),
            channel: "telegram".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Grace Hopper".to_owned()),
            // No username: the numeric id is the handle.
            sender_handle: Some("222222222".to_owned()),
            text: Some("The parcel arrived damaged".to_owned()),
            subject: None,
            attachments: vec![Attachment {
                name: None,
                content_type: Some("image".to_owned()),
                size: Some(70813),
            }],
        }
    );
}

#[test]
fn documents_and_voice_notes_are_metadata_only() {
    let mut update = sample_update();
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert(
        "document".to_owned(),
        json!({"file_id": "BQACAgQ", "file_unique_id": "AgAD1", "file_name": "receipt.pdf",
               "mime_type": "application/pdf", "file_size": 52311}),
    );
    message.insert("caption".to_owned(), json!("My receipt"));
    let record = decode_one("message", &update);
    assert_eq!(message_of(&record).text.as_deref(), Some("My receipt"));
    assert_eq!(
        message_of(&record).attachments,
        vec![Attachment {
            name: Some("receipt.pdf".to_owned()),
            content_type: Some("application/pdf".to_owned()),
            size: Some(52311),
        }]
    );

    let mut update = sample_update();
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert(
        "voice".to_owned(),
        json!({"file_id": "AwACAgQ", "file_unique_id": "AgAD2", "duration": 4,
               "mime_type": "audio/ogg", "file_size": 9120}),
    );
    let record = decode_one("message", &update);
    assert_eq!(message_of(&record).text, None);
    assert_eq!(
        message_of(&record).attachments,
        vec![Attachment {
            name: None,
            content_type: Some("audio/ogg".to_owned()),
            size: Some(9120),
        }]
    );
}

#[test]
fn the_senders_own_contact_gives_a_phone_key() {
    let record = decode_one("message", &own("shared-contact"));
    assert_eq!(record.external_id, "111111111:43");
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Phone, "+4915112345678"),
            key(KeyKind::CustomerId, "111111111"),
        ]
    );
    assert_eq!(message_of(&record).text, None);
    assert!(message_of(&record).attachments.is_empty());

    // With the `+` it reads the same.
    let mut with_plus = own("shared-contact");
    with_plus["message"]["contact"]["phone_number"] = json!("+49 151 12345678");
    assert_eq!(decode_one("message", &with_plus).keys, record.keys);
}

#[test]
fn someone_elses_contact_is_not_the_senders_phone() {
    let mut update = own("shared-contact");
    update["message"]["contact"]["user_id"] = json!(333333333);
    let record = decode_one("message", &update);
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "111111111")]);

    let mut update = own("shared-contact");
    update["message"]["contact"]
        .as_object_mut()
        .unwrap()
        .remove("user_id");
    let record = decode_one("message", &update);
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "111111111")]);
}

#[test]
fn updates_that_identify_nobody_yield_no_records() {
    let channel_post = json!({"update_id": 1, "channel_post": {
        "message_id": 5, "date": 1700000000,
        "sender_chat": {"id": -1001, "type": "channel", "title": "News"},
        "chat": {"id": -1001, "type": "channel", "title": "News"}, "text": "Sale!"}});
    assert_eq!(decode("channel_post", &channel_post).unwrap(), vec![]);

    let mut from_bot = sample_update();
    from_bot["message"]["from"]["is_bot"] = json!(true);
    assert_eq!(decode("message", &from_bot).unwrap(), vec![]);

    let mut anonymous_admin = sample_update();
    anonymous_admin["message"]["sender_chat"] =
        json!({"id": -1001234567890_i64, "type": "supergroup", "title": "Shop support"});
    assert_eq!(decode("message", &anonymous_admin).unwrap(), vec![]);

    let mut no_sender = sample_update();
    no_sender["message"].as_object_mut().unwrap().remove("from");
    assert_eq!(decode("message", &no_sender).unwrap(), vec![]);

    let mut service = sample_update();
    let message = service["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert(
        "new_chat_members".to_owned(),
        json!([{"id": 111111111, "is_bot": false, "first_name": "Ada"}]),
    );
    assert_eq!(decode("message", &service).unwrap(), vec![]);

    let callback = json!({"update_id": 2, "callback_query": {
        "id": "4382", "from": {"id": 111111111, "is_bot": false, "first_name": "Ada"},
        "chat_instance": "-1", "data": "track"}});
    assert_eq!(decode("callback_query", &callback).unwrap(), vec![]);
}

#[test]
fn a_sticker_is_a_message_without_text() {
    let mut update = sample_update();
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert(
        "sticker".to_owned(),
        json!({"file_id": "CAACAgI", "file_unique_id": "AgADBA", "type": "regular",
               "width": 512, "height": 512, "is_animated": false, "is_video": false}),
    );
    let record = decode_one("message", &update);
    assert_eq!(message_of(&record).text, None);
    assert!(message_of(&record).attachments.is_empty());
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "111111111")]);
}

#[test]
fn broken_messages_are_named_without_values() {
    let mut update = sample_update();
    update["message"].as_object_mut().unwrap().remove("chat");
    assert_eq!(
        decode("message", &update).unwrap_err(),
        DecodeError::Invalid {
            topic: "message".to_owned(),
            reason: "message: missing chat.id".to_owned(),
        }
    );

    let mut edit = own("edited-message");
    edit["edited_message"]
        .as_object_mut()
        .unwrap()
        .remove("edit_date");
    assert_eq!(
        decode("edited_message", &edit).unwrap_err().to_string(),
        "payload is not valid for topic edited_message: edited_message: missing edit_date"
    );

    let mut update = sample_update();
    update["message"]["from"]["id"] = json!("ada@example.com");
    let text = decode("message", &update).unwrap_err().to_string();
    assert!(text.contains("unexpected type"), "{text}");
    assert!(!text.contains("ada@example.com"), "{text}");
}
