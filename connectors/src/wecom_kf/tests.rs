use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::client::{classify, Cursor};
use super::crypto::{self, AesKey};
use super::mapping::{self, KfMessage};
use super::WecomKf;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource};
use crate::testkit::ApiFixture;
use crate::webhook::{
    DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const CORP_ID: &str = "ww4a1b2c3d4e5f6a7b";
const OTHER_CORP_ID: &str = "ww9999999999999999";
const TOKEN: &str = "kfCallbackToken42";
/// A 43-character EncodingAESKey whose last character leaves non-zero
/// bits past the 32nd byte, as random keys do.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_SECRET: &str = "kf-app-secret-value";
const TIMESTAMP: &str = "1615478585";
const NONCE: &str = "1372623149";
const KFID: &str = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q";
const OTHER_KFID: &str = "wkOTHERACCOUNT000000000000000000";
const CUSTOMER: &str = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw";
const CUSTOMER_2: &str = "wmAJ2GCAAAzzzzzzzzzzzzzzzzzzzzzz";
const SERVICER: &str = "Zhangsan";

fn key() -> AesKey {
    AesKey::from_encoding_aes_key(AES_KEY).expect("test key")
}

fn customer_key(id: &str) -> IdentityKey {
    IdentityKey {
        kind: KeyKind::CustomerId,
        value: id.to_owned(),
    }
}

fn message_of(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

// --- connector surface ------------------------------------------------------

#[test]
fn connector_declares_settings_secrets_webhooks_and_polling() {
    let c = crate::connector("wecom_kf").expect("registered");
    assert_eq!(c.platform(), "wecom_kf");
    assert_eq!(c.required_settings(), &["corp_id"]);
    assert_eq!(
        c.required_secrets(),
        &["token", "encoding_aes_key", "secret"]
    );
    let hooks = c.webhooks().expect("webhooks");
    assert_eq!(hooks.secret_keys(), &["token"]);
    assert_eq!(hooks.acknowledgement(), Some(""));
    let polling = c.polling().expect("polling");
    assert_eq!(polling.platform(), "wecom_kf");
    assert_eq!(polling.resources(), &[Resource::Messages]);
    assert_eq!(polling.credentials(), &["secret"]);
    assert_eq!(
        polling.default_base_url(&Map::new()),
        Some("https://qyapi.weixin.qq.com".to_owned())
    );
    assert_eq!(
        polling.start_cursor(Resource::Messages, None),
        json!({"next_cursor": null})
    );
    // WeCom's stream has no time filter: `since` changes nothing.
    assert_eq!(
        polling.start_cursor(
            Resource::Messages,
            Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
        ),
        json!({"next_cursor": null})
    );
}

#[test]
fn triggers_sync_only_for_kf_msg_or_event() {
    assert_eq!(
        WecomKf.triggers_sync("kf_msg_or_event", b"<xml/>"),
        Some(Resource::Messages)
    );
    assert_eq!(WecomKf.triggers_sync("kf_account_auth_change", b""), None);
    assert_eq!(WecomKf.triggers_sync("text", b""), None);
}

// --- webhooks: requests -----------------------------------------------------

/// Everything a `WebhookRequest` borrows.
struct Req {
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(corp_id: &str, params: &[(&str, &str)], body: &[u8]) -> Self {
        let settings = json!({"corp_id": corp_id}).as_object().unwrap().clone();
        let secrets = json!({"token": TOKEN, "encoding_aes_key": AES_KEY, "secret": APP_SECRET})
            .as_object()
            .unwrap()
            .clone();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        Self {
            settings,
            secrets,
            query,
            headers: HeaderMap::new(),
            body: body.to_vec(),
        }
    }

    fn without_secret(mut self, name: &str) -> Self {
        self.secrets.remove(name);
        self
    }

    fn request(&self) -> WebhookRequest<'_> {
        WebhookRequest {
            settings: &self.settings,
            secrets: &self.secrets,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify(&self) -> Result<Intake, VerifyError> {
        WecomKf.verify_request(&self.request())
    }

    fn handshake(&self) -> Result<String, VerifyError> {
        WecomKf
            .handshake(&self.request())
            .expect("WeCom has a URL check")
    }
}

/// The decrypted callback of the shared sample, as WeCom's XML.
fn callback_xml(token: &str) -> Vec<u8> {
    let event = &fixtures::load("wecom-kf-sync-msg.json")["callback_event_decrypted"];
    format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[{}]]></MsgType><Event><![CDATA[{}]]></Event>\
         <Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{}]]></OpenKfId></xml>",
        event["CreateTime"],
        event["MsgType"].as_str().unwrap(),
        event["Event"].as_str().unwrap(),
        event["OpenKfId"].as_str().unwrap(),
    )
    .into_bytes()
}

fn envelope(encrypted: &str) -> Vec<u8> {
    format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\
         <AgentID><![CDATA[]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    .into_bytes()
}

/// A callback POST of `envelope(encrypted)` for `corp_id`'s connection,
/// signed over `signed` with `token`.
fn post(corp_id: &str, token: &str, encrypted: &str, signed: &str) -> Req {
    let msg_signature = crypto::signature(&[token, TIMESTAMP, NONCE, signed]);
    Req::new(
        corp_id,
        &[
            ("msg_signature", &msg_signature),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
        ],
        &envelope(encrypted),
    )
}

fn encrypt(random: u8, msg: &[u8], receive_id: &str) -> String {
    key().encrypt([random; 16], msg, receive_id)
}

fn url_check(corp_id: &str, echostr: &str, signed: &str) -> Req {
    let msg_signature = crypto::signature(&[TOKEN, TIMESTAMP, NONCE, signed]);
    Req::new(
        corp_id,
        &[
            ("msg_signature", &msg_signature),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("echostr", echostr),
        ],
        b"",
    )
}

// --- webhooks: URL check ----------------------------------------------------

#[test]
fn url_check_answers_the_decrypted_echostr() {
    let echostr = encrypt(7, b"4536871329072951273", CORP_ID);
    let req = url_check(CORP_ID, &echostr, &echostr);
    assert_eq!(req.handshake().unwrap(), "4536871329072951273");
}

#[test]
fn url_check_accepts_an_echostr_whose_plus_became_a_space() {
    // Find a ciphertext with a `+`, then send it as a raw query would
    // arrive without percent-encoding: `+` decodes to a space.
    let (echostr, plain) = (0u8..=255)
        .map(|r| {
            let plain = format!("echo-{r}");
            (encrypt(r, plain.as_bytes(), CORP_ID), plain)
        })
        .find(|(e, _)| e.contains('+'))
        .expect("some ciphertext has a plus");
    let mut req = url_check(CORP_ID, &echostr, &echostr);
    let msg_signature = crypto::signature(&[TOKEN, TIMESTAMP, NONCE, &echostr]);
    req.query = format!(
        "msg_signature={msg_signature}&timestamp={TIMESTAMP}&nonce={NONCE}&echostr={echostr}"
    );
    assert_eq!(req.handshake().unwrap(), plain);
}

#[test]
fn url_check_refuses_bad_signatures_other_companies_and_missing_parts() {
    let echostr = encrypt(7, b"hello", CORP_ID);
    // Signed over something else.
    assert_eq!(
        url_check(CORP_ID, &echostr, "other").handshake(),
        Err(VerifyError::BadSignature)
    );
    // Encrypted for another company.
    let foreign = encrypt(7, b"hello", OTHER_CORP_ID);
    assert_eq!(
        url_check(CORP_ID, &foreign, &foreign).handshake(),
        Err(VerifyError::BadSignature)
    );
    // No msg_signature at all.
    let req = Req::new(
        CORP_ID,
        &[
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("echostr", &echostr),
        ],
        b"",
    );
    assert_eq!(
        req.handshake(),
        Err(VerifyError::MissingSignature("msg_signature"))
    );
    // No echostr.
    let req = Req::new(
        CORP_ID,
        &[
            ("msg_signature", "00"),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
        ],
        b"",
    );
    assert!(matches!(req.handshake(), Err(VerifyError::Malformed(_))));
    // Signed correctly but not a ciphertext.
    let req = url_check(CORP_ID, "not base64!", "not base64!");
    assert_eq!(
        req.handshake(),
        Err(VerifyError::Malformed("echostr is not base64".to_owned()))
    );
}

// --- webhooks: POST callbacks -----------------------------------------------

#[test]
fn callback_round_trip_unwraps_the_event() {
    let plaintext = callback_xml("ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR");
    let encrypted = encrypt(1, &plaintext, CORP_ID);
    let intake = post(CORP_ID, TOKEN, &encrypted, &encrypted)
        .verify()
        .unwrap();
    assert_eq!(
        intake,
        Intake::Unwrapped {
            dedupe_key:
                "kf_msg_or_event:ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR:1615478585"
                    .to_owned(),
            topic: "kf_msg_or_event".to_owned(),
            body: plaintext.clone(),
        }
    );
    // The stored plaintext decodes to nothing and asks for a sync.
    let Intake::Unwrapped { topic, body, .. } = intake else {
        unreachable!()
    };
    assert_eq!(
        WecomKf.decode(&topic, &body, &DecodeContext::default()),
        Ok(Vec::new())
    );
    assert_eq!(
        WecomKf.triggers_sync(&topic, &body),
        Some(Resource::Messages)
    );
}

#[test]
fn retries_reencrypted_with_new_randomness_share_the_dedupe_key() {
    let plaintext = callback_xml("tok-1");
    let key_of = |random: u8| {
        let encrypted = encrypt(random, &plaintext, CORP_ID);
        match post(CORP_ID, TOKEN, &encrypted, &encrypted)
            .verify()
            .unwrap()
        {
            Intake::Unwrapped { dedupe_key, .. } => dedupe_key,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(key_of(1), key_of(2));
    // Another callback (another Token) is another delivery.
    let other = callback_xml("tok-2");
    let encrypted = encrypt(1, &other, CORP_ID);
    let Intake::Unwrapped { dedupe_key, .. } = post(CORP_ID, TOKEN, &encrypted, &encrypted)
        .verify()
        .unwrap()
    else {
        panic!("not unwrapped")
    };
    assert_ne!(dedupe_key, key_of(1));
}

#[test]
fn callback_without_token_is_deduped_by_its_hash() {
    let plaintext = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>1615478600</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_account_auth_change]]></Event></xml>"
    )
    .into_bytes();
    let encrypted = encrypt(3, &plaintext, CORP_ID);
    let intake = post(CORP_ID, TOKEN, &encrypted, &encrypted)
        .verify()
        .unwrap();
    assert_eq!(
        intake,
        Intake::Unwrapped {
            dedupe_key: format!("sha256:{}", crate::signature::sha256_hex(&plaintext)),
            topic: "kf_account_auth_change".to_owned(),
            body: plaintext,
        }
    );
}

#[test]
fn callback_for_another_company_is_refused() {
    let plaintext = callback_xml("tok");
    // Encrypted for another CorpID (same key and token): refused.
    let foreign = encrypt(1, &plaintext, OTHER_CORP_ID);
    assert_eq!(
        post(CORP_ID, TOKEN, &foreign, &foreign).verify(),
        Err(VerifyError::BadSignature)
    );
    // A connection configured with another CorpID refuses ours.
    let ours = encrypt(1, &plaintext, CORP_ID);
    assert_eq!(
        post(OTHER_CORP_ID, TOKEN, &ours, &ours).verify(),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn callback_with_bad_signature_or_tampering_is_refused() {
    let plaintext = callback_xml("tok");
    let encrypted = encrypt(1, &plaintext, CORP_ID);
    // Signed with another token.
    assert_eq!(
        post(CORP_ID, "wrong-token", &encrypted, &encrypted).verify(),
        Err(VerifyError::BadSignature)
    );
    // Body swapped after signing.
    let other = encrypt(2, &plaintext, CORP_ID);
    assert_eq!(
        post(CORP_ID, TOKEN, &other, &encrypted).verify(),
        Err(VerifyError::BadSignature)
    );
    // No msg_signature.
    let req = Req::new(
        CORP_ID,
        &[("timestamp", TIMESTAMP), ("nonce", NONCE)],
        &envelope(&encrypted),
    );
    assert_eq!(
        req.verify(),
        Err(VerifyError::MissingSignature("msg_signature"))
    );
    // The header-only path never verifies anything.
    assert_eq!(
        WecomKf.verify(
            &[TOKEN.as_bytes()],
            &HeaderMap::new(),
            &envelope(&encrypted)
        ),
        Err(VerifyError::MissingSignature("msg_signature"))
    );
}

#[test]
fn callback_problems_are_named_without_values() {
    let plaintext = callback_xml("tok");
    let encrypted = encrypt(1, &plaintext, CORP_ID);
    // No AES key configured.
    let err = post(CORP_ID, TOKEN, &encrypted, &encrypted)
        .without_secret("encoding_aes_key")
        .verify()
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::Malformed("the connection has no encoding_aes_key secret".to_owned())
    );
    // Not an envelope.
    let msg_signature = crypto::signature(&[TOKEN, TIMESTAMP, NONCE, "x"]);
    let req = Req::new(
        CORP_ID,
        &[
            ("msg_signature", &msg_signature),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
        ],
        b"{\"not\": \"xml\"}",
    );
    assert!(matches!(req.verify(), Err(VerifyError::Malformed(_))));
    // Decrypts, but is not callback XML.
    let junk = encrypt(1, b"just text", CORP_ID);
    let err = post(CORP_ID, TOKEN, &junk, &junk).verify().unwrap_err();
    assert_eq!(
        err,
        VerifyError::Malformed("decrypted Encrypt is not WeCom callback XML".to_owned())
    );
    assert!(!err.to_string().contains("just text"));
}

#[test]
fn decode_rejects_a_body_that_is_not_callback_xml() {
    assert!(matches!(
        WecomKf.decode("kf_msg_or_event", b"\xff\xfe", &DecodeContext::default()),
        Err(DecodeError::Invalid { .. })
    ));
}

// --- mapping ----------------------------------------------------------------

fn entry(value: Value) -> KfMessage {
    serde_json::from_value(value).unwrap()
}

fn map(value: Value) -> Result<Option<SourceRecord>, ConnectorError> {
    mapping::message_record(&entry(value), None, None)
}

#[test]
fn shared_sample_maps_to_one_inbound_text_message() {
    let sample = fixtures::load("wecom-kf-sync-msg.json");
    let response: mapping::SyncMsgResponse =
        serde_json::from_value(sample["sync_msg_response"].clone()).unwrap();
    assert_eq!(response.errcode, 0);
    assert!(response.has_more());
    assert_eq!(response.next_cursor.as_deref(), Some("4gw7MepFLfgF2VC5npN"));
    assert_eq!(response.msg_list.len(), 1);
    let record = mapping::message_record(&response.msg_list[0], None, None)
        .unwrap()
        .expect("a customer message");
    let sent = Utc.timestamp_opt(1_615_478_585, 0).unwrap();
    assert_eq!(
        record,
        SourceRecord {
            external_id: "from_msgid_4622416642169452483".to_owned(),
            version: sent,
            occurred_at: sent,
            keys: vec![customer_key(CUSTOMER)],
            body: RecordBody::Message(Message {
                conversation_id: format!("{KFID}:{CUSTOMER}"),
                channel: "wecom_kf".to_owned(),
                direction: Direction::Inbound,
                sender_name: None,
                sender_handle: Some(CUSTOMER.to_owned()),
                text: Some("hello".to_owned()),
                subject: None,
                attachments: Vec::new(),
            }),
        }
    );
}

#[test]
fn servicer_messages_are_outbound_with_the_customer_key() {
    let record = map(json!({
        "msgid": "m-out", "open_kfid": KFID, "external_userid": CUSTOMER,
        "send_time": 1_615_478_600, "origin": 5, "servicer_userid": SERVICER,
        "msgtype": "text", "text": {"content": "How can I help?"}
    }))
    .unwrap()
    .unwrap();
    let message = message_of(&record);
    assert_eq!(message.direction, Direction::Outbound);
    assert_eq!(message.sender_handle.as_deref(), Some(SERVICER));
    assert_eq!(message.conversation_id, format!("{KFID}:{CUSTOMER}"));
    assert_eq!(message.text.as_deref(), Some("How can I help?"));
    // The key is the customer's, never the servicer's.
    assert_eq!(record.keys, vec![customer_key(CUSTOMER)]);
}

#[test]
fn system_events_and_unknown_origins_produce_nothing() {
    // The documented event shape has no msgid or send_time at all.
    assert_eq!(
        map(
            json!({"msgtype": "event", "event": {"event_type": "enter_session",
            "open_kfid": KFID, "external_userid": CUSTOMER}})
        )
        .unwrap(),
        None
    );
    assert_eq!(
        map(
            json!({"msgid": "e1", "open_kfid": KFID, "external_userid": CUSTOMER,
            "send_time": 1_615_478_600, "origin": 4, "msgtype": "event",
            "event": {"event_type": "msg_send_fail", "fail_msgid": "x", "fail_type": 4}})
        )
        .unwrap(),
        None
    );
    // An event with a customer origin is still an event.
    assert_eq!(
        map(json!({"msgid": "e2", "origin": 3, "msgtype": "event"})).unwrap(),
        None
    );
    assert_eq!(
        map(json!({"msgid": "x", "origin": 9, "msgtype": "text"})).unwrap(),
        None
    );
}

#[test]
fn media_and_rich_messages_become_descriptions_and_attachment_metadata() {
    let base = |msgtype: &str, extra: Value| {
        let mut value = json!({
            "msgid": format!("m-{msgtype}"), "open_kfid": KFID, "external_userid": CUSTOMER,
            "send_time": 1_615_478_700, "origin": 3, "msgtype": msgtype,
        });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let record = map(value).unwrap().unwrap();
        message_of(&record).clone()
    };
    let attachment = |name: &str, content_type: Option<&str>| Attachment {
        name: Some(name.to_owned()),
        content_type: content_type.map(str::to_owned),
        size: None,
    };

    let image = base("image", json!({"image": {"media_id": "MEDIA_IMG"}}));
    assert_eq!(image.text.as_deref(), Some("[image]"));
    assert_eq!(
        image.attachments,
        vec![attachment("MEDIA_IMG", Some("image/*"))]
    );
    let voice = base("voice", json!({"voice": {"media_id": "MEDIA_VOICE"}}));
    assert_eq!(voice.text.as_deref(), Some("[voice]"));
    assert_eq!(
        voice.attachments,
        vec![attachment("MEDIA_VOICE", Some("audio/amr"))]
    );
    let video = base("video", json!({"video": {"media_id": "MEDIA_VIDEO"}}));
    assert_eq!(
        video.attachments,
        vec![attachment("MEDIA_VIDEO", Some("video/*"))]
    );
    let file = base("file", json!({"file": {"media_id": "MEDIA_FILE"}}));
    assert_eq!(file.text.as_deref(), Some("[file]"));
    assert_eq!(file.attachments, vec![attachment("MEDIA_FILE", None)]);

    let location = base(
        "location",
        json!({"location": {"latitude": 23.1, "longitude": 113.3,
            "name": "Canton Tower", "address": "Haizhu, Guangzhou"}}),
    );
    assert_eq!(
        location.text.as_deref(),
        Some("[location] Canton Tower\nHaizhu, Guangzhou\n(23.1, 113.3)")
    );
    assert!(location.attachments.is_empty());
    let as_strings = base(
        "location",
        json!({"location": {"latitude": "23.1", "longitude": "113.3", "name": ""}}),
    );
    assert_eq!(as_strings.text.as_deref(), Some("[location] (23.1, 113.3)"));
    let link = base(
        "link",
        json!({"link": {"title": "Order help", "desc": "", "url": "https://example.com/h",
            "pic_url": "https://example.com/p.png"}}),
    );
    assert_eq!(
        link.text.as_deref(),
        Some("[link] Order help\nhttps://example.com/h")
    );
    let mini = base(
        "miniprogram",
        json!({"miniprogram": {"title": "Shop", "appid": "wx1", "pagepath": "p",
            "thumb_media_id": "T"}}),
    );
    assert_eq!(mini.text.as_deref(), Some("[miniprogram] Shop"));
    let card = base("business_card", json!({"business_card": {"userid": "u1"}}));
    assert_eq!(card.text.as_deref(), Some("[business_card]"));
    assert!(card.attachments.is_empty());
    // An empty text is no text.
    let empty = base("text", json!({"text": {"content": ""}}));
    assert_eq!(empty.text, None);
}

#[test]
fn messages_missing_fields_fail_naming_the_field_not_the_value() {
    let err = map(json!({"msgid": "m9", "open_kfid": KFID, "send_time": 1,
        "origin": 3, "msgtype": "text", "text": {"content": "secret words"}}))
    .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Malformed("msg_list entry m9 has no external_userid".to_owned())
    );
    let err = map(json!({"open_kfid": KFID, "external_userid": CUSTOMER,
        "send_time": 1, "origin": 3, "msgtype": "text"}))
    .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Malformed("a msg_list entry has no msgid".to_owned())
    );
    let err = map(
        json!({"msgid": "m8", "open_kfid": KFID, "external_userid": CUSTOMER,
        "origin": 5, "msgtype": "text"}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Malformed("msg_list entry m8 has no send_time".to_owned())
    );
}

#[test]
fn errcodes_are_classified() {
    let unauthorized = |code| {
        matches!(
            classify(
                "gettoken",
                code,
                Some("invalid credential, hint: [x], from ip: 1.2.3.4")
            ),
            ConnectorError::Unauthorized(_)
        )
    };
    for code in [40001, 40013, 40014, 42001, 48002, 60020] {
        assert!(unauthorized(code), "{code}");
    }
    for code in [45009, 45011, 45033] {
        assert_eq!(
            classify("sync_msg", code, None),
            ConnectorError::RateLimited { retry_after: None },
            "{code}"
        );
    }
    assert!(matches!(
        classify("sync_msg", -1, Some("system busy")),
        ConnectorError::Transient(_)
    ));
    assert_eq!(
        classify(
            "sync_msg",
            95000,
            Some("invalid open_kfid, hint: [1], from ip: 1.2.3.4")
        ),
        ConnectorError::Permanent("sync_msg answered errcode 95000 (invalid open_kfid)".to_owned())
    );
}

// --- polling against a fake WeCom ---------------------------------------------

mod fake {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Query, State};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::Json;
    use http::StatusCode;
    use serde_json::{json, Value};

    use super::{APP_SECRET, CORP_ID};

    /// WeCom's messages for one app: pages of `msg_list`, read by cursor.
    #[derive(Debug, Default)]
    pub(super) struct Wecom {
        /// `(msg_list, has_more)` per page; the cursor after page `i` is
        /// `c{i+1}`.
        pub(super) pages: Vec<(Vec<Value>, bool)>,
        /// Access tokens handed out (all valid unless `expired`).
        pub(super) issued: Vec<String>,
        pub(super) expired: bool,
        pub(super) gettoken_calls: usize,
        /// Every `sync_msg` body, with the access token it came with.
        pub(super) syncs: Vec<(String, Value)>,
        /// The next `gettoken` / `sync_msg` answers this errcode.
        pub(super) token_errcode: Option<i64>,
        pub(super) sync_errcode: Option<i64>,
        /// The next `sync_msg` answers this HTTP status.
        pub(super) sync_status: Option<StatusCode>,
        /// The next `sync_msg` answers a body that is not JSON.
        pub(super) sync_garbage: bool,
    }

    pub(super) type Shared = Arc<Mutex<Wecom>>;

    pub(super) async fn start(wecom: Shared) -> String {
        let router = axum::Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/kf/sync_msg", post(sync_msg))
            .with_state(wecom);
        crate::testkit::serve(router).await
    }

    fn error(errcode: i64, errmsg: &str) -> Response {
        Json(json!({
            "errcode": errcode,
            "errmsg": format!("{errmsg}, hint: [1700000000_1_abc], from ip: 203.0.113.9, more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"),
        }))
        .into_response()
    }

    async fn gettoken(
        State(wecom): State<Shared>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        let mut wecom = wecom.lock().unwrap();
        wecom.gettoken_calls += 1;
        if let Some(code) = wecom.token_errcode.take() {
            return error(code, "api freq out of limit");
        }
        if query.get("corpid").map(String::as_str) != Some(CORP_ID) {
            return error(40013, "invalid corpid");
        }
        if query.get("corpsecret").map(String::as_str) != Some(APP_SECRET) {
            return error(40001, "invalid credential");
        }
        let token = format!("AT-{}", wecom.issued.len() + 1);
        wecom.issued.push(token.clone());
        Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}))
            .into_response()
    }

    async fn sync_msg(
        State(wecom): State<Shared>,
        Query(query): Query<HashMap<String, String>>,
        Json(body): Json<Value>,
    ) -> Response {
        let mut wecom = wecom.lock().unwrap();
        let access_token = query.get("access_token").cloned().unwrap_or_default();
        wecom.syncs.push((access_token.clone(), body.clone()));
        if access_token.is_empty() {
            return error(41001, "access_token missing");
        }
        if !wecom.issued.contains(&access_token) {
            return error(40014, "invalid access_token");
        }
        if wecom.expired {
            return error(42001, "access_token expired");
        }
        if let Some(status) = wecom.sync_status.take() {
            return (status, "upstream trouble").into_response();
        }
        if std::mem::take(&mut wecom.sync_garbage) {
            return (StatusCode::OK, "<html>gateway</html>").into_response();
        }
        if let Some(code) = wecom.sync_errcode.take() {
            return error(code, "api freq out of limit");
        }
        let limit = body["limit"].as_u64().unwrap_or(1000);
        if limit == 0 || limit > 1000 {
            return error(40058, "invalid limit");
        }
        let index = match body.get("cursor").and_then(Value::as_str) {
            None => 0,
            Some(cursor) => match cursor.strip_prefix('c').and_then(|n| n.parse().ok()) {
                Some(index) => index,
                None => return error(95017, "invalid cursor"),
            },
        };
        let (msg_list, has_more, next_cursor) = match wecom.pages.get(index) {
            Some((list, more)) => (list.clone(), *more, format!("c{}", index + 1)),
            // Nothing new: WeCom answers an empty list and no cursor.
            None => (Vec::new(), false, String::new()),
        };
        let only = body.get("open_kfid").and_then(Value::as_str);
        let msg_list: Vec<Value> = msg_list
            .into_iter()
            .filter(|m| {
                only.is_none() || m["open_kfid"].as_str() == only || m["msgtype"] == "event"
            })
            .collect();
        Json(json!({
            "errcode": 0,
            "errmsg": "ok",
            "next_cursor": next_cursor,
            "has_more": i32::from(has_more),
            "msg_list": msg_list,
        }))
        .into_response()
    }
}

fn text(
    msgid: &str,
    kfid: &str,
    customer: &str,
    origin: i64,
    send_time: i64,
    words: &str,
) -> Value {
    let mut value = json!({
        "msgid": msgid, "open_kfid": kfid, "external_userid": customer,
        "send_time": send_time, "origin": origin, "msgtype": "text",
        "text": {"content": words},
    });
    if origin == 5 {
        value["servicer_userid"] = json!(SERVICER);
    }
    value
}

fn enter_session() -> Value {
    json!({"msgid": "evt-1", "send_time": 1_700_000_001, "origin": 4, "msgtype": "event",
        "event": {"event_type": "enter_session", "open_kfid": KFID,
            "external_userid": CUSTOMER, "scene": "123"}})
}

/// Three pages: messages and a system event, an empty page that still has
/// more, and a last page whose messages share one second.
fn three_pages() -> Vec<(Vec<Value>, bool)> {
    vec![
        (
            vec![
                text("m1", KFID, CUSTOMER, 3, 1_700_000_000, "hi"),
                enter_session(),
                text(
                    "m2",
                    KFID,
                    CUSTOMER,
                    5,
                    1_700_000_010,
                    "hello, how can I help?",
                ),
            ],
            true,
        ),
        (Vec::new(), true),
        (
            vec![
                text("m3", KFID, CUSTOMER_2, 3, 1_700_000_020, "order 1001?"),
                json!({"msgid": "m4", "open_kfid": KFID, "external_userid": CUSTOMER_2,
                    "send_time": 1_700_000_020, "origin": 3, "msgtype": "image",
                    "image": {"media_id": "MEDIA_4"}}),
                text("m5", KFID, CUSTOMER_2, 5, 1_700_000_020, "checking"),
            ],
            false,
        ),
    ]
}

async fn wecom_with(wecom: fake::Wecom, settings: Value) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(wecom));
    let base = fake::start(shared.clone()).await;
    let mut fixture = ApiFixture::new(
        &base,
        settings,
        json!({"token": TOKEN, "encoding_aes_key": AES_KEY, "secret": APP_SECRET}),
    );
    fixture.now = Utc.with_ymd_and_hms(2023, 11, 15, 0, 0, 0).unwrap();
    (shared, fixture)
}

async fn poll(fixture: &ApiFixture, cursor: &Value) -> Result<Page, ConnectorError> {
    WecomKf
        .poll(&fixture.api(), Resource::Messages, cursor)
        .await
}

/// Polls until caught up; returns every page.
async fn sweep(fixture: &ApiFixture, cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut cursor = cursor;
    for _ in 0..20 {
        let page = poll(fixture, &cursor).await.unwrap();
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("the sweep did not end");
}

fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.external_id.clone()))
        .collect()
}

#[tokio::test]
async fn sweep_reads_every_message_once_and_pages_through_an_empty_page() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let start = WecomKf.start_cursor(Resource::Messages, None);
    let pages = sweep(&fixture, start).await;

    // Three calls: the empty middle page (has_more = 1) did not end it.
    assert_eq!(pages.len(), 3);
    assert_eq!(
        pages.iter().map(|p| p.caught_up).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    assert!(pages[1].records.is_empty());
    // Every message once, the system event never; ties on one second kept.
    assert_eq!(ids(&pages), vec!["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        pages.iter().map(|p| p.cursor.clone()).collect::<Vec<_>>(),
        vec![
            json!({"next_cursor": "c1"}),
            json!({"next_cursor": "c2"}),
            json!({"next_cursor": "c3", "watermark": "2023-11-15T00:00:00Z"}),
        ]
    );
    assert_eq!(pages[0].watermark, None);
    assert_eq!(pages[2].watermark, Some(fixture.now));

    let directions: Vec<Direction> = pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| message_of(r).direction))
        .collect();
    assert_eq!(
        directions,
        vec![
            Direction::Inbound,
            Direction::Outbound,
            Direction::Inbound,
            Direction::Inbound,
            Direction::Outbound
        ]
    );
    let m5 = &pages[2].records[2];
    assert_eq!(m5.keys, vec![customer_key(CUSTOMER_2)]);
    assert_eq!(
        message_of(m5).conversation_id,
        format!("{KFID}:{CUSTOMER_2}")
    );
    assert_eq!(m5.version, Utc.timestamp_opt(1_700_000_020, 0).unwrap());

    // What WeCom saw: a fresh token per poll, the cursor chain, limit 1000,
    // AMR voice, no callback token, no account filter.
    let wecom = wecom.lock().unwrap();
    assert_eq!(wecom.gettoken_calls, 3);
    let tokens: Vec<&str> = wecom.syncs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tokens, vec!["AT-1", "AT-2", "AT-3"]);
    let bodies: Vec<&Value> = wecom.syncs.iter().map(|(_, b)| b).collect();
    assert_eq!(bodies[0], &json!({"limit": 1000, "voice_format": 0}));
    assert_eq!(
        bodies[1],
        &json!({"cursor": "c1", "limit": 1000, "voice_format": 0})
    );
    assert_eq!(bodies[2]["cursor"], "c2");
}

#[tokio::test]
async fn a_mid_sweep_cursor_resumes_without_gaps_after_a_crash() {
    let (_wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let first = poll(&fixture, &json!({"next_cursor": null})).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&first)), vec!["m1", "m2"]);
    // The runner crashed after committing page one: resume from its cursor.
    let rest = sweep(&fixture, first.cursor.clone()).await;
    assert_eq!(ids(&rest), vec!["m3", "m4", "m5"]);
    // And once more from the same cursor: the same pages again, no gaps.
    let again = sweep(&fixture, first.cursor).await;
    assert_eq!(ids(&again), vec!["m3", "m4", "m5"]);
}

#[tokio::test]
async fn the_next_sweep_continues_from_the_last_cursor() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let first = sweep(&fixture, json!({"next_cursor": null})).await;
    let end = first.last().unwrap().cursor.clone();

    // Nothing new: an empty answer without next_cursor keeps our cursor.
    let idle = poll(&fixture, &end).await.unwrap();
    assert!(idle.caught_up);
    assert!(idle.records.is_empty());
    assert_eq!(idle.cursor["next_cursor"], "c3");

    // New messages arrive; the next sweep reads only those.
    wecom.lock().unwrap().pages.push((
        vec![text("m6", KFID, CUSTOMER, 3, 1_700_000_100, "thanks")],
        false,
    ));
    let next = sweep(&fixture, idle.cursor).await;
    assert_eq!(ids(&next), vec!["m6"]);
    assert_eq!(next.last().unwrap().cursor["next_cursor"], "c4");
}

#[tokio::test]
async fn open_kfid_setting_limits_the_connection_to_one_account() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: vec![(
                vec![
                    text("a1", KFID, CUSTOMER, 3, 1_700_000_000, "mine"),
                    text("b1", OTHER_KFID, CUSTOMER, 3, 1_700_000_001, "theirs"),
                ],
                false,
            )],
            ..Default::default()
        },
        json!({"corp_id": CORP_ID, "open_kfid": KFID}),
    )
    .await;
    let page = poll(&fixture, &json!({"next_cursor": null})).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&page)), vec!["a1"]);
    assert_eq!(wecom.lock().unwrap().syncs[0].1["open_kfid"], KFID);

    // Entries of another account are skipped even if WeCom sent them.
    let other = mapping::message_record(
        &entry(text("b2", OTHER_KFID, CUSTOMER, 3, 1_700_000_002, "x")),
        Some(KFID),
        None,
    )
    .unwrap();
    assert_eq!(other, None);
}

#[tokio::test]
async fn a_callback_token_in_the_cursor_is_sent_once_and_not_kept() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let page = poll(
        &fixture,
        &json!({"next_cursor": "c2", "token": "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"}),
    )
    .await
    .unwrap();
    assert_eq!(
        wecom.lock().unwrap().syncs[0].1,
        json!({"cursor": "c2", "token": "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
            "limit": 1000, "voice_format": 0})
    );
    assert_eq!(page.cursor.get("token"), None);
    assert_eq!(ids(std::slice::from_ref(&page)), vec!["m3", "m4", "m5"]);
}

#[tokio::test]
async fn throttling_is_rate_limited() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            sync_errcode: Some(45009),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let start = json!({"next_cursor": null});
    assert_eq!(
        poll(&fixture, &start).await,
        Err(ConnectorError::RateLimited { retry_after: None })
    );
    wecom.lock().unwrap().token_errcode = Some(45033);
    assert_eq!(
        poll(&fixture, &start).await,
        Err(ConnectorError::RateLimited { retry_after: None })
    );
    // Once the limit lifts, the same cursor reads the page.
    let page = poll(&fixture, &start).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&page)), vec!["m1", "m2"]);
}

#[tokio::test]
async fn refused_or_expired_credentials_are_unauthorized() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            expired: true,
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let start = json!({"next_cursor": null});
    let err = poll(&fixture, &start).await.unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized(
            "sync_msg answered errcode 42001 (access_token expired)".to_owned()
        )
    );
    wecom.lock().unwrap().expired = false;

    // A wrong app secret: gettoken refuses, and the secret is not repeated.
    let mut wrong = ApiFixture::new(
        &fixture.base_url,
        json!({"corp_id": CORP_ID}),
        json!({"token": TOKEN, "encoding_aes_key": AES_KEY, "secret": "not-the-secret"}),
    );
    wrong.now = fixture.now;
    let err = poll(&wrong, &start).await.unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized(
            "gettoken answered errcode 40001 (invalid credential)".to_owned()
        )
    );
    assert!(!err.to_string().contains("not-the-secret"));
    assert!(!err.to_string().contains("203.0.113.9"));

    // A wrong CorpID.
    let other = ApiFixture::new(
        &fixture.base_url,
        json!({"corp_id": OTHER_CORP_ID}),
        json!({"secret": APP_SECRET}),
    );
    assert!(matches!(
        poll(&other, &start).await,
        Err(ConnectorError::Unauthorized(_))
    ));

    // No secret at all: refused before calling WeCom.
    let calls = wecom.lock().unwrap().gettoken_calls;
    let none = ApiFixture::new(&fixture.base_url, json!({"corp_id": CORP_ID}), json!({}));
    assert_eq!(
        poll(&none, &start).await,
        Err(ConnectorError::Unauthorized(
            "secrets.secret is not set".to_owned()
        ))
    );
    assert_eq!(wecom.lock().unwrap().gettoken_calls, calls);
}

#[tokio::test]
async fn server_trouble_and_garbage_are_classified() {
    let (wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: three_pages(),
            sync_status: Some(http::StatusCode::BAD_GATEWAY),
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let start = json!({"next_cursor": null});
    assert!(matches!(
        poll(&fixture, &start).await,
        Err(ConnectorError::Transient(_))
    ));
    wecom.lock().unwrap().sync_garbage = true;
    assert!(matches!(
        poll(&fixture, &start).await,
        Err(ConnectorError::Malformed(_))
    ));
    wecom.lock().unwrap().sync_errcode = Some(-1);
    assert!(matches!(
        poll(&fixture, &start).await,
        Err(ConnectorError::Transient(_))
    ));
    wecom.lock().unwrap().sync_errcode = Some(95000);
    assert!(matches!(
        poll(&fixture, &start).await,
        Err(ConnectorError::Permanent(_))
    ));
    // Other resources and foreign cursors are refused.
    assert!(matches!(
        WecomKf.poll(&fixture.api(), Resource::Orders, &start).await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        poll(&fixture, &json!({"next_cursor": 5})).await,
        Err(ConnectorError::Permanent(_))
    ));
    // Nothing was skipped by all that: the cursor still reads page one.
    let page = poll(&fixture, &start).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&page)), vec!["m1", "m2"]);
}

#[tokio::test]
async fn the_shared_sample_page_polls_into_its_record() {
    // Serve the shared sync_msg response verbatim behind a real token check.
    let sample = fixtures::load("wecom-kf-sync-msg.json")["sync_msg_response"].clone();
    let list: Vec<Value> = sample["msg_list"].as_array().unwrap().clone();
    let (_wecom, fixture) = wecom_with(
        fake::Wecom {
            pages: vec![(list, true), (Vec::new(), false)],
            ..Default::default()
        },
        json!({"corp_id": CORP_ID}),
    )
    .await;
    let page = poll(&fixture, &json!({"next_cursor": null})).await.unwrap();
    assert!(!page.caught_up);
    assert_eq!(page.records.len(), 1);
    let record = &page.records[0];
    assert_eq!(record.external_id, "from_msgid_4622416642169452483");
    assert_eq!(message_of(record).text.as_deref(), Some("hello"));
    assert_eq!(message_of(record).direction, Direction::Inbound);
}

#[test]
fn cursor_round_trips_and_drops_the_callback_token() {
    let cursor = Cursor {
        next_cursor: Some("4gw7MepFLfgF2VC5npN".to_owned()),
        watermark: None,
        token: Some("tok".to_owned()),
    };
    assert_eq!(
        cursor.to_value(),
        json!({"next_cursor": "4gw7MepFLfgF2VC5npN"})
    );
}
