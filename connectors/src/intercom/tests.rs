use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};
use sha1::Sha1;

use super::mapping::html_to_text;
use super::webhook::signature_matches;
use super::Intercom;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, RecordKind, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::sha256_hex;
use crate::webhook::{
    DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const SECRET: &[u8] = b"intercom-client-secret";
const ADA: &str = "5d7b00000000000000000aaa";

// --- helpers ----------------------------------------------------------------

fn sample() -> Value {
    fixtures::load("intercom-notification.json")["body"].clone()
}

fn own(name: &str) -> Value {
    let text = match name {
        "admin-replied" => include_str!("fixtures/admin-replied.json"),
        "user-replied" => include_str!("fixtures/user-replied.json"),
        "admin-single-created" => include_str!("fixtures/admin-single-created.json"),
        other => panic!("no fixture {other}"),
    };
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature",
        HeaderValue::from_str(&sign(secret, body)).unwrap(),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fn verify(body: &[u8]) -> Result<Intake, VerifyError> {
    Intercom.verify(&[SECRET], &signed_headers(SECRET, body), body)
}

fn decode_value(body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    let topic = body["topic"].as_str().unwrap().to_owned();
    Intercom.decode(&topic, &bytes(body), &DecodeContext::default())
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

fn ada_keys() -> Vec<IdentityKey> {
    vec![
        key(KeyKind::Email, "ada@example.com"),
        key(KeyKind::CustomerId, ADA),
    ]
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn request<'a>(
    settings: &'a Map<String, Value>,
    secrets: &'a Map<String, Value>,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> WebhookRequest<'a> {
    WebhookRequest {
        settings,
        secrets,
        query: "",
        headers,
        body,
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_with_its_secret() {
    let c = crate::connector("intercom").expect("intercom in registry");
    assert_eq!(c.platform(), "intercom");
    assert!(c.required_settings().is_empty());
    assert_eq!(c.required_secrets(), &["client_secret"]);
    assert!(c.webhooks().is_some());
    assert!(c.polling().is_none());
    assert_eq!(Intercom.secret_keys(), &["client_secret"]);
}

// --- verify -----------------------------------------------------------------

#[test]
fn shared_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "intercom-x-hub-signature")
        .expect("intercom vector");
    let secret = v["inputs"]["secret"].as_str().unwrap();
    let body = v["inputs"]["body"].as_str().unwrap();
    let expected = v["expected"]["X-Hub-Signature"].as_str().unwrap();
    assert_eq!(sign(secret.as_bytes(), body.as_bytes()), expected);
    assert!(signature_matches(
        &[secret.as_bytes()],
        body.as_bytes(),
        expected
    ));
    assert!(signature_matches(
        &[secret.as_bytes()],
        body.as_bytes(),
        &expected.to_uppercase().replace("SHA1=", "sha1=")
    ));
    assert!(!signature_matches(&[SECRET], body.as_bytes(), expected));

    // Through `verify`: the signature passes and the body, which is no
    // notification, is refused as malformed rather than as forged.
    let mut headers = HeaderMap::new();
    headers.insert("x-hub-signature", HeaderValue::from_str(expected).unwrap());
    assert_eq!(
        Intercom.verify(&[secret.as_bytes()], &headers, body.as_bytes()),
        Err(VerifyError::Malformed(
            "notification has no topic".to_owned()
        ))
    );
    assert_eq!(
        Intercom.verify(&[b"other"], &headers, body.as_bytes()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_accepts_the_sample_notification() {
    assert_eq!(
        verify(&bytes(&sample())),
        Ok(Intake::Delivery {
            dedupe_key: "notif_4e3504a3-ba3f-46dc-ab48-8e4d5bdfdf4e".to_owned(),
            topic: "conversation.user.created".to_owned(),
        })
    );
}

#[test]
fn verify_rejects_a_tampered_body_or_wrong_secret() {
    let body = bytes(&sample());
    let headers = signed_headers(SECRET, &body);
    let mut tampered = sample();
    tampered["data"]["item"]["source"]["author"]["email"] = json!("mallory@example.com");
    assert_eq!(
        Intercom.verify(&[SECRET], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Intercom.verify(&[b"other-secret"], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Intercom.verify(&[], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_missing_and_malformed_signatures() {
    let body = bytes(&sample());
    assert_eq!(
        Intercom.verify(&[SECRET], &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature("X-Hub-Signature"))
    );
    let bare_hex = sign(SECRET, &body).replace("sha1=", "");
    let sha256_prefix = sign(SECRET, &body).replace("sha1=", "sha256=");
    for value in [
        bare_hex.as_str(),
        sha256_prefix.as_str(),
        "sha1=zz",
        "sha1=",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature", HeaderValue::from_str(value).unwrap());
        assert_eq!(
            Intercom.verify(&[SECRET], &headers, &body),
            Err(VerifyError::BadSignature),
            "{value}"
        );
    }
}

#[test]
fn verify_accepts_any_candidate_secret() {
    let body = bytes(&sample());
    let headers = signed_headers(SECRET, &body);
    assert!(Intercom.verify(&[b"new", SECRET], &headers, &body).is_ok());
    assert!(Intercom.verify(&[SECRET, b"old"], &headers, &body).is_ok());
}

#[test]
fn the_hub_path_reads_the_client_secret() {
    let body = bytes(&sample());
    let headers = signed_headers(SECRET, &body);
    let settings = Map::new();
    let named = object(json!({"client_secret": "intercom-client-secret"}));
    assert!(matches!(
        Intercom.verify_request(&request(&settings, &named, &headers, &body)),
        Ok(Intake::Delivery { .. })
    ));
    let generic = object(json!({"webhook_secret": "intercom-client-secret"}));
    assert_eq!(
        Intercom.verify_request(&request(&settings, &generic, &headers, &body)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn another_workspace_is_acknowledged_but_not_stored() {
    let body = bytes(&sample());
    let headers = signed_headers(SECRET, &body);
    let secrets = object(json!({"client_secret": "intercom-client-secret"}));
    let ours = object(json!({"app_id": "abc123"}));
    let theirs = object(json!({"app_id": "zzz999"}));
    assert!(matches!(
        Intercom.verify_request(&request(&ours, &secrets, &headers, &body)),
        Ok(Intake::Delivery { .. })
    ));
    assert_eq!(
        Intercom.verify_request(&request(&theirs, &secrets, &headers, &body)),
        Ok(Intake::Ping)
    );
    // The filter never excuses a bad signature.
    let forged = signed_headers(b"forger", &body);
    assert_eq!(
        Intercom.verify_request(&request(&theirs, &secrets, &forged, &body)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn the_ping_topic_is_a_handshake() {
    let ping = bytes(
        &json!({"type": "notification_event", "id": "notif_ping", "app_id": "abc123",
        "topic": "ping", "created_at": 1700000000,
        "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "something something interzen"}}}),
    );
    assert_eq!(verify(&ping), Ok(Intake::Ping));
    assert_eq!(
        Intercom.verify(&[SECRET], &HeaderMap::new(), &ping),
        Ok(Intake::Ping)
    );
    // A signature that is present must still be right.
    assert_eq!(
        Intercom.verify(&[SECRET], &signed_headers(b"x", &ping), &ping),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn signed_bodies_that_are_not_notifications_are_malformed() {
    assert_eq!(
        verify(b"[1, 2]"),
        Err(VerifyError::Malformed(
            "body is not an Intercom notification".to_owned()
        ))
    );
    assert_eq!(
        verify(br#"{"type": "notification_event", "id": "n1"}"#),
        Err(VerifyError::Malformed(
            "notification has no topic".to_owned()
        ))
    );
}

// --- dedupe -----------------------------------------------------------------

#[test]
fn retries_share_the_notification_id() {
    let first = sample();
    let mut retry = sample();
    retry["delivery_attempts"] = json!(2);
    assert_ne!(bytes(&first), bytes(&retry));
    assert_eq!(verify(&bytes(&first)), verify(&bytes(&retry)));
    let mut other = sample();
    other["id"] = json!("notif_00000000-0000-0000-0000-000000000000");
    assert_ne!(verify(&bytes(&first)), verify(&bytes(&other)));
}

#[test]
fn a_notification_without_id_falls_back_to_the_body_hash() {
    let mut body = sample();
    body.as_object_mut().unwrap().remove("id");
    let raw = bytes(&body);
    assert_eq!(
        verify(&raw),
        Ok(Intake::Delivery {
            dedupe_key: format!("sha256:{}", sha256_hex(&raw)),
            topic: "conversation.user.created".to_owned(),
        })
    );
}

// --- decode -----------------------------------------------------------------

#[test]
fn sample_decodes_exactly() {
    let records = decode_value(&sample()).unwrap();
    assert_eq!(
        records,
        vec![SourceRecord {
            external_id: "conversation:1234".to_owned(),
            // The item has no created_at: the notification's stands in.
            version: at(1_571_080_403),
            occurred_at: at(1_571_080_403),
            keys: vec![
                key(KeyKind::Email, "buyer@example.com"),
                key(KeyKind::CustomerId, "5d7b..."),
            ],
            body: RecordBody::Message(Message {
                conversation_id: "1234".to_owned(),
                channel: "intercom".to_owned(),
                direction: Direction::Inbound,
                sender_name: Some("Ada".to_owned()),
                sender_handle: Some("buyer@example.com".to_owned()),
                text: Some("Where is my order?".to_owned()),
                subject: None,
                attachments: vec![],
            }),
        }]
    );
    assert_eq!(records[0].kind(), RecordKind::Message);
}

#[test]
fn an_admin_reply_carries_the_customers_keys_never_the_admins() {
    let records = decode_value(&own("admin-replied")).unwrap();
    assert_eq!(records.len(), 2);

    let source = &records[0];
    assert_eq!(source.external_id, "conversation:147");
    assert_eq!(source.version, at(1_700_000_000));
    assert_eq!(source.keys, ada_keys());
    assert_eq!(message_of(source).direction, Direction::Inbound);
    assert_eq!(message_of(source).subject, None);

    let reply = &records[1];
    assert_eq!(
        reply,
        &SourceRecord {
            external_id: "9001".to_owned(),
            version: at(1_700_000_300),
            occurred_at: at(1_700_000_300),
            keys: ada_keys(),
            body: RecordBody::Message(Message {
                conversation_id: "147".to_owned(),
                channel: "intercom".to_owned(),
                direction: Direction::Outbound,
                sender_name: Some("Grace".to_owned()),
                sender_handle: Some("814860".to_owned()),
                text: Some("Hi Ada,\nIt ships today & arrives Friday.".to_owned()),
                subject: None,
                attachments: vec![Attachment {
                    name: Some("label.pdf".to_owned()),
                    content_type: Some("application/pdf".to_owned()),
                    size: Some(10240),
                }],
            }),
        }
    );
    assert!(!reply
        .keys
        .iter()
        .any(|k| k.value.contains("grace") || k.value == "814860"));
}

#[test]
fn a_user_reply_is_inbound_with_the_contacts_email() {
    let records = decode_value(&own("user-replied")).unwrap();
    let reply = records
        .iter()
        .find(|r| r.external_id == "9002")
        .expect("the reply");
    assert_eq!(reply.version, at(1_700_000_600));
    // The part's author has a blank email; the conversation's customer is
    // the same contact and supplies it.
    assert_eq!(reply.keys, ada_keys());
    assert_eq!(
        message_of(reply),
        &Message {
            conversation_id: "147".to_owned(),
            channel: "intercom".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Ada Lovelace".to_owned()),
            sender_handle: Some(ADA.to_owned()),
            text: Some("Thanks! Here is the damaged box:".to_owned()),
            subject: None,
            attachments: vec![Attachment {
                name: Some("box.jpg".to_owned()),
                content_type: Some("image/jpeg".to_owned()),
                size: Some(48213),
            }],
        }
    );
    // The source re-decodes to the same record and version as before.
    let earlier = decode_value(&own("admin-replied")).unwrap();
    assert_eq!(records[0], earlier[0]);
}

#[test]
fn an_admin_initiated_conversation_is_outbound_to_the_listed_contact() {
    let records = decode_value(&own("admin-single-created")).unwrap();
    assert_eq!(
        records,
        vec![SourceRecord {
            external_id: "conversation:148".to_owned(),
            version: at(1_700_001_000),
            occurred_at: at(1_700_001_000),
            keys: vec![key(KeyKind::CustomerId, "6762f2391bb69f9f2193bc19")],
            body: RecordBody::Message(Message {
                conversation_id: "148".to_owned(),
                channel: "intercom".to_owned(),
                direction: Direction::Outbound,
                sender_name: Some("Grace".to_owned()),
                sender_handle: Some("814860".to_owned()),
                text: Some("Hello,\nyour parcel is on its way.\nTracking: 1Z999".to_owned()),
                subject: Some("Your order #1001".to_owned()),
                attachments: vec![],
            }),
        }]
    );
}

#[test]
fn operator_replies_are_outbound() {
    let mut body = own("admin-replied");
    body["topic"] = json!("conversation.operator.replied");
    body["data"]["item"]["conversation_parts"]["conversation_parts"][0]["author"] = json!({"type": "bot", "id": "991267816", "name": "Fin", "email": "operator+abc123@intercom.io",
               "from_ai_agent": true, "is_ai_answer": true});
    let records = decode_value(&body).unwrap();
    let reply = &records[1];
    assert_eq!(message_of(reply).direction, Direction::Outbound);
    assert_eq!(message_of(reply).sender_name.as_deref(), Some("Fin"));
    assert_eq!(reply.keys, ada_keys());
}

#[test]
fn a_changed_part_updates_the_same_record_with_a_newer_version() {
    let first = decode_value(&own("admin-replied")).unwrap();
    let mut edited = own("admin-replied");
    let part = &mut edited["data"]["item"]["conversation_parts"]["conversation_parts"][0];
    part["updated_at"] = json!(1_700_000_900);
    part["body"] = json!("<p>Hi Ada, it ships <i>tomorrow</i>.</p>");
    let again = decode_value(&edited).unwrap();
    assert_eq!(again[1].external_id, first[1].external_id);
    assert_eq!(again[1].occurred_at, first[1].occurred_at);
    assert_eq!(again[1].version, at(1_700_000_900));
    assert!(again[1].version > first[1].version);
    assert_eq!(
        message_of(&again[1]).text.as_deref(),
        Some("Hi Ada, it ships tomorrow.")
    );

    // A redaction keeps the record and removes its text.
    let mut redacted = own("admin-replied");
    let part = &mut redacted["data"]["item"]["conversation_parts"]["conversation_parts"][0];
    part["updated_at"] = json!(1_700_001_200);
    part["redacted"] = json!(true);
    part["body"] = json!("");
    part["attachments"] = json!([]);
    let records = decode_value(&redacted).unwrap();
    assert_eq!(records[1].external_id, "9001");
    assert_eq!(records[1].version, at(1_700_001_200));
    assert_eq!(message_of(&records[1]).text, None);
}

#[test]
fn notes_and_empty_parts_are_not_messages() {
    let mut body = own("admin-replied");
    let parts = body["data"]["item"]["conversation_parts"]["conversation_parts"]
        .as_array_mut()
        .unwrap();
    parts.push(
        json!({"type": "conversation_part", "id": "9003", "part_type": "note",
        "body": "<p>VIP customer, ada@example.com</p>", "created_at": 1700000400,
        "updated_at": 1700000400, "author": {"type": "admin", "id": "814860", "name": "Grace"}}),
    );
    parts.push(
        json!({"type": "conversation_part", "id": "9004", "part_type": "assignment",
        "body": null, "created_at": 1700000500, "updated_at": 1700000500,
        "author": {"type": "admin", "id": "814860", "name": "Grace"}, "attachments": []}),
    );
    parts.push(
        json!({"type": "conversation_part", "id": "9005", "part_type": "comment",
        "body": "<p>From a stranger</p>", "created_at": 1700000500,
        "author": {"type": "visitor_bot", "id": "1"}}),
    );
    let ids: Vec<String> = decode_value(&body)
        .unwrap()
        .into_iter()
        .map(|r| r.external_id)
        .collect();
    assert_eq!(ids, vec!["conversation:147".to_owned(), "9001".to_owned()]);
}

#[test]
fn other_topics_yield_no_records() {
    for topic in [
        "conversation.admin.noted",
        "conversation.admin.assigned",
        "conversation.admin.closed",
        "contact.created",
        "ticket.created",
    ] {
        let mut body = own("admin-replied");
        body["topic"] = json!(topic);
        assert_eq!(decode_value(&body).unwrap(), vec![], "{topic}");
    }
    // Other topics are not even parsed.
    assert_eq!(
        Intercom
            .decode("contact.created", b"not json", &DecodeContext::default())
            .unwrap(),
        vec![]
    );
}

#[test]
fn messages_whose_customer_is_unknown_are_not_emitted() {
    // An admin-initiated conversation without any contact identifies nobody.
    let mut body = own("admin-single-created");
    body["data"]["item"]
        .as_object_mut()
        .unwrap()
        .remove("contacts");
    assert_eq!(decode_value(&body).unwrap(), vec![]);

    // A contact author without id or email identifies nobody either.
    let mut body = sample();
    body["data"]["item"]["source"]["author"] = json!({"type": "lead", "id": "", "email": ""});
    assert_eq!(decode_value(&body).unwrap(), vec![]);
}

#[test]
fn the_1x_user_field_identifies_the_customer() {
    let mut body = own("admin-single-created");
    let item = body["data"]["item"].as_object_mut().unwrap();
    item.remove("contacts");
    item.insert(
        "user".to_owned(),
        json!({"type": "user", "id": 530370, "user_id": "cus_1001", "email": "ada@example.com"}),
    );
    let records = decode_value(&body).unwrap();
    assert_eq!(
        records[0].keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::CustomerId, "530370"),
        ]
    );
}

#[test]
fn broken_conversations_are_named_without_values() {
    let mut body = own("admin-replied");
    body["data"]["item"].as_object_mut().unwrap().remove("id");
    assert_eq!(
        decode_value(&body).unwrap_err(),
        DecodeError::Invalid {
            topic: "conversation.admin.replied".to_owned(),
            reason: "missing data.item.id".to_owned(),
        }
    );

    let mut body = own("admin-replied");
    body["data"]["item"]["conversation_parts"]["conversation_parts"][0]
        .as_object_mut()
        .unwrap()
        .remove("created_at");
    assert_eq!(
        decode_value(&body).unwrap_err().to_string(),
        "payload is not valid for topic conversation.admin.replied: \
         conversation part 0: missing created_at"
    );

    let mut body = own("admin-replied");
    body["data"] = json!({"type": "notification_event_data"});
    assert_eq!(
        decode_value(&body).unwrap_err().to_string(),
        "payload is not valid for topic conversation.admin.replied: missing data.item"
    );

    let mut body = own("admin-replied");
    body["data"]["item"]["created_at"] = json!("Ada@Example.com");
    let text = decode_value(&body).unwrap_err().to_string();
    assert!(text.contains("unexpected type"), "{text}");
    assert!(!text.to_lowercase().contains("ada@example.com"), "{text}");
}

// --- HTML bodies ------------------------------------------------------------

#[test]
fn html_bodies_become_plain_text() {
    let cases: &[(&str, Option<&str>)] = &[
        ("<p>Where is my order?</p>", Some("Where is my order?")),
        ("<p>One</p><p>Two</p>", Some("One\nTwo")),
        ("Line<br>break<br/>again<BR />", Some("Line\nbreak\nagain")),
        (
            "<p>Fish &amp; chips &lt;3 &quot;now&quot; &#39;ok&#39; &#x263A;</p>",
            Some("Fish & chips <3 \"now\" 'ok' \u{263A}"),
        ),
        (
            "<p>  lots   of\n  space&nbsp;here </p>",
            Some("lots of\nspace here"),
        ),
        ("<p></p><p> </p>", None),
        ("", None),
        ("<ul><li>a</li><li>b</li></ul>", Some("a\nb")),
        ("1 < 2 and 3 > 2", Some("1 < 2 and 3 > 2")),
        ("AT&T &unknown; &", Some("AT&T &unknown; &")),
        ("<!-- hidden --><p>shown</p>", Some("shown")),
        ("<p>a</p><p></p><p></p><p>b</p>", Some("a\nb")),
        ("<p>a</p><p><br></p><p>b</p>", Some("a\n\nb")),
        ("<p>a</p><br><br><br><p>b</p>", Some("a\n\nb")),
        ("plain text", Some("plain text")),
        ("unclosed <b", Some("unclosed <b")),
    ];
    for (html, text) in cases {
        assert_eq!(html_to_text(html).as_deref(), *text, "{html:?}");
    }
}
