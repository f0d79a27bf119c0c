use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::Sha256;

use super::client::{
    self, items, response_key, sign, SignMethod, TopError, CONFIRM_METHOD, CONSUME_METHOD,
    FULLINFO_METHOD, HORIZON, LIST_METHOD, PAGE_SIZE, TMC_QUANTITY, WINDOW,
};
use super::mapping::{self, TmcMessage};
use super::Taobao;
use crate::model::{
    Address, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::{serve, ApiFixture};

const APP_KEY: &str = "12345678";
const SECRET: &str = "top-test-secret";
const SESSION: &str = "6100e23b7a9f-test-session";

/// 2025-03-10 12:00:00 in China.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 4, 0, 0).unwrap()
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, h, m, s).unwrap()
}

fn top_time(t: DateTime<Utc>) -> String {
    mapping::format_top_time(t)
}

fn key(value: &str) -> IdentityKey {
    IdentityKey {
        kind: KeyKind::CustomerId,
        value: value.to_owned(),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn order_of(record: &SourceRecord) -> &Order {
    match &record.body {
        RecordBody::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

// --- signing ----------------------------------------------------------------

/// (secret, params, expected sign) of a shared vector.
fn vector(name: &str) -> (String, BTreeMap<String, String>, String) {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("vector {name} missing"))
        .clone();
    let params = v["inputs"]["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (
        v["inputs"]["secret"].as_str().unwrap().to_owned(),
        params,
        v["expected"]["sign"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn md5_vector_signs() {
    let (secret, params, expected) = vector("taobao-top-md5");
    assert_eq!(sign(SignMethod::Md5, secret.as_bytes(), &params), expected);
    assert_eq!(expected, "C063ED95E5A8F09FD3AFBCBB4EFE5A5D");
}

#[test]
fn hmac_vector_signs() {
    let (secret, params, expected) = vector("taobao-top-hmac");
    assert_eq!(
        sign(SignMethod::HmacMd5, secret.as_bytes(), &params),
        expected
    );
    assert_eq!(expected, "F8663EB9E93F3E7D74720B0B2DC5B371");
}

#[test]
fn hmac_sha256_signs_the_same_text() {
    // The shared parameters with sign_method=hmac-sha256; expected value
    // computed independently (Python hmac/hashlib).
    let (secret, mut params, _) = vector("taobao-top-hmac");
    params.insert("sign_method".into(), "hmac-sha256".into());
    assert_eq!(
        sign(SignMethod::HmacSha256, secret.as_bytes(), &params),
        "E14383961D25E67E22371BA15CA35479B8A96C9C92FD32A197FE4C25EB390FCC"
    );
}

#[test]
fn sign_leaves_out_the_sign_parameter_and_depends_on_every_value() {
    let (secret, params, expected) = vector("taobao-top-md5");
    let mut with_sign = params.clone();
    with_sign.insert("sign".into(), "ANYTHING".into());
    assert_eq!(
        sign(SignMethod::Md5, secret.as_bytes(), &with_sign),
        expected
    );
    let mut changed = params.clone();
    changed.insert("tid".into(), "124".into());
    assert_ne!(sign(SignMethod::Md5, secret.as_bytes(), &changed), expected);
    assert_ne!(sign(SignMethod::Md5, b"other", &params), expected);
}

#[test]
fn sign_method_names() {
    for (name, method) in [
        ("md5", SignMethod::Md5),
        ("hmac", SignMethod::HmacMd5),
        ("hmac-sha256", SignMethod::HmacSha256),
    ] {
        assert_eq!(SignMethod::parse(name), Some(method));
        assert_eq!(method.as_str(), name);
    }
    assert_eq!(SignMethod::parse("sha1"), None);
}

#[test]
fn times_are_china_standard_time() {
    assert_eq!(top_time(now()), "2025-03-10 12:00:00");
    assert_eq!(
        mapping::parse_top_time("2025-01-01 00:30:00"),
        Some(Utc.with_ymd_and_hms(2024, 12, 31, 16, 30, 0).unwrap())
    );
    assert_eq!(mapping::parse_top_time("2025-01-01T00:30:00Z"), None);
}

#[test]
fn response_keys_follow_the_method_name() {
    assert_eq!(
        response_key(LIST_METHOD),
        "trades_sold_increment_get_response"
    );
    assert_eq!(response_key(FULLINFO_METHOD), "trade_fullinfo_get_response");
    assert_eq!(
        response_key(CONSUME_METHOD),
        "tmc_messages_consume_response"
    );
    assert_eq!(
        response_key(CONFIRM_METHOD),
        "tmc_messages_confirm_response"
    );
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_as_a_polling_platform() {
    let c = crate::connector("taobao").expect("taobao in registry");
    assert_eq!(c.platform(), "taobao");
    assert_eq!(c.required_settings(), &["app_key"]);
    assert_eq!(c.required_secrets(), &["app_secret", "session"]);
    assert!(c.webhooks().is_none());
    let polling = c.polling().expect("taobao polls");
    assert_eq!(polling.resources(), &[Resource::Orders]);
    assert_eq!(
        polling.default_base_url(&serde_json::Map::new()).as_deref(),
        Some("https://eco.taobao.com/router/rest")
    );
}

// --- error classification ---------------------------------------------------

fn classify(error: Value) -> ConnectorError {
    serde_json::from_value::<TopError>(error)
        .unwrap()
        .classify(LIST_METHOD)
}

#[test]
fn top_errors_are_classified() {
    assert_eq!(
        classify(json!({"code": 7, "msg": "App Call Limited",
            "sub_code": "accesscontrol.limited-by-app-api-access-count",
            "sub_msg": "This ban will last for 2 more seconds"})),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert_eq!(
        classify(
            json!({"code": 15, "msg": "Remote service error", "sub_code": "isp.call-limited"})
        ),
        ConnectorError::RateLimited { retry_after: None }
    );
    assert!(matches!(
        classify(json!({"code": 8, "msg": "App Call Exceeds Limited Frequency"})),
        ConnectorError::RateLimited { .. }
    ));
    for unauthorised in [
        json!({"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}),
        json!({"code": "53", "msg": "Invalid session", "sub_code": "invalid-sessionkey"}),
        json!({"code": 25, "msg": "Invalid signature"}),
        json!({"code": 29, "msg": "Invalid app Key"}),
        json!({"code": 11, "msg": "Insufficient ISV permissions",
            "sub_code": "isv.permission-ip-whitelist-limit"}),
        json!({"code": 15, "msg": "Remote service error", "sub_code": "session-expired"}),
    ] {
        assert!(
            matches!(
                classify(unauthorised.clone()),
                ConnectorError::Unauthorized(_)
            ),
            "{unauthorised}"
        );
    }
    for transient in [
        json!({"code": 15, "msg": "Remote service error",
            "sub_code": "isp.top-remote-connection-timeout"}),
        json!({"code": 520, "msg": "Remote service error", "sub_code": "isp.unknown-error"}),
        json!({"code": 10, "msg": "Service currently unavailable"}),
        json!({"code": 15, "msg": "Remote service error"}),
    ] {
        assert!(
            matches!(classify(transient.clone()), ConnectorError::Transient(_)),
            "{transient}"
        );
    }
    for permanent in [
        json!({"code": 41, "msg": "Invalid arguments", "sub_code": "isv.invalid-parameter"}),
        json!({"code": 15, "msg": "Remote service error", "sub_code": "isv.trade-not-exist"}),
        json!({"code": 22, "msg": "Invalid method"}),
    ] {
        assert!(
            matches!(classify(permanent.clone()), ConnectorError::Permanent(_)),
            "{permanent}"
        );
    }
}

#[test]
fn error_messages_name_codes_not_sub_messages() {
    let err = classify(json!({"code": 27, "msg": "Invalid session",
        "sub_code": "invalid-sessionkey", "sub_msg": "SessionKey 6100e23b7a9f is invalid"}));
    let text = err.to_string();
    assert!(
        text.contains("27") && text.contains("invalid-sessionkey"),
        "{text}"
    );
    assert!(!text.contains("6100e23b7a9f"), "{text}");
}

// --- mapping ----------------------------------------------------------------

fn shared_trade() -> Value {
    fixtures::resource("taobao-trade.json")
}

fn decode(trade: &Value) -> SourceRecord {
    mapping::decode_trade(&serde_json::to_vec(trade).unwrap()).unwrap()
}

#[test]
fn shared_trade_sample_decodes() {
    let record = decode(&shared_trade());
    assert_eq!(record.external_id, "2231958349");
    // 12:05 and 12:00 in China are 04:05 and 04:00 UTC.
    assert_eq!(
        record.version,
        Utc.with_ymd_and_hms(2025, 1, 1, 4, 5, 0).unwrap()
    );
    assert_eq!(
        record.occurred_at,
        Utc.with_ymd_and_hms(2025, 1, 1, 4, 0, 0).unwrap()
    );
    assert_eq!(record.keys, vec![key("AAHm5d-EAAeGwJedwSHpg8bT")]);
    assert_eq!(
        order_of(&record),
        &Order {
            number: "2231958349".into(),
            status: OrderStatus::Paid,
            currency: "CNY".into(),
            total: dec("200.07"),
            customer_id: Some("AAHm5d-EAAeGwJedwSHpg8bT".into()),
            buyer_first_name: None,
            buyer_last_name: None,
            email: None,
            phone: None,
            line_items: vec![LineItem {
                sku: None,
                title: "T-Shirt".into(),
                quantity: 1,
                total: dec("200.07"),
            }],
            shipping_address: Some(Address {
                line1: None,
                line2: Some("西湖区".into()),
                city: Some("杭州市".into()),
                region: Some("浙江省".into()),
                postcode: None,
                country: None,
            }),
        }
    );
}

#[test]
fn fullinfo_fixture_decodes_with_ouid_preferred() {
    let answer: Value =
        serde_json::from_str(include_str!("fixtures/trade-fullinfo-response.json")).unwrap();
    let record = decode(&answer["trade_fullinfo_get_response"]["trade"]);
    assert_eq!(record.external_id, "3871204459123");
    assert_eq!(
        record.version,
        Utc.with_ymd_and_hms(2025, 2, 20, 1, 1, 2).unwrap()
    );
    assert_eq!(
        record.occurred_at,
        Utc.with_ymd_and_hms(2025, 2, 14, 12, 15, 33).unwrap()
    );
    // Both shop-scoped buyer ids are keys; the order names the ouid.
    assert_eq!(
        record.keys,
        vec![key("AAGx7kH3AAeGwJedwSHq1a2B"), key("ouid_5ad3c0f19be2")]
    );
    let order = order_of(&record);
    assert_eq!(order.customer_id.as_deref(), Some("ouid_5ad3c0f19be2"));
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.total, dec("318.50"));
    assert_eq!(
        order.line_items,
        vec![
            LineItem {
                sku: Some("LS-BLU-M".into()),
                title: "Linen shirt".into(),
                quantity: 2,
                total: dec("258.00"),
            },
            LineItem {
                sku: Some("TOTE".into()),
                title: "Canvas tote".into(),
                quantity: 1,
                total: dec("60.50"),
            },
        ]
    );
    assert_eq!(order.phone, None);
    assert_eq!(
        order
            .shipping_address
            .as_ref()
            .and_then(|a| a.postcode.as_deref()),
        Some("200120")
    );
    // Neither the oaid nor the masked receiver data is kept anywhere.
    let stored = serde_json::to_string(&record).unwrap();
    for secret in ["1cH8ZSp0aKQGkbU3qT9Xw2yVn4mR6oP", "4321", "李", "****"] {
        assert!(!stored.contains(secret), "{secret} leaked into {stored}");
    }
}

#[test]
fn statuses_map_to_the_model() {
    for (status, expected) in [
        ("TRADE_NO_CREATE_PAY", OrderStatus::PendingPayment),
        ("WAIT_BUYER_PAY", OrderStatus::PendingPayment),
        ("PAY_PENDING", OrderStatus::PendingPayment),
        ("WAIT_SELLER_SEND_GOODS", OrderStatus::Paid),
        ("SELLER_CONSIGNED_PART", OrderStatus::Paid),
        ("PAID_FORBID_CONSIGN", OrderStatus::Paid),
        ("WAIT_BUYER_CONFIRM_GOODS", OrderStatus::Shipped),
        ("TRADE_BUYER_SIGNED", OrderStatus::Shipped),
        ("TRADE_FINISHED", OrderStatus::Completed),
        ("TRADE_CLOSED", OrderStatus::Refunded),
        ("TRADE_CLOSED_BY_TAOBAO", OrderStatus::Cancelled),
        ("SOMETHING_NEW", OrderStatus::PendingPayment),
    ] {
        let mut trade = shared_trade();
        trade["status"] = json!(status);
        assert_eq!(order_of(&decode(&trade)).status, expected, "{status}");
    }
}

#[test]
fn the_same_oaid_never_joins_different_buyers() {
    let mut a = shared_trade();
    a["tid"] = json!(1);
    a["buyer_open_uid"] = json!("AAH-buyer-one");
    let mut b = shared_trade();
    b["tid"] = json!(2);
    b["buyer_open_uid"] = json!("AAH-buyer-two");
    for trade in [&mut a, &mut b] {
        trade["oaid"] = json!("SAME-OAID-FOR-BOTH-RECIPIENTS");
        trade["receiver_mobile"] = json!("138****5678");
    }
    let (a, b) = (decode(&a), decode(&b));
    assert_eq!(a.keys, vec![key("AAH-buyer-one")]);
    assert_eq!(b.keys, vec![key("AAH-buyer-two")]);
    assert!(a.keys.iter().all(|k| !b.keys.contains(k)));
    for record in [&a, &b] {
        assert!(record.keys.iter().all(|k| k.kind == KeyKind::CustomerId));
        assert!(!serde_json::to_string(record).unwrap().contains("SAME-OAID"));
    }
}

#[test]
fn the_same_buyer_open_uid_yields_the_same_key() {
    let mut first = shared_trade();
    first["tid"] = json!(10);
    first["oaid"] = json!("oaid-week-1");
    let mut second = shared_trade();
    second["tid"] = json!(11);
    second["oaid"] = json!("oaid-week-2");
    second["receiver_mobile"] = json!("*******9999");
    let (first, second) = (decode(&first), decode(&second));
    assert_eq!(first.keys, second.keys);
    assert_eq!(first.keys, vec![key("AAHm5d-EAAeGwJedwSHpg8bT")]);
}

#[test]
fn masked_or_missing_buyer_ids_are_not_keys() {
    let mut trade = shared_trade();
    trade["buyer_open_uid"] = json!("AA**********bT");
    trade.as_object_mut().unwrap().remove("ouid");
    let record = decode(&trade);
    assert!(record.keys.is_empty());
    assert_eq!(order_of(&record).customer_id, None);
}

#[test]
fn broken_trades_name_the_field_not_the_value() {
    let mut trade = shared_trade();
    trade.as_object_mut().unwrap().remove("tid");
    let err = mapping::decode_trade(&serde_json::to_vec(&trade).unwrap()).unwrap_err();
    assert!(err.to_string().contains("missing tid"), "{err}");

    let mut trade = shared_trade();
    trade["payment"] = json!("two hundred (buyer 张三)");
    let err = mapping::decode_trade(&serde_json::to_vec(&trade).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("payment is not a decimal amount"),
        "{err}"
    );
    assert!(!err.to_string().contains("张三"), "{err}");

    let mut trade = shared_trade();
    trade["modified"] = json!("yesterday");
    let err = mapping::decode_trade(&serde_json::to_vec(&trade).unwrap()).unwrap_err();
    assert!(err.to_string().contains("modified is not"), "{err}");
}

#[test]
fn tmc_messages_name_their_trades() {
    let shared: TmcMessage =
        serde_json::from_value(fixtures::resource("taobao-tmc-message.json")).unwrap();
    assert_eq!(mapping::message_tid(&shared).as_deref(), Some("2231958349"));

    let answer: Value =
        serde_json::from_str(include_str!("fixtures/tmc-consume-response.json")).unwrap();
    let messages: Vec<TmcMessage> = items(
        answer["tmc_messages_consume_response"].get("messages"),
        "tmc_message",
    )
    .iter()
    .map(|m| serde_json::from_value(m.clone()).unwrap())
    .collect();
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.id.as_ref().unwrap().text().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "2100000000000000101",
            "2100000000000000102",
            "2100000000000000103"
        ]
    );
    let tids: Vec<Option<String>> = messages.iter().map(mapping::message_tid).collect();
    assert_eq!(
        tids,
        vec![
            Some("3871204459123".to_owned()),
            Some("3871204459999".to_owned()),
            None
        ]
    );
}

// --- the fake TOP gateway ---------------------------------------------------

type Mutation = Box<dyn FnMut(usize, &mut Vec<Value>) + Send>;

#[derive(Default)]
struct Gateway {
    /// What the gateway expects as `timestamp`.
    now: Option<DateTime<Utc>>,
    trades: Vec<Value>,
    /// Every call: its method and parameters (without `sign`).
    calls: Vec<(String, BTreeMap<String, String>)>,
    /// Rule breaks seen (windows over a day, bad timestamps...).
    violations: Vec<String>,
    /// Answers to give instead of the real ones, in order.
    inject: VecDeque<(StatusCode, String)>,
    /// The same, for the next calls of one method.
    inject_on: HashMap<String, VecDeque<(StatusCode, String)>>,
    tmc_queue: VecDeque<Value>,
    /// (call index, ids) of every confirm.
    confirmed: Vec<(usize, Vec<String>)>,
    list_calls: usize,
    /// Runs before every list answer: (number of this list call, trades).
    before_list: Option<Mutation>,
}

type Shared = Arc<Mutex<Gateway>>;

fn top_error(code: i64, msg: &str, sub_code: Option<&str>) -> Value {
    let mut error = json!({"code": code, "msg": msg, "request_id": "fake"});
    if let Some(sub) = sub_code {
        error["sub_code"] = json!(sub);
    }
    json!({ "error_response": error })
}

/// The gateway's own signature check, written independently of the client.
fn expected_sign(params: &BTreeMap<String, String>, secret: &str) -> Option<String> {
    let text: String = params
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .map(|(k, v)| format!("{k}{v}"))
        .collect();
    let digest = match params.get("sign_method")?.as_str() {
        "md5" => Md5::digest(format!("{secret}{text}{secret}").as_bytes()).to_vec(),
        "hmac" => {
            let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "hmac-sha256" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => return None,
    };
    Some(hex::encode_upper(digest))
}

fn parse_local(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").ok()?;
    mapping::parse_top_time(raw)
}

fn trade_modified(trade: &Value) -> DateTime<Utc> {
    mapping::parse_top_time(trade["modified"].as_str().unwrap()).unwrap()
}

impl Gateway {
    fn handle(&mut self, params: BTreeMap<String, String>) -> (StatusCode, String) {
        let method = params.get("method").cloned().unwrap_or_default();
        let mut logged = params.clone();
        logged.remove("sign");
        self.calls.push((method.clone(), logged));
        if let Some(injected) = self.inject.pop_front() {
            return injected;
        }
        if let Some(injected) = self
            .inject_on
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            return injected;
        }
        let ok = |v: Value| (StatusCode::OK, v.to_string());
        if expected_sign(&params, SECRET).as_deref() != params.get("sign").map(String::as_str) {
            return ok(top_error(25, "Invalid signature", None));
        }
        if params.get("app_key").map(String::as_str) != Some(APP_KEY) {
            return ok(top_error(29, "Invalid app Key", None));
        }
        if params.get("session").map(String::as_str) != Some(SESSION) {
            return ok(top_error(27, "Invalid session", Some("invalid-sessionkey")));
        }
        let expected_time = top_time(self.now.unwrap_or_else(now));
        if params.get("timestamp") != Some(&expected_time)
            || params.get("v").map(String::as_str) != Some("2.0")
            || params.get("format").map(String::as_str) != Some("json")
        {
            self.violations
                .push(format!("system parameters of {method}"));
            return ok(top_error(31, "Invalid timestamp", None));
        }
        let answer = match method.as_str() {
            LIST_METHOD => self.list(&params),
            FULLINFO_METHOD => self.fullinfo(&params),
            CONSUME_METHOD => self.consume(&params),
            CONFIRM_METHOD => {
                let ids = params["s_message_ids"]
                    .split(',')
                    .map(str::to_owned)
                    .collect();
                self.confirmed.push((self.calls.len() - 1, ids));
                Ok(json!({"is_success": true}))
            }
            _ => Err(top_error(22, "Invalid method", None)),
        };
        match answer {
            Ok(answer) => ok(json!({ response_key(&method): answer })),
            Err(error) => ok(error),
        }
    }

    fn list(&mut self, params: &BTreeMap<String, String>) -> Result<Value, Value> {
        let invalid = || top_error(41, "Invalid arguments", Some("isv.invalid-parameter"));
        let (Some(start), Some(end)) = (
            params.get("start_modified").and_then(|s| parse_local(s)),
            params.get("end_modified").and_then(|s| parse_local(s)),
        ) else {
            self.violations.push("unreadable window".into());
            return Err(invalid());
        };
        if end <= start || end - start > TimeDelta::days(1) {
            self.violations.push(format!("window {start}..{end}"));
            return Err(invalid());
        }
        let page_no: usize = params["page_no"].parse().unwrap();
        let page_size: usize = params["page_size"].parse().unwrap();
        if page_no == 0 || !(1..=100).contains(&page_size) {
            self.violations.push("page parameters".into());
            return Err(invalid());
        }
        self.list_calls += 1;
        if let Some(mut mutate) = self.before_list.take() {
            mutate(self.list_calls, &mut self.trades);
            self.before_list = Some(mutate);
        }
        let mut matching: Vec<&Value> = self
            .trades
            .iter()
            .filter(|t| (start..=end).contains(&trade_modified(t)))
            .collect();
        // Newest first, as the API sorts; ties by tid so pages are stable.
        matching.sort_by(|a, b| {
            (trade_modified(b), b["tid"].as_u64()).cmp(&(trade_modified(a), a["tid"].as_u64()))
        });
        let total = matching.len();
        let listed: Vec<Value> = matching
            .iter()
            .skip((page_no - 1) * page_size)
            .take(page_size)
            .map(|t| json!({"tid": t["tid"], "modified": t["modified"]}))
            .collect();
        let mut answer = json!({ "trades": { "trade": listed }, "request_id": "fake" });
        if params.get("use_has_next").map(String::as_str) == Some("true") {
            answer["has_next"] = json!(page_no * page_size < total);
        } else {
            answer["total_results"] = json!(total);
        }
        Ok(answer)
    }

    fn fullinfo(&self, params: &BTreeMap<String, String>) -> Result<Value, Value> {
        let tid: u64 = params["tid"].parse().unwrap();
        self.trades
            .iter()
            .find(|t| t["tid"].as_u64() == Some(tid))
            .map(|t| json!({ "trade": t }))
            .ok_or_else(|| top_error(15, "Remote service error", Some("isv.trade-not-exist")))
    }

    fn consume(&mut self, params: &BTreeMap<String, String>) -> Result<Value, Value> {
        let quantity: usize = params["quantity"].parse().unwrap();
        if !(10..=200).contains(&quantity) {
            self.violations.push("consume quantity".into());
        }
        let batch: Vec<Value> = (0..quantity)
            .map_while(|_| self.tmc_queue.pop_front())
            .collect();
        if batch.is_empty() {
            return Ok(json!({}));
        }
        Ok(json!({ "messages": { "tmc_message": batch } }))
    }

    fn methods(&self) -> Vec<&str> {
        self.calls.iter().map(|(m, _)| m.as_str()).collect()
    }

    fn list_params(&self) -> Vec<&BTreeMap<String, String>> {
        self.calls
            .iter()
            .filter(|(m, _)| m == LIST_METHOD)
            .map(|(_, p)| p)
            .collect()
    }
}

async fn rest(
    State(gateway): State<Shared>,
    Form(params): Form<BTreeMap<String, String>>,
) -> Response {
    let (status, body) = gateway.lock().unwrap().handle(params);
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

async fn start(gateway: Gateway) -> (Shared, String) {
    let shared = Arc::new(Mutex::new(gateway));
    let router = Router::new()
        .route("/router/rest", post(rest))
        .with_state(shared.clone());
    let base = serve(router).await;
    (shared, format!("{base}/router/rest"))
}

fn connection(base_url: &str, settings: Value) -> ApiFixture {
    let mut all = json!({ "app_key": APP_KEY });
    for (k, v) in settings.as_object().unwrap() {
        all[k] = v.clone();
    }
    let mut fixture = ApiFixture::new(
        base_url,
        all,
        json!({ "app_secret": SECRET, "session": SESSION }),
    );
    fixture.now = now();
    fixture
}

fn trade(tid: u64, modified: DateTime<Utc>, buyer: &str) -> Value {
    json!({
        "tid": tid,
        "status": "WAIT_SELLER_SEND_GOODS",
        "payment": "25.80",
        "created": top_time(modified - TimeDelta::hours(2)),
        "modified": top_time(modified),
        "buyer_open_uid": buyer,
        "oaid": format!("oaid-{tid}"),
        "receiver_mobile": "*******0000",
        "orders": { "order": [
            { "oid": tid + 1, "title": "Tea", "num": 2, "price": "12.90", "outer_sku_id": "TEA-2" }
        ]}
    })
}

fn message(id: u64, topic: &str, tid: u64) -> Value {
    json!({
        "id": id,
        "topic": topic,
        "pub_time": top_time(now()),
        "user_id": 123456789,
        "user_nick": "example_shop",
        "content": json!({ "tid": tid }).to_string(),
    })
}

fn since(hours: i64) -> Value {
    Taobao.start_cursor(Resource::Orders, Some(now() - TimeDelta::hours(hours)))
}

/// Polls until caught up; returns every page.
async fn sweep(fixture: &ApiFixture, mut cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    for _ in 0..500 {
        let page = Taobao
            .poll(&fixture.api(), Resource::Orders, &cursor)
            .await
            .unwrap_or_else(|e| panic!("poll failed: {e}"));
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("the sweep never caught up");
}

fn tids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.external_id.clone()))
        .collect()
}

fn counts(tids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for tid in tids {
        *counts.entry(tid.clone()).or_default() += 1;
    }
    counts
}

/// 121 trades in the first hour-window (three pages), 7 in the next two,
/// 2 before the sweep's start.
fn three_hours_of_trades() -> Vec<Value> {
    let mut trades = Vec::new();
    for i in 0..120u32 {
        trades.push(trade(
            1000 + u64::from(i),
            at(1, 0, 30) + TimeDelta::seconds(20 * i64::from(i)),
            &format!("buyer-{}", i % 7),
        ));
    }
    trades.push(trade(2000, at(2, 0, 0), "buyer-edge")); // the first window's last second
    trades.push(trade(2001, at(2, 0, 1), "buyer-edge")); // the second window's first second
    for i in 0..5 {
        trades.push(trade(3000 + i, at(2, 10 + i as u32, 0), "buyer-x"));
    }
    trades.push(trade(4000, at(3, 59, 59), "buyer-late"));
    trades.push(trade(5000, at(0, 30, 0), "buyer-old"));
    trades.push(trade(5001, at(0, 59, 59), "buyer-old"));
    trades
}

fn expected_three_hours() -> Vec<String> {
    let mut expected: Vec<String> = (1000..1120).map(|t| t.to_string()).collect();
    expected.extend(
        [
            "2000", "2001", "3000", "3001", "3002", "3003", "3004", "4000",
        ]
        .map(String::from),
    );
    expected.sort();
    expected
}

// --- polling ----------------------------------------------------------------

#[tokio::test]
async fn a_sweep_returns_every_trade_once_in_windows_of_an_hour() {
    let (gateway, base) = start(Gateway {
        trades: three_hours_of_trades(),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let pages = sweep(&fixture, since(3)).await;

    let mut got = tids(&pages);
    got.sort();
    assert_eq!(got, expected_three_hours(), "every trade exactly once");
    let last = pages.last().unwrap();
    assert!(last.caught_up);
    assert_eq!(last.watermark, Some(now()));
    assert!(pages[..pages.len() - 1].iter().all(|p| !p.caught_up));

    let gw = gateway.lock().unwrap();
    assert!(gw.violations.is_empty(), "{:?}", gw.violations);
    // Windows of one hour, back to back, the last one ending now.
    let mut windows: Vec<(String, String)> = gw
        .list_params()
        .iter()
        .map(|p| (p["start_modified"].clone(), p["end_modified"].clone()))
        .collect();
    windows.dedup_by(|a, b| a.0 == b.0);
    let starts: Vec<&str> = windows.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(
        starts,
        [
            "2025-03-10 09:00:00",
            "2025-03-10 10:00:01",
            "2025-03-10 11:00:02"
        ]
    );
    for p in gw.list_params() {
        let (start, end) = (
            parse_local(&p["start_modified"]).unwrap(),
            parse_local(&p["end_modified"]).unwrap(),
        );
        assert!(end - start <= WINDOW, "{start}..{end}");
        assert_eq!(p["page_no"], "1");
        assert_eq!(p["page_size"], PAGE_SIZE.to_string());
        assert_eq!(p["use_has_next"], "true");
        assert_eq!(p["fields"], "tid,modified");
    }
    assert_eq!(
        gw.list_params().last().unwrap()["end_modified"],
        "2025-03-10 12:00:00"
    );
    // The first window took several top-down pages.
    let first_window = gw
        .list_params()
        .iter()
        .filter(|p| p["start_modified"] == "2025-03-10 09:00:00")
        .count();
    assert!(first_window >= 3, "{first_window} pages");
    // One full trade per record, fetched with the documented fields.
    let fullinfo: Vec<_> = gw
        .calls
        .iter()
        .filter(|(m, _)| m == FULLINFO_METHOD)
        .collect();
    assert_eq!(fullinfo.len(), got.len());
    assert_eq!(fullinfo[0].1["fields"], client::TRADE_FIELDS);
    // The sweep ended by draining the (empty) TMC queue.
    assert_eq!(gw.methods().last(), Some(&CONSUME_METHOD));
}

#[tokio::test]
async fn a_crash_resumes_from_the_last_cursor_without_gaps() {
    let (_, base) = start(Gateway {
        trades: three_hours_of_trades(),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let pages = sweep(&fixture, since(3)).await;
    assert!(pages.len() > 4);

    for cut in [1, 2, 3] {
        // The hub committed pages[..cut] and their cursor, then crashed.
        let (_, base) = start(Gateway {
            trades: three_hours_of_trades(),
            ..Default::default()
        })
        .await;
        let fixture = connection(&base, json!({}));
        let resumed = sweep(&fixture, pages[cut - 1].cursor.clone()).await;
        let mut all = tids(&pages[..cut]);
        all.extend(tids(&resumed));
        all.sort();
        assert_eq!(all, expected_three_hours(), "resumed after page {cut}");
        assert_eq!(tids(&resumed), tids(&pages[cut..]));
    }
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let (gateway, base) = start(Gateway {
        trades: three_hours_of_trades(),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let pages = sweep(&fixture, since(3)).await;
    let cursor = pages.last().unwrap().cursor.clone();

    let later = now() + TimeDelta::minutes(10);
    gateway.lock().unwrap().now = Some(later);
    gateway.lock().unwrap().calls.clear();
    let mut fixture = connection(&base, json!({}));
    fixture.now = later;
    let next = sweep(&fixture, cursor).await;

    let gw = gateway.lock().unwrap();
    let first = gw.list_params()[0];
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(first["start_modified"], top_time(now() - lookback));
    assert_eq!(first["end_modified"], top_time(later));
    // The overlap re-reads the trade of the last five minutes; nothing else.
    assert_eq!(tids(&next), ["4000"]);
    assert_eq!(next.last().unwrap().watermark, Some(later));
}

#[tokio::test]
async fn sweeps_without_since_start_ninety_days_back() {
    let (gateway, base) = start(Gateway::default()).await;
    let fixture = connection(&base, json!({}));
    let page = Taobao
        .poll(
            &fixture.api(),
            Resource::Orders,
            &Taobao.start_cursor(Resource::Orders, None),
        )
        .await
        .unwrap();
    assert!(page.records.is_empty());
    assert!(!page.caught_up);
    let gw = gateway.lock().unwrap();
    let first = gw.list_params()[0];
    assert_eq!(first["start_modified"], top_time(now() - HORIZON));
    assert_eq!(first["end_modified"], top_time(now() - HORIZON + WINDOW));
    assert_eq!(page.cursor["step"], "begin");
    assert_eq!(
        page.cursor["from"],
        json!(now() - HORIZON + WINDOW + TimeDelta::seconds(1))
    );
}

#[tokio::test]
async fn many_trades_in_one_second_are_all_read() {
    let crowded = at(3, 30, 0);
    let mut trades: Vec<Value> = (0..130)
        .map(|i| trade(7000 + i, crowded, "crowd"))
        .collect();
    trades.push(trade(8000, at(3, 45, 0), "a"));
    trades.push(trade(8001, at(3, 29, 59), "b"));
    trades.push(trade(8002, at(3, 10, 0), "c"));
    let (gateway, base) = start(Gateway {
        trades,
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let pages = sweep(&fixture, since(1)).await;

    let got = tids(&pages);
    assert_eq!(got.len(), 133);
    assert!(counts(&got).values().all(|&n| n == 1), "no duplicates");

    // The crowded second was counted, then read from the last page back.
    let gw = gateway.lock().unwrap();
    assert!(gw.violations.is_empty(), "{:?}", gw.violations);
    let by_number: Vec<(&str, &str, &str)> = gw
        .list_params()
        .iter()
        .filter(|p| p["use_has_next"] == "false")
        .map(|p| {
            (
                p["start_modified"].as_str(),
                p["end_modified"].as_str(),
                p["page_no"].as_str(),
            )
        })
        .collect();
    let lo = "2025-03-10 11:29:59";
    let hi = "2025-03-10 11:30:00";
    assert_eq!(
        by_number,
        [(lo, hi, "1"), (lo, hi, "3"), (lo, hi, "2"), (lo, hi, "1")]
    );
}

#[tokio::test]
async fn a_crowded_first_second_of_a_window_is_read_too() {
    // 60 trades in the window's very first second: the tie range cannot
    // reach below the window, so it covers that second and the next.
    let first = at(3, 0, 0);
    let mut trades: Vec<Value> = (0..60).map(|i| trade(7000 + i, first, "crowd")).collect();
    trades.push(trade(8000, at(3, 30, 0), "a"));
    trades.push(trade(8001, at(2, 59, 59), "before the sweep"));
    let (gateway, base) = start(Gateway {
        trades,
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({ "tmc_enabled": "off" }));
    let pages = sweep(&fixture, since(1)).await;

    let got = tids(&pages);
    assert_eq!(got.len(), 61);
    assert!(counts(&got).values().all(|&n| n == 1), "no duplicates");
    assert!(!got.contains(&"8001".to_owned()));
    let gw = gateway.lock().unwrap();
    assert!(gw.violations.is_empty(), "{:?}", gw.violations);
    let by_number: Vec<(&str, &str, &str)> = gw
        .list_params()
        .iter()
        .filter(|p| p["use_has_next"] == "false")
        .map(|p| {
            (
                p["start_modified"].as_str(),
                p["end_modified"].as_str(),
                p["page_no"].as_str(),
            )
        })
        .collect();
    let (lo, hi) = ("2025-03-10 11:00:00", "2025-03-10 11:00:01");
    assert_eq!(by_number, [(lo, hi, "1"), (lo, hi, "2"), (lo, hi, "1")]);
}

#[tokio::test]
async fn a_trade_modified_again_mid_window_does_not_hide_its_neighbours() {
    let (gateway, base) = start(Gateway {
        trades: three_hours_of_trades(),
        ..Default::default()
    })
    .await;
    // Once the first page of the first window has been read, its newest
    // trade is modified again and leaves the window. With forward page
    // numbers the rest of the window would shift up by one and page 2 would
    // start one trade too late.
    gateway.lock().unwrap().before_list = Some(Box::new(|list_call, trades| {
        if list_call == 2 {
            let moved = trades.iter_mut().find(|t| t["tid"] == 2000).unwrap();
            moved["modified"] = json!(top_time(at(3, 59, 30)));
        }
    }));
    let fixture = connection(&base, json!({}));
    let pages = sweep(&fixture, since(3)).await;

    let got = tids(&pages);
    let mut unique: Vec<String> = counts(&got).into_keys().collect();
    unique.sort();
    assert_eq!(unique, expected_three_hours());
    // The moved trade comes again, in its new version, from the last window.
    let versions: Vec<DateTime<Utc>> = pages
        .iter()
        .flat_map(|p| &p.records)
        .filter(|r| r.external_id == "2000")
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [at(2, 0, 0), at(3, 59, 30)]);
}

#[tokio::test]
async fn every_sign_method_is_accepted_by_the_gateway() {
    for method in ["md5", "hmac", "hmac-sha256"] {
        let (gateway, base) = start(Gateway {
            trades: vec![trade(1, at(3, 30, 0), "buyer")],
            ..Default::default()
        })
        .await;
        let fixture = connection(&base, json!({ "sign_method": method }));
        let pages = sweep(&fixture, since(1)).await;
        assert_eq!(tids(&pages), ["1"], "{method}");
        let gw = gateway.lock().unwrap();
        assert!(gw.calls.iter().all(|(_, p)| p["sign_method"] == method));
    }
    let (_, base) = start(Gateway::default()).await;
    let fixture = connection(&base, json!({ "sign_method": "sha1" }));
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &since(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)), "{err}");
}

#[tokio::test]
async fn credentials_refused_by_top_are_unauthorized() {
    let (_, base) = start(Gateway::default()).await;
    let mut fixture = connection(&base, json!({}));
    fixture.secrets = json!({ "app_secret": "wrong", "session": SESSION })
        .as_object()
        .unwrap()
        .clone();
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &since(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Unauthorized(m) if m.contains("25")),
        "{err}"
    );

    fixture.secrets = json!({ "app_secret": SECRET, "session": "expired-session" })
        .as_object()
        .unwrap()
        .clone();
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &since(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Unauthorized(m) if m.contains("27")),
        "{err}"
    );
    assert!(!err.to_string().contains("expired-session"));

    fixture.secrets = json!({ "app_secret": SECRET }).as_object().unwrap().clone();
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &since(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Unauthorized(m) if m.contains("session")),
        "{err}"
    );
}

#[tokio::test]
async fn failures_are_classified_and_the_same_cursor_retries() {
    let (gateway, base) = start(Gateway {
        trades: vec![trade(1, at(3, 30, 0), "buyer")],
        ..Default::default()
    })
    .await;
    let throttled = top_error(
        7,
        "App Call Limited",
        Some("accesscontrol.limited-by-app-api-access-count"),
    );
    let mut throttled = throttled;
    throttled["error_response"]["sub_msg"] = json!("This ban will last for 3 more seconds");
    {
        let mut gw = gateway.lock().unwrap();
        gw.inject.push_back((StatusCode::OK, throttled.to_string()));
        gw.inject.push_back((
            StatusCode::OK,
            top_error(
                15,
                "Remote service error",
                Some("isp.top-remote-connection-timeout"),
            )
            .to_string(),
        ));
        gw.inject
            .push_back((StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into()));
        gw.inject
            .push_back((StatusCode::OK, "<html>not json</html>".into()));
        gw.inject.push_back((
            StatusCode::OK,
            top_error(41, "Invalid arguments", Some("isv.invalid-parameter")).to_string(),
        ));
    }
    let fixture = connection(&base, json!({}));
    let cursor = since(1);
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(
            Taobao
                .poll(&fixture.api(), Resource::Orders, &cursor)
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(
        errors[0],
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(
        matches!(errors[1], ConnectorError::Transient(_)),
        "{}",
        errors[1]
    );
    assert!(
        matches!(errors[2], ConnectorError::Transient(_)),
        "{}",
        errors[2]
    );
    assert!(
        matches!(errors[3], ConnectorError::Malformed(_)),
        "{}",
        errors[3]
    );
    assert!(
        matches!(errors[4], ConnectorError::Permanent(_)),
        "{}",
        errors[4]
    );
    // Nothing was lost: the same cursor now reads the trade.
    let pages = sweep(&fixture, cursor).await;
    assert_eq!(tids(&pages), ["1"]);
}

#[tokio::test]
async fn full_trades_fail_the_page_unless_the_trade_is_gone() {
    let (gateway, base) = start(Gateway {
        trades: vec![
            trade(1, at(3, 30, 0), "buyer"),
            trade(2, at(3, 31, 0), "buyer"),
        ],
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let cursor = since(1);
    let throttled = top_error(
        7,
        "App Call Limited",
        Some("accesscontrol.limited-by-api-access-count"),
    );
    gateway
        .lock()
        .unwrap()
        .inject_on
        .entry(FULLINFO_METHOD.into())
        .or_default()
        .push_back((StatusCode::OK, throttled.to_string()));
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &cursor)
        .await
        .unwrap_err();
    assert_eq!(err, ConnectorError::RateLimited { retry_after: None });

    // A trade that disappeared between the list and its detail is skipped
    // (trade 2 is the newest, so its detail is fetched first).
    gateway
        .lock()
        .unwrap()
        .inject_on
        .entry(FULLINFO_METHOD.into())
        .or_default()
        .push_back((
            StatusCode::OK,
            top_error(15, "Remote service error", Some("isv.trade-not-exist")).to_string(),
        ));
    let page = Taobao
        .poll(&fixture.api(), Resource::Orders, &cursor)
        .await
        .unwrap();
    let got: Vec<&str> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(got, ["1"]);
}

#[tokio::test]
async fn other_resources_and_foreign_cursors_are_refused() {
    let (_, base) = start(Gateway::default()).await;
    let fixture = connection(&base, json!({}));
    let err = Taobao
        .poll(&fixture.api(), Resource::Customers, &since(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)), "{err}");
    let err = Taobao
        .poll(
            &fixture.api(),
            Resource::Orders,
            &json!({"page_info": "abc"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)), "{err}");
}

// --- TMC --------------------------------------------------------------------

/// Polls until a page carries TMC confirmations.
async fn until_drained_batch(fixture: &ApiFixture, mut cursor: Value) -> Page {
    for _ in 0..50 {
        let page = Taobao
            .poll(&fixture.api(), Resource::Orders, &cursor)
            .await
            .unwrap();
        if page.cursor.get("confirm").is_some() {
            return page;
        }
        assert!(!page.caught_up, "caught up before any TMC batch");
        cursor = page.cursor;
    }
    panic!("no TMC batch");
}

fn confirm_ids(page: &Page) -> Vec<String> {
    page.cursor["confirm"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn tmc_messages_are_confirmed_only_on_the_following_call() {
    let mut trades = vec![
        trade(9001, at(1, 0, 0), "buyer-tmc"),
        trade(9002, at(1, 0, 0), "buyer-tmc"),
    ];
    trades.push(trade(9100, at(3, 50, 0), "buyer-window"));
    let (gateway, base) = start(Gateway {
        trades,
        tmc_queue: VecDeque::from([
            message(2100000000000000001, "taobao_trade_TradeCreate", 9001),
            message(2100000000000000002, "taobao_trade_TradeChanged", 9001),
            message(2100000000000000003, "taobao_refund_RefundCreated", 9002),
            message(2100000000000000004, "taobao_item_ItemUpdate", 555),
        ]),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let batch = until_drained_batch(&fixture, since(1)).await;

    // The batch's trades come now, each once (9001 had two messages).
    let got: Vec<&str> = batch
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(got, ["9001", "9002"]);
    assert!(!batch.caught_up);
    assert_eq!(
        confirm_ids(&batch),
        [
            "2100000000000000001",
            "2100000000000000002",
            "2100000000000000003",
            "2100000000000000004"
        ]
    );
    let calls_before = {
        let gw = gateway.lock().unwrap();
        assert!(
            gw.confirmed.is_empty(),
            "confirmed before the hub committed"
        );
        gw.calls.len()
    };

    // The hub commits the page and calls again: the confirmation is the
    // first thing that call does.
    let next = Taobao
        .poll(&fixture.api(), Resource::Orders, &batch.cursor)
        .await
        .unwrap();
    let gw = gateway.lock().unwrap();
    assert_eq!(gw.confirmed.len(), 1);
    let (at_call, ids) = &gw.confirmed[0];
    assert_eq!(*at_call, calls_before);
    assert_eq!(ids, &confirm_ids(&batch));
    assert!(!gw.calls[calls_before].1.contains_key("group_name"));
    // The short batch emptied the queue: that call closes the sweep.
    assert!(next.caught_up);
    assert!(next.records.is_empty());
    assert!(next.cursor.get("confirm").is_none());
    assert_eq!(next.cursor["step"], "begin");
    assert_eq!(
        gw.calls.len(),
        calls_before + 1,
        "no consume after a short batch"
    );
}

#[tokio::test]
async fn a_full_tmc_batch_keeps_draining_and_confirms_before_consuming() {
    let trades: Vec<Value> = (0..60)
        .map(|i| trade(6000 + i, at(1, 0, 0), "buyer"))
        .collect();
    let queue: VecDeque<Value> = (0..60)
        .map(|i| message(3000 + i, "taobao_trade_TradeChanged", 6000 + i))
        .collect();
    let (gateway, base) = start(Gateway {
        trades,
        tmc_queue: queue,
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({ "tmc_group": "shop-42" }));
    let first = until_drained_batch(&fixture, since(1)).await;
    assert_eq!(first.records.len(), TMC_QUANTITY);
    assert_eq!(confirm_ids(&first).len(), TMC_QUANTITY);

    let second = Taobao
        .poll(&fixture.api(), Resource::Orders, &first.cursor)
        .await
        .unwrap();
    assert!(!second.caught_up);
    assert_eq!(second.records.len(), 60 - TMC_QUANTITY);
    let third = Taobao
        .poll(&fixture.api(), Resource::Orders, &second.cursor)
        .await
        .unwrap();
    assert!(third.caught_up);

    let gw = gateway.lock().unwrap();
    let tmc: Vec<(&str, Option<&str>)> = gw
        .calls
        .iter()
        .filter(|(m, _)| m == CONSUME_METHOD || m == CONFIRM_METHOD)
        .map(|(m, p)| (m.as_str(), p.get("group_name").map(String::as_str)))
        .collect();
    let group = Some("shop-42");
    assert_eq!(
        tmc,
        [
            (CONSUME_METHOD, group),
            (CONFIRM_METHOD, group),
            (CONSUME_METHOD, group),
            (CONFIRM_METHOD, group),
        ]
    );
    let confirmed: Vec<usize> = gw.confirmed.iter().map(|(_, ids)| ids.len()).collect();
    assert_eq!(confirmed, [TMC_QUANTITY, 60 - TMC_QUANTITY]);
}

#[tokio::test]
async fn a_failed_call_after_confirming_confirms_again_on_retry() {
    let (gateway, base) = start(Gateway {
        trades: vec![trade(9001, at(1, 0, 0), "buyer")],
        tmc_queue: (0..TMC_QUANTITY as u64)
            .map(|i| message(100 + i, "taobao_trade_TradeChanged", 9001))
            .collect(),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({}));
    let batch = until_drained_batch(&fixture, since(1)).await;
    gateway
        .lock()
        .unwrap()
        .inject_on
        .entry(CONSUME_METHOD.into())
        .or_default()
        .push_back((StatusCode::SERVICE_UNAVAILABLE, String::new()));
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &batch.cursor)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Transient(_)), "{err}");
    // The hub retries the same cursor: the ids are confirmed again, never lost.
    let retry = Taobao
        .poll(&fixture.api(), Resource::Orders, &batch.cursor)
        .await
        .unwrap();
    assert!(retry.caught_up);
    let gw = gateway.lock().unwrap();
    assert_eq!(gw.confirmed.len(), 2);
    assert_eq!(gw.confirmed[0].1, gw.confirmed[1].1);
}

#[tokio::test]
async fn tmc_can_be_turned_off() {
    let (gateway, base) = start(Gateway {
        trades: vec![trade(1, at(3, 30, 0), "buyer")],
        tmc_queue: VecDeque::from([message(1, "taobao_trade_TradeChanged", 1)]),
        ..Default::default()
    })
    .await;
    let fixture = connection(&base, json!({ "tmc_enabled": false }));
    let pages = sweep(&fixture, since(1)).await;
    assert_eq!(tids(&pages), ["1"]);
    assert_eq!(pages.len(), 1, "the last window's page is caught up");
    let gw = gateway.lock().unwrap();
    assert!(!gw.methods().contains(&CONSUME_METHOD));
}

#[tokio::test]
async fn trade_types_are_passed_and_impossible_pages_are_malformed() {
    let (gateway, base) = start(Gateway {
        trades: vec![trade(1, at(3, 30, 0), "buyer")],
        ..Default::default()
    })
    .await;
    let fixture = connection(
        &base,
        json!({ "trade_types": "guarantee_trade,step,cod", "tmc_enabled": false }),
    );
    let pages = sweep(&fixture, since(1)).await;
    assert_eq!(tids(&pages), ["1"]);
    assert!(gateway
        .lock()
        .unwrap()
        .list_params()
        .iter()
        .all(|p| p["type"] == "guarantee_trade,step,cod"));

    let lying = json!({ response_key(LIST_METHOD): { "has_next": true } });
    gateway
        .lock()
        .unwrap()
        .inject
        .push_back((StatusCode::OK, lying.to_string()));
    let err = Taobao
        .poll(&fixture.api(), Resource::Orders, &since(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Malformed(_)), "{err}");
}
