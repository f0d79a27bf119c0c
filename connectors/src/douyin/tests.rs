use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::client::{self, Cursor, MAX_RESULTS, PAGE_SIZE};
use super::mapping::beijing;
use super::Douyin;
use crate::model::{
    Address, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::signature::{hmac_sha256, sha256_hex};
use crate::testkit::{serve, ApiFixture};
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

const APP_KEY: &str = "7000000000000000000";
const SECRET: &str = "doudian-app-secret";
const TOKEN: &str = "doudian-token";
const ORDER_ID: &str = "4781320682406083640";
const SHOP_ID: &str = "4463798";

// --- helpers ----------------------------------------------------------------

fn order_fixture() -> Value {
    let value: Value = serde_json::from_str(include_str!("fixtures/shop-order.json")).unwrap();
    value["order"].clone()
}

fn push_fixture() -> Value {
    let value: Value = serde_json::from_str(include_str!("fixtures/push.json")).unwrap();
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

/// Headers as Doudian sends them, signed with `secret` for `app_key`.
fn signed_by(app_key: &str, secret: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let sign = md5_hex(&[app_key.as_bytes(), body, secret.as_bytes()]);
    headers.insert("event-sign", HeaderValue::from_str(&sign).unwrap());
    headers.insert("app-id", HeaderValue::from_str(app_key).unwrap());
    headers
}

fn signed(body: &[u8]) -> HeaderMap {
    signed_by(APP_KEY, SECRET, body)
}

fn settings() -> Map<String, Value> {
    json!({"app_key": APP_KEY, "shop_id": SHOP_ID})
        .as_object()
        .cloned()
        .unwrap()
}

fn message(tag: &str, msg_id: &str, data: Value) -> Value {
    json!({"tag": tag, "msg_id": msg_id, "data": data.to_string()})
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

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn vector(name: &str) -> Value {
    let all = fixtures::load("signature-test-vectors.json");
    all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("vector {name}"))
        .clone()
}

// --- connector ------------------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("douyin").expect("douyin in registry");
    assert_eq!(c.platform(), "douyin");
    assert_eq!(c.required_settings(), &["app_key", "shop_id"]);
    assert_eq!(c.required_secrets(), &["app_secret", "access_token"]);
    assert!(c.webhooks().is_some());
    let polling = c.polling().expect("polls");
    assert_eq!(polling.platform(), "douyin");
    assert_eq!(polling.resources(), &[Resource::Orders]);
    assert_eq!(
        polling.default_base_url(&Map::new()).as_deref(),
        Some("https://openapi-fxg.jinritemai.com")
    );
}

// --- verify -------------------------------------------------------------------

#[test]
fn shared_push_vector_verifies() {
    let v = vector("doudian-push");
    let app_key = v["inputs"]["app_key"].as_str().unwrap();
    let secret = v["inputs"]["app_secret"].as_str().unwrap();
    let body = v["inputs"]["body"].as_str().unwrap();
    let expected = v["expected"]["event-sign"].as_str().unwrap();
    assert_eq!(
        md5_hex(&[app_key.as_bytes(), body.as_bytes(), secret.as_bytes()]),
        expected
    );
    let mut headers = HeaderMap::new();
    headers.insert("event-sign", HeaderValue::from_str(expected).unwrap());
    headers.insert("app-id", HeaderValue::from_str(app_key).unwrap());
    // The signature holds; the vector's body is an object, not a message list.
    assert_eq!(
        Douyin.verify(&[secret.as_bytes()], &headers, body.as_bytes()),
        Err(VerifyError::Malformed(
            "body is not a list of messages".to_owned()
        ))
    );
    assert_eq!(
        Douyin.verify(&[b"other"], &headers, body.as_bytes()),
        Err(VerifyError::BadSignature)
    );
    // The same vector wrapped as a message list is a delivery.
    let list = format!(
        r#"[{{"tag":"100","msg_id":"1","data":{}}}]"#,
        serde_json::to_string(body).unwrap()
    );
    let headers = signed_by(app_key, secret, list.as_bytes());
    assert_eq!(
        Douyin.verify(&[secret.as_bytes()], &headers, list.as_bytes()),
        Ok(Intake::Delivery {
            dedupe_key: "msg:1".to_owned(),
            topic: "100".to_owned(),
        })
    );
}

#[test]
fn fixture_push_verifies_with_sorted_message_ids() {
    let body = bytes(&push_fixture());
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &signed(&body), &body),
        Ok(Intake::Delivery {
            dedupe_key: "msg:7302051837301744180,7302051837301744181".to_owned(),
            topic: "100,101".to_owned(),
        })
    );
}

#[test]
fn bad_signatures_are_refused() {
    let body = bytes(&push_fixture());
    let headers = signed(&body);
    let mut tampered = push_fixture();
    tampered[0]["tag"] = json!("106");
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Douyin.verify(&[b"wrong"], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    let mut not_hex = headers.clone();
    not_hex.insert("event-sign", HeaderValue::from_static("zz"));
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &not_hex, &body),
        Err(VerifyError::BadSignature)
    );
    // Another app's key changes what was signed.
    let mut other_app = headers.clone();
    other_app.insert("app-id", HeaderValue::from_static("7000000000000000001"));
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &other_app, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn missing_headers_are_named() {
    let body = bytes(&push_fixture());
    let mut headers = signed(&body);
    headers.remove("event-sign");
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &headers, &body),
        Err(VerifyError::MissingSignature("event-sign"))
    );
    let mut headers = signed(&body);
    headers.remove("app-id");
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &headers, &body),
        Err(VerifyError::Malformed("missing app-id header".to_owned()))
    );
}

#[test]
fn sign_methods() {
    let body = bytes(&push_fixture());
    let mut headers = signed(&body);
    headers.insert("sign-method", HeaderValue::from_static("MD5"));
    assert!(Douyin.verify(&[SECRET.as_bytes()], &headers, &body).is_ok());

    let message = [APP_KEY.as_bytes(), &body, SECRET.as_bytes()].concat();
    let hmac = hex::encode(hmac_sha256(SECRET.as_bytes(), &message));
    headers.insert("sign-method", HeaderValue::from_static("hmac-sha256"));
    headers.insert("event-sign", HeaderValue::from_str(&hmac).unwrap());
    assert!(Douyin.verify(&[SECRET.as_bytes()], &headers, &body).is_ok());
    // The MD5 signature is not accepted under the HMAC method.
    let mut md5_as_hmac = signed(&body);
    md5_as_hmac.insert("sign-method", HeaderValue::from_static("hmac-sha256"));
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &md5_as_hmac, &body),
        Err(VerifyError::BadSignature)
    );
    headers.insert("sign-method", HeaderValue::from_static("sha1"));
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &headers, &body),
        Err(VerifyError::Malformed("unsupported sign-method".to_owned()))
    );
}

#[test]
fn second_secret_verifies_during_rotation() {
    let body = bytes(&push_fixture());
    assert!(Douyin
        .verify(
            &[b"new".as_slice(), SECRET.as_bytes()],
            &signed(&body),
            &body
        )
        .is_ok());
}

#[test]
fn an_empty_batch_is_a_ping() {
    assert_eq!(
        Douyin.verify(&[SECRET.as_bytes()], &signed(b"[]"), b"[]"),
        Ok(Intake::Ping)
    );
}

#[test]
fn dedupe_keys_are_stable_per_batch() {
    let key_of = |body: &Value| {
        let bytes = bytes(body);
        match Douyin
            .verify(&[SECRET.as_bytes()], &signed(&bytes), &bytes)
            .unwrap()
        {
            Intake::Delivery { dedupe_key, .. } => dedupe_key,
            Intake::Ping => panic!("ping"),
            Intake::Unwrapped { .. } => panic!("not unwrapped"),
        }
    };
    let push = push_fixture();
    let mut reversed = push.clone();
    reversed.as_array_mut().unwrap().reverse();
    assert_eq!(key_of(&push), key_of(&reversed));

    // A message without an id: the exact bytes identify the batch.
    let mut anonymous = push.clone();
    anonymous[1].as_object_mut().unwrap().remove("msg_id");
    assert_eq!(
        key_of(&anonymous),
        format!("sha256:{}", sha256_hex(&bytes(&anonymous)))
    );
    // The camel-case spelling some deliveries use is read too.
    let mut camel = push.clone();
    let id = camel[0].as_object_mut().unwrap().remove("msg_id").unwrap();
    camel[0]["msgId"] = id;
    assert_eq!(key_of(&camel), key_of(&push));

    // Many messages: the joined ids are hashed.
    let many: Vec<Value> = (0..40)
        .map(|i| message("101", &format!("73020518373017{i:05}"), json!({"p_id": i})))
        .collect();
    let key = key_of(&Value::Array(many));
    assert!(key.starts_with("msgs:") && key.len() == 5 + 64, "{key}");
}

#[test]
fn verify_for_connection_checks_app_id_and_shop() {
    let body = bytes(&push_fixture());
    let headers = signed(&body);
    assert!(matches!(
        Douyin.verify_for_connection(&settings(), &[SECRET.as_bytes()], &headers, &body),
        Ok(Intake::Delivery { .. })
    ));

    // Wrong app-id: refused before the signature is even tried.
    let other_body = bytes(&push_fixture());
    let other = signed_by("7000000000000000001", SECRET, &other_body);
    assert_eq!(
        Douyin.verify_for_connection(&settings(), &[SECRET.as_bytes()], &other, &other_body),
        Err(VerifyError::Malformed(
            "app-id does not match the connection".to_owned()
        ))
    );
    let mut no_app = headers.clone();
    no_app.remove("app-id");
    assert_eq!(
        Douyin.verify_for_connection(&settings(), &[SECRET.as_bytes()], &no_app, &body),
        Err(VerifyError::Malformed("missing app-id header".to_owned()))
    );

    // A message for another shop of the same app.
    let mut foreign = push_fixture();
    foreign[1] = message(
        "101",
        "7302051837301744199",
        json!({"p_id": 1, "shop_id": 999}),
    );
    let foreign_body = bytes(&foreign);
    assert_eq!(
        Douyin.verify_for_connection(
            &settings(),
            &[SECRET.as_bytes()],
            &signed(&foreign_body),
            &foreign_body
        ),
        Err(VerifyError::Malformed(
            "push is for another shop (shop_id)".to_owned()
        ))
    );
}

// --- decode and references -------------------------------------------------------

#[test]
fn pushes_decode_to_nothing_and_name_their_orders_once() {
    let body = bytes(&push_fixture());
    assert_eq!(
        Douyin
            .decode("100,101", &body, &DecodeContext::default())
            .unwrap(),
        vec![]
    );
    assert_eq!(
        Douyin.references("100,101", &body).unwrap(),
        vec![(Resource::Orders, ORDER_ID.to_owned())]
    );
}

#[test]
fn refunds_name_their_order_and_other_messages_nothing() {
    let batch = json!([
        // 退款成功: after-sale messages carry the shop order too.
        message("206", "1", json!({"aftersale_id": 7000, "p_id": 1001, "s_id": 1002, "shop_id": 4463798, "refund_amount": 4900})),
        // A product change (4xx) concerns no order.
        message("400", "2", json!({"product_id": 3539925204033339668u64, "p_id": 999})),
        // Data given as an object rather than a string.
        {"tag": "102", "msg_id": "3", "data": {"p_id": "1003", "shop_id": "4463798"}},
        message("105", "4", json!({"p_id": 1001})),
    ]);
    assert_eq!(
        Douyin
            .references("102,105,206,400", &bytes(&batch))
            .unwrap(),
        vec![
            (Resource::Orders, "1001".to_owned()),
            (Resource::Orders, "1003".to_owned()),
        ]
    );
}

#[test]
fn unreadable_pushes_are_decode_errors() {
    let reason = |body: &[u8]| match Douyin
        .decode("100", body, &DecodeContext::default())
        .unwrap_err()
    {
        DecodeError::Invalid { reason, .. } => reason,
    };
    assert_eq!(reason(b"[not json"), "body is not valid JSON");
    let bad_data = json!([{"tag": "100", "msg_id": "1", "data": "{\"p_id\": "}]);
    assert_eq!(
        reason(&bytes(&bad_data)),
        "a message's data is not a JSON object"
    );
    assert!(Douyin.references("100", &bytes(&bad_data)).is_err());
}

// --- mapping (through the API) ---------------------------------------------------

fn expected_fixture_order() -> SourceRecord {
    SourceRecord {
        external_id: ORDER_ID.to_owned(),
        version: at(1_700_000_300),
        occurred_at: at(1_700_000_000),
        // Only the shop-scoped buyer id: the phone is masked or encrypted.
        keys: vec![key(KeyKind::CustomerId, "1@#UkY3WmFrZU9wZW5JZEZvclRlc3Rz")],
        body: RecordBody::Order(Order {
            number: ORDER_ID.to_owned(),
            status: OrderStatus::Paid,
            currency: "CNY".to_owned(),
            total: dec("49.00"),
            customer_id: Some("1@#UkY3WmFrZU9wZW5JZEZvclRlc3Rz".to_owned()),
            buyer_first_name: None,
            buyer_last_name: None,
            email: None,
            phone: Some("138****5678".to_owned()),
            line_items: vec![
                LineItem {
                    sku: Some("TSHIRT-001".to_owned()),
                    title: "T恤 白色 L".to_owned(),
                    quantity: 1,
                    total: dec("29.00"),
                },
                LineItem {
                    sku: Some("SOCK-2".to_owned()),
                    title: "袜子".to_owned(),
                    quantity: 2,
                    total: dec("20.00"),
                },
            ],
            shipping_address: Some(Address {
                line1: Some("黄龙****18楼".to_owned()),
                line2: Some("西湖区 翠苑街道".to_owned()),
                city: Some("杭州市".to_owned()),
                region: Some("浙江省".to_owned()),
                postcode: None,
                country: Some("CN".to_owned()),
            }),
        }),
    }
}

// --- request signing ----------------------------------------------------------------

#[test]
fn api_signature_matches_the_shared_vector() {
    let v = vector("doudian-api-hmac-sha256");
    let input = |k: &str| v["inputs"][k].as_str().unwrap().to_owned();
    assert_eq!(input("v"), "2");
    assert_eq!(
        client::sign(
            &input("app_key"),
            &input("app_secret"),
            &input("method"),
            &input("param_json"),
            &input("timestamp"),
        ),
        v["expected"]["sign"].as_str().unwrap()
    );
}

#[test]
fn param_json_is_sorted_and_compact() {
    let value = json!({"size": 100, "page": 0, "nested": {"b": [2, {"z": 1, "a": "x y"}], "a": null}, "order_asc": true});
    assert_eq!(
        client::param_json(&value),
        r#"{"nested":{"a":null,"b":[2,{"a":"x y","z":1}]},"order_asc":true,"page":0,"size":100}"#
    );
    assert_eq!(
        client::param_json(&json!({"k": "引号\""})),
        r#"{"k":"引号\""}"#
    );
    assert_eq!(client::method_of("/order/searchList"), "order.searchList");
}

// --- the fake Doudian API ---------------------------------------------------------

enum Scripted {
    Status(u16, Option<&'static str>),
    Body(Value),
    Raw(&'static str),
}

#[derive(Default)]
struct Shop {
    orders: Vec<Value>,
    /// The server's clock, to refuse stale timestamps.
    now: Option<DateTime<Utc>>,
    script: VecDeque<Scripted>,
    /// (method, params) of every accepted call.
    calls: Vec<(String, Value)>,
    after_first_page: Option<Mutation>,
}

type Shared = Arc<Mutex<Shop>>;
/// A change to the shop's data, made between two pages.
type Mutation = Box<dyn FnOnce(&mut Vec<Value>) + Send>;

fn refuse(code: i64, sub_code: &str) -> Response {
    Json(json!({"code": code, "msg": "refused", "sub_code": sub_code, "sub_msg": "", "log_id": "2023", "data": {}}))
        .into_response()
}

fn success(data: Value) -> Response {
    Json(json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "2023", "data": data}))
        .into_response()
}

/// The gateway's checks, written independently of the client.
fn check_request(
    shop: &Shop,
    path_method: &str,
    q: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Value, (i64, &'static str)> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("app_key") != APP_KEY {
        return Err((40003, "isv.app-id-invalid"));
    }
    if get("method") != path_method || get("v") != "2" || get("sign_method") != "hmac-sha256" {
        return Err((40003, "isv.parameter-invalid"));
    }
    let Ok(timestamp) = NaiveDateTime::parse_from_str(get("timestamp"), "%Y-%m-%d %H:%M:%S") else {
        return Err((40003, "isv.timestamp-format-error"));
    };
    let timestamp = beijing()
        .from_local_datetime(&timestamp)
        .unwrap()
        .with_timezone(&Utc);
    if shop
        .now
        .is_some_and(|now| (now - timestamp).abs() > TimeDelta::minutes(10))
    {
        return Err((40003, "isv.timestamp-invalid"));
    }
    let param_json = std::str::from_utf8(body).unwrap_or("");
    let Ok(params) = serde_json::from_str::<Value>(param_json) else {
        return Err((40003, "isv.parameter-format-invalid"));
    };
    // serde_json's map is ordered, so this is the sorted compact form.
    if serde_json::to_string(&params).unwrap() != param_json {
        return Err((40003, "isv.parameter-format-invalid"));
    }
    let text = format!(
        "{SECRET}app_key{APP_KEY}method{path_method}param_json{param_json}timestamp{}v2{SECRET}",
        get("timestamp")
    );
    if hex::encode(hmac_sha256(SECRET.as_bytes(), text.as_bytes())) != get("sign") {
        return Err((40003, "isv.signature-invalid"));
    }
    match get("access_token") {
        "" => Err((40001, "isv.access-token-missing")),
        TOKEN => Ok(params),
        _ => Err((40003, "isv.access-token-expired")),
    }
}

async fn api(
    State(shop): State<Shared>,
    Path((group, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: AxumHeaders,
    body: Bytes,
) -> Response {
    let mut shop = shop.lock().unwrap();
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
    assert_eq!(
        headers
            .get("x-open-no-old-err-code")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let method = format!("{group}.{name}");
    let params = match check_request(&shop, &method, &query, &body) {
        Ok(params) => params,
        Err((code, sub_code)) => return refuse(code, sub_code),
    };
    shop.calls.push((method.clone(), params.clone()));
    match method.as_str() {
        "order.searchList" => search_list(&mut shop, &params),
        "order.orderDetail" => {
            let id = params["shop_order_id"].as_str().unwrap_or("");
            match shop.orders.iter().find(|o| o["order_id"] == id) {
                Some(order) => success(json!({"shop_order_detail": order})),
                None => refuse(50002, "isv.business-failed:订单不存在"),
            }
        }
        _ => refuse(70000, "isp.api-service-off"),
    }
}

fn search_list(shop: &mut Shop, params: &Value) -> Response {
    let (Some(start), Some(end)) = (
        params["update_time_start"].as_i64(),
        params["update_time_end"].as_i64(),
    ) else {
        return refuse(40004, "isv.business-failed:update_time");
    };
    let page = params["page"].as_u64().unwrap_or(0);
    let size = params["size"].as_u64().unwrap_or(10);
    if !(1..=100).contains(&size)
        || params["order_by"] != "update_time"
        || params["order_asc"] != true
    {
        return refuse(40004, "isv.business-failed:size");
    }
    let mut matching: Vec<&Value> = shop
        .orders
        .iter()
        .filter(|o| {
            let updated = o["update_time"].as_i64().unwrap();
            start <= updated && updated <= end
        })
        .collect();
    matching.sort_by_key(|o| {
        (
            o["update_time"].as_i64().unwrap(),
            o["order_id"].as_str().unwrap().to_owned(),
        )
    });
    let total = matching.len();
    let list: Vec<Value> = matching
        .into_iter()
        .skip((page * size) as usize)
        .take(size as usize)
        .cloned()
        .collect();
    let response =
        success(json!({"page": page, "size": size, "total": total, "shop_order_list": list}));
    if page == 0 {
        if let Some(hook) = shop.after_first_page.take() {
            hook(&mut shop.orders);
        }
    }
    response
}

async fn start_shop(orders: Vec<Value>) -> (String, Shared) {
    let shop: Shared = Arc::new(Mutex::new(Shop {
        orders,
        now: Some(now()),
        ..Shop::default()
    }));
    let router = Router::new()
        .route("/{group}/{name}", post(api))
        .with_state(shop.clone());
    (serve(router).await, shop)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
}

fn since() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap()
}

fn fixture(base: &str) -> ApiFixture {
    let mut fx = ApiFixture::new(
        base,
        json!({"app_key": APP_KEY, "shop_id": SHOP_ID}),
        json!({"app_secret": SECRET, "access_token": TOKEN}),
    );
    fx.now = now();
    fx
}

fn order(id: &str, updated: DateTime<Utc>) -> Value {
    let mut order = order_fixture();
    order["order_id"] = json!(id);
    order["update_time"] = json!(updated.timestamp());
    order
}

/// 150 orders in the first week, 60 in the third; none on a boundary.
fn three_weeks_of_orders() -> Vec<Value> {
    let mut orders = Vec::new();
    for i in 0..150 {
        orders.push(order(
            &format!("48{i:017}"),
            since() + TimeDelta::days(2) + TimeDelta::minutes(i),
        ));
    }
    for i in 150..210 {
        orders.push(order(
            &format!("48{i:017}"),
            since() + TimeDelta::days(16) + TimeDelta::minutes(i),
        ));
    }
    orders
}

async fn sweep(fx: &ApiFixture, mut cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    for _ in 0..50 {
        let page = Douyin
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

fn ids(pages: &[Page]) -> Vec<String> {
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

fn calls(shop: &Shared) -> Vec<(String, Value)> {
    shop.lock().unwrap().calls.clone()
}

#[tokio::test]
async fn a_sweep_reads_every_order_once_through_signed_calls() {
    let (base, shop) = start_shop(three_weeks_of_orders()).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Douyin.start_cursor(Resource::Orders, Some(since()))).await;
    let read = ids(&pages);
    assert_eq!(read.len(), 210);
    assert!(counts(&read).values().all(|&n| n == 1));
    assert!(pages.last().unwrap().caught_up);
    assert!(pages[..pages.len() - 1].iter().all(|p| !p.caught_up));

    let week = TimeDelta::days(7).num_seconds();
    let shape: Vec<(i64, i64, u64)> = calls(&shop)
        .iter()
        .map(|(method, p)| {
            assert_eq!(method, "order.searchList");
            assert_eq!(p["size"], PAGE_SIZE);
            (
                p["update_time_start"].as_i64().unwrap(),
                p["update_time_end"].as_i64().unwrap(),
                p["page"].as_u64().unwrap(),
            )
        })
        .collect();
    let s = since().timestamp();
    assert_eq!(
        shape,
        vec![
            (s, s + week, 0),
            (s, s + week, 1),
            (s + week, s + 2 * week, 0),
            (s + 2 * week, s + 3 * week, 0),
            (s + 3 * week, now().timestamp(), 0),
        ]
    );
}

#[tokio::test]
async fn orders_map_exactly_from_search_and_detail() {
    let (base, shop) = start_shop(vec![order_fixture()]).await;
    let start = Douyin.start_cursor(Resource::Orders, Some(at(1_700_000_000)));
    let mut recent = fixture(&base);
    recent.now = at(1_700_003_600);
    shop.lock().unwrap().now = Some(recent.now);
    let pages = sweep(&recent, start).await;
    let records: Vec<SourceRecord> = pages.into_iter().flat_map(|p| p.records).collect();
    assert_eq!(records, vec![expected_fixture_order()]);

    let fetched = Douyin
        .fetch(&recent.api(), Resource::Orders, ORDER_ID)
        .await
        .unwrap();
    assert_eq!(fetched, vec![expected_fixture_order()]);
}

#[tokio::test]
async fn a_crash_resumes_from_the_last_cursor_without_gaps() {
    let (base, _shop) = start_shop(three_weeks_of_orders()).await;
    let fx = fixture(&base);
    let start = Douyin.start_cursor(Resource::Orders, Some(since()));
    let first = Douyin
        .poll(&fx.api(), Resource::Orders, &start)
        .await
        .unwrap();
    assert_eq!(first.records.len(), 100);
    let rest = sweep(&fx, first.cursor.clone()).await;
    let mut read = ids(std::slice::from_ref(&first));
    read.extend(ids(&rest));
    assert_eq!(read.len(), 210);
    assert!(counts(&read).values().all(|&n| n == 1));
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let mut orders = three_weeks_of_orders();
    let late = now() - TimeDelta::seconds(30);
    orders.push(order("48LATE", late));
    let (base, shop) = start_shop(orders).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Douyin.start_cursor(Resource::Orders, Some(since()))).await;
    let last = pages.last().unwrap();
    assert_eq!(last.watermark, Some(late));
    let next = cursor_of(last);
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(next.from, late - lookback);

    let mut later = fixture(&base);
    later.now = now() + TimeDelta::hours(1);
    shop.lock().unwrap().now = Some(later.now);
    shop.lock().unwrap().calls.clear();
    let pages = sweep(&later, last.cursor.clone()).await;
    assert_eq!(ids(&pages), vec!["48LATE".to_owned()]);
    let first = &calls(&shop)[0].1;
    assert_eq!(first["update_time_start"], (late - lookback).timestamp());
    assert_eq!(first["update_time_end"], later.now.timestamp());
}

#[tokio::test]
async fn orders_sharing_one_timestamp_are_all_read() {
    let tie = since() + TimeDelta::days(3);
    let orders: Vec<Value> = (0..250).map(|i| order(&format!("T{i:04}"), tie)).collect();
    let (base, _shop) = start_shop(orders).await;
    let fx = fixture(&base);
    let pages = sweep(&fx, Douyin.start_cursor(Resource::Orders, Some(since()))).await;
    let read = ids(&pages);
    assert_eq!(read.len(), 250);
    assert_eq!(counts(&read).len(), 250);
}

#[tokio::test]
async fn an_order_updated_mid_sweep_restarts_the_window() {
    let (base, shop) = start_shop(three_weeks_of_orders()).await;
    // After page 0, its first order is updated: it leaves the window and
    // every later order moves up one place.
    shop.lock().unwrap().after_first_page = Some(Box::new(|orders: &mut Vec<Value>| {
        let moved = orders
            .iter_mut()
            .find(|o| o["order_id"] == format!("48{:017}", 0))
            .unwrap();
        moved["update_time"] = json!((now() + TimeDelta::hours(2)).timestamp());
    }));
    let fx = fixture(&base);
    let pages = sweep(&fx, Douyin.start_cursor(Resource::Orders, Some(since()))).await;
    assert_eq!(counts(&ids(&pages)).len(), 210, "every order arrives");
    let pages_asked: Vec<u64> = calls(&shop)
        .iter()
        .map(|(_, p)| p["page"].as_u64().unwrap())
        .collect();
    assert_eq!(pages_asked, vec![0, 1, 0, 1, 0, 0, 0]);
}

#[tokio::test]
async fn a_window_with_too_many_orders_is_halved() {
    let dense: Vec<Value> = (0..=MAX_RESULTS)
        .map(|i| json!({"order_id": format!("D{i}"), "update_time": (since() + TimeDelta::days(1)).timestamp()}))
        .collect();
    let (base, _shop) = start_shop(dense).await;
    let fx = fixture(&base);
    let start = Douyin.start_cursor(Resource::Orders, Some(since()));
    let page = Douyin
        .poll(&fx.api(), Resource::Orders, &start)
        .await
        .unwrap();
    assert!(page.records.is_empty() && !page.caught_up);
    let window = cursor_of(&page).window.unwrap();
    assert_eq!(
        (window.from, window.to, window.page),
        (since(), since() + TimeDelta::hours(84), 0)
    );
}

#[test]
fn start_cursor_begins_at_since_or_doudians_first_year() {
    let cursor: Cursor =
        serde_json::from_value(Douyin.start_cursor(Resource::Orders, None)).unwrap();
    assert_eq!(
        cursor.from,
        Utc.with_ymd_and_hms(2017, 12, 31, 16, 0, 0).unwrap()
    );
    let cursor: Cursor =
        serde_json::from_value(Douyin.start_cursor(Resource::Orders, Some(since()))).unwrap();
    assert_eq!((cursor.from, cursor.watermark), (since(), Some(since())));
}

#[tokio::test]
async fn the_gateway_refuses_bad_credentials_and_signatures() {
    let (base, _shop) = start_shop(three_weeks_of_orders()).await;
    let start = Douyin.start_cursor(Resource::Orders, Some(since()));

    let mut stale = fixture(&base);
    stale
        .secrets
        .insert("access_token".to_owned(), json!("expired"));
    assert_eq!(
        Douyin.poll(&stale.api(), Resource::Orders, &start).await,
        Err(ConnectorError::Unauthorized(
            "Doudian answered code 40003 (isv.access-token-expired)".to_owned()
        ))
    );
    // A wrong app secret makes the signature fail server-side.
    let mut wrong_secret = fixture(&base);
    wrong_secret
        .secrets
        .insert("app_secret".to_owned(), json!("other"));
    assert_eq!(
        Douyin
            .poll(&wrong_secret.api(), Resource::Orders, &start)
            .await,
        Err(ConnectorError::Unauthorized(
            "Doudian answered code 40003 (isv.signature-invalid)".to_owned()
        ))
    );
    // A clock far off is refused as a bad timestamp, which retrying won't fix.
    let mut skewed = fixture(&base);
    skewed.now = now() - TimeDelta::hours(1);
    assert!(matches!(
        Douyin.poll(&skewed.api(), Resource::Orders, &Douyin.start_cursor(Resource::Orders, Some(since() - TimeDelta::days(7)))).await,
        Err(ConnectorError::Permanent(m)) if m.contains("isv.timestamp-invalid")
    ));
    let mut no_token = fixture(&base);
    no_token.secrets.remove("access_token");
    assert_eq!(
        Douyin.poll(&no_token.api(), Resource::Orders, &start).await,
        Err(ConnectorError::Unauthorized(
            "secrets.access_token is not set".to_owned()
        ))
    );
    let mut no_key = fixture(&base);
    no_key.settings.remove("app_key");
    assert!(matches!(
        Douyin.poll(&no_key.api(), Resource::Orders, &start).await,
        Err(ConnectorError::Permanent(_))
    ));
}

#[tokio::test]
async fn errors_are_classified() {
    let (base, shop) = start_shop(three_weeks_of_orders()).await;
    let fx = fixture(&base);
    let start = Douyin.start_cursor(Resource::Orders, Some(since()));
    shop.lock().unwrap().script.extend([
        Scripted::Status(429, Some("7")),
        Scripted::Body(json!({"code": 60000, "msg": "触发限流，请稍后重试", "sub_code": "", "sub_msg": ""})),
        Scripted::Body(json!({"code": 30001, "msg": "操作权限不足", "sub_code": "dop.authorization-no-existed", "sub_msg": "店铺授权已失效"})),
        Scripted::Body(json!({"code": 20000, "msg": "服务不可用", "sub_code": "isp.service-error:123", "sub_msg": ""})),
        Scripted::Status(503, None),
        Scripted::Body(json!({"code": 50002, "msg": "业务处理失败", "sub_code": "isv.business-failed:13800000000", "sub_msg": "手机号 13800000000"})),
        Scripted::Raw("<html>busy</html>"),
        Scripted::Body(json!({"err_no": 30001, "message": "access_token已过期", "data": null})),
        Scripted::Body(json!({"err_no": 0, "message": "success", "data": {"total": 0, "shop_order_list": []}})),
        Scripted::Status(401, None),
    ]);
    let api = fx.api();
    let poll = || Douyin.poll(&api, Resource::Orders, &start);
    assert_eq!(
        poll().await,
        Err(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    assert_eq!(
        poll().await,
        Err(ConnectorError::RateLimited { retry_after: None })
    );
    assert!(matches!(poll().await, Err(ConnectorError::Unauthorized(_))));
    assert!(matches!(poll().await, Err(ConnectorError::Transient(_))));
    assert!(matches!(poll().await, Err(ConnectorError::Transient(_))));
    match poll().await {
        Err(ConnectorError::Permanent(m)) => {
            assert_eq!(m, "Doudian answered code 50002 (isv.business-failed)");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert!(matches!(poll().await, Err(ConnectorError::Malformed(_))));
    // The older answer format: err_no 30001 is the same missing permission.
    assert!(matches!(poll().await, Err(ConnectorError::Unauthorized(_))));
    let page = poll().await.unwrap();
    assert!(page.records.is_empty());
    assert!(matches!(poll().await, Err(ConnectorError::Unauthorized(_))));
}

#[test]
fn classification_of_codes() {
    use ConnectorError::*;
    assert!(matches!(
        client::classify(Some("40003"), Some("isv.access-token-no-existed")),
        Unauthorized(_)
    ));
    assert!(matches!(
        client::classify(Some("40001"), Some("isv.access-token-missing")),
        Unauthorized(_)
    ));
    assert!(matches!(
        client::classify(Some("40003"), Some("isv.timestamp-invalid")),
        Permanent(_)
    ));
    assert!(matches!(
        client::classify(Some("20001"), None),
        Transient(_)
    ));
    assert!(matches!(
        client::classify(Some("90000"), Some("dop.unknown-error")),
        Transient(_)
    ));
    assert!(matches!(
        client::classify(Some("70000"), Some("isp.api-service-off")),
        Permanent(_)
    ));
    assert_eq!(
        client::classify(Some("60000"), None),
        RateLimited { retry_after: None }
    );
    // Messages carry codes only, never the platform's (value-echoing) text.
    assert_eq!(
        client::classify(Some("40004"), Some("isv.business-failed")),
        Permanent("Doudian answered code 40004 (isv.business-failed)".to_owned())
    );
}

#[tokio::test]
async fn fetch_reads_orders_only() {
    let (base, shop) = start_shop(vec![order_fixture()]).await;
    let fx = fixture(&base);
    assert_eq!(
        Douyin
            .fetch(&fx.api(), Resource::Orders, ORDER_ID)
            .await
            .unwrap(),
        vec![expected_fixture_order()]
    );
    assert_eq!(
        calls(&shop),
        vec![(
            "order.orderDetail".to_owned(),
            json!({"shop_order_id": ORDER_ID})
        )]
    );
    assert!(matches!(
        Douyin.fetch(&fx.api(), Resource::Orders, "1").await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        Douyin.fetch(&fx.api(), Resource::Reviews, "1").await,
        Err(ConnectorError::Permanent(_))
    ));
}

// --- mapping details -----------------------------------------------------------

async fn fetch_one(order: Value) -> SourceRecord {
    let (base, _shop) = start_shop(vec![order]).await;
    let fx = fixture(&base);
    Douyin
        .fetch(&fx.api(), Resource::Orders, ORDER_ID)
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn status_mapping_and_full_refunds() {
    for (status, expected) in [
        (1, OrderStatus::PendingPayment),
        (105, OrderStatus::Paid),
        (2, OrderStatus::Paid),
        (101, OrderStatus::Shipped),
        (3, OrderStatus::Shipped),
        (4, OrderStatus::Cancelled),
        (5, OrderStatus::Completed),
        (77, OrderStatus::PendingPayment),
    ] {
        let mut o = order_fixture();
        o["order_status"] = json!(status);
        assert_eq!(order_of(&fetch_one(o).await).status, expected, "{status}");
    }
    // Every sku refunded: the order is refunded, whatever its status.
    let mut o = order_fixture();
    o["order_status"] = json!(4);
    for sku in o["sku_order_list"].as_array_mut().unwrap() {
        sku["after_sale_info"]["refund_status"] = json!(3);
    }
    assert_eq!(
        order_of(&fetch_one(o.clone()).await).status,
        OrderStatus::Refunded
    );
    // Only one refunded: not a refunded order.
    o["sku_order_list"][0]["after_sale_info"]["refund_status"] = json!(1);
    assert_eq!(order_of(&fetch_one(o).await).status, OrderStatus::Cancelled);
}

#[tokio::test]
async fn receiver_data_never_becomes_a_key() {
    let mut o = order_fixture();
    // Even a plain-looking post_tel is receiver data, not the buyer.
    o["post_tel"] = json!("13812345678");
    o["doudian_open_id"] = json!("");
    let record = fetch_one(o).await;
    assert!(record.keys.is_empty(), "{:?}", record.keys);
    assert_eq!(order_of(&record).customer_id, None);
}

#[tokio::test]
async fn amounts_arrive_as_strings_or_numbers() {
    let mut o = order_fixture();
    o["pay_amount"] = json!("4901");
    o["sku_order_list"][0]["pay_amount"] = json!("1");
    let order = order_of(&fetch_one(o).await).clone();
    assert_eq!(order.total, dec("49.01"));
    assert_eq!(order.line_items[0].total, dec("0.01"));
}

#[tokio::test]
async fn missing_fields_are_named_without_values() {
    let mut o = order_fixture();
    o.as_object_mut().unwrap().remove("update_time");
    let (base, _shop) = start_shop(vec![o]).await;
    let fx = fixture(&base);
    assert_eq!(
        Douyin.fetch(&fx.api(), Resource::Orders, ORDER_ID).await,
        Err(ConnectorError::Malformed(
            "order: missing update_time".to_owned()
        ))
    );

    let mut o = order_fixture();
    o["pay_amount"] = json!("13812345678.5");
    let (base, _shop) = start_shop(vec![o]).await;
    let fx = fixture(&base);
    match Douyin.fetch(&fx.api(), Resource::Orders, ORDER_ID).await {
        Err(ConnectorError::Malformed(m)) => {
            assert!(m.starts_with("unexpected JSON"), "{m}");
            assert!(!m.contains("13812345678"), "{m}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
}
