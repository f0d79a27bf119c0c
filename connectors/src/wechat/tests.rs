use chrono::{TimeZone, Utc};
use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::crypto::{self, AesKey, CryptoError};
use super::Wechat;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, RecordKind, SourceRecord,
};
use crate::payload::fixtures;
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

const TOKEN: &str = "wxtoken";
const APP_ID: &str = "wx1234567890abcdef";
/// Tencent's sample EncodingAESKey for Official Accounts. Its last
/// character leaves non-zero bits past the 32nd byte, as random keys do.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TIMESTAMP: &str = "1700000000";
const NONCE: &str = "1514398510";
const OPENID: &str = "oX1aT5hQ8mZ2kL9pR4sV7wY0bN3c";
const ACCOUNT: &str = "gh_3f2a9c7e1b05";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/wechat/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn key() -> AesKey {
    AesKey::from_encoding_aes_key(AES_KEY).expect("sample key")
}

/// Everything a `WebhookRequest` borrows.
struct Req {
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(params: &[(&str, &str)], body: &[u8]) -> Self {
        Self::for_connection(APP_ID, TOKEN, Some(AES_KEY), params, body)
    }

    fn for_connection(
        app_id: &str,
        token: &str,
        aes_key: Option<&str>,
        params: &[(&str, &str)],
        body: &[u8],
    ) -> Self {
        let mut secrets = Map::new();
        secrets.insert("token".into(), json!(token));
        if let Some(aes_key) = aes_key {
            secrets.insert("encoding_aes_key".into(), json!(aes_key));
        }
        let mut settings = Map::new();
        settings.insert("app_id".into(), json!(app_id));
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
        Wechat.verify_request(&self.request())
    }

    fn handshake(&self) -> Result<String, VerifyError> {
        Wechat
            .handshake(&self.request())
            .expect("WeChat has a handshake")
    }
}

fn plain_signature() -> String {
    crypto::signature(&[TOKEN, TIMESTAMP, NONCE])
}

fn envelope(encrypted: &str) -> Vec<u8> {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    .into_bytes()
}

/// A safe-mode POST of `envelope(encrypted)` signed over `signed`.
fn safe_post(encrypted: &str, signed: &str) -> Req {
    let msg_signature = crypto::signature(&[TOKEN, TIMESTAMP, NONCE, signed]);
    Req::new(
        &[
            ("signature", &plain_signature()),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("openid", OPENID),
            ("encrypt_type", "aes"),
            ("msg_signature", &msg_signature),
        ],
        &envelope(encrypted),
    )
}

fn plain_post(body: &[u8]) -> Req {
    Req::new(
        &[
            ("signature", &plain_signature()),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("openid", OPENID),
        ],
        body,
    )
}

fn decode(body: &[u8]) -> Result<Vec<SourceRecord>, DecodeError> {
    Wechat.decode("text", body, &DecodeContext::default())
}

fn decode_one(name: &str) -> (SourceRecord, Message) {
    let mut records = decode(&fixture(name)).unwrap();
    assert_eq!(records.len(), 1, "{name}");
    let record = records.remove(0);
    assert_eq!(record.kind(), RecordKind::Message);
    let RecordBody::Message(message) = record.body.clone() else {
        panic!("{name} is not a message");
    };
    (record, message)
}

fn openid_key() -> IdentityKey {
    IdentityKey {
        kind: KeyKind::CustomerId,
        value: OPENID.to_owned(),
    }
}

// --- signatures -----------------------------------------------------------

/// (inputs, expected) of a named shared vector.
fn vector(name: &str) -> Value {
    fixtures::load("signature-test-vectors.json")["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("vector {name} missing"))
        .clone()
}

#[test]
fn shared_plain_signature_vector() {
    let v = vector("wechat-plain-signature");
    let input = |k: &str| v["inputs"][k].as_str().unwrap().to_owned();
    let expected = v["expected"]["signature"].as_str().unwrap();
    let parts = [input("token"), input("timestamp"), input("nonce")];
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    assert_eq!(crypto::signature(&parts), expected);
    // Order of the inputs does not matter: WeChat sorts them.
    assert_eq!(crypto::signature(&[parts[2], parts[0], parts[1]]), expected);
    assert!(crypto::signature_matches(&parts, expected));
    assert!(crypto::signature_matches(&parts, &expected.to_uppercase()));
    assert!(!crypto::signature_matches(&parts, &expected[..38]));
    assert!(!crypto::signature_matches(&parts, "not hex"));
    assert!(!crypto::signature_matches(
        &["other", parts[1], parts[2]],
        expected
    ));

    // The same vector through the handshake.
    let req = Req::for_connection(
        APP_ID,
        &input("token"),
        None,
        &[
            ("signature", expected),
            ("timestamp", &input("timestamp")),
            ("nonce", &input("nonce")),
            ("echostr", "4536871329"),
        ],
        b"",
    );
    assert_eq!(req.handshake().unwrap(), "4536871329");
}

#[test]
fn shared_msg_signature_vector() {
    let v = vector("wechat-msg-signature");
    let input = |k: &str| v["inputs"][k].as_str().unwrap().to_owned();
    let expected = v["expected"]["msg_signature"].as_str().unwrap();
    let parts = [
        input("token"),
        input("timestamp"),
        input("nonce"),
        input("Encrypt"),
    ];
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    assert_eq!(crypto::signature(&parts), expected);
    assert!(crypto::signature_matches(&parts, expected));
    assert!(!crypto::signature_matches(&parts[..3], expected));

    // Through verify_request the signature passes and the placeholder then
    // fails to decrypt: an error naming the element, not a panic.
    let req = Req::for_connection(
        APP_ID,
        &input("token"),
        Some(AES_KEY),
        &[
            ("timestamp", &input("timestamp")),
            ("nonce", &input("nonce")),
            ("encrypt_type", "aes"),
            ("msg_signature", expected),
        ],
        &envelope(&input("Encrypt")),
    );
    match req.verify() {
        Err(VerifyError::Malformed(reason)) => assert!(reason.starts_with("Encrypt "), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn constant_time_eq_compares_whole_slices() {
    assert!(crypto::constant_time_eq(b"abc", b"abc"));
    assert!(!crypto::constant_time_eq(b"abc", b"abd"));
    assert!(!crypto::constant_time_eq(b"abc", b"ab"));
    assert!(crypto::constant_time_eq(b"", b""));
}

// --- Tencent's published WXBizMsgCrypt sample -----------------------------

/// The sample of Tencent's message-crypto library (the same scheme for
/// Official Accounts and WeCom; WeCom callback doc, path/90968).
const SAMPLE_TOKEN: &str = "QDG6eK";
const SAMPLE_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const SAMPLE_APP_ID: &str = "wx5823bf96d3bd56c7";
const SAMPLE_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
const SAMPLE_PLAINTEXT: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";
const SAMPLE_ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";

#[test]
fn official_sample_post_decrypts() {
    let body = format!(
        "<xml><ToUserName><![CDATA[{SAMPLE_APP_ID}]]></ToUserName><Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
    );
    let req = Req::for_connection(
        SAMPLE_APP_ID,
        SAMPLE_TOKEN,
        Some(SAMPLE_AES_KEY),
        &[
            ("msg_signature", "477715d11cdb4164915debcba66cb864d751f3e6"),
            ("timestamp", "1409659813"),
            ("nonce", "1372623149"),
        ],
        body.as_bytes(),
    );
    let Intake::Unwrapped {
        dedupe_key,
        topic,
        body: plaintext,
    } = req.verify().unwrap()
    else {
        panic!("not unwrapped");
    };
    assert_eq!(
        String::from_utf8(plaintext.clone()).unwrap(),
        SAMPLE_PLAINTEXT
    );
    assert_eq!(dedupe_key, "msg:4561255354251345929");
    assert_eq!(topic, "text");

    let records = Wechat
        .decode(&topic, &plaintext, &DecodeContext::default())
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].external_id, "4561255354251345929");
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(message.text.as_deref(), Some("hello"));
    assert_eq!(message.sender_handle.as_deref(), Some("mycreate"));

    // The same push for another app is refused after decryption.
    let other = Req {
        settings: Map::from_iter([("app_id".to_owned(), json!("wx0000000000000000"))]),
        ..req
    };
    assert_eq!(other.verify(), Err(VerifyError::BadSignature));
}

#[test]
fn official_sample_echostr_decrypts() {
    let params = [
        ("msg_signature", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"),
        ("timestamp", "1409659589"),
        ("nonce", "263014780"),
        ("echostr", SAMPLE_ECHOSTR),
    ];
    let req = Req::for_connection(
        SAMPLE_APP_ID,
        SAMPLE_TOKEN,
        Some(SAMPLE_AES_KEY),
        &params,
        b"",
    );
    assert_eq!(req.handshake().unwrap(), "1616140317555161061");

    // Sent without percent-encoding, the `+`s arrive as spaces.
    let mut raw = Req::for_connection(SAMPLE_APP_ID, SAMPLE_TOKEN, Some(SAMPLE_AES_KEY), &[], b"");
    raw.query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert!(raw.query.contains('+'));
    assert_eq!(raw.handshake().unwrap(), "1616140317555161061");
}

// --- keys and the cipher ---------------------------------------------------

#[test]
fn encoding_aes_keys_are_43_base64_characters() {
    assert!(AesKey::from_encoding_aes_key(AES_KEY).is_some());
    assert!(AesKey::from_encoding_aes_key(SAMPLE_AES_KEY).is_some());
    assert!(AesKey::from_encoding_aes_key(&format!(" {AES_KEY} ")).is_some());
    for bad in [
        "",
        &AES_KEY[..42],
        &format!("{AES_KEY}="),
        &format!("{AES_KEY}A"),
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!",
    ] {
        assert!(AesKey::from_encoding_aes_key(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn encrypt_and_decrypt_round_trip_with_32_byte_padding() {
    let key = key();
    for len in [0usize, 1, 11, 12, 13, 43, 44, 100] {
        let msg = "字".repeat(len);
        let encrypted = key.encrypt([7; 16], msg.as_bytes(), APP_ID);
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encrypted).unwrap();
        assert_eq!(raw.len() % 32, 0, "padded to 32 bytes");
        let plain = key.decrypt(&encrypted).unwrap();
        assert_eq!(plain.msg, msg.as_bytes());
        assert_eq!(plain.app_id, APP_ID.as_bytes());
    }
}

#[test]
fn malformed_plaintexts_are_reported_not_panicked() {
    let key = key();
    let block = |fill: u8, last: u8| {
        let mut b = vec![fill; 32];
        b[31] = last;
        b
    };
    // Pad values must be 1..=32 and repeated.
    assert_eq!(
        key.decrypt(&key.encrypt_raw(&block(0, 0))),
        Err(CryptoError::BadPadding)
    );
    assert_eq!(
        key.decrypt(&key.encrypt_raw(&block(33, 33))),
        Err(CryptoError::BadPadding)
    );
    assert_eq!(
        key.decrypt(&key.encrypt_raw(&block(0, 3))),
        Err(CryptoError::BadPadding)
    );
    // 32 bytes of padding leave nothing for the random prefix and length.
    assert_eq!(
        key.decrypt(&key.encrypt_raw(&[32; 32])),
        Err(CryptoError::BadLayout)
    );
    // A length running past the end.
    let mut plain = vec![0u8; 16];
    plain.extend_from_slice(&1000u32.to_be_bytes());
    plain.extend_from_slice(b"short");
    plain.extend(vec![7u8; 7]);
    assert_eq!(
        key.decrypt(&key.encrypt_raw(&plain)),
        Err(CryptoError::BadLayout)
    );
    assert_eq!(key.decrypt("%%%"), Err(CryptoError::NotBase64));
    assert_eq!(key.decrypt(""), Err(CryptoError::BadLength));
    assert_eq!(key.decrypt("AAAA"), Err(CryptoError::BadLength));
}

// --- handshake -------------------------------------------------------------

#[test]
fn plain_handshake_answers_echostr_verbatim() {
    let req = Req::new(
        &[
            ("signature", &plain_signature()),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("echostr", "5837397749834563462"),
        ],
        b"",
    );
    assert_eq!(req.handshake().unwrap(), "5837397749834563462");

    // `encrypt_type=aes` without `msg_signature` is still the plain check.
    let req = Req::new(
        &[
            ("signature", &plain_signature()),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("encrypt_type", "aes"),
            ("echostr", "5837397749834563462"),
        ],
        b"",
    );
    assert_eq!(req.handshake().unwrap(), "5837397749834563462");
}

#[test]
fn plain_handshake_refuses_wrong_or_missing_signatures() {
    let with = |params: &[(&str, &str)]| Req::new(params, b"").handshake();
    let signature = plain_signature();
    assert_eq!(
        with(&[
            (
                "signature",
                &crypto::signature(&["other", TIMESTAMP, NONCE])
            ),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("echostr", "1"),
        ]),
        Err(VerifyError::BadSignature)
    );
    // A signature for another timestamp does not carry over.
    assert_eq!(
        with(&[
            ("signature", &signature),
            ("timestamp", "1700000001"),
            ("nonce", NONCE),
            ("echostr", "1"),
        ]),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        with(&[("timestamp", TIMESTAMP), ("nonce", NONCE), ("echostr", "1")]),
        Err(VerifyError::MissingSignature("signature"))
    );
    assert_eq!(
        with(&[
            ("signature", &signature),
            ("nonce", NONCE),
            ("echostr", "1")
        ]),
        Err(VerifyError::MissingSignature("timestamp"))
    );
    assert_eq!(
        with(&[
            ("signature", &signature),
            ("timestamp", TIMESTAMP),
            ("echostr", "1")
        ]),
        Err(VerifyError::MissingSignature("nonce"))
    );
    assert!(matches!(
        with(&[
            ("signature", &signature),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE)
        ]),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn safe_handshake_answers_the_decrypted_echostr() {
    let echostr = key().encrypt([3; 16], b"echo-7102938475", APP_ID);
    let signed = |echostr: &str, token: &str| {
        Req::new(
            &[
                (
                    "msg_signature",
                    &crypto::signature(&[token, TIMESTAMP, NONCE, echostr]),
                ),
                ("timestamp", TIMESTAMP),
                ("nonce", NONCE),
                ("echostr", echostr),
            ],
            b"",
        )
    };
    assert_eq!(
        signed(&echostr, TOKEN).handshake().unwrap(),
        "echo-7102938475"
    );
    // Wrong token: the signature fails before anything is decrypted.
    assert_eq!(
        signed(&echostr, "wrong").handshake(),
        Err(VerifyError::BadSignature)
    );
    // Encrypted for another app.
    let foreign = key().encrypt([3; 16], b"echo-7102938475", "wx_other_app");
    assert_eq!(
        signed(&foreign, TOKEN).handshake(),
        Err(VerifyError::BadSignature)
    );
    // The plain `signature` is no substitute for `msg_signature`.
    let mut req = signed(&echostr, TOKEN);
    req.query = req.query.replace("msg_signature=", "msg_signature=0");
    assert_eq!(req.handshake(), Err(VerifyError::BadSignature));
    // Without the AES key the encrypted check cannot be answered.
    let mut req = signed(&echostr, TOKEN);
    req.secrets.remove("encoding_aes_key");
    match req.handshake() {
        Err(VerifyError::Malformed(reason)) => {
            assert!(reason.contains("encoding_aes_key"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

// --- safe-mode POST --------------------------------------------------------

#[test]
fn safe_post_unwraps_the_plaintext() {
    let xml = fixture("text.xml");
    let encrypted = key().encrypt([9; 16], &xml, APP_ID);
    let intake = safe_post(&encrypted, &encrypted).verify().unwrap();
    assert_eq!(
        intake,
        Intake::Unwrapped {
            dedupe_key: "msg:24345678901234567".to_owned(),
            topic: "text".to_owned(),
            body: xml.clone(),
        }
    );

    // WeChat's retry re-encrypts with new random bytes: same dedupe key.
    let retry = key().encrypt([1; 16], &xml, APP_ID);
    assert_ne!(retry, encrypted);
    let Intake::Unwrapped { dedupe_key, .. } = safe_post(&retry, &retry).verify().unwrap() else {
        panic!("not unwrapped");
    };
    assert_eq!(dedupe_key, "msg:24345678901234567");

    // Events are keyed by sender, time and kind.
    let event = key().encrypt([2; 16], &fixture("event-subscribe.xml"), APP_ID);
    let Intake::Unwrapped {
        dedupe_key, topic, ..
    } = safe_post(&event, &event).verify().unwrap()
    else {
        panic!("not unwrapped");
    };
    assert_eq!(dedupe_key, format!("event:{OPENID}:1700000400:subscribe"));
    assert_eq!(topic, "event.subscribe");
}

#[test]
fn safe_post_without_encrypt_type_is_recognised_by_msg_signature() {
    let xml = fixture("image.xml");
    let encrypted = key().encrypt([4; 16], &xml, APP_ID);
    let msg_signature = crypto::signature(&[TOKEN, TIMESTAMP, NONCE, &encrypted]);
    let req = Req::new(
        &[
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("msg_signature", &msg_signature),
        ],
        &envelope(&encrypted),
    );
    assert!(matches!(
        req.verify(),
        Ok(Intake::Unwrapped { ref topic, ref body, .. }) if topic == "image" && *body == xml
    ));
}

#[test]
fn compatible_mode_body_uses_the_encrypted_copy() {
    // Compatible mode sends the plaintext elements beside Encrypt.
    let xml = fixture("text.xml");
    let encrypted = key().encrypt([5; 16], &xml, APP_ID);
    let body = format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged?]]></Content><MsgId>1</MsgId><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    );
    let mut req = safe_post(&encrypted, &encrypted);
    req.body = body.into_bytes();
    let Intake::Unwrapped {
        dedupe_key, body, ..
    } = req.verify().unwrap()
    else {
        panic!("not unwrapped");
    };
    assert_eq!(body, xml);
    assert_eq!(dedupe_key, "msg:24345678901234567");
}

#[test]
fn safe_post_for_another_app_is_refused() {
    let encrypted = key().encrypt([9; 16], &fixture("text.xml"), "wx_other_app");
    assert_eq!(
        safe_post(&encrypted, &encrypted).verify(),
        Err(VerifyError::BadSignature)
    );
    // And a connection set up for another app refuses ours.
    let encrypted = key().encrypt([9; 16], &fixture("text.xml"), APP_ID);
    let mut req = safe_post(&encrypted, &encrypted);
    req.settings.insert("app_id".into(), json!("wx_other_app"));
    assert_eq!(req.verify(), Err(VerifyError::BadSignature));
}

#[test]
fn safe_post_with_wrong_or_missing_msg_signature_is_refused() {
    let encrypted = key().encrypt([9; 16], &fixture("text.xml"), APP_ID);
    // Signed over something else than the Encrypt element.
    assert_eq!(
        safe_post(&encrypted, "other").verify(),
        Err(VerifyError::BadSignature)
    );
    // The plain signature alone does not admit an encrypted push.
    let req = Req::new(
        &[
            ("signature", &plain_signature()),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
            ("encrypt_type", "aes"),
        ],
        &envelope(&encrypted),
    );
    assert_eq!(
        req.verify(),
        Err(VerifyError::MissingSignature("msg_signature"))
    );
    // Wrong token.
    let mut req = safe_post(&encrypted, &encrypted);
    req.secrets.insert("token".into(), json!("not-the-token"));
    assert_eq!(req.verify(), Err(VerifyError::BadSignature));
}

#[test]
fn tampered_ciphertext_is_refused_cleanly() {
    let encrypted = key().encrypt([9; 16], &fixture("text.xml"), APP_ID);
    let mut raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encrypted).unwrap();
    raw[40] ^= 1;
    let tampered = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
    // Signed over the original: the signature catches it.
    assert_eq!(
        safe_post(&tampered, &encrypted).verify(),
        Err(VerifyError::BadSignature)
    );

    // Whoever holds the token can sign garbage; it must fail as malformed,
    // never panic. Truncated, not whole blocks, not base64:
    let truncated = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &raw[..raw.len() - 16],
    );
    for bad in [truncated.as_str(), "AAAA", "%%%not base64%%%", "QUJD"] {
        match safe_post(bad, bad).verify() {
            Err(VerifyError::Malformed(reason)) => {
                assert!(reason.starts_with("Encrypt "), "{reason}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Every single-byte flip, re-signed: an error or a (garbled) message,
    // never a panic. CBC has no integrity of its own; msg_signature is it.
    for i in 0..raw.len() {
        let mut flipped = raw.clone();
        flipped[i] ^= 0x80;
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &flipped);
        let _ = safe_post(&b64, &b64).verify();
    }
}

#[test]
fn safe_post_problems_are_named() {
    let encrypted = key().encrypt([9; 16], &fixture("text.xml"), APP_ID);
    let reason = |req: Req| match req.verify() {
        Err(VerifyError::Malformed(reason)) => reason,
        other => panic!("{other:?}"),
    };
    let mut req = safe_post(&encrypted, &encrypted);
    req.secrets.remove("encoding_aes_key");
    assert!(reason(req).contains("encoding_aes_key"));

    let mut req = safe_post(&encrypted, &encrypted);
    req.secrets
        .insert("encoding_aes_key".into(), json!("short"));
    assert_eq!(
        reason(req),
        "the encoding_aes_key secret is not 43 base64 characters"
    );

    let mut req = safe_post(&encrypted, &encrypted);
    req.body = format!("<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName></xml>").into_bytes();
    assert_eq!(reason(req), "missing Encrypt element");

    let mut req = safe_post(&encrypted, &encrypted);
    req.body = b"{\"not\": \"xml\"}".to_vec();
    assert!(reason(req).contains("envelope"));

    // A decrypted plaintext that is not WeChat XML.
    let junk = key().encrypt([9; 16], b"hello there", APP_ID);
    assert_eq!(
        reason(safe_post(&junk, &junk)),
        "decrypted Encrypt is not WeChat message XML"
    );

    let mut req = safe_post(&encrypted, &encrypted);
    req.secrets.remove("token");
    assert!(reason(req).contains("token"));
}

// --- plain POST ------------------------------------------------------------

#[test]
fn plain_post_delivers_the_raw_xml() {
    assert_eq!(
        plain_post(&fixture("text.xml")).verify(),
        Ok(Intake::Delivery {
            dedupe_key: "msg:24345678901234567".to_owned(),
            topic: "text".to_owned(),
        })
    );
    assert_eq!(
        plain_post(&fixture("event-click.xml")).verify(),
        Ok(Intake::Delivery {
            dedupe_key: format!("event:{OPENID}:1700000460:CLICK"),
            topic: "event.CLICK".to_owned(),
        })
    );
    // Events without a sender or time fall back to the body's hash.
    let bare = b"<xml><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event></xml>";
    match plain_post(bare).verify() {
        Ok(Intake::Delivery { dedupe_key, topic }) => {
            assert!(dedupe_key.starts_with("sha256:"), "{dedupe_key}");
            assert_eq!(topic, "event.TEMPLATESENDJOBFINISH");
        }
        other => panic!("{other:?}"),
    }
    // WeChat documents no timestamp window, so an old one still verifies.
    let old = crypto::signature(&[TOKEN, "1348831860", NONCE]);
    let req = Req::new(
        &[
            ("signature", &old),
            ("timestamp", "1348831860"),
            ("nonce", NONCE),
        ],
        &fixture("image.xml"),
    );
    assert!(matches!(req.verify(), Ok(Intake::Delivery { .. })));
}

#[test]
fn plain_post_refuses_bad_signatures_and_junk() {
    let body = fixture("text.xml");
    let req = Req::new(
        &[
            (
                "signature",
                &crypto::signature(&["other", TIMESTAMP, NONCE]),
            ),
            ("timestamp", TIMESTAMP),
            ("nonce", NONCE),
        ],
        &body,
    );
    assert_eq!(req.verify(), Err(VerifyError::BadSignature));
    let req = Req::new(&[("timestamp", TIMESTAMP), ("nonce", NONCE)], &body);
    assert_eq!(
        req.verify(),
        Err(VerifyError::MissingSignature("signature"))
    );
    let req = Req::new(&[], &body);
    assert_eq!(
        req.verify(),
        Err(VerifyError::MissingSignature("timestamp"))
    );
    assert_eq!(
        plain_post(b"definitely not xml <").verify(),
        Err(VerifyError::Malformed(
            "body is not WeChat message XML".into()
        ))
    );
    assert_eq!(
        plain_post(b"<xml><Content>no type</Content></xml>").verify(),
        Err(VerifyError::Malformed(
            "body is not WeChat message XML".into()
        ))
    );
    // The header-only path cannot verify WeChat at all.
    assert_eq!(
        Wechat.verify(&[TOKEN.as_bytes()], &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature("signature"))
    );
}

// --- connector -------------------------------------------------------------

#[test]
fn connector_declares_its_needs() {
    assert_eq!(Wechat.platform(), "wechat");
    assert_eq!(Wechat.required_settings(), &["app_id"]);
    assert_eq!(Wechat.required_secrets(), &["token"]);
    assert!(Wechat.webhooks().is_some());
    assert!(Wechat.polling().is_none());
    assert_eq!(Wechat.acknowledgement(), Some("success"));
    assert!(crate::connector("wechat").is_some());
}

// --- decode ----------------------------------------------------------------

#[test]
fn text_message_keeps_chinese_text_exactly() {
    let (record, message) = decode_one("text.xml");
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    assert_eq!(
        record,
        SourceRecord {
            external_id: "24345678901234567".to_owned(),
            version: at,
            occurred_at: at,
            keys: vec![openid_key()],
            body: RecordBody::Message(Message {
                conversation_id: format!("{ACCOUNT}:{OPENID}"),
                channel: "wechat".to_owned(),
                direction: Direction::Inbound,
                sender_name: None,
                sender_handle: Some(OPENID.to_owned()),
                text: Some("你好，我的订单什么时候发货？ <谢谢> & 再见".to_owned()),
                subject: None,
                attachments: Vec::new(),
            }),
        }
    );
    assert_eq!(message.text.as_deref().unwrap().chars().count(), 24);
}

#[test]
fn escaped_text_is_unescaped() {
    let body = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>  价格 &lt; 100 &amp; 包邮\n第二行 </Content><MsgId>7</MsgId></xml>"
    );
    let records = decode(body.as_bytes()).unwrap();
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    // quick-xml trims whitespace around plain (non-CDATA) text.
    assert_eq!(message.text.as_deref(), Some("价格 < 100 & 包邮\n第二行"));

    // WeChat wraps Content in CDATA, which is kept exactly.
    let body = String::from_utf8(fixture("text.xml")).unwrap().replace(
        "<![CDATA[你好，我的订单什么时候发货？ <谢谢> & 再见]]>",
        "<![CDATA[  两个空格\n换行 ]]>",
    );
    let records = decode(body.as_bytes()).unwrap();
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(message.text.as_deref(), Some("  两个空格\n换行 "));
}

#[test]
fn media_messages_carry_media_ids_as_attachments() {
    let (record, image) = decode_one("image.xml");
    assert_eq!(record.external_id, "24345678901234568");
    assert_eq!(record.version, Utc.timestamp_opt(1_700_000_060, 0).unwrap());
    assert_eq!(image.text.as_deref(), Some("[image]"));
    assert_eq!(
        image.attachments,
        vec![Attachment {
            name: Some("Img_MediaId_4f9Qz".to_owned()),
            content_type: Some("image/*".to_owned()),
            size: None,
        }]
    );

    let (_, voice) = decode_one("voice.xml");
    assert_eq!(voice.text.as_deref(), Some("我想退货"));
    assert_eq!(
        voice.attachments,
        vec![Attachment {
            name: Some("Voice_MediaId_8kPw".to_owned()),
            content_type: Some("audio/amr".to_owned()),
            size: None,
        }]
    );

    let (record, video) = decode_one("video.xml");
    assert_eq!(record.external_id, "24345678901234570");
    assert_eq!(video.text.as_deref(), Some("[video]"));
    assert_eq!(
        video.attachments,
        vec![Attachment {
            name: Some("Video_MediaId_2xRt".to_owned()),
            content_type: Some("video/*".to_owned()),
            size: None,
        }]
    );
}

#[test]
fn voice_without_recognition_is_described() {
    let body = String::from_utf8(fixture("voice.xml"))
        .unwrap()
        .replace("<Recognition><![CDATA[我想退货]]></Recognition>", "");
    let records = decode(body.as_bytes()).unwrap();
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(message.text.as_deref(), Some("[voice]"));
    assert_eq!(message.attachments.len(), 1);
}

#[test]
fn location_and_link_are_described() {
    let (record, location) = decode_one("location.xml");
    assert_eq!(record.external_id, "24345678901234571");
    assert_eq!(
        location.text.as_deref(),
        Some("[location] 广州市天河区\n(23.134521, 113.358803)")
    );
    assert!(location.attachments.is_empty());

    let (record, link) = decode_one("link.xml");
    assert_eq!(record.external_id, "24345678901234572");
    assert_eq!(
        link.text.as_deref(),
        Some("[link] 这件商品有货吗\n蓝色 XL\nhttps://shop.example.com/p/42")
    );
    assert_eq!(link.conversation_id, format!("{ACCOUNT}:{OPENID}"));
}

#[test]
fn other_message_types_are_kept_with_their_type() {
    let body = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1700000000</CreateTime><MsgType>shortvideo</MsgType><MediaId>sv1</MediaId><ThumbMediaId>t1</ThumbMediaId><MsgId>8</MsgId></xml>"
    );
    let records = decode(body.as_bytes()).unwrap();
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(message.text.as_deref(), Some("[short video]"));
    assert_eq!(message.attachments[0].name.as_deref(), Some("sv1"));

    let body = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1700000000</CreateTime><MsgType>miniprogrampage</MsgType><Title>小程序卡片</Title><AppId>wxapp</AppId><PagePath>pages/index</PagePath><ThumbMediaId>t2</ThumbMediaId><MsgId>9</MsgId></xml>"
    );
    let records = decode(body.as_bytes()).unwrap();
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(
        message.text.as_deref(),
        Some("[miniprogrampage] 小程序卡片")
    );
    assert!(message.attachments.is_empty());
    assert_eq!(records[0].external_id, "9");
}

#[test]
fn events_produce_no_records() {
    for name in [
        "event-subscribe.xml",
        "event-unsubscribe.xml",
        "event-click.xml",
        "event-scancode.xml",
    ] {
        assert_eq!(decode(&fixture(name)).unwrap(), Vec::new(), "{name}");
    }
    // And they still stamp as events through verification.
    assert_eq!(
        plain_post(&fixture("event-scancode.xml")).verify(),
        Ok(Intake::Delivery {
            dedupe_key: format!("event:{OPENID}:1700000580:scancode_waitmsg"),
            topic: "event.scancode_waitmsg".to_owned(),
        })
    );
}

#[test]
fn unionid_becomes_a_global_key() {
    for element in ["UnionId", "unionid"] {
        let body = String::from_utf8(fixture("text.xml")).unwrap().replace(
            "</xml>",
            &format!("<{element}><![CDATA[o6_bmasdasdsad6_2sgVt7hMZOPfL]]></{element}></xml>"),
        );
        let records = decode(body.as_bytes()).unwrap();
        assert_eq!(
            records[0].keys,
            vec![
                openid_key(),
                IdentityKey {
                    kind: KeyKind::WechatUnionid,
                    value: "o6_bmasdasdsad6_2sgVt7hMZOPfL".to_owned(),
                },
            ],
            "{element}"
        );
    }
}

#[test]
fn shared_sample_elements_decode() {
    let sample = fixtures::load("wechat-official-account-message.json");
    let el = &sample["plain_xml_elements"];
    let text = |k: &str| el[k].as_str().unwrap().to_owned();
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_xxxxxxxx]]></ToUserName><FromUserName><![CDATA[oSample]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[{}]]></MsgType><Content><![CDATA[{}]]></Content><MsgId>{}</MsgId></xml>",
        el["CreateTime"], text("MsgType"), text("Content"), el["MsgId"]
    );
    let records = decode(body.as_bytes()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].external_id, "1234567890123456");
    assert_eq!(
        records[0].occurred_at,
        Utc.timestamp_opt(1_348_831_860, 0).unwrap()
    );
    let RecordBody::Message(message) = &records[0].body else {
        panic!("not a message");
    };
    assert_eq!(message.text.as_deref(), Some("this is a test"));
    assert_eq!(message.conversation_id, "gh_xxxxxxxx:oSample");
    // The sample's query names are the ones verification reads.
    let query = sample["query"].as_object().unwrap();
    for name in [
        "signature",
        "timestamp",
        "nonce",
        "encrypt_type",
        "msg_signature",
    ] {
        assert!(query.contains_key(name), "{name}");
    }
}

#[test]
fn decode_errors_name_fields_not_values() {
    let text = String::from_utf8(fixture("text.xml")).unwrap();
    let without = |element: &str| {
        let start = text.find(&format!("<{element}>")).unwrap();
        let end = text.find(&format!("</{element}>")).unwrap() + element.len() + 3;
        format!("{}{}", &text[..start], &text[end..])
    };
    let invalid = |reason: &str| DecodeError::Invalid {
        topic: "text".to_owned(),
        reason: reason.to_owned(),
    };
    assert_eq!(
        decode(without("FromUserName").as_bytes()),
        Err(invalid("missing FromUserName"))
    );
    assert_eq!(
        decode(without("ToUserName").as_bytes()),
        Err(invalid("missing ToUserName"))
    );
    assert_eq!(
        decode(without("MsgId").as_bytes()),
        Err(invalid("missing MsgId"))
    );
    assert_eq!(
        decode(without("CreateTime").as_bytes()),
        Err(invalid("missing CreateTime"))
    );
    assert_eq!(
        decode(without("MsgType").as_bytes()),
        Err(invalid("missing MsgType"))
    );
    let bad_time = text.replace("1700000000", "yesterday");
    let err = decode(bad_time.as_bytes()).unwrap_err();
    assert_eq!(err, invalid("CreateTime is not a Unix time"));
    assert!(!err.to_string().contains("yesterday"));
    let err = decode("<xml><Content>秘密".as_bytes()).unwrap_err();
    assert_eq!(err, invalid("body is not WeChat message XML"));
    assert!(!err.to_string().contains("秘密"));
}
