use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::client::{CUSTOMERS_LIMIT, ORDERS_LIMIT};
use super::mapping::{self, BcCustomer, BcOrder, BcOrderProduct};
use super::{ensure_webhooks, BigCommerce, WebhookChange, DEFAULT_SCOPES, WEBHOOK_SECRET_HEADER};
use crate::model::{
    Address, Customer, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::{serve, ApiFixture};
use crate::webhook::{DecodeContext, Intake, VerifyError, WebhookSource};

const TOKEN: &str = "bc-token-123";
const STORE: &str = "abcde";
const SECRET: &[u8] = b"hub-made-secret";

// --- fixtures -------------------------------------------------------------

fn local_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/bigcommerce/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn callback() -> Value {
    fixtures::load("bigcommerce-webhook.json")["body"].clone()
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn order_of(record: &SourceRecord) -> &Order {
    match &record.body {
        RecordBody::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn customer_of(record: &SourceRecord) -> &Customer {
    match &record.body {
        RecordBody::Customer(customer) => customer,
        other => panic!("expected a customer, got {other:?}"),
    }
}

fn fixture_order_record(region: Option<&str>) -> SourceRecord {
    let order: BcOrder = serde_json::from_value(local_fixture("order.json")).unwrap();
    let products: Vec<BcOrderProduct> =
        serde_json::from_value(local_fixture("order-products.json")).unwrap();
    mapping::order_record(&order, &products, region).unwrap()
}

// --- connector identity ---------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("bigcommerce").expect("bigcommerce in registry");
    assert_eq!(c.platform(), "bigcommerce");
    assert_eq!(c.required_settings(), &["store_hash"]);
    assert_eq!(c.required_secrets(), &["access_token"]);
    assert!(c.webhooks().is_some());
    let polling = c.polling().expect("polls");
    assert_eq!(polling.platform(), "bigcommerce");
    assert_eq!(
        polling.resources(),
        &[Resource::Orders, Resource::Customers]
    );
}

#[test]
fn default_base_url_comes_from_the_store_hash() {
    let settings = json!({"store_hash": "abc123"});
    assert_eq!(
        BigCommerce
            .default_base_url(settings.as_object().unwrap())
            .as_deref(),
        Some("https://api.bigcommerce.com/stores/abc123")
    );
    for bad in [
        json!({}),
        json!({"store_hash": ""}),
        json!({"store_hash": "a/../b"}),
    ] {
        assert_eq!(
            BigCommerce.default_base_url(bad.as_object().unwrap()),
            None,
            "{bad}"
        );
    }
}

// --- webhook verification -------------------------------------------------

fn headers_with(value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        WEBHOOK_SECRET_HEADER,
        HeaderValue::from_bytes(value).unwrap(),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

#[test]
fn verify_accepts_the_registered_header_and_names_the_scope() {
    let body = bytes(&callback());
    let intake = BigCommerce
        .verify(&[SECRET], &headers_with(SECRET), &body)
        .unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key:
                "store/order/statusUpdated:3f9ea420af83450d7ef9f78b08c8af25b2213637:1561488106"
                    .to_owned(),
            topic: "store/order/statusUpdated".to_owned(),
        }
    );
}

#[test]
fn verify_rejects_a_wrong_or_missing_header() {
    let body = bytes(&callback());
    assert_eq!(
        BigCommerce.verify(&[SECRET], &headers_with(b"guess"), &body),
        Err(VerifyError::BadSignature)
    );
    // A prefix of the secret is not the secret.
    assert_eq!(
        BigCommerce.verify(&[SECRET], &headers_with(&SECRET[..5]), &body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        BigCommerce.verify(&[SECRET], &HeaderMap::new(), &body),
        Err(VerifyError::MissingSignature(WEBHOOK_SECRET_HEADER))
    );
    assert_eq!(
        BigCommerce.verify(&[], &headers_with(SECRET), &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_accepts_either_secret_during_rotation() {
    let body = bytes(&callback());
    assert!(BigCommerce
        .verify(&[b"new-secret", SECRET], &headers_with(SECRET), &body)
        .is_ok());
    assert!(BigCommerce
        .verify(&[SECRET, b"old-secret"], &headers_with(SECRET), &body)
        .is_ok());
}

#[test]
fn an_empty_secret_never_authenticates() {
    let body = bytes(&callback());
    let mut headers = HeaderMap::new();
    headers.insert(WEBHOOK_SECRET_HEADER, HeaderValue::from_static(""));
    assert_eq!(
        BigCommerce.verify(&[b""], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_requires_a_scope_in_a_readable_body() {
    let mut no_scope = callback();
    no_scope.as_object_mut().unwrap().remove("scope");
    assert_eq!(
        BigCommerce.verify(&[SECRET], &headers_with(SECRET), &bytes(&no_scope)),
        Err(VerifyError::Malformed("callback has no scope".to_owned()))
    );
    assert!(matches!(
        BigCommerce.verify(&[SECRET], &headers_with(SECRET), b"not json"),
        Err(VerifyError::Malformed(_))
    ));
}

fn dedupe_key_of(body: &Value) -> String {
    match BigCommerce
        .verify(&[SECRET], &headers_with(SECRET), &bytes(body))
        .unwrap()
    {
        Intake::Delivery { dedupe_key, .. } => dedupe_key,
        Intake::Ping => panic!("not a delivery"),
        Intake::Unwrapped { .. } => panic!("not unwrapped"),
    }
}

#[test]
fn a_retry_dedupes_but_a_later_event_with_the_same_hash_does_not() {
    let first = callback();
    assert_eq!(dedupe_key_of(&first), dedupe_key_of(&first.clone()));
    // `hash` covers `data` only: the next update of the same order repeats it.
    let mut later = first.clone();
    later["created_at"] = json!(1561488999);
    assert_ne!(dedupe_key_of(&later), dedupe_key_of(&first));
    let mut other_scope = first.clone();
    other_scope["scope"] = json!("store/order/updated");
    assert_ne!(dedupe_key_of(&other_scope), dedupe_key_of(&first));
}

#[test]
fn dedupe_key_falls_back_to_the_body_hash() {
    let mut no_hash = callback();
    no_hash.as_object_mut().unwrap().remove("hash");
    let key = dedupe_key_of(&no_hash);
    assert_eq!(
        key,
        format!("sha256:{}", crate::signature::sha256_hex(&bytes(&no_hash)))
    );
}

// --- references (thin payloads) -------------------------------------------

fn references(body: &Value) -> Vec<(Resource, String)> {
    let topic = body["scope"].as_str().unwrap().to_owned();
    BigCommerce.references(&topic, &bytes(body)).unwrap()
}

#[test]
fn the_sample_callback_references_its_order() {
    assert_eq!(
        references(&callback()),
        vec![(Resource::Orders, "173331".to_owned())]
    );
    // The body itself decodes to nothing: the worker fetches the order.
    let records = BigCommerce
        .decode(
            "store/order/statusUpdated",
            &bytes(&callback()),
            &DecodeContext::default(),
        )
        .unwrap();
    assert!(records.is_empty());
}

#[test]
fn each_documented_data_shape_names_the_right_resource() {
    let cases = [
        (
            json!({"scope": "store/order/created", "data": {"type": "order", "id": 250}}),
            Some((Resource::Orders, "250")),
        ),
        (
            json!({"scope": "store/order/message/created", "data": {"type": "order", "id": 251, "message": {"order_message_id": 3}}}),
            Some((Resource::Orders, "251")),
        ),
        (
            json!({"scope": "store/order/transaction/created", "data": {"type": "transaction", "order_id": 252, "transaction_id": "176342342"}}),
            Some((Resource::Orders, "252")),
        ),
        (
            json!({"scope": "store/cart/converted", "data": {"type": "cart", "id": "d30016e2", "orderId": 253}}),
            Some((Resource::Orders, "253")),
        ),
        (
            json!({"scope": "store/customer/updated", "data": {"type": "customer", "id": 32}}),
            Some((Resource::Customers, "32")),
        ),
        (
            json!({"scope": "store/customer/address/created", "data": {"type": "customer", "id": 60, "address": {"customer_id": 33}}}),
            Some((Resource::Customers, "33")),
        ),
        (
            json!({"scope": "store/product/updated", "data": {"type": "product", "id": 9}}),
            None,
        ),
        (
            json!({"scope": "store/cart/updated", "data": {"type": "cart", "id": "09346904"}}),
            None,
        ),
    ];
    for (body, expected) in cases {
        let expected: Vec<(Resource, String)> = expected
            .into_iter()
            .map(|(r, id)| (r, id.to_owned()))
            .collect();
        assert_eq!(references(&body), expected, "{body}");
    }
}

#[test]
fn references_name_missing_ids_without_values() {
    let body =
        json!({"scope": "store/customer/address/updated", "data": {"type": "customer", "id": 60}});
    let err = BigCommerce
        .references("store/customer/address/updated", &bytes(&body))
        .unwrap_err();
    assert!(
        err.to_string().contains("missing data.address.customer_id"),
        "{err}"
    );
    let err = BigCommerce
        .references("store/order/updated", b"{oops")
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

// --- mapping --------------------------------------------------------------

#[test]
fn order_fixture_maps_exactly() {
    let record = fixture_order_record(Some("US"));
    assert_eq!(record.external_id, "173331");
    assert_eq!(record.version, t("2019-03-06T09:15:30Z"));
    assert_eq!(record.occurred_at, t("2019-03-05T21:48:12Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Phone, "+15125550134"),
            key(KeyKind::CustomerId, "42"),
        ]
    );
    assert_eq!(
        order_of(&record),
        &Order {
            number: "173331".to_owned(),
            status: OrderStatus::Paid,
            currency: "USD".to_owned(),
            total: dec("215.4500"),
            customer_id: Some("42".to_owned()),
            buyer_first_name: Some("Ada".to_owned()),
            buyer_last_name: Some("Lovelace".to_owned()),
            email: Some("Ada@Example.com".to_owned()),
            phone: Some("(512) 555-0134".to_owned()),
            line_items: vec![
                LineItem {
                    sku: Some("SHIRT-L".to_owned()),
                    title: "Linen Shirt".to_owned(),
                    quantity: 2,
                    total: dec("99.90"),
                },
                // The bundle's component line (parent_order_product_id) is skipped.
                LineItem {
                    sku: None,
                    title: "Gift Box".to_owned(),
                    quantity: 1,
                    total: dec("100"),
                },
            ],
            shipping_address: None,
        }
    );
}

#[test]
fn a_guest_order_has_no_customer_id() {
    let mut order = local_fixture("order.json");
    order["customer_id"] = json!(0);
    let order: BcOrder = serde_json::from_value(order).unwrap();
    let record = mapping::order_record(&order, &[], None).unwrap();
    assert_eq!(order_of(&record).customer_id, None);
    // Without a region the local phone is not a key; the email still is.
    assert_eq!(record.keys, vec![key(KeyKind::Email, "ada@example.com")]);
}

#[test]
fn status_ids_map_to_the_model() {
    let cases = [
        (0, OrderStatus::PendingPayment),
        (1, OrderStatus::PendingPayment),
        (2, OrderStatus::Shipped),
        (3, OrderStatus::Paid),
        (4, OrderStatus::Refunded),
        (5, OrderStatus::Cancelled),
        (6, OrderStatus::Cancelled),
        (7, OrderStatus::PendingPayment),
        (8, OrderStatus::Paid),
        (9, OrderStatus::Paid),
        (10, OrderStatus::Completed),
        (11, OrderStatus::Paid),
        (12, OrderStatus::PendingPayment),
        (13, OrderStatus::Paid),
        (14, OrderStatus::Paid),
        (99, OrderStatus::PendingPayment),
    ];
    for (id, status) in cases {
        assert_eq!(mapping::order_status(Some(id)), status, "status_id {id}");
    }
    assert_eq!(mapping::order_status(None), OrderStatus::PendingPayment);
}

#[test]
fn customer_fixture_maps_exactly() {
    let customer: BcCustomer = serde_json::from_value(local_fixture("customer.json")).unwrap();
    let record = mapping::customer_record(&customer, Some("US")).unwrap();
    assert_eq!(record.external_id, "42");
    assert_eq!(record.version, t("2019-03-06T09:10:00Z"));
    assert_eq!(record.occurred_at, t("2019-01-02T08:00:00Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Phone, "+15125550134"),
            key(KeyKind::Phone, "+15125550199"),
            key(KeyKind::CustomerId, "42"),
        ]
    );
    assert_eq!(
        customer_of(&record),
        &Customer {
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            emails: vec!["ada@example.com".to_owned()],
            phones: vec!["+1 512-555-0134".to_owned(), "512 555 0199".to_owned()],
            tags: vec![],
            address: Some(Address {
                line1: Some("1 Main St".to_owned()),
                line2: None,
                city: Some("Austin".to_owned()),
                region: Some("Texas".to_owned()),
                postcode: Some("78701".to_owned()),
                country: Some("US".to_owned()),
            }),
            accepts_email_marketing: None,
            created_at: Some(t("2019-01-02T08:00:00Z")),
            birth_date: None,
            document_id: None,
        }
    );
}

#[test]
fn bad_fields_are_named_without_values() {
    let mut order = local_fixture("order.json");
    order["date_modified"] = json!("2019-03-06 09:15:30");
    let order: BcOrder = serde_json::from_value(order).unwrap();
    assert_eq!(
        mapping::order_record(&order, &[], None).unwrap_err(),
        "date_modified is not an RFC 2822 time"
    );
    let mut order = local_fixture("order.json");
    order["total_inc_tax"] = json!("ada@example.com");
    let order: BcOrder = serde_json::from_value(order).unwrap();
    assert_eq!(
        mapping::order_record(&order, &[], None).unwrap_err(),
        "total_inc_tax is not a decimal amount"
    );
    let mut customer = local_fixture("customer.json");
    customer.as_object_mut().unwrap().remove("date_modified");
    let customer: BcCustomer = serde_json::from_value(customer).unwrap();
    assert_eq!(
        mapping::customer_record(&customer, None).unwrap_err(),
        "missing date_modified"
    );
}

// --- the fake BigCommerce API -----------------------------------------------

#[derive(Default)]
struct FakeStore {
    orders: Vec<Value>,
    products: BTreeMap<u64, Vec<Value>>,
    customers: Vec<Value>,
    /// The next N calls answer 429.
    throttle: u32,
    /// Every call answers this status instead (401, 503...).
    fail_with: Option<u16>,
    requests_left: u64,
    /// `path?query` of every authenticated list call, in order.
    log: Vec<String>,
}

type Shared = Arc<Mutex<FakeStore>>;

fn limit_headers(left: u64, reset_ms: u64) -> [(&'static str, String); 2] {
    [
        ("X-Rate-Limit-Requests-Left", left.to_string()),
        ("X-Rate-Limit-Time-Reset-Ms", reset_ms.to_string()),
    ]
}

/// Authentication, throttling and forced failures, as BigCommerce answers them.
fn gate(store: &mut FakeStore, headers: &AxumHeaders) -> Result<(), Box<Response>> {
    if let Some(status) = store.fail_with {
        return Err(Box::new(
            (StatusCode::from_u16(status).unwrap(), "[]").into_response(),
        ));
    }
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    if token != Some(TOKEN) {
        let body = json!([{"status": 401, "message": "You are not authorized to perform this operation."}]);
        return Err(Box::new(
            (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
        ));
    }
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return Err(Box::new((StatusCode::NOT_ACCEPTABLE, "[]").into_response()));
    }
    if store.throttle > 0 {
        store.throttle -= 1;
        return Err(Box::new(
            (StatusCode::TOO_MANY_REQUESTS, limit_headers(0, 1500), "[]").into_response(),
        ));
    }
    Ok(())
}

fn answer(store: &FakeStore, status: StatusCode, body: Option<Value>) -> Response {
    let headers = limit_headers(store.requests_left, 4000);
    match body {
        Some(body) => (status, headers, Json(body)).into_response(),
        None => (status, headers).into_response(),
    }
}

fn page_params(
    q: &HashMap<String, String>,
    max_limit: usize,
) -> Result<(usize, usize), Box<Response>> {
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    if page == 0 || limit == 0 || limit > max_limit {
        return Err(Box::new(
            (StatusCode::BAD_REQUEST, "bad paging").into_response(),
        ));
    }
    Ok((page, limit))
}

fn log_call(store: &mut FakeStore, path: &str, q: &HashMap<String, String>) {
    let mut pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    store.log.push(format!("{path}?{}", pairs.join("&")));
}

async fn list_orders(
    State(shared): State<Shared>,
    Path(hash): Path<String>,
    headers: AxumHeaders,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut store = shared.lock().unwrap();
    if let Err(refusal) = gate(&mut store, &headers) {
        return *refusal;
    }
    if hash != STORE {
        return (StatusCode::NOT_FOUND, "[]").into_response();
    }
    log_call(&mut store, "/v2/orders", &q);
    let Some(min) = q
        .get("min_date_modified")
        .and_then(|m| DateTime::parse_from_rfc2822(m).ok())
    else {
        return (StatusCode::BAD_REQUEST, "min_date_modified").into_response();
    };
    if q.get("sort").map(String::as_str) != Some("date_modified:asc") {
        return (StatusCode::BAD_REQUEST, "sort").into_response();
    }
    let (page, limit) = match page_params(&q, 250) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let modified =
        |o: &Value| DateTime::parse_from_rfc2822(o["date_modified"].as_str().unwrap()).unwrap();
    let mut matching: Vec<&Value> = store.orders.iter().filter(|o| modified(o) >= min).collect();
    matching.sort_by_key(|o| (modified(o), o["id"].as_u64().unwrap()));
    let slice: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .cloned()
        .collect();
    if slice.is_empty() {
        return answer(&store, StatusCode::NO_CONTENT, None);
    }
    answer(&store, StatusCode::OK, Some(Value::Array(slice)))
}

async fn one_order(
    State(shared): State<Shared>,
    Path((_hash, id)): Path<(String, u64)>,
    headers: AxumHeaders,
) -> Response {
    let mut store = shared.lock().unwrap();
    if let Err(refusal) = gate(&mut store, &headers) {
        return *refusal;
    }
    match store.orders.iter().find(|o| o["id"] == json!(id)).cloned() {
        Some(order) => answer(&store, StatusCode::OK, Some(order)),
        None => answer(
            &store,
            StatusCode::NOT_FOUND,
            Some(json!([{"status": 404, "message": "The requested resource was not found."}])),
        ),
    }
}

async fn order_products(
    State(shared): State<Shared>,
    Path((_hash, id)): Path<(String, u64)>,
    headers: AxumHeaders,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut store = shared.lock().unwrap();
    if let Err(refusal) = gate(&mut store, &headers) {
        return *refusal;
    }
    let (page, limit) = match page_params(&q, 250) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let products: Vec<Value> = store
        .products
        .get(&id)
        .into_iter()
        .flatten()
        .skip((page - 1) * limit)
        .take(limit)
        .cloned()
        .collect();
    if products.is_empty() {
        return answer(&store, StatusCode::NO_CONTENT, None);
    }
    answer(&store, StatusCode::OK, Some(Value::Array(products)))
}

async fn list_customers(
    State(shared): State<Shared>,
    headers: AxumHeaders,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut store = shared.lock().unwrap();
    if let Err(refusal) = gate(&mut store, &headers) {
        return *refusal;
    }
    log_call(&mut store, "/v3/customers", &q);
    let (page, limit) = match page_params(&q, 250) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let modified = |c: &Value| t(c["date_modified"].as_str().unwrap());
    let mut matching: Vec<&Value> = store.customers.iter().collect();
    if let Some(min) = q.get("date_modified:min") {
        let Ok(min) = DateTime::parse_from_rfc3339(min) else {
            return (StatusCode::UNPROCESSABLE_ENTITY, "date_modified:min").into_response();
        };
        matching.retain(|c| modified(c) >= min);
    }
    if let Some(ids) = q.get("id:in") {
        let ids: Vec<u64> = ids.split(',').filter_map(|i| i.parse().ok()).collect();
        matching.retain(|c| ids.contains(&c["id"].as_u64().unwrap()));
    }
    match q.get("sort").map(String::as_str) {
        Some("date_modified:asc") => {
            matching.sort_by_key(|c| (modified(c), c["id"].as_u64().unwrap()))
        }
        None => {}
        Some(_) => return (StatusCode::UNPROCESSABLE_ENTITY, "sort").into_response(),
    }
    let total = matching.len();
    let total_pages = total.div_ceil(limit);
    let data: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .cloned()
        .collect();
    let body = json!({
        "data": data,
        "meta": {"pagination": {
            "total": total,
            "count": data.len(),
            "per_page": limit,
            "current_page": page,
            "total_pages": total_pages,
            "links": {"current": format!("?page={page}&limit={limit}")}
        }}
    });
    answer(&store, StatusCode::OK, Some(body))
}

async fn fake_bigcommerce(store: FakeStore) -> (Shared, ApiFixture) {
    let shared: Shared = Arc::new(Mutex::new(store));
    let router = Router::new()
        .route("/stores/{hash}/v2/orders", get(list_orders))
        .route("/stores/{hash}/v2/orders/{id}", get(one_order))
        .route(
            "/stores/{hash}/v2/orders/{id}/products",
            get(order_products),
        )
        .route("/stores/{hash}/v3/customers", get(list_customers))
        .with_state(shared.clone());
    let base = serve(router).await;
    let mut fixture = ApiFixture::new(
        &format!("{base}/stores/{STORE}"),
        json!({"store_hash": STORE}),
        json!({"access_token": TOKEN}),
    );
    fixture.default_region = Some("US".to_owned());
    (shared, fixture)
}

const T0: &str = "2025-03-01T10:00:00Z";

fn order_at(id: u64, modified: DateTime<Utc>) -> Value {
    let mut order = local_fixture("order.json");
    order["id"] = json!(id);
    order["date_modified"] = json!(rfc2822(modified));
    order["billing_address"]["email"] = json!(format!("buyer{id}@example.com"));
    order
}

fn customer_at(id: u64, modified: DateTime<Utc>) -> Value {
    let mut customer = local_fixture("customer.json");
    customer["id"] = json!(id);
    customer["email"] = json!(format!("c{id}@example.com"));
    customer["date_modified"] = json!(modified.to_rfc3339());
    customer
}

/// 130 orders: 60 modified in the same second (more than a page), then one
/// every 7 seconds. Each has one product line.
fn store_with_orders() -> FakeStore {
    let t0 = t(T0);
    let mut store = FakeStore {
        requests_left: 10_000,
        ..FakeStore::default()
    };
    for id in 1..=130u64 {
        let modified = if id <= 60 {
            t0
        } else {
            t0 + TimeDelta::seconds(7 * (id as i64 - 60))
        };
        store.orders.push(order_at(id, modified));
        let mut product = local_fixture("order-products.json")[0].clone();
        product["order_id"] = json!(id);
        store.products.insert(id, vec![product]);
    }
    store
}

async fn poll(
    fixture: &ApiFixture,
    resource: Resource,
    cursor: &Value,
) -> Result<Page, ConnectorError> {
    BigCommerce.poll(&fixture.api(), resource, cursor).await
}

/// Polls until the sweep is caught up; returns every page.
async fn sweep(fixture: &ApiFixture, resource: Resource, cursor: &Value) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut cursor = cursor.clone();
    for _ in 0..100 {
        let page = poll(fixture, resource, &cursor).await.unwrap();
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("sweep did not finish in 100 pages");
}

fn ids(pages: &[Page]) -> Vec<u64> {
    pages
        .iter()
        .flat_map(|p| &p.records)
        .map(|r| r.external_id.parse().unwrap())
        .collect()
}

fn since_of(cursor: &Value) -> DateTime<Utc> {
    t(cursor["since"].as_str().unwrap())
}

// --- polling: orders ----------------------------------------------------------

#[tokio::test]
async fn an_orders_sweep_reads_every_order_once_through_a_run_of_ties() {
    let (shared, fixture) = fake_bigcommerce(store_with_orders()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, Some(t("2025-01-01T00:00:00Z")));
    let pages = sweep(&fixture, Resource::Orders, &start).await;

    let mut seen = ids(&pages);
    assert_eq!(seen.len(), 130, "every order exactly once");
    seen.sort_unstable();
    assert_eq!(seen, (1..=130).collect::<Vec<_>>());
    assert!(pages.len() >= 3, "several pages: {}", pages.len());
    assert!(pages[..pages.len() - 1].iter().all(|p| !p.caught_up));
    // Line items come from each order's products call.
    let first = &pages[0].records[0];
    assert_eq!(order_of(first).line_items.len(), 1);
    assert_eq!(order_of(first).line_items[0].total, dec("99.90"));

    let last_version = t(T0) + TimeDelta::seconds(7 * 70);
    let last = pages.last().unwrap();
    assert_eq!(last.watermark, Some(last_version));
    assert!(pages[..pages.len() - 1]
        .iter()
        .all(|p| p.watermark.is_none()));
    // The query restarts one second before the first page's end, then pages
    // through the tie run (60 orders in one second) with a fixed start, then
    // restarts one second before that page's end.
    let log = shared.lock().unwrap().log.clone();
    assert!(
        log[0].contains("min_date_modified=Wed, 01 Jan 2025 00:00:00 +0000"),
        "{}",
        log[0]
    );
    assert!(log[0].contains(&format!("limit={ORDERS_LIMIT}")) && log[0].contains("page=1&"));
    for (call, page) in [(1, 1), (2, 2)] {
        assert!(
            log[call].contains("min_date_modified=Sat, 01 Mar 2025 09:59:59 +0000")
                && log[call].contains(&format!("page={page}&")),
            "{}",
            log[call]
        );
    }
    let restart = rfc2822(t(T0) + TimeDelta::seconds(7 * 40 - 1));
    assert!(
        log[3].contains(&format!("min_date_modified={restart}&page=1&")),
        "{}",
        log[3]
    );
    assert_eq!(log.len(), 4);
}

#[tokio::test]
async fn a_mid_sweep_cursor_resumes_without_gaps() {
    let (_shared, fixture) = fake_bigcommerce(store_with_orders()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, Some(t("2025-01-01T00:00:00Z")));
    let first = poll(&fixture, Resource::Orders, &start).await.unwrap();
    let second = poll(&fixture, Resource::Orders, &first.cursor)
        .await
        .unwrap();
    assert!(!second.caught_up);
    // The process dies before committing the third page; a restart polls
    // again from the last committed cursor, twice for good measure.
    let rest = sweep(&fixture, Resource::Orders, &second.cursor).await;
    let again = sweep(&fixture, Resource::Orders, &second.cursor).await;
    assert_eq!(
        ids(&rest),
        ids(&again),
        "a cursor always yields the same continuation"
    );

    let mut all = ids(&[first, second]);
    all.extend(ids(&rest));
    all.sort_unstable();
    assert_eq!(all, (1..=130).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let (shared, fixture) = fake_bigcommerce(store_with_orders()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, Some(t("2025-01-01T00:00:00Z")));
    let pages = sweep(&fixture, Resource::Orders, &start).await;
    let end = pages.last().unwrap();
    let watermark = end.watermark.unwrap();
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(since_of(&end.cursor), watermark - lookback);

    // One order changes after the sweep.
    shared.lock().unwrap().orders[0] = order_at(1, watermark + TimeDelta::minutes(3));
    let next = sweep(&fixture, Resource::Orders, &end.cursor).await;
    let log = shared.lock().unwrap().log.clone();
    let expected = format!("min_date_modified={}", rfc2822(watermark - lookback));
    assert!(
        log.last().unwrap().contains(&expected),
        "{}",
        log.last().unwrap()
    );
    // It re-reads the last five minutes (orders 88..=130, every 7 s) and the change.
    let got = ids(&next);
    assert!(got.contains(&1), "the changed order: {got:?}");
    let reread: Vec<u64> = got.iter().copied().filter(|&id| id != 1).collect();
    assert_eq!(reread, (88..=130).collect::<Vec<_>>());
    assert_eq!(
        next.last().unwrap().watermark,
        Some(watermark + TimeDelta::minutes(3))
    );
}

#[tokio::test]
async fn an_order_changed_during_a_sweep_is_not_skipped_nor_are_its_neighbours() {
    let (shared, fixture) = fake_bigcommerce(store_with_orders()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, Some(t("2025-01-01T00:00:00Z")));
    let mut pages = vec![poll(&fixture, Resource::Orders, &start).await.unwrap()];
    pages.push(
        poll(&fixture, Resource::Orders, &pages[0].cursor)
            .await
            .unwrap(),
    );
    // Order 70 (already read) is modified now: it moves to the end.
    let later = t(T0) + TimeDelta::hours(2);
    shared.lock().unwrap().orders[69] = order_at(70, later);
    let rest = sweep(&fixture, Resource::Orders, &pages[1].cursor).await;
    pages.extend(rest);
    let mut all = ids(&pages);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (1..=130).collect::<Vec<_>>());
    let newest = pages
        .iter()
        .flat_map(|p| &p.records)
        .find(|r| r.external_id == "70" && r.version == later);
    assert!(newest.is_some(), "the new version of order 70 arrives");
}

#[tokio::test]
async fn an_empty_store_is_caught_up_at_once() {
    let (_shared, fixture) = fake_bigcommerce(FakeStore::default()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, None);
    let page = poll(&fixture, Resource::Orders, &start).await.unwrap();
    assert!(page.records.is_empty());
    assert!(page.caught_up);
    assert_eq!(page.watermark, None);
    assert_eq!(
        page.cursor, start,
        "the next sweep starts where this one did"
    );
}

// --- polling: customers -------------------------------------------------------

#[tokio::test]
async fn a_customers_sweep_follows_total_pages_through_ties() {
    let t0 = t(T0);
    let mut store = FakeStore {
        requests_left: 10_000,
        ..FakeStore::default()
    };
    // 230 customers: 120 in one second, then one per minute.
    for id in 1..=230u64 {
        let modified = if id <= 120 {
            t0
        } else {
            t0 + TimeDelta::minutes(id as i64 - 120)
        };
        store.customers.push(customer_at(id, modified));
    }
    let (shared, fixture) = fake_bigcommerce(store).await;
    let start = BigCommerce.start_cursor(Resource::Customers, None);
    let pages = sweep(&fixture, Resource::Customers, &start).await;
    let mut seen = ids(&pages);
    assert_eq!(seen.len(), 230);
    seen.sort_unstable();
    assert_eq!(seen, (1..=230).collect::<Vec<_>>());
    assert_eq!(
        pages.last().unwrap().watermark,
        Some(t0 + TimeDelta::minutes(110))
    );
    let log = shared.lock().unwrap().log.clone();
    assert!(
        log[0].contains("date_modified:min=2000-01-01T00:00:00Z"),
        "{}",
        log[0]
    );
    assert!(
        log[0].contains("include=addresses")
            && log[0].contains(&format!("limit={CUSTOMERS_LIMIT}"))
    );
    let record = &pages[0].records[0];
    assert!(record.keys.contains(&key(KeyKind::Email, "c1@example.com")));
    assert!(record.keys.contains(&key(KeyKind::CustomerId, "1")));
}

// --- errors, throttling and pacing ----------------------------------------------

#[tokio::test]
async fn a_429_is_rate_limited_with_the_window_reset_and_the_cursor_still_works() {
    let mut store = store_with_orders();
    store.throttle = 1;
    let (_shared, fixture) = fake_bigcommerce(store).await;
    let start = BigCommerce.start_cursor(Resource::Orders, None);
    assert_eq!(
        poll(&fixture, Resource::Orders, &start).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
    );
    let page = poll(&fixture, Resource::Orders, &start).await.unwrap();
    assert_eq!(page.records.len(), ORDERS_LIMIT);
}

#[tokio::test]
async fn a_nearly_spent_window_paces_the_next_call() {
    let mut store = store_with_orders();
    store.requests_left = 20;
    let (shared, fixture) = fake_bigcommerce(store).await;
    let start = BigCommerce.start_cursor(Resource::Orders, None);
    let page = poll(&fixture, Resource::Orders, &start).await.unwrap();
    assert_eq!(page.pace, Some(Duration::from_millis(4000)));
    shared.lock().unwrap().requests_left = 5000;
    let page = poll(&fixture, Resource::Orders, &page.cursor)
        .await
        .unwrap();
    assert_eq!(page.pace, None);
}

#[tokio::test]
async fn refused_credentials_and_server_errors_are_classified() {
    let (shared, fixture) = fake_bigcommerce(store_with_orders()).await;
    let start = BigCommerce.start_cursor(Resource::Orders, None);

    let wrong = ApiFixture::new(
        &fixture.base_url,
        json!({"store_hash": STORE}),
        json!({"access_token": "stale"}),
    );
    assert!(matches!(
        BigCommerce
            .poll(&wrong.api(), Resource::Customers, &start)
            .await,
        Err(ConnectorError::Unauthorized(_))
    ));
    let missing = ApiFixture::new(&fixture.base_url, json!({"store_hash": STORE}), json!({}));
    assert_eq!(
        BigCommerce
            .poll(&missing.api(), Resource::Orders, &start)
            .await
            .unwrap_err(),
        ConnectorError::Unauthorized("secrets.access_token is not set".to_owned())
    );
    for (status, transient) in [(503u16, true), (500, true), (403, false), (400, false)] {
        shared.lock().unwrap().fail_with = Some(status);
        let err = poll(&fixture, Resource::Orders, &start).await.unwrap_err();
        match status {
            403 => assert!(
                matches!(err, ConnectorError::Unauthorized(_)),
                "{status}: {err:?}"
            ),
            _ if transient => assert!(
                matches!(err, ConnectorError::Transient(_)),
                "{status}: {err:?}"
            ),
            _ => assert!(
                matches!(err, ConnectorError::Permanent(_)),
                "{status}: {err:?}"
            ),
        }
    }
    shared.lock().unwrap().fail_with = None;
    // A wrong store hash is a 404 on a collection: permanent.
    let root = fixture
        .base_url
        .trim_end_matches(&format!("/stores/{STORE}"))
        .to_owned();
    let other = ApiFixture::new(
        &format!("{root}/stores/zzzzz"),
        json!({}),
        json!({"access_token": TOKEN}),
    );
    assert!(matches!(
        BigCommerce
            .poll(&other.api(), Resource::Orders, &start)
            .await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        poll(&fixture, Resource::Reviews, &start).await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        poll(&fixture, Resource::Orders, &json!({"nope": true})).await,
        Err(ConnectorError::Permanent(_))
    ));
}

#[tokio::test]
async fn an_unreadable_body_is_malformed() {
    let mut store = store_with_orders();
    store.orders[0]["date_modified"] = json!(rfc2822(t("2025-01-01T00:00:00Z")));
    store.orders[0]["total_inc_tax"] = json!({"amount": 1});
    let (_shared, fixture) = fake_bigcommerce(store).await;
    let start = BigCommerce.start_cursor(Resource::Orders, None);
    assert_eq!(
        poll(&fixture, Resource::Orders, &start).await.unwrap_err(),
        ConnectorError::Malformed("total_inc_tax is not a decimal amount".to_owned())
    );
}

// --- fetch for thin webhooks -------------------------------------------------------

#[tokio::test]
async fn fetch_reads_an_order_with_its_products_and_a_customer() {
    let mut store = store_with_orders();
    store.customers.push(customer_at(42, t(T0)));
    let (_shared, fixture) = fake_bigcommerce(store).await;
    let api = fixture.api();

    let order = BigCommerce
        .fetch(&api, Resource::Orders, "61")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.external_id, "61");
    assert_eq!(order.version, t(T0) + TimeDelta::seconds(7));
    assert_eq!(order_of(&order).line_items.len(), 1);
    assert!(order
        .keys
        .contains(&key(KeyKind::Email, "buyer61@example.com")));

    let customer = BigCommerce
        .fetch(&api, Resource::Customers, "42")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(customer.external_id, "42");
    assert_eq!(
        customer_of(&customer).emails,
        vec!["c42@example.com".to_owned()]
    );

    assert_eq!(
        BigCommerce
            .fetch(&api, Resource::Orders, "999")
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        BigCommerce
            .fetch(&api, Resource::Customers, "999")
            .await
            .unwrap(),
        vec![]
    );
    assert!(matches!(
        BigCommerce
            .fetch(&api, Resource::Orders, "1/products")
            .await,
        Err(ConnectorError::Permanent(_))
    ));
}

#[test]
fn the_first_sweep_defaults_to_the_start_of_history() {
    let cursor = BigCommerce.start_cursor(Resource::Orders, None);
    assert_eq!(
        since_of(&cursor),
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
    );
    let cursor = BigCommerce.start_cursor(Resource::Customers, Some(t(T0)));
    assert_eq!(since_of(&cursor), t(T0));
    assert_eq!(cursor["page"], json!(1));
}

// --- hook registration -----------------------------------------------------------

#[tokio::test]
async fn ensure_webhooks_creates_missing_hooks_and_rekeys_stale_ones() {
    type Hooks = Arc<Mutex<Vec<Value>>>;
    fn authorised(headers: &AxumHeaders) -> bool {
        headers.get("x-auth-token").and_then(|v| v.to_str().ok()) == Some(TOKEN)
    }
    async fn list(State(hooks): State<Hooks>, headers: AxumHeaders) -> Response {
        if !authorised(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let data = hooks.lock().unwrap().clone();
        Json(json!({"data": data, "meta": {"pagination": {"total_pages": 1, "current_page": 1}}}))
            .into_response()
    }
    async fn create(
        State(hooks): State<Hooks>,
        headers: AxumHeaders,
        Json(body): Json<Value>,
    ) -> Response {
        if !authorised(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let mut hooks = hooks.lock().unwrap();
        let mut hook = body.clone();
        hook["id"] = json!(100 + hooks.len() as u64);
        hooks.push(hook.clone());
        Json(json!({"data": hook, "meta": {}})).into_response()
    }
    async fn update(
        State(hooks): State<Hooks>,
        Path((_hash, id)): Path<(String, u64)>,
        Json(body): Json<Value>,
    ) -> Response {
        let mut hooks = hooks.lock().unwrap();
        let Some(hook) = hooks.iter_mut().find(|h| h["id"] == json!(id)) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        for (k, v) in body.as_object().unwrap() {
            hook[k] = v.clone();
        }
        Json(json!({"data": hook.clone(), "meta": {}})).into_response()
    }

    let destination = "https://hub.example.com/webhooks/bigcommerce/conn-1";
    let hooks: Hooks = Arc::new(Mutex::new(vec![
        // Registered before a secret rotation: re-keyed.
        json!({"id": 7, "scope": "store/order/*", "destination": destination, "is_active": true,
               "headers": {WEBHOOK_SECRET_HEADER: "old-secret"}}),
        // Another app's hook for the same scope: left alone.
        json!({"id": 8, "scope": "store/customer/*", "destination": "https://other.example.com/", "is_active": true, "headers": null}),
    ]));
    let router = Router::new()
        .route("/stores/{hash}/v3/hooks", get(list).post(create))
        .route("/stores/{hash}/v3/hooks/{id}", put(update))
        .with_state(hooks.clone());
    let base = serve(router).await;
    let secrets = json!({"access_token": TOKEN, "webhook_secret": "new-secret"});
    let fixture = ApiFixture::new(
        &format!("{base}/stores/{STORE}"),
        json!({"store_hash": STORE}),
        secrets,
    );

    let changes = ensure_webhooks(&fixture.api(), destination, DEFAULT_SCOPES)
        .await
        .unwrap();
    assert_eq!(
        changes,
        vec![
            WebhookChange::Updated {
                scope: "store/order/*".to_owned(),
                id: 7
            },
            WebhookChange::Created {
                scope: "store/customer/*".to_owned(),
                id: 102
            },
        ]
    );
    let stored = hooks.lock().unwrap().clone();
    assert_eq!(
        stored[0]["headers"][WEBHOOK_SECRET_HEADER],
        json!("new-secret")
    );
    assert_eq!(stored[2]["destination"], json!(destination));
    assert_eq!(stored[2]["is_active"], json!(true));
    assert_eq!(
        stored[2]["headers"][WEBHOOK_SECRET_HEADER],
        json!("new-secret")
    );
    assert_eq!(
        stored[1]["headers"],
        Value::Null,
        "other destinations are untouched"
    );

    // A second run changes nothing.
    let again = ensure_webhooks(&fixture.api(), destination, DEFAULT_SCOPES)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![
            WebhookChange::Existing {
                scope: "store/order/*".to_owned(),
                id: 7
            },
            WebhookChange::Existing {
                scope: "store/customer/*".to_owned(),
                id: 102
            },
        ]
    );
    // Without the webhook secret there is nothing to register.
    let bare = ApiFixture::new(&fixture.base_url, json!({}), json!({"access_token": TOKEN}));
    assert_eq!(
        ensure_webhooks(&bare.api(), destination, DEFAULT_SCOPES)
            .await
            .unwrap_err(),
        ConnectorError::Unauthorized("secrets.webhook_secret is not set".to_owned())
    );
    let wrong = ApiFixture::new(
        &fixture.base_url,
        json!({}),
        json!({"access_token": "x", "webhook_secret": "s"}),
    );
    assert!(matches!(
        ensure_webhooks(&wrong.api(), destination, DEFAULT_SCOPES).await,
        Err(ConnectorError::Unauthorized(_))
    ));
}
