use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::webhook::{check_signature, dedupe_key, SIGNATURE_HEADER};
use super::{Instagram, Messenger, WhatsApp};
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::hmac_sha256;
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const APP_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "shophub verify/token+1";

// --- helpers ----------------------------------------------------------------

fn own_fixture(name: &str) -> Value {
    let text = match name {
        "messenger-batch" => include_str!("fixtures/messenger-batch.json"),
        "instagram-messages" => include_str!("fixtures/instagram-messages.json"),
        "whatsapp-batch" => include_str!("fixtures/whatsapp-batch.json"),
        other => panic!("no fixture {other}"),
    };
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

/// The `body` of a shared sample, as Meta would send it.
fn shared_body(name: &str) -> Value {
    fixtures::load(name)["body"].clone()
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let digest = hex::encode(hmac_sha256(secret.as_bytes(), body));
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&format!("sha256={digest}")).unwrap(),
    );
    headers
}

fn map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn settings() -> Map<String, Value> {
    map(json!({ "verify_token": VERIFY_TOKEN }))
}

fn secrets() -> Map<String, Value> {
    map(json!({ "app_secret": APP_SECRET }))
}

fn handshake_with(settings: &Map<String, Value>, query: &str) -> Result<String, VerifyError> {
    let secrets = secrets();
    let headers = HeaderMap::new();
    let request = WebhookRequest {
        settings,
        secrets: &secrets,
        query,
        headers: &headers,
        body: &[],
    };
    Messenger
        .handshake(&request)
        .expect("Meta has a GET handshake")
}

fn verify_with(
    source: &dyn WebhookSource,
    secrets: &Map<String, Value>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Intake, VerifyError> {
    let settings = settings();
    let request = WebhookRequest {
        settings: &settings,
        secrets,
        query: "",
        headers,
        body,
    };
    source.verify_request(&request)
}

fn decode(source: &dyn WebhookSource, body: &Value) -> Vec<SourceRecord> {
    let topic = body["object"].as_str().unwrap();
    source
        .decode(topic, &bytes(body), &DecodeContext::default())
        .unwrap()
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn message(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn chat(
    external_id: &str,
    ms: i64,
    keys: Vec<IdentityKey>,
    conversation_id: &str,
    channel: &str,
    direction: Direction,
    sender_name: Option<&str>,
    sender_handle: &str,
    text: Option<&str>,
    attachments: Vec<Attachment>,
) -> SourceRecord {
    SourceRecord {
        external_id: external_id.to_owned(),
        version: at_ms(ms),
        occurred_at: at_ms(ms),
        keys,
        body: RecordBody::Message(Message {
            conversation_id: conversation_id.to_owned(),
            channel: channel.to_owned(),
            direction,
            sender_name: sender_name.map(str::to_owned),
            sender_handle: Some(sender_handle.to_owned()),
            text: text.map(str::to_owned),
            subject: None,
            attachments,
        }),
    }
}

fn attachment(name: Option<&str>, content_type: Option<&str>) -> Attachment {
    Attachment {
        name: name.map(str::to_owned),
        content_type: content_type.map(str::to_owned),
        size: None,
    }
}

// --- connectors ---------------------------------------------------------------

#[test]
fn three_connectors_need_verify_token_and_app_secret() {
    for (platform, connector) in [
        ("messenger", &Messenger as &dyn Connector),
        ("instagram", &Instagram),
        ("whatsapp", &WhatsApp),
    ] {
        assert_eq!(connector.platform(), platform);
        assert_eq!(connector.required_settings(), &["verify_token"]);
        assert_eq!(connector.required_secrets(), &["app_secret"]);
        assert!(connector.webhooks().is_some(), "{platform}");
        assert!(connector.polling().is_none(), "{platform}");
        let registered = crate::connector(platform).expect("registered");
        assert_eq!(registered.platform(), platform);
        assert!(registered.webhooks().is_some());
    }
}

// --- signature ----------------------------------------------------------------

#[test]
fn shared_signature_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let vector = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "meta-x-hub-signature-256")
        .expect("meta vector");
    let secret = vector["inputs"]["secret"].as_str().unwrap();
    let body = vector["inputs"]["body"].as_str().unwrap().as_bytes();
    let expected = vector["expected"]["X-Hub-Signature-256"].as_str().unwrap();

    // Our signer produces the vector's header value exactly.
    assert_eq!(
        signed(secret, body)[SIGNATURE_HEADER].to_str().unwrap(),
        expected
    );
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(expected).unwrap());
    assert_eq!(
        check_signature(&[secret.as_bytes()], &headers, body),
        Ok(())
    );
    // Hex of either case is the same digest.
    let upper = format!("sha256={}", expected["sha256=".len()..].to_uppercase());
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&upper).unwrap());
    assert_eq!(
        check_signature(&[secret.as_bytes()], &headers, body),
        Ok(())
    );

    // The vector body has no `object`: genuine, but not a notification.
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(expected).unwrap());
    let secrets = map(json!({ "app_secret": secret }));
    assert_eq!(
        verify_with(&Messenger, &secrets, &headers, body),
        Err(VerifyError::Malformed(
            "notification has no object field".to_owned()
        ))
    );
}

#[test]
fn bad_and_missing_signatures_are_refused() {
    let body = bytes(&shared_body("meta-messenger-message.json"));
    let secrets = secrets();
    let good = signed(APP_SECRET, &body);
    assert!(verify_with(&Messenger, &secrets, &good, &body).is_ok());

    assert_eq!(
        verify_with(&Messenger, &secrets, &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature("X-Hub-Signature-256"))
    );
    // Only the legacy SHA-1 header: still missing.
    let mut legacy = HeaderMap::new();
    legacy.insert("X-Hub-Signature", HeaderValue::from_static("sha1=abcdef"));
    assert_eq!(
        verify_with(&Messenger, &secrets, &legacy, &body),
        Err(VerifyError::MissingSignature("X-Hub-Signature-256"))
    );

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        verify_with(&Messenger, &secrets, &good, &tampered),
        Err(VerifyError::BadSignature)
    );
    let wrong_secret = signed("another-secret", &body);
    assert_eq!(
        verify_with(&Messenger, &secrets, &wrong_secret, &body),
        Err(VerifyError::BadSignature)
    );
    // The digest without its `sha256=` prefix, or under another prefix.
    let bare = good[SIGNATURE_HEADER].to_str().unwrap()["sha256=".len()..].to_owned();
    for value in [bare.clone(), format!("sha1={bare}"), "sha256=".to_owned()] {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&value).unwrap());
        assert_eq!(
            verify_with(&Messenger, &secrets, &headers, &body),
            Err(VerifyError::BadSignature),
            "{value}"
        );
    }
    // No app secret at all: nothing can match.
    assert_eq!(
        verify_with(&Messenger, &Map::new(), &good, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn previous_app_secret_is_a_candidate() {
    let body = bytes(&shared_body("whatsapp-message.json"));
    let headers = signed("old-secret", &body);
    let both = map(json!({ "app_secret": APP_SECRET, "previous_app_secret": "old-secret" }));
    assert!(verify_with(&WhatsApp, &both, &headers, &body).is_ok());
    assert_eq!(
        verify_with(&WhatsApp, &secrets(), &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verified_delivery_is_topiced_by_object_and_keyed_by_message_ids() {
    let body = bytes(&shared_body("whatsapp-message.json"));
    let intake = verify_with(&WhatsApp, &secrets(), &signed(APP_SECRET, &body), &body).unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key: "mids:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
                .to_owned(),
            topic: "whatsapp_business_account".to_owned(),
        }
    );

    let body = bytes(&shared_body("meta-messenger-message.json"));
    let intake = verify_with(&Messenger, &secrets(), &signed(APP_SECRET, &body), &body).unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key: "mids:m_1457764197618:41d102a3e1ae206a38".to_owned(),
            topic: "page".to_owned(),
        }
    );

    // Signed but not JSON.
    let junk = b"not json".to_vec();
    assert_eq!(
        verify_with(&Messenger, &secrets(), &signed(APP_SECRET, &junk), &junk),
        Err(VerifyError::Malformed(
            "body is not a JSON notification".to_owned()
        ))
    );
}

// --- handshake ------------------------------------------------------------------

#[test]
fn handshake_echoes_the_challenge_for_the_right_token() {
    let query =
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=shophub+verify%2Ftoken%2B1";
    assert_eq!(
        handshake_with(&settings(), query),
        Ok("1158201444".to_owned())
    );
    // Parameter order does not matter.
    let query =
        "hub.verify_token=shophub%20verify%2Ftoken%2B1&hub.challenge=abc&hub.mode=subscribe";
    assert_eq!(handshake_with(&settings(), query), Ok("abc".to_owned()));
    // The three connectors share the handshake.
    let secrets = secrets();
    let headers = HeaderMap::new();
    let settings = settings();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: "hub.mode=subscribe&hub.challenge=7&hub.verify_token=shophub+verify%2Ftoken%2B1",
        headers: &headers,
        body: &[],
    };
    assert_eq!(Instagram.handshake(&request), Some(Ok("7".to_owned())));
    assert_eq!(WhatsApp.handshake(&request), Some(Ok("7".to_owned())));
}

#[test]
fn handshake_refuses_wrong_token_mode_or_missing_parts() {
    let refused = |settings: &Map<String, Value>, query: &str, reason: &str| {
        assert_eq!(
            handshake_with(settings, query),
            Err(VerifyError::Malformed(reason.to_owned())),
            "{query}"
        );
    };
    let good = settings();
    let mismatch = "hub.verify_token does not match the connection's verify_token";
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
        mismatch,
    );
    // A prefix, or the token with a suffix, is not the token.
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=shophub",
        mismatch,
    );
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=shophub+verify%2Ftoken%2B1x",
        mismatch,
    );
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
        mismatch,
    );
    refused(
        &good,
        "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=shophub+verify%2Ftoken%2B1",
        "hub.mode is not subscribe",
    );
    refused(
        &good,
        "hub.challenge=1&hub.verify_token=shophub+verify%2Ftoken%2B1",
        "hub.mode is not subscribe",
    );
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=1",
        "missing hub.verify_token",
    );
    refused(
        &good,
        "hub.mode=subscribe&hub.verify_token=shophub+verify%2Ftoken%2B1",
        "missing hub.challenge",
    );
    refused(
        &good,
        "hub.mode=subscribe&hub.challenge=&hub.verify_token=shophub+verify%2Ftoken%2B1",
        "missing hub.challenge",
    );
    refused(&good, "", "hub.mode is not subscribe");
    // A connection without a token accepts no handshake, not even an empty token.
    let blank = map(json!({ "verify_token": "" }));
    refused(
        &blank,
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
        "the connection has no verify_token setting",
    );
    refused(
        &Map::new(),
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=x",
        "the connection has no verify_token setting",
    );
}

// --- shared samples -----------------------------------------------------------

#[test]
fn shared_messenger_sample_decodes_exactly() {
    let records = decode(&Messenger, &shared_body("meta-messenger-message.json"));
    assert_eq!(
        records,
        vec![chat(
            "m_1457764197618:41d102a3e1ae206a38",
            1_458_692_752_478,
            vec![key(KeyKind::CustomerId, "<PSID>")],
            "<PAGE_ID>:<PSID>",
            "messenger",
            Direction::Inbound,
            None,
            "<PSID>",
            Some("hello, world!"),
            vec![],
        )]
    );
}

#[test]
fn shared_whatsapp_sample_decodes_exactly() {
    let mut body = shared_body("whatsapp-message.json");
    // The sample marks its optional 2026 fields with placeholders; a real
    // delivery without usernames has neither.
    let contact = &mut body["entry"][0]["changes"][0]["value"]["contacts"][0];
    contact.as_object_mut().unwrap().remove("user_id");
    contact["profile"]
        .as_object_mut()
        .unwrap()
        .remove("username");

    let records = decode(&WhatsApp, &body);
    assert_eq!(
        records,
        vec![chat(
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            1_739_321_024_000,
            vec![
                key(KeyKind::Phone, "+16505551234"),
                key(KeyKind::CustomerId, "16505551234"),
            ],
            "106540352242922:16505551234",
            "whatsapp",
            Direction::Inbound,
            Some("Sheena Nelson"),
            "16505551234",
            Some("Where is my order #1001?"),
            vec![],
        )]
    );
}

// --- Messenger ----------------------------------------------------------------

const PAGE: &str = "107365408765432";
const PSID: &str = "6543210987654321";
const PSID2: &str = "7777000011112222";

#[test]
fn messenger_batch_yields_every_message_of_every_entry() {
    let records = decode(&Messenger, &own_fixture("messenger-batch"));
    let customer = vec![key(KeyKind::CustomerId, PSID)];
    let conversation = format!("{PAGE}:{PSID}");
    let other = format!("{PAGE}:{PSID2}");
    assert_eq!(
        records,
        vec![
            chat(
                "m_AbCdEfGhIjKlMnOpQrStUv1",
                1_739_321_024_123,
                customer.clone(),
                &conversation,
                "messenger",
                Direction::Inbound,
                None,
                PSID,
                Some("Is order #1001 shipped?"),
                vec![],
            ),
            chat(
                "m_AbCdEfGhIjKlMnOpQrStUv2",
                1_739_321_030_456,
                customer.clone(),
                &conversation,
                "messenger",
                Direction::Inbound,
                None,
                PSID,
                None,
                vec![
                    attachment(None, Some("image/*")),
                    attachment(None, Some("application/octet-stream")),
                ],
            ),
            // The page's echo: outbound, keyed by the customer it went to.
            chat(
                "m_PageReply000000000000001",
                1_739_321_090_000,
                customer.clone(),
                &conversation,
                "messenger",
                Direction::Outbound,
                None,
                PAGE,
                Some("Yes, it left our warehouse today."),
                vec![],
            ),
            // Second entry: a postback and a standby message.
            chat(
                "m_Postback00000000000000001",
                1_739_321_150_000,
                vec![key(KeyKind::CustomerId, PSID2)],
                &other,
                "messenger",
                Direction::Inbound,
                None,
                PSID2,
                Some("Track my order"),
                vec![],
            ),
            chat(
                "m_Standby000000000000000001",
                1_739_321_160_000,
                vec![key(KeyKind::CustomerId, PSID2)],
                &other,
                "messenger",
                Direction::Inbound,
                None,
                PSID2,
                Some("Hello?"),
                vec![],
            ),
        ]
    );
}

#[test]
fn echoes_never_carry_the_page_as_a_key() {
    let records = decode(&Messenger, &own_fixture("messenger-batch"));
    let echoes: Vec<&SourceRecord> = records
        .iter()
        .filter(|r| message(r).direction == Direction::Outbound)
        .collect();
    assert_eq!(echoes.len(), 1);
    assert_eq!(echoes[0].keys, vec![key(KeyKind::CustomerId, PSID)]);
    assert!(records
        .iter()
        .all(|r| r.keys.iter().all(|k| k.value != PAGE)));
}

#[test]
fn delivery_read_and_reaction_events_alone_yield_nothing() {
    let mut body = own_fixture("messenger-batch");
    let events: Vec<Value> = body["entry"][0]["messaging"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("message").is_none())
        .cloned()
        .collect();
    assert_eq!(events.len(), 3);
    body["entry"] = json!([{ "id": PAGE, "time": 1, "messaging": events }]);
    assert_eq!(decode(&Messenger, &body), vec![]);
    // ... and their dedupe key is the body's hash.
    assert!(dedupe_key("page", &bytes(&body)).starts_with("sha256:"));
}

#[test]
fn postback_without_mid_gets_a_stable_derived_id() {
    let body = json!({
        "object": "page",
        "entry": [{ "id": PAGE, "time": 1, "messaging": [{
            "sender": { "id": PSID }, "recipient": { "id": PAGE },
            "timestamp": 1_739_321_150_000_i64,
            "postback": { "title": "Get Started", "payload": "GET_STARTED" }
        }]}]
    });
    let records = decode(&Messenger, &body);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].external_id,
        format!("postback:{PAGE}:{PSID}:1739321150000")
    );
    assert_eq!(message(&records[0]).text.as_deref(), Some("Get Started"));
    assert_eq!(decode(&Messenger, &body), records);
}

#[test]
fn unreadable_events_are_reported_by_place_without_values() {
    let body = json!({
        "object": "page",
        "entry": [
            { "id": PAGE, "messaging": [] },
            { "id": PAGE, "messaging": [
                { "sender": { "id": PSID }, "recipient": { "id": PAGE }, "timestamp": 1, "message": { "mid": "m_1", "text": "ok" } },
                { "sender": { "id": PSID }, "recipient": { "id": PAGE }, "message": { "mid": "m_2", "text": "secret words" } }
            ]}
        ]
    });
    let err = Messenger
        .decode("page", &bytes(&body), &DecodeContext::default())
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: "page".to_owned(),
            reason: "entry 1 messaging 1: missing timestamp".to_owned(),
        }
    );

    let typed = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "changes": [{ "field": "messages", "value": {
            "metadata": { "phone_number_id": "1" },
            "messages": [{ "id": "wamid.1", "timestamp": "1", "type": "text", "text": { "body": ["secret words"] } }]
        }}]}]
    });
    let err = WhatsApp
        .decode(
            "whatsapp_business_account",
            &bytes(&typed),
            &DecodeContext::default(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: "whatsapp_business_account".to_owned(),
            reason: "entry 0 change 0: a field has an unexpected type".to_owned(),
        }
    );
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn other_objects_and_fields_decode_to_nothing() {
    let feed = json!({
        "object": "page",
        "entry": [{ "id": PAGE, "time": 1, "changes": [{ "field": "feed", "value": {
            "item": "post", "verb": "add", "message": "A post text, not a chat message"
        }}]}]
    });
    assert_eq!(decode(&Messenger, &feed), vec![]);
    let other = json!({ "object": "permissions", "entry": [{ "id": "1", "changes": [] }] });
    assert_eq!(decode(&Messenger, &other), vec![]);
    let account = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "account_update", "value": { "event": "VERIFIED_ACCOUNT" } }] }]
    });
    assert_eq!(decode(&WhatsApp, &account), vec![]);
}

// --- Instagram ----------------------------------------------------------------

#[test]
fn instagram_messages_echoes_and_test_changes_decode_exactly() {
    let ig = "17841400000000001";
    let igsid = "1122334455667788";
    let records = decode(&Instagram, &own_fixture("instagram-messages"));
    assert_eq!(
        records,
        vec![
            chat(
                "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAx",
                1_739_399_990_000,
                vec![key(KeyKind::CustomerId, igsid)],
                &format!("{ig}:{igsid}"),
                "instagram",
                Direction::Inbound,
                None,
                igsid,
                Some("Love this jacket, do you have it in M?"),
                vec![attachment(Some("share"), None)],
            ),
            chat(
                "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAy",
                1_739_399_995_000,
                vec![key(KeyKind::CustomerId, igsid)],
                &format!("{ig}:{igsid}"),
                "instagram",
                Direction::Outbound,
                None,
                ig,
                Some("We do! Sending a link."),
                vec![],
            ),
            // The read receipt and the unsent message give nothing; the
            // dashboard's `changes` shape (seconds, as a string) decodes.
            chat(
                "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDA0",
                1_739_400_000_000,
                vec![key(KeyKind::CustomerId, "9988776655443322")],
                &format!("{ig}:9988776655443322"),
                "instagram",
                Direction::Inbound,
                None,
                "9988776655443322",
                Some("Test from the dashboard"),
                vec![],
            ),
        ]
    );
}

#[test]
fn the_object_decides_the_channel_whichever_connection_receives_it() {
    // One callback URL may serve a Page and its Instagram account.
    let body = own_fixture("instagram-messages");
    let via_messenger = decode(&Messenger, &body);
    assert_eq!(via_messenger, decode(&Instagram, &body));
    assert!(via_messenger
        .iter()
        .all(|r| message(r).channel == "instagram"));
}

// --- WhatsApp -----------------------------------------------------------------

#[test]
fn whatsapp_batch_keeps_media_metadata_and_skips_statuses_and_reactions() {
    let records = decode(&WhatsApp, &own_fixture("whatsapp-batch"));
    let ada_keys = vec![
        key(KeyKind::Phone, "+447400123456"),
        key(KeyKind::CustomerId, "447400123456"),
        key(KeyKind::CustomerId, "GB.13491208655302741918"),
    ];
    assert_eq!(
        records,
        vec![
            chat(
                "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDEA",
                1_739_321_024_000,
                ada_keys.clone(),
                "106540352242922:447400123456",
                "whatsapp",
                Direction::Inbound,
                Some("Ada Lovelace"),
                "447400123456",
                Some("The parcel arrived damaged"),
                vec![attachment(Some("1003383421387256"), Some("image/jpeg"))],
            ),
            chat(
                "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDIA",
                1_739_321_030_000,
                ada_keys,
                "106540352242922:447400123456",
                "whatsapp",
                Direction::Inbound,
                Some("Ada Lovelace"),
                "447400123456",
                None,
                vec![attachment(Some("2003383421387257"), Some("application/pdf"))],
            ),
            // A username user without a phone: the BSUID is the key and handle.
            chat(
                "wamid.HBgUVVMuRU5ULjExODE1Nzk5MjEyODg2ODQ0ODMwFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDQA",
                1_739_321_060_000,
                vec![key(KeyKind::CustomerId, "US.ENT.11815799212886844830")],
                "106540352242922:US.ENT.11815799212886844830",
                "whatsapp",
                Direction::Inbound,
                Some("Grace"),
                "US.ENT.11815799212886844830",
                Some("Track my order"),
                vec![],
            ),
            // A wa_id that is no valid number still identifies the sender.
            chat(
                "wamid.HBgCMTIVAgASGBQzQUEwMDAwMDAwMDAwMDAwMDAwNQA=",
                1_739_321_070_000,
                vec![key(KeyKind::CustomerId, "12")],
                "106540352242922:12",
                "whatsapp",
                Direction::Inbound,
                Some("Test"),
                "12",
                Some("hi"),
                vec![],
            ),
        ]
    );
}

#[test]
fn whatsapp_status_only_notification_yields_nothing() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "statuses": [
                { "id": "wamid.OUT1", "status": "sent", "timestamp": "1739321000", "recipient_id": "447400123456" },
                { "id": "wamid.OUT1", "status": "delivered", "timestamp": "1739321001", "recipient_id": "447400123456" },
                { "id": "wamid.OUT2", "status": "failed", "timestamp": "1739321002", "recipient_id": "447400123456",
                  "errors": [{ "code": 131047, "title": "Re-engagement message" }] }
            ]
        }}]}]
    });
    assert_eq!(decode(&WhatsApp, &body), vec![]);
    // "sent" and "delivered" of one message must not collide as duplicates.
    let delivered = bytes(&body);
    let mut read = body.clone();
    read["entry"][0]["changes"][0]["value"]["statuses"][1]["status"] = json!("read");
    assert_ne!(
        dedupe_key("whatsapp_business_account", &delivered),
        dedupe_key("whatsapp_business_account", &bytes(&read))
    );
}

#[test]
fn whatsapp_media_and_reply_types() {
    let value = |message: Value| {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
                "metadata": { "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "Ada" }, "wa_id": "447400123456" }],
                "messages": [message]
            }}]}]
        })
    };
    let base = |kind: &str, extra: Value| {
        let mut m = json!({ "from": "447400123456", "id": "wamid.X", "timestamp": "1739321000", "type": kind });
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        value(m)
    };
    let content = |body: Value| {
        let records = decode(&WhatsApp, &body);
        assert_eq!(records.len(), 1);
        let m = message(&records[0]);
        (m.text.clone(), m.attachments.clone())
    };

    assert_eq!(
        content(base(
            "audio",
            json!({ "audio": { "id": "555", "mime_type": "audio/ogg; codecs=opus" } })
        )),
        (
            None,
            vec![attachment(Some("555"), Some("audio/ogg; codecs=opus"))]
        )
    );
    assert_eq!(
        content(base(
            "video",
            json!({ "video": { "id": "556", "mime_type": "video/mp4", "caption": "unboxing" } })
        )),
        (
            Some("unboxing".to_owned()),
            vec![attachment(Some("556"), Some("video/mp4"))]
        )
    );
    assert_eq!(
        content(base(
            "sticker",
            json!({ "sticker": { "id": "557", "mime_type": "image/webp", "animated": false } })
        )),
        (None, vec![attachment(Some("557"), Some("image/webp"))])
    );
    assert_eq!(
        content(base(
            "button",
            json!({ "button": { "payload": "STOP", "text": "Stop promotions" } })
        )),
        (Some("Stop promotions".to_owned()), vec![])
    );
    assert_eq!(
        content(base(
            "interactive",
            json!({ "interactive": { "type": "list_reply", "list_reply": { "id": "r1", "title": "Returns", "description": "Start a return" } } })
        )),
        (Some("Returns".to_owned()), vec![])
    );
    assert_eq!(
        content(base(
            "location",
            json!({ "location": { "latitude": 51.5, "longitude": -0.1, "name": "Shop", "address": "1 High St" } })
        )),
        (Some("Shop, 1 High St".to_owned()), vec![])
    );
    assert_eq!(
        content(base(
            "unsupported",
            json!({ "errors": [{ "code": 131051, "title": "Message type unknown" }] })
        )),
        (None, vec![])
    );
    for silent in [
        base(
            "system",
            json!({ "system": { "body": "changed number", "wa_id": "447400123457", "type": "user_changed_number" } }),
        ),
        base(
            "reaction",
            json!({ "reaction": { "message_id": "wamid.Y", "emoji": "x" } }),
        ),
        base("request_welcome", json!({})),
    ] {
        assert_eq!(decode(&WhatsApp, &silent), vec![]);
    }
}

#[test]
fn whatsapp_message_needs_its_business_number() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "contacts": [{ "wa_id": "447400123456" }],
            "messages": [{ "from": "447400123456", "id": "wamid.X", "timestamp": "1739321000", "type": "text", "text": { "body": "hi" } }]
        }}]}]
    });
    let err = WhatsApp
        .decode(
            "whatsapp_business_account",
            &bytes(&body),
            &DecodeContext::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload is not valid for topic whatsapp_business_account: entry 0 change 0 message 0: missing metadata.phone_number_id"
    );
}

// --- dedupe -------------------------------------------------------------------

#[test]
fn retries_and_rebatches_of_the_same_messages_share_a_dedupe_key() {
    let batch = own_fixture("messenger-batch");
    let body = bytes(&batch);
    let key = dedupe_key("page", &body);
    assert_eq!(
        key,
        "mids:m_AbCdEfGhIjKlMnOpQrStUv1,m_AbCdEfGhIjKlMnOpQrStUv2,m_PageReply000000000000001,m_Postback00000000000000001,m_Standby000000000000000001"
    );
    // A retry is byte-identical; verify gives the same key through the hub path.
    let first = verify_with(&Messenger, &secrets(), &signed(APP_SECRET, &body), &body).unwrap();
    let again = verify_with(&Messenger, &secrets(), &signed(APP_SECRET, &body), &body).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        first,
        Intake::Delivery {
            dedupe_key: key.clone(),
            topic: "page".to_owned()
        }
    );

    // The same messages batched differently (entries reversed, other
    // entry time, reads dropped) are the same delivery.
    let mut rebatched = batch.clone();
    let entries = rebatched["entry"].as_array_mut().unwrap();
    entries.reverse();
    entries[0]["time"] = json!(1_739_999_999_999_i64);
    entries[1]["messaging"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e.get("message").is_some());
    let rebatched = bytes(&rebatched);
    assert_ne!(rebatched, body);
    assert_eq!(dedupe_key("page", &rebatched), key);

    // A different message set is a different delivery.
    let mut fewer = batch.clone();
    fewer["entry"].as_array_mut().unwrap().pop();
    assert_ne!(dedupe_key("page", &bytes(&fewer)), key);

    // WhatsApp: keyed by wamids, statuses and reactions ignored.
    let wa = bytes(&own_fixture("whatsapp-batch"));
    assert_eq!(
        dedupe_key("whatsapp_business_account", &wa),
        "mids:sha256:".to_owned()
            + &crate::signature::sha256_hex(
                [
                    "wamid.HBgCMTIVAgASGBQzQUEwMDAwMDAwMDAwMDAwMDAwNQA=",
                    "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDEA",
                    "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDIA",
                    "wamid.HBgUVVMuRU5ULjExODE1Nzk5MjEyODg2ODQ0ODMwFQIAEhgUM0FBMDAwMDAwMDAwMDAwMDAwMDQA",
                ]
                .join(",")
                .as_bytes()
            )
    );
}

#[test]
fn long_id_lists_are_hashed_to_a_bounded_key() {
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "sender": { "id": PSID }, "recipient": { "id": PAGE },
                "timestamp": 1_739_321_000_000_i64 + i,
                "message": { "mid": format!("m_{i:040}"), "text": "x" }
            })
        })
        .collect();
    let body = json!({ "object": "page", "entry": [{ "id": PAGE, "messaging": events }] });
    assert_eq!(decode(&Messenger, &body).len(), 1000);
    let key = dedupe_key("page", &bytes(&body));
    assert!(key.starts_with("mids:sha256:"), "{key}");
    assert!(key.len() <= 200);
}

#[test]
fn unreadable_batches_fall_back_to_the_body_hash() {
    let body = br#"{"object":"page","entry":[{"messaging":[{"message":{"mid":"m_1"}}]}]}"#;
    assert_eq!(
        dedupe_key("page", body),
        format!("sha256:{}", crate::signature::sha256_hex(body))
    );
}
