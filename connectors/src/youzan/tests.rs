use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::client::{self, Cursor, MAX_RESULTS, PAGE_SIZE};
use super::mapping::{parse_time, url_decode};
use super::Youzan;
use crate::model::{
    Address, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::{serve, ApiFixture};
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

const CLIENT_ID: &str = "cid";
const SECRET: &[u8] = b"youzan-client-secret";
const TOKEN: &str = "youzan-token";
const TID: &str = "E20190312105415047400001";

// --- helpers ----------------------------------------------------------------

fn trade_fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/trade.json")).unwrap()
}

fn push_fixture(name: &str) -> Value {
    let text = match name {
        "trade" => include_str!("fixtures/trade-push.json"),
        "thin" => include_str!("fixtures/thin-push.json"),
        other => panic!("no fixture {other}"),
    };
    let value: Value = serde_json::from_str(text).unwrap();
    value["body"].clone()
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut hash = Md5::new();
    for part in parts {
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// Headers as Youzan sends them, signed with `secret`.
fn signed(secret: &[u8], body: &[u8], event_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let sign = md5_hex(&[CLIENT_ID.as_bytes(), body, secret]);
    headers.insert("Event-Sign", HeaderValue::from_str(&sign).unwrap());
    headers.insert("Client-Id", HeaderValue::from_static(CLIENT_ID));
    headers.insert("Event-Type", HeaderValue::from_str(event_type).unwrap());
    headers
}

/// Java `URLEncoder` style: unreserved bytes kept, space as `+`.
fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn push_with_msg(kind: &str, msg: &Value) -> Value {
    let mut push = push_fixture("trade");
    push["type"] = json!(kind);
    push["msg"] = json!(url_encode(&msg.to_string()));
    push
}

fn decode(topic: &str, body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    Youzan.decode(topic, &bytes(body), &DecodeContext::default())
}

fn order_of(record: &SourceRecord) -> &Order {
    match &record.body {
        RecordBody::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn bj(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

fn reason(err: DecodeError) -> String {
    match err {
        DecodeError::Invalid { reason, .. } => reason,
    }
}

// --- connector ------------------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("youzan").expect("youzan in registry");
    assert_eq!(c.platform(), "youzan");
    assert_eq!(c.required_settings(), &["client_id", "kdt_id"]);
    assert_eq!(c.required_secrets(), &["client_secret", "access_token"]);
    assert!(c.webhooks().is_some());
    let polling = c.polling().expect("polls");
    assert_eq!(polling.platform(), "youzan");
    assert_eq!(polling.resources(), &[Resource::Orders]);
    assert_eq!(
        polling.default_base_url(&Map::new()).as_deref(),
        Some("https://open.youzanyun.com")
    );
}

// --- verify -------------------------------------------------------------------

#[test]
fn shared_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "youzan-push")
        .expect("youzan-push vector");
    let client_id = v["inputs"]["client_id"].as_str().unwrap();
    let secret = v["inputs"]["client_secret"].as_str().unwrap();
    let body = v["inputs"]["body"].as_str().unwrap();
    let expected = v["expected"]["Event-Sign"].as_str().unwrap();
    assert_eq!(
        md5_hex(&[client_id.as_bytes(), body.as_bytes(), secret.as_bytes()]),
        expected
    );

    let mut headers = HeaderMap::new();
    headers.insert("Event-Sign", HeaderValue::from_str(expected).unwrap());
    headers.insert("Client-Id", HeaderValue::from_str(client_id).unwrap());
    headers.insert("Event-Type", HeaderValue::from_static("trade_TradeCreate"));
    let intake = Youzan
        .verify(&[secret.as_bytes()], &headers, body.as_bytes())
        .unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            // The vector body has no msg_id.
            dedupe_key: format!("sha256:{}", crate::signature::sha256_hex(body.as_bytes())),
            topic: "trade_TradeCreate".to_owned(),
        }
    );
    // Upper-case hex is the same digest.
    headers.insert(
        "Event-Sign",
        HeaderValue::from_str(&expected.to_uppercase()).unwrap(),
    );
    assert!(Youzan
        .verify(&[secret.as_bytes()], &headers, body.as_bytes())
        .is_ok());
    assert_eq!(
        Youzan.verify(&[b"other"], &headers, body.as_bytes()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn trade_push_verifies_with_msg_id_as_dedupe_key() {
    let body = bytes(&push_fixture("trade"));
    let headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    assert_eq!(
        Youzan.verify(&[SECRET], &headers, &body),
        Ok(Intake::Delivery {
            dedupe_key: "9cb85c3d-8353-4e80-b24b-eb670eb52775".to_owned(),
            topic: "trade_TradeBuyerPay".to_owned(),
        })
    );
}

#[test]
fn tampered_body_wrong_secret_and_bad_hex_are_refused() {
    let body = bytes(&push_fixture("trade"));
    let headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    let mut tampered = push_fixture("trade");
    tampered["status"] = json!("TRADE_CLOSED");
    assert_eq!(
        Youzan.verify(&[SECRET], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Youzan.verify(&[b"wrong"], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Youzan.verify(&[], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    let mut bad = headers.clone();
    bad.insert("Event-Sign", HeaderValue::from_static("not-hex"));
    assert_eq!(
        Youzan.verify(&[SECRET], &bad, &body),
        Err(VerifyError::BadSignature)
    );
    // A signature made with another client id does not pass either.
    let mut other_app = headers.clone();
    other_app.insert("Client-Id", HeaderValue::from_static("another-app"));
    assert_eq!(
        Youzan.verify(&[SECRET], &other_app, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn second_secret_verifies_during_rotation() {
    let body = bytes(&push_fixture("trade"));
    let headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    assert!(Youzan
        .verify(&[b"new-secret", SECRET], &headers, &body)
        .is_ok());
}

#[test]
fn missing_signature_is_refused_unless_it_is_the_test_push() {
    let body = bytes(&push_fixture("trade"));
    let mut headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    headers.remove("Event-Sign");
    assert_eq!(
        Youzan.verify(&[SECRET], &headers, &body),
        Err(VerifyError::MissingSignature("Event-Sign"))
    );
    let test_push = br#"{"test":true,"client_id":"cid","msg":"","type":"trade_TradeCreate"}"#;
    assert_eq!(
        Youzan.verify(&[SECRET], &HeaderMap::new(), test_push),
        Ok(Intake::Ping)
    );
    assert_eq!(
        Youzan.verify(&[SECRET], &HeaderMap::new(), br#"{"test":false}"#),
        Err(VerifyError::MissingSignature("Event-Sign"))
    );
}

#[test]
fn signed_test_push_is_a_ping_and_decodes_to_nothing() {
    let mut push = push_fixture("trade");
    push["test"] = json!(true);
    let body = bytes(&push);
    let headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    assert_eq!(Youzan.verify(&[SECRET], &headers, &body), Ok(Intake::Ping));
    assert_eq!(decode("trade_TradeBuyerPay", &push).unwrap(), vec![]);
}

#[test]
fn client_id_and_topic_fall_back_to_the_body() {
    let body = bytes(&push_fixture("trade"));
    let mut headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    headers.remove("Client-Id");
    headers.remove("Event-Type");
    assert_eq!(
        Youzan.verify(&[SECRET], &headers, &body),
        Ok(Intake::Delivery {
            dedupe_key: "9cb85c3d-8353-4e80-b24b-eb670eb52775".to_owned(),
            topic: "trade_TradeBuyerPay".to_owned(),
        })
    );
    // Neither a header nor a body field: the id to sign with is unknown.
    let bare = br#"{"msg_id":"m1"}"#;
    let mut headers = signed(SECRET, bare, "trade_TradeCreate");
    headers.remove("Client-Id");
    assert!(matches!(
        Youzan.verify(&[SECRET], &headers, bare),
        Err(VerifyError::Malformed(_))
    ));
    // Signed but without any topic.
    let untyped = br#"{"client_id":"cid","msg_id":"m1"}"#;
    let mut headers = signed(SECRET, untyped, "x");
    headers.remove("Event-Type");
    assert_eq!(
        Youzan.verify(&[SECRET], &headers, untyped),
        Err(VerifyError::Malformed(
            "missing Event-Type header".to_owned()
        ))
    );
}

#[test]
fn resends_share_the_dedupe_key_and_bodies_without_msg_id_hash() {
    let first = push_fixture("trade");
    let mut resend = first.clone();
    resend["sendCount"] = json!(1);
    let key_of = |push: &Value| {
        let body = bytes(push);
        match Youzan
            .verify(
                &[SECRET],
                &signed(SECRET, &body, "trade_TradeBuyerPay"),
                &body,
            )
            .unwrap()
        {
            Intake::Delivery { dedupe_key, .. } => dedupe_key,
            Intake::Ping => panic!("ping"),
            Intake::Unwrapped { .. } => panic!("not unwrapped"),
        }
    };
    assert_eq!(key_of(&first), key_of(&resend));
    let mut anonymous = first.clone();
    anonymous.as_object_mut().unwrap().remove("msg_id");
    assert_eq!(
        key_of(&anonymous),
        format!(
            "sha256:{}",
            crate::signature::sha256_hex(&bytes(&anonymous))
        )
    );
}

#[test]
fn verify_for_connection_checks_the_app_and_the_shop() {
    let settings = json!({"client_id": CLIENT_ID, "kdt_id": "567323"})
        .as_object()
        .cloned()
        .unwrap();
    let body = bytes(&push_fixture("trade"));
    let headers = signed(SECRET, &body, "trade_TradeBuyerPay");
    assert!(matches!(
        Youzan.verify_for_connection(&settings, &[SECRET], &headers, &body),
        Ok(Intake::Delivery { .. })
    ));

    // The Client-Id header names another app.
    let mut wrong_app = headers.clone();
    wrong_app.insert("Client-Id", HeaderValue::from_static("another-app"));
    assert_eq!(
        Youzan.verify_for_connection(&settings, &[SECRET], &wrong_app, &body),
        Err(VerifyError::Malformed(
            "Client-Id does not match the connection".to_owned()
        ))
    );

    // Signed with the connection's client id even when the header is absent.
    let mut no_header = headers.clone();
    no_header.remove("Client-Id");
    assert!(Youzan
        .verify_for_connection(&settings, &[SECRET], &no_header, &body)
        .is_ok());

    // Another shop of the same app.
    let mut other_shop = push_fixture("trade");
    other_shop["kdt_id"] = json!(999);
    other_shop["root_kdt_id"] = json!(999);
    let other_body = bytes(&other_shop);
    let other_headers = signed(SECRET, &other_body, "trade_TradeBuyerPay");
    assert_eq!(
        Youzan.verify_for_connection(&settings, &[SECRET], &other_headers, &other_body),
        Err(VerifyError::Malformed(
            "push is for another shop (kdt_id)".to_owned()
        ))
    );
    // A branch of the connection's chain (root_kdt_id) is ours.
    let mut branch = push_fixture("trade");
    branch["kdt_id"] = json!(111);
    let branch_body = bytes(&branch);
    let branch_headers = signed(SECRET, &branch_body, "trade_TradeBuyerPay");
    assert!(Youzan
        .verify_for_connection(&settings, &[SECRET], &branch_headers, &branch_body)
        .is_ok());
}

// --- decode -------------------------------------------------------------------

fn expected_fixture_order() -> SourceRecord {
    SourceRecord {
        external_id: TID.to_owned(),
        version: Utc.with_ymd_and_hms(2019, 9, 9, 8, 8, 34).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2019, 9, 9, 8, 5, 52).unwrap(),
        // The masked receiver phone is not a key; the bound buyer phone is,
        // read as Chinese since the connection names no region.
        keys: vec![
            key(KeyKind::Phone, "+8613700000000"),
            key(KeyKind::CustomerId, "865115939"),
            key(KeyKind::CustomerId, "YzOpenId5xU9bNq"),
        ],
        body: RecordBody::Order(Order {
            number: TID.to_owned(),
            status: OrderStatus::Paid,
            currency: "CNY".to_owned(),
            total: dec("5.01"),
            customer_id: Some("YzOpenId5xU9bNq".to_owned()),
            buyer_first_name: None,
            buyer_last_name: None,
            email: None,
            phone: Some("13700000000".to_owned()),
            line_items: vec![
                LineItem {
                    sku: Some("spbm001".to_owned()),
                    title: "可乐".to_owned(),
                    quantity: 2,
                    total: dec("4.00"),
                },
                LineItem {
                    sku: Some("item-002".to_owned()),
                    title: "薯片".to_owned(),
                    quantity: 1,
                    total: dec("1.00"),
                },
            ],
            shipping_address: Some(Address {
                line1: Some("翠苑街道黄龙万科中心18楼".to_owned()),
                line2: Some("西湖区".to_owned()),
                city: Some("杭州市".to_owned()),
                region: Some("浙江省".to_owned()),
                postcode: Some("330106".to_owned()),
                country: Some("CN".to_owned()),
            }),
        }),
    }
}

#[test]
fn trade_push_fixture_decodes_exactly() {
    let records = decode("trade_TradeBuyerPay", &push_fixture("trade")).unwrap();
    assert_eq!(records, vec![expected_fixture_order()]);
    // A full push names nothing to fetch.
    assert_eq!(
        Youzan
            .references("trade_TradeBuyerPay", &bytes(&push_fixture("trade")))
            .unwrap(),
        vec![]
    );
}

#[test]
fn thin_trade_push_references_its_order() {
    let thin = push_fixture("thin");
    assert_eq!(decode("trade_TradeSuccess", &thin).unwrap(), vec![]);
    assert_eq!(
        Youzan
            .references("trade_TradeSuccess", &bytes(&thin))
            .unwrap(),
        vec![(Resource::Orders, TID.to_owned())]
    );
    // Without a msg, the envelope id of a trade message is the order number.
    let mut bare = thin.clone();
    bare.as_object_mut().unwrap().remove("msg");
    assert_eq!(
        Youzan
            .references("trade_TradeClose", &bytes(&bare))
            .unwrap(),
        vec![(Resource::Orders, TID.to_owned())]
    );
}

#[test]
fn refund_push_references_the_order_not_the_refund() {
    let mut refund = push_with_msg(
        "trade_refund_RefundSuccess",
        &json!({"tid": TID, "refund_id": "201909121000000001", "refund_fee": "5.01"}),
    );
    refund["id"] = json!("201909121000000001");
    assert_eq!(
        Youzan
            .references("trade_refund_RefundSuccess", &bytes(&refund))
            .unwrap(),
        vec![(Resource::Orders, TID.to_owned())]
    );
    refund["msg"] = json!(url_encode(r#"{"refund_id":"201909121000000001"}"#));
    assert_eq!(
        Youzan
            .references("trade_refund_RefundSuccess", &bytes(&refund))
            .unwrap(),
        vec![]
    );
}

#[test]
fn other_topics_decode_to_nothing() {
    let push = push_with_msg("SCRM_CUSTOMER_EVENT", &json!({"mobile": "13700000000"}));
    assert_eq!(decode("SCRM_CUSTOMER_EVENT", &push).unwrap(), vec![]);
    assert_eq!(
        Youzan
            .references("SCRM_CUSTOMER_EVENT", &bytes(&push))
            .unwrap(),
        vec![]
    );
}

#[test]
fn raw_json_msg_and_encoded_plus_signs_survive() {
    let mut trade = trade_fixture();
    trade["full_order_info"]["buyer_info"]["buyer_phone"] = json!("+86 137 0000 0000");
    // URL-encoded: `+` travels as %2B, spaces as `+`.
    let encoded = push_with_msg("trade_TradeCreate", &trade);
    assert!(encoded["msg"].as_str().unwrap().contains("%2B86+137"));
    let record = decode("trade_TradeCreate", &encoded).unwrap().remove(0);
    assert_eq!(
        order_of(&record).phone.as_deref(),
        Some("+86 137 0000 0000")
    );
    assert!(record.keys.contains(&key(KeyKind::Phone, "+8613700000000")));

    // Raw JSON in msg is read without decoding.
    let mut raw = push_fixture("trade");
    raw["msg"] = json!(trade.to_string());
    let record = decode("trade_TradeCreate", &raw).unwrap().remove(0);
    assert_eq!(
        order_of(&record).phone.as_deref(),
        Some("+86 137 0000 0000")
    );
}

#[test]
fn status_mapping() {
    for (status, refund_state, expected) in [
        ("WAIT_BUYER_PAY", 0, OrderStatus::PendingPayment),
        ("TRADE_PAID", 0, OrderStatus::Paid),
        ("WAIT_CONFIRM", 0, OrderStatus::Paid),
        ("WAIT_SELLER_SEND_GOODS", 0, OrderStatus::Paid),
        ("WAIT_BUYER_CONFIRM_GOODS", 0, OrderStatus::Shipped),
        ("TRADE_SUCCESS", 0, OrderStatus::Completed),
        ("TRADE_SUCCESS", 2, OrderStatus::Completed),
        ("TRADE_CLOSED", 0, OrderStatus::Cancelled),
        ("TRADE_CLOSED", 12, OrderStatus::Refunded),
        ("SOMETHING_NEW", 0, OrderStatus::PendingPayment),
    ] {
        let mut trade = trade_fixture();
        trade["full_order_info"]["order_info"]["status"] = json!(status);
        trade["full_order_info"]["order_info"]["refund_state"] = json!(refund_state);
        let record = decode(
            "trade_TradeCreate",
            &push_with_msg("trade_TradeCreate", &trade),
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            order_of(&record).status,
            expected,
            "{status} {refund_state}"
        );
    }
}

#[test]
fn identity_keys_follow_the_rules() {
    let ctx = DecodeContext {
        default_region: Some("DE".to_owned()),
    };
    let mut trade = trade_fixture();
    // The receiver's phone, unmasked, is kept but is never a key: the
    // receiver of a gift is someone else.
    trade["full_order_info"]["address_info"]["receiver_tel"] = json!("030 901820");
    // A missing yz_open_id leaves the buyer id as the customer id.
    trade["full_order_info"]["buyer_info"]["yz_open_id"] = json!("");
    trade["full_order_info"]["buyer_info"]["buyer_phone"] = json!("");
    let record = Youzan
        .decode(
            "trade_TradeCreate",
            &bytes(&push_with_msg("trade_TradeCreate", &trade)),
            &ctx,
        )
        .unwrap()
        .remove(0);
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "865115939")]);
    assert_eq!(order_of(&record).customer_id.as_deref(), Some("865115939"));
    assert_eq!(order_of(&record).phone.as_deref(), Some("030 901820"));

    // Anonymous buyers (buyer_id 0) and encrypted phones yield no keys.
    trade["full_order_info"]["buyer_info"]["buyer_id"] = json!(0);
    trade["full_order_info"]["address_info"]["receiver_tel"] = json!("$13$Q2lwaGVydGV4dA==$");
    let record = decode(
        "trade_TradeCreate",
        &push_with_msg("trade_TradeCreate", &trade),
    )
    .unwrap()
    .remove(0);
    assert!(record.keys.is_empty(), "{:?}", record.keys);
    assert_eq!(order_of(&record).customer_id, None);
}

#[test]
fn newer_update_time_is_a_newer_version() {
    let older = decode("trade_TradeBuyerPay", &push_fixture("trade"))
        .unwrap()
        .remove(0);
    let mut trade = trade_fixture();
    trade["full_order_info"]["order_info"]["update_time"] = json!("2019-09-09 16:08:35");
    let newer = decode(
        "trade_TradeBuyerPay",
        &push_with_msg("trade_TradeBuyerPay", &trade),
    )
    .unwrap()
    .remove(0);
    assert_eq!(newer.version - older.version, TimeDelta::seconds(1));
}

#[test]
fn bad_payloads_name_the_field_without_values() {
    let mut broken = push_fixture("trade");
    broken["msg"] = json!("%7B%2");
    assert_eq!(
        reason(decode("trade_TradeCreate", &broken).unwrap_err()),
        "msg is not URL-encoded UTF-8"
    );

    let mut trade = trade_fixture();
    trade["full_order_info"]["order_info"]
        .as_object_mut()
        .unwrap()
        .remove("tid");
    assert_eq!(
        reason(
            decode(
                "trade_TradeCreate",
                &push_with_msg("trade_TradeCreate", &trade)
            )
            .unwrap_err()
        ),
        "missing order_info.tid"
    );

    let mut trade = trade_fixture();
    trade["full_order_info"]["order_info"]["update_time"] = json!("09/09/2019 buyer@example.com");
    let text = reason(
        decode(
            "trade_TradeCreate",
            &push_with_msg("trade_TradeCreate", &trade),
        )
        .unwrap_err(),
    );
    assert_eq!(
        text,
        "order_info.update_time is not a %Y-%m-%d %H:%M:%S time"
    );

    let mut trade = trade_fixture();
    trade["full_order_info"]["pay_info"]["payment"] = json!("13700000000 yuan");
    let text = reason(
        decode(
            "trade_TradeCreate",
            &push_with_msg("trade_TradeCreate", &trade),
        )
        .unwrap_err(),
    );
    assert_eq!(text, "pay_info.payment is not a decimal amount");
    assert!(!text.contains("137"));

    assert_eq!(
        reason(
            Youzan
                .decode("trade_TradeCreate", b"<xml/>", &DecodeContext::default())
                .unwrap_err()
        ),
        "body is not valid JSON"
    );
}

#[test]
fn url_decoding_follows_java() {
    assert_eq!(url_decode("a+b%20c%2B").as_deref(), Some("a b c+"));
    assert_eq!(url_decode("%E5%8F%AF%E4%B9%90").as_deref(), Some("可乐"));
    assert_eq!(url_decode("%E5%8F"), None, "truncated UTF-8");
    assert_eq!(url_decode("100%"), None);
    assert_eq!(url_decode("%zz"), None);
}

// --- the fake Youzan API ------------------------------------------------------

enum Scripted {
    Status(u16, Option<&'static str>),
    Body(Value),
    Raw(&'static str),
}

#[derive(Default)]
struct Shop {
    /// `full_order_info` objects.
    trades: Vec<Value>,
    script: VecDeque<Scripted>,
    /// (method, version, params) of every call.
    calls: Vec<(String, String, Value)>,
    /// Runs once, right after the first page of any window was served.
    after_first_page: Option<Mutation>,
}

type Shared = Arc<Mutex<Shop>>;
/// A change to the shop's data, made between two pages.
type Mutation = Box<dyn FnOnce(&mut Vec<Value>) + Send>;

fn gateway_error(code: i64, message: &str) -> Response {
    Json(json!({"gw_err_resp": {"trace_id": "yz7-0a", "err_code": code, "err_msg": message}}))
        .into_response()
}

fn business_error(code: i64, message: &str) -> Response {
    Json(json!({"success": false, "code": code, "message": message, "data": null, "trace_id": "yz7-0b"}))
        .into_response()
}

fn success(data: Value) -> Response {
    Json(json!({"success": true, "code": 200, "message": "successful", "data": data, "trace_id": "yz7-0c"}))
        .into_response()
}

async fn api(
    State(shop): State<Shared>,
    Path((method, version)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: AxumHeaders,
    body: Bytes,
) -> Response {
    let mut shop = shop.lock().unwrap();
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return gateway_error(4007, "非法的请求姿势");
    }
    let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shop.calls
        .push((method.clone(), version.clone(), params.clone()));
    if let Some(scripted) = shop.script.pop_front() {
        return match scripted {
            Scripted::Status(status, retry_after) => {
                let mut response = StatusCode::from_u16(status).unwrap().into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.parse().unwrap());
                }
                response
            }
            Scripted::Body(body) => Json(body).into_response(),
            Scripted::Raw(text) => text.into_response(),
        };
    }
    match query.get("access_token").map(String::as_str) {
        None => return gateway_error(4201, "非法的请求凭证"),
        Some(TOKEN) => {}
        Some(_) => return gateway_error(4203, "Token 不存在"),
    }
    match (method.as_str(), version.as_str()) {
        ("youzan.trades.sold.get", "4.0.0") => sold_get(&mut shop, &params),
        ("youzan.trade.get", "4.0.0") => {
            let tid = params["tid"].as_str().unwrap_or("");
            match shop.trades.iter().find(|t| t["order_info"]["tid"] == tid) {
                Some(trade) => success(json!({"full_order_info": trade})),
                None => business_error(101300001, "订单不存在"),
            }
        }
        _ => gateway_error(4005, "非法的API"),
    }
}

fn sold_get(shop: &mut Shop, params: &Value) -> Response {
    let (Some(start), Some(end)) = (
        params["start_update"].as_str().and_then(parse_time),
        params["end_update"].as_str().and_then(parse_time),
    ) else {
        return business_error(101, "start_update 和 end_update 必须成对出现");
    };
    if end - start > TimeDelta::days(92) || end < start {
        return business_error(102, "查询时间跨度不能大于3个月");
    }
    let page_no = params["page_no"].as_u64().unwrap_or(1);
    let page_size = params["page_size"].as_u64().unwrap_or(20);
    if !(1..=100).contains(&page_no)
        || !(1..=100).contains(&page_size)
        || page_no * page_size > 10_000
    {
        return business_error(103, "分页参数错误");
    }
    let mut matching: Vec<&Value> = shop
        .trades
        .iter()
        .filter(|t| {
            let updated = parse_time(t["order_info"]["update_time"].as_str().unwrap()).unwrap();
            start <= updated && updated <= end
        })
        .collect();
    // Newest created first, as the console lists them.
    matching.sort_by(|a, b| {
        let key = |t: &Value| {
            (
                t["order_info"]["created"].as_str().unwrap().to_owned(),
                t["order_info"]["tid"].as_str().unwrap().to_owned(),
            )
        };
        key(b).cmp(&key(a))
    });
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(((page_no - 1) * page_size) as usize)
        .take(page_size as usize)
        .map(|t| json!({"full_order_info": t}))
        .collect();
    let response = success(json!({"full_order_info_list": page, "total_results": total}));
    if page_no == 1 {
        if let Some(hook) = shop.after_first_page.take() {
            hook(&mut shop.trades);
        }
    }
    response
}

async fn start_shop(trades: Vec<Value>) -> (String, Shared) {
    let shop: Shared = Arc::new(Mutex::new(Shop {
        trades,
        ..Shop::default()
    }));
    let router = Router::new()
        .route("/api/{method}/{version}", post(api))
        .with_state(shop.clone());
    (serve(router).await, shop)
}

/// A trade of the fixture's shape with its own number and times.
fn trade(tid: &str, created: &str, updated: &str) -> Value {
    let mut trade = trade_fixture()["full_order_info"].clone();
    trade["order_info"]["tid"] = json!(tid);
    trade["order_info"]["created"] = json!(created);
    trade["order_info"]["update_time"] = json!(updated);
    trade
}

/// "Now" for the sweeps: 2025-03-01 00:00:00 UTC (08:00 in Beijing).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
}

fn fixture(base: &str) -> ApiFixture {
    let mut fx = ApiFixture::new(
        base,
        json!({"client_id": CLIENT_ID, "kdt_id": "567323"}),
        json!({"client_secret": "s", "access_token": TOKEN}),
    );
    fx.now = now();
    fx
}

fn since() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap()
}

/// Polls from `cursor` until the sweep is caught up; returns every page.
async fn sweep(fx: &ApiFixture, mut cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    for _ in 0..50 {
        let page = Youzan
            .poll(&fx.api(), Resource::Orders, &cursor)
            .await
            .expect("page");
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("sweep did not finish");
}

fn tids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| &p.records)
        .map(|r| r.external_id.clone())
        .collect()
}

fn counts(ids: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    counts
}

fn cursor_of(page: &Page) -> Cursor {
    serde_json::from_value(page.cursor.clone()).unwrap()
}

/// 150 trades in the first 30-day window, 60 in the second; none on a
/// window boundary.
fn two_windows_of_trades() -> Vec<Value> {
    let mut trades = Vec::new();
    for i in 0..150 {
        let updated = format!("2025-01-20 {:02}:{:02}:00", 10 + i / 60, i % 60);
        trades.push(trade(&format!("E{i:023}"), "2025-01-01 09:00:00", &updated));
    }
    for i in 150..210 {
        let updated = format!("2025-02-20 10:{:02}:00", i - 150);
        trades.push(trade(&format!("E{i:023}"), "2025-02-01 09:00:00", &updated));
    }
    trades
}

#[tokio::test]
async fn a_sweep_reads_every_order_once_in_windows_and_pages() {
    let (base, shop) = start_shop(two_windows_of_trades()).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Youzan.start_cursor(Resource::Orders, Some(since()))).await;

    let ids = tids(&pages);
    assert_eq!(ids.len(), 210);
    assert!(counts(&ids).values().all(|&n| n == 1));
    // 150 orders: pages 1 and 2 of the first window; 60: one page of the second.
    assert_eq!(pages.len(), 3);
    assert!(pages[..2]
        .iter()
        .all(|p| !p.caught_up && p.watermark == Some(since())));
    assert!(pages[2].caught_up);

    let calls = shop.lock().unwrap().calls.clone();
    let shape: Vec<(String, String, u64)> = calls
        .iter()
        .map(|(_, _, p)| {
            (
                p["start_update"].as_str().unwrap().to_owned(),
                p["end_update"].as_str().unwrap().to_owned(),
                p["page_no"].as_u64().unwrap(),
            )
        })
        .collect();
    // Beijing time; windows share their boundary second; the sweep ends at "now".
    assert_eq!(
        shape,
        vec![
            (
                "2025-01-15 08:00:00".to_owned(),
                "2025-02-14 08:00:00".to_owned(),
                1
            ),
            (
                "2025-01-15 08:00:00".to_owned(),
                "2025-02-14 08:00:00".to_owned(),
                2
            ),
            (
                "2025-02-14 08:00:00".to_owned(),
                "2025-03-01 08:00:00".to_owned(),
                1
            ),
        ]
    );
    assert!(calls.iter().all(|(m, v, p)| m == "youzan.trades.sold.get"
        && v == "4.0.0"
        && p["page_size"] == PAGE_SIZE));
}

#[tokio::test]
async fn a_crash_resumes_from_the_last_cursor_without_gaps() {
    let (base, _shop) = start_shop(two_windows_of_trades()).await;
    let fx = fixture(&base);
    let start = Youzan.start_cursor(Resource::Orders, Some(since()));
    let first = Youzan
        .poll(&fx.api(), Resource::Orders, &start)
        .await
        .unwrap();
    assert_eq!(first.records.len(), 100);
    // The process dies here; the runner resumes from the committed cursor.
    let rest = sweep(&fx, first.cursor.clone()).await;
    let mut ids = tids(std::slice::from_ref(&first));
    ids.extend(tids(&rest));
    assert_eq!(ids.len(), 210);
    assert!(counts(&ids).values().all(|&n| n == 1));
    // Re-using the same cursor twice reads the same page again, harmlessly.
    let again = Youzan
        .poll(&fx.api(), Resource::Orders, &first.cursor)
        .await
        .unwrap();
    assert_eq!(again.records, rest[0].records);
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    // The newest order changed a minute before "now".
    let mut trades = two_windows_of_trades();
    trades.push(trade(
        "E-LATE",
        "2025-02-28 09:00:00",
        "2025-03-01 07:59:00",
    ));
    let (base, shop) = start_shop(trades).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Youzan.start_cursor(Resource::Orders, Some(since()))).await;
    let last = pages.last().unwrap();
    let watermark = bj("2025-03-01 07:59:00");
    assert_eq!(last.watermark, Some(watermark));
    let next = cursor_of(last);
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(next.from, watermark - lookback);
    assert_eq!(next.watermark, Some(watermark));
    assert_eq!((next.until, next.window), (None, None));

    // The next sweep queries from there, up to its own "now".
    let mut later = fixture(&base);
    later.now = now() + TimeDelta::hours(1);
    shop.lock().unwrap().calls.clear();
    let pages = sweep(&later, last.cursor.clone()).await;
    assert_eq!(tids(&pages), vec!["E-LATE".to_owned()]);
    let calls = shop.lock().unwrap().calls.clone();
    assert_eq!(calls[0].2["start_update"], "2025-03-01 07:54:00");
    assert_eq!(calls[0].2["end_update"], "2025-03-01 09:00:00");
}

#[tokio::test]
async fn an_idle_sweep_moves_the_watermark_to_its_end_minus_lookback() {
    let (base, _shop) = start_shop(Vec::new()).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Youzan.start_cursor(Resource::Orders, Some(since()))).await;
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(pages.last().unwrap().watermark, Some(now() - lookback));
    assert_eq!(
        cursor_of(pages.last().unwrap()).from,
        now() - lookback - lookback
    );
}

#[tokio::test]
async fn orders_sharing_one_timestamp_are_all_read() {
    let trades: Vec<Value> = (0..230)
        .map(|i| {
            trade(
                &format!("T{i:04}"),
                "2025-02-01 09:00:00",
                "2025-02-02 12:00:00",
            )
        })
        .collect();
    let (base, _shop) = start_shop(trades).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Youzan.start_cursor(Resource::Orders, Some(since()))).await;
    let ids = tids(&pages);
    assert_eq!(ids.len(), 230);
    assert_eq!(counts(&ids).len(), 230);
    assert_eq!(
        pages.last().unwrap().watermark,
        Some(now() - TimeDelta::from_std(LOOKBACK).unwrap())
    );
}

#[tokio::test]
async fn an_order_updated_mid_sweep_restarts_the_window_and_skips_nothing() {
    let (base, shop) = start_shop(two_windows_of_trades()).await;
    // After page 1, the first order on it is updated "now": it leaves the
    // window and every later order moves up one place.
    shop.lock().unwrap().after_first_page = Some(Box::new(|trades: &mut Vec<Value>| {
        let moved = trades
            .iter_mut()
            .find(|t| t["order_info"]["tid"] == format!("E{:023}", 149))
            .unwrap();
        moved["order_info"]["update_time"] = json!("2025-03-01 09:30:00");
    }));
    let fx = fixture(&base);
    let pages = sweep(&fx, Youzan.start_cursor(Resource::Orders, Some(since()))).await;
    let ids = tids(&pages);
    let seen = counts(&ids);
    assert_eq!(seen.len(), 210, "every order arrives");
    let pages_asked: Vec<u64> = shop
        .lock()
        .unwrap()
        .calls
        .iter()
        .map(|(_, _, p)| p["page_no"].as_u64().unwrap())
        .collect();
    // Page 2 saw the smaller total and the window was read again from page 1.
    assert_eq!(pages_asked, vec![1, 2, 1, 2, 1]);
}

#[tokio::test]
async fn a_window_with_too_many_orders_is_halved() {
    let trades: Vec<Value> = (0..=MAX_RESULTS)
        .map(|i| json!({"order_info": {"tid": format!("X{i}"), "created": "2025-01-20 09:00:00", "update_time": "2025-01-20 10:00:00"}}))
        .collect();
    let (base, _shop) = start_shop(trades).await;
    let fx = fixture(&base);
    let start = Youzan.start_cursor(Resource::Orders, Some(since()));
    let page = Youzan
        .poll(&fx.api(), Resource::Orders, &start)
        .await
        .unwrap();
    assert!(page.records.is_empty());
    assert!(!page.caught_up);
    let window = cursor_of(&page).window.unwrap();
    assert_eq!(window.from, since());
    assert_eq!(window.to, since() + TimeDelta::days(15));
    assert_eq!(window.page, 1);
}

#[tokio::test]
async fn start_cursor_begins_at_since_or_youzans_first_year() {
    let cursor: Cursor =
        serde_json::from_value(Youzan.start_cursor(Resource::Orders, None)).unwrap();
    assert_eq!(cursor.from, bj("2012-01-01 00:00:00"));
    assert_eq!(cursor.watermark, None);
    let cursor: Cursor =
        serde_json::from_value(Youzan.start_cursor(Resource::Orders, Some(since()))).unwrap();
    assert_eq!(cursor.from, since());

    // A start in the future is already caught up, without a call.
    let (base, shop) = start_shop(Vec::new()).await;
    let fx = fixture(&base);
    let future = Youzan.start_cursor(Resource::Orders, Some(now() + TimeDelta::days(1)));
    let page = Youzan
        .poll(&fx.api(), Resource::Orders, &future)
        .await
        .unwrap();
    assert!(page.caught_up);
    assert!(shop.lock().unwrap().calls.is_empty());
}

#[tokio::test]
async fn errors_are_classified() {
    let (base, shop) = start_shop(two_windows_of_trades()).await;
    let start = Youzan.start_cursor(Resource::Orders, Some(since()));
    let poll = |fx: ApiFixture, cursor: Value| async move {
        Youzan.poll(&fx.api(), Resource::Orders, &cursor).await
    };

    // Refused token (gateway 4203), missing token secret.
    let mut wrong = fixture(&base);
    wrong
        .secrets
        .insert("access_token".to_owned(), json!("stale"));
    assert!(matches!(
        poll(wrong, start.clone()).await,
        Err(ConnectorError::Unauthorized(m)) if m.contains("4203")
    ));
    let mut none = fixture(&base);
    none.secrets.remove("access_token");
    assert_eq!(
        poll(none, start.clone()).await,
        Err(ConnectorError::Unauthorized(
            "secrets.access_token is not set".to_owned()
        ))
    );

    let script = |items: Vec<Scripted>| shop.lock().unwrap().script.extend(items);
    script(vec![
        Scripted::Status(429, Some("3")),
        Scripted::Body(json!({"success": false, "code": 20001, "message": "调用频率超限"})),
        Scripted::Body(
            json!({"gw_err_resp": {"err_code": 4100, "err_msg": "API调用频率超出限制"}}),
        ),
        Scripted::Status(502, None),
        Scripted::Raw("<html>gateway</html>"),
        Scripted::Body(json!({"success": false, "code": 4202, "message": "请求凭证已过期"})),
        Scripted::Body(json!({"error_response": {"code": 50000, "msg": "参数错误 13700000000"}})),
        Scripted::Body(json!({"success": true, "code": 200})),
        Scripted::Status(403, None),
    ]);
    assert_eq!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        })
    );
    assert_eq!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::RateLimited { retry_after: None })
    );
    assert_eq!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::RateLimited { retry_after: None })
    );
    assert!(matches!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::Transient(_))
    ));
    assert!(matches!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::Malformed(_))
    ));
    assert!(matches!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    match poll(fixture(&base), start.clone()).await {
        Err(ConnectorError::Permanent(message)) => {
            assert_eq!(message, "Youzan answered error code 50000");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert_eq!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::Malformed(
            "youzan.trades.sold.get answered without data".to_owned()
        ))
    );
    assert!(matches!(
        poll(fixture(&base), start.clone()).await,
        Err(ConnectorError::Unauthorized(_))
    ));

    // A cursor of another shape is refused rather than misread.
    assert!(matches!(
        poll(fixture(&base), json!({"page": 3})).await,
        Err(ConnectorError::Permanent(_))
    ));
}

#[test]
fn classification_of_codes() {
    assert!(matches!(
        client::classify(Some("4201"), None),
        ConnectorError::Unauthorized(_)
    ));
    assert!(matches!(
        client::classify(Some("4203"), None),
        ConnectorError::Unauthorized(_)
    ));
    assert_eq!(
        client::classify(Some("20001"), None),
        ConnectorError::RateLimited { retry_after: None }
    );
    assert_eq!(
        client::classify(Some("4005"), Some("非法的API")),
        ConnectorError::Permanent("Youzan answered error code 4005".to_owned())
    );
}

#[tokio::test]
async fn fetch_reads_one_order_and_only_orders() {
    let (base, shop) = start_shop(vec![trade_fixture()["full_order_info"].clone()]).await;
    let fx = fixture(&base);
    let records = Youzan
        .fetch(&fx.api(), Resource::Orders, TID)
        .await
        .unwrap();
    assert_eq!(records, vec![expected_fixture_order()]);
    let calls = shop.lock().unwrap().calls.clone();
    assert_eq!(
        calls,
        vec![(
            "youzan.trade.get".to_owned(),
            "4.0.0".to_owned(),
            json!({"tid": TID})
        )]
    );

    assert_eq!(
        Youzan.fetch(&fx.api(), Resource::Orders, "E-NONE").await,
        Err(ConnectorError::Permanent(
            "Youzan answered error code 101300001".to_owned()
        ))
    );
    assert!(matches!(
        Youzan.fetch(&fx.api(), Resource::Customers, "1").await,
        Err(ConnectorError::Permanent(_))
    ));
}
