use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::client::PAGE_SIZE;
use super::mapping::{self, MgCustomer, MgOrder, TIME_FORMAT};
use super::Magento;
use crate::model::{
    Address, Customer, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::{serve, ApiFixture};

const TOKEN: &str = "mg-admin-token";
const T0: &str = "2025-03-01 10:00:00";

fn local_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/magento/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn mt(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .unwrap()
        .and_utc()
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
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

fn order_record(value: Value) -> Result<SourceRecord, String> {
    let order: MgOrder = serde_json::from_value(value).unwrap();
    mapping::order_record(&order, Some("DE"))
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("magento").expect("magento in registry");
    assert_eq!(c.platform(), "magento");
    assert_eq!(c.required_settings(), &["store_url"]);
    assert_eq!(c.required_secrets(), &["access_token"]);
    assert!(c.webhooks().is_none(), "Magento has no native webhooks");
    let polling = c.polling().expect("polls");
    assert_eq!(
        polling.resources(),
        &[Resource::Orders, Resource::Customers]
    );
}

#[test]
fn default_base_url_is_the_rest_v1_path_of_the_store() {
    let url = |v: Value| Magento.default_base_url(v.as_object().unwrap());
    assert_eq!(
        url(json!({"store_url": "https://shop.example.com/"})).as_deref(),
        Some("https://shop.example.com/rest/V1")
    );
    assert_eq!(
        url(json!({"store_url": "http://localhost:8080/magento"})).as_deref(),
        Some("http://localhost:8080/magento/rest/V1")
    );
    assert_eq!(url(json!({"store_url": "shop.example.com"})), None);
    assert_eq!(url(json!({})), None);
}

// --- mapping ------------------------------------------------------------------

#[test]
fn order_fixture_maps_exactly() {
    let record = order_record(local_fixture("order.json")).unwrap();
    assert_eq!(record.external_id, "12");
    assert_eq!(record.version, mt("2025-02-11 09:15:30"));
    assert_eq!(record.occurred_at, mt("2025-02-10 08:30:00"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::CustomerId, "7"),
        ]
    );
    assert_eq!(
        order_of(&record),
        &Order {
            number: "000000012".to_owned(),
            status: OrderStatus::Paid,
            currency: "EUR".to_owned(),
            total: dec("119.9"),
            customer_id: Some("7".to_owned()),
            buyer_first_name: Some("Ada".to_owned()),
            buyer_last_name: Some("Lovelace".to_owned()),
            email: Some("Ada@Example.com".to_owned()),
            phone: Some("030 901820".to_owned()),
            // The configurable's simple child (parent_item_id) is skipped.
            line_items: vec![
                LineItem {
                    sku: Some("MS-01-M".to_owned()),
                    title: "Merino Sweater".to_owned(),
                    quantity: 2,
                    total: dec("107.1"),
                },
                LineItem {
                    sku: Some("WS-02".to_owned()),
                    title: "Wool Socks".to_owned(),
                    quantity: 1,
                    total: dec("12.8"),
                },
            ],
            shipping_address: Some(Address {
                line1: Some("Mönckebergstr. 7".to_owned()),
                line2: None,
                city: Some("Hamburg".to_owned()),
                region: Some("Hamburg".to_owned()),
                postcode: Some("20095".to_owned()),
                country: Some("DE".to_owned()),
            }),
        }
    );
}

#[test]
fn a_guest_order_has_no_customer_id_and_uses_billing_names() {
    let mut order = local_fixture("order.json");
    let object = order.as_object_mut().unwrap();
    object.remove("customer_id");
    object.remove("customer_firstname");
    object.remove("customer_lastname");
    object.insert("customer_is_guest".to_owned(), json!(1));
    object.insert("customer_email".to_owned(), json!("guest@example.com"));
    let record = order_record(order).unwrap();
    let o = order_of(&record);
    assert_eq!(o.customer_id, None);
    assert_eq!(o.buyer_first_name.as_deref(), Some("Ada"));
    assert_eq!(o.email.as_deref(), Some("guest@example.com"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Email, "guest@example.com"),
            key(KeyKind::Phone, "+4930901820"),
        ]
    );
}

#[test]
fn states_map_to_the_model() {
    let cases = [
        ("new", 0.0, OrderStatus::PendingPayment),
        ("pending_payment", 0.0, OrderStatus::PendingPayment),
        ("payment_review", 0.0, OrderStatus::PendingPayment),
        ("processing", 10.0, OrderStatus::Paid),
        ("complete", 10.0, OrderStatus::Completed),
        ("closed", 10.0, OrderStatus::Refunded),
        ("canceled", 0.0, OrderStatus::Cancelled),
        ("holded", 10.0, OrderStatus::Paid),
        ("holded", 0.0, OrderStatus::PendingPayment),
    ];
    for (state, paid, expected) in cases {
        let mut order = local_fixture("order.json");
        order["state"] = json!(state);
        order["status"] = json!("my_custom_label");
        order["total_paid"] = json!(paid);
        assert_eq!(
            order_of(&order_record(order).unwrap()).status,
            expected,
            "{state}"
        );
    }
    // Without a state, the status is read the same way.
    let mut order = local_fixture("order.json");
    order.as_object_mut().unwrap().remove("state");
    order["status"] = json!("complete");
    assert_eq!(
        order_of(&order_record(order).unwrap()).status,
        OrderStatus::Completed
    );
}

#[test]
fn line_totals_fall_back_to_price_times_quantity() {
    let mut order = local_fixture("order.json");
    order["items"] = json!([{"name": "Tea", "sku": "T", "qty_ordered": 3, "price": 2.35}]);
    let record = order_record(order).unwrap();
    assert_eq!(order_of(&record).line_items[0].total, dec("7.05"));
    assert_eq!(order_of(&record).line_items[0].quantity, 3);
}

#[test]
fn customer_fixture_maps_exactly() {
    let customer: MgCustomer = serde_json::from_value(local_fixture("customer.json")).unwrap();
    let record = mapping::customer_record(&customer, Some("DE")).unwrap();
    assert_eq!(record.external_id, "7");
    assert_eq!(record.version, mt("2025-02-11 09:00:00"));
    assert_eq!(record.occurred_at, mt("2024-12-01 12:00:00"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::Phone, "+49401234567"),
            key(KeyKind::CustomerId, "7"),
        ]
    );
    assert_eq!(
        customer_of(&record),
        &Customer {
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            emails: vec!["ada@example.com".to_owned()],
            phones: vec!["040 1234567".to_owned(), "030 901820".to_owned()],
            tags: vec![],
            // The default billing address (id 5), not the first one.
            address: Some(Address {
                line1: Some("Invalidenstr. 1".to_owned()),
                line2: Some("Hinterhaus".to_owned()),
                city: Some("Berlin".to_owned()),
                region: Some("BE".to_owned()),
                postcode: Some("10115".to_owned()),
                country: Some("DE".to_owned()),
            }),
            accepts_email_marketing: Some(true),
            created_at: Some(mt("2024-12-01 12:00:00")),
            birth_date: None,
            document_id: None,
        }
    );
}

#[test]
fn bad_fields_are_named_without_values() {
    let mut order = local_fixture("order.json");
    order["updated_at"] = json!("2025-02-11T09:15:30Z");
    assert_eq!(
        order_record(order).unwrap_err(),
        "updated_at is not a YYYY-MM-DD HH:MM:SS time"
    );
    let mut order = local_fixture("order.json");
    order["grand_total"] = json!("Ada Lovelace");
    assert_eq!(
        order_record(order).unwrap_err(),
        "grand_total is not a decimal amount"
    );
    let mut order = local_fixture("order.json");
    order.as_object_mut().unwrap().remove("order_currency_code");
    assert_eq!(
        order_record(order).unwrap_err(),
        "order without order_currency_code"
    );
}

// --- the fake Magento REST API ------------------------------------------------------

#[derive(Default)]
struct FakeMagento {
    orders: Vec<Value>,
    customers: Vec<Value>,
    throttle: u32,
    fail_with: Option<u16>,
    /// The decoded query of every search, in order.
    log: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<FakeMagento>>;

/// One AND-ed filter group of a search.
type Filter = Box<dyn Fn(&Value) -> bool>;

fn search(
    shared: &Shared,
    headers: &AxumHeaders,
    q: HashMap<String, String>,
    orders: bool,
) -> Response {
    let mut store = shared.lock().unwrap();
    if let Some(status) = store.fail_with {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "Internal Error"})),
        )
            .into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        let body = json!({
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": "Magento_Sales::actions_view"}
        });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if store.throttle > 0 {
        store.throttle -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "3")],
            "Too Many Requests",
        )
            .into_response();
    }
    store.log.push(q.clone());
    let s = |k: &str| q.get(&format!("searchCriteria[{k}]")).cloned();
    let id_field = if orders { "entity_id" } else { "id" };
    let updated = |v: &Value| mt(v["updated_at"].as_str().unwrap()).naive_utc();
    // Filter groups are AND-ed; this fake supports one filter per group.
    let mut filters: Vec<Filter> = Vec::new();
    for group in 0..4 {
        let f = |k: &str| {
            q.get(&format!(
                "searchCriteria[filter_groups][{group}][filters][0][{k}]"
            ))
            .cloned()
        };
        let Some(field) = f("field") else { break };
        let (value, condition) = (
            f("value").unwrap_or_default(),
            f("condition_type").unwrap_or("eq".into()),
        );
        match (field.as_str(), condition.as_str()) {
            ("updated_at", "gteq" | "eq") => {
                let Ok(at) = NaiveDateTime::parse_from_str(&value, TIME_FORMAT) else {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"message": "bad date"})),
                    )
                        .into_response();
                };
                if condition == "eq" {
                    filters.push(Box::new(move |v| updated(v) == at));
                } else {
                    filters.push(Box::new(move |v| updated(v) >= at));
                }
            }
            ("entity_id", "gt") => {
                let Ok(after) = value.parse::<u64>() else {
                    return (StatusCode::BAD_REQUEST, Json(json!({"message": "bad id"})))
                        .into_response();
                };
                filters.push(Box::new(move |v| v[id_field].as_u64().unwrap() > after));
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"message": "unsupported filter"})),
                )
                    .into_response()
            }
        }
    }
    let sorted = s("sortOrders][0][field").as_deref() == Some("updated_at")
        && s("sortOrders][0][direction").as_deref() == Some("ASC")
        && s("sortOrders][1][field").as_deref() == Some("entity_id");
    if !sorted {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "bad sort"})),
        )
            .into_response();
    }
    let size: usize = s("pageSize").and_then(|v| v.parse().ok()).unwrap_or(20);
    let page: usize = s("currentPage")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);

    let items = if orders {
        &store.orders
    } else {
        &store.customers
    };
    let mut matching: Vec<&Value> = items
        .iter()
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    matching.sort_by_key(|v| (updated(v), v[id_field].as_u64().unwrap()));
    let total = matching.len();
    // Magento's known behaviour: a page past the end repeats the last page.
    let last_page = total.div_ceil(size).max(1);
    let page = page.min(last_page);
    let data: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    Json(json!({
        "items": data,
        "search_criteria": {"filter_groups": [], "page_size": size, "current_page": page},
        "total_count": total
    }))
    .into_response()
}

async fn orders(
    State(shared): State<Shared>,
    headers: AxumHeaders,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    search(&shared, &headers, q, true)
}

async fn customers(
    State(shared): State<Shared>,
    headers: AxumHeaders,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    search(&shared, &headers, q, false)
}

async fn fake_magento(store: FakeMagento) -> (Shared, ApiFixture) {
    let shared: Shared = Arc::new(Mutex::new(store));
    let router = Router::new()
        .route("/rest/V1/orders", get(orders))
        .route("/rest/V1/customers/search", get(customers))
        .with_state(shared.clone());
    let base = serve(router).await;
    let settings = json!({"store_url": base});
    let mut fixture = ApiFixture::new(
        &Magento
            .default_base_url(settings.as_object().unwrap())
            .unwrap(),
        settings,
        json!({"access_token": TOKEN}),
    );
    fixture.default_region = Some("DE".to_owned());
    (shared, fixture)
}

fn order_at(id: u64, updated: DateTime<Utc>) -> Value {
    let mut order = local_fixture("order.json");
    order["entity_id"] = json!(id);
    order["increment_id"] = json!(format!("{:09}", id));
    order["updated_at"] = json!(fmt(updated));
    order["customer_email"] = json!(format!("buyer{id}@example.com"));
    order
}

/// 250 orders: 130 updated in the same second (more than a page), then one
/// every 9 seconds.
fn store_with_orders() -> FakeMagento {
    let t0 = mt(T0);
    let mut store = FakeMagento::default();
    for id in 1..=250u64 {
        let updated = if id <= 130 {
            t0
        } else {
            t0 + TimeDelta::seconds(9 * (id as i64 - 130))
        };
        store.orders.push(order_at(id, updated));
    }
    store
}

async fn poll(
    fixture: &ApiFixture,
    resource: Resource,
    cursor: &Value,
) -> Result<Page, ConnectorError> {
    Magento.poll(&fixture.api(), resource, cursor).await
}

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
    DateTime::parse_from_rfc3339(cursor["since"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

// --- polling ----------------------------------------------------------------------

#[tokio::test]
async fn an_orders_sweep_reads_every_order_once_and_stops_by_total_count() {
    let (shared, fixture) = fake_magento(store_with_orders()).await;
    let pages = sweep(
        &fixture,
        Resource::Orders,
        &Magento.start_cursor(Resource::Orders, None),
    )
    .await;
    let mut seen = ids(&pages);
    assert_eq!(seen.len(), 250, "every order exactly once");
    seen.sort_unstable();
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    let last = pages.last().unwrap();
    assert_eq!(last.watermark, Some(mt(T0) + TimeDelta::seconds(9 * 120)));
    assert!(pages[..pages.len() - 1]
        .iter()
        .all(|p| !p.caught_up && p.watermark.is_none()));

    let log = shared.lock().unwrap().log.clone();
    let first = &log[0];
    assert_eq!(first["searchCriteria[pageSize]"], PAGE_SIZE.to_string());
    // Never a page past the end: every query asks for page 1.
    assert!(log.iter().all(|q| q["searchCriteria[currentPage]"] == "1"));
    let f = |q: &HashMap<String, String>, group: usize, k: &str| {
        q.get(&format!(
            "searchCriteria[filter_groups][{group}][filters][0][{k}]"
        ))
        .cloned()
        .unwrap_or_default()
    };
    let shape: Vec<(String, String, String)> = log
        .iter()
        .map(|q| {
            (
                f(q, 0, "value"),
                f(q, 0, "condition_type"),
                f(q, 1, "value"),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        shape,
        vec![
            row("2000-01-01 00:00:00", "gteq", ""),
            // The first page was one second: read it by entity_id after 100.
            row("2025-03-01 10:00:00", "eq", "100"),
            row("2025-03-01 10:00:01", "gteq", ""),
            // A page ending at order 230: restart at its second.
            row("2025-03-01 10:15:00", "gteq", ""),
        ]
    );
    assert_eq!(f(&log[1], 1, "field"), "entity_id");
    assert_eq!(f(&log[1], 1, "condition_type"), "gt");
}

#[tokio::test]
async fn a_mid_sweep_cursor_resumes_without_gaps() {
    let (_shared, fixture) = fake_magento(store_with_orders()).await;
    let start = Magento.start_cursor(Resource::Orders, None);
    let first = poll(&fixture, Resource::Orders, &start).await.unwrap();
    let second = poll(&fixture, Resource::Orders, &first.cursor)
        .await
        .unwrap();
    assert!(!second.caught_up);
    let rest = sweep(&fixture, Resource::Orders, &second.cursor).await;
    let again = sweep(&fixture, Resource::Orders, &second.cursor).await;
    assert_eq!(ids(&rest), ids(&again));
    let mut all = ids(&[first, second]);
    all.extend(ids(&rest));
    all.sort_unstable();
    assert_eq!(all, (1..=250).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let (shared, fixture) = fake_magento(store_with_orders()).await;
    let pages = sweep(
        &fixture,
        Resource::Orders,
        &Magento.start_cursor(Resource::Orders, None),
    )
    .await;
    let end = pages.last().unwrap();
    let watermark = end.watermark.unwrap();
    let lookback = TimeDelta::from_std(LOOKBACK).unwrap();
    assert_eq!(since_of(&end.cursor), watermark - lookback);

    shared.lock().unwrap().orders[4] = order_at(5, watermark + TimeDelta::seconds(30));
    let next = sweep(&fixture, Resource::Orders, &end.cursor).await;
    let log = shared.lock().unwrap().log.clone();
    assert_eq!(
        log.last().unwrap()["searchCriteria[filter_groups][0][filters][0][value]"],
        fmt(watermark - lookback)
    );
    // The last five minutes (orders 217..=250, every 9 s) again, then the change.
    let got = ids(&next);
    assert_eq!(got.last(), Some(&5));
    assert_eq!(
        got[..got.len() - 1].to_vec(),
        (217..=250).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_order_changed_during_a_sweep_is_not_skipped_nor_are_its_neighbours() {
    let (shared, fixture) = fake_magento(store_with_orders()).await;
    let start = Magento.start_cursor(Resource::Orders, None);
    let first = poll(&fixture, Resource::Orders, &start).await.unwrap();
    let later = mt(T0) + TimeDelta::hours(3);
    shared.lock().unwrap().orders[20] = order_at(21, later);
    let mut pages = vec![first];
    let cursor = pages[0].cursor.clone();
    pages.extend(sweep(&fixture, Resource::Orders, &cursor).await);
    let mut all = ids(&pages);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (1..=250).collect::<Vec<_>>());
    assert!(pages
        .iter()
        .flat_map(|p| &p.records)
        .any(|r| r.external_id == "21" && r.version == later));
}

#[tokio::test]
async fn a_customers_sweep_maps_every_customer() {
    let t0 = mt(T0);
    let mut store = FakeMagento::default();
    for id in 1..=150u64 {
        let mut customer = local_fixture("customer.json");
        customer["id"] = json!(id);
        customer["email"] = json!(format!("c{id}@example.com"));
        customer["updated_at"] = json!(fmt(t0 + TimeDelta::seconds(id as i64 / 3)));
        store.customers.push(customer);
    }
    let (_shared, fixture) = fake_magento(store).await;
    let pages = sweep(
        &fixture,
        Resource::Customers,
        &Magento.start_cursor(Resource::Customers, None),
    )
    .await;
    let mut seen = ids(&pages);
    assert_eq!(seen.len(), 150);
    seen.sort_unstable();
    assert_eq!(seen, (1..=150).collect::<Vec<_>>());
    let record = &pages[0].records[0];
    assert!(record.keys.contains(&key(KeyKind::Email, "c1@example.com")));
    assert_eq!(customer_of(record).accepts_email_marketing, Some(true));
    assert_eq!(
        pages.last().unwrap().watermark,
        Some(t0 + TimeDelta::seconds(50))
    );
}

#[tokio::test]
async fn failures_are_classified() {
    let (shared, fixture) = fake_magento(store_with_orders()).await;
    let start = Magento.start_cursor(Resource::Orders, None);

    let wrong = ApiFixture::new(
        &fixture.base_url,
        json!({}),
        json!({"access_token": "revoked"}),
    );
    assert!(matches!(
        Magento.poll(&wrong.api(), Resource::Orders, &start).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    let missing = ApiFixture::new(&fixture.base_url, json!({}), json!({}));
    assert_eq!(
        Magento
            .poll(&missing.api(), Resource::Customers, &start)
            .await
            .unwrap_err(),
        ConnectorError::Unauthorized("secrets.access_token is not set".to_owned())
    );

    shared.lock().unwrap().throttle = 1;
    assert_eq!(
        poll(&fixture, Resource::Orders, &start).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(
        poll(&fixture, Resource::Orders, &start)
            .await
            .unwrap()
            .records
            .len(),
        PAGE_SIZE
    );

    for (status, expect) in [
        (503u16, "transient"),
        (500, "transient"),
        (400, "permanent"),
        (404, "permanent"),
    ] {
        shared.lock().unwrap().fail_with = Some(status);
        let err = poll(&fixture, Resource::Orders, &start).await.unwrap_err();
        let kind = match err {
            ConnectorError::Transient(_) => "transient",
            ConnectorError::Permanent(_) => "permanent",
            _ => "other",
        };
        assert_eq!(kind, expect, "{status}: {err:?}");
    }
    shared.lock().unwrap().fail_with = None;
    assert!(matches!(
        poll(&fixture, Resource::Reviews, &start).await,
        Err(ConnectorError::Permanent(_))
    ));
}

#[tokio::test]
async fn unreadable_answers_are_malformed() {
    async fn no_total() -> Json<Value> {
        Json(json!({"items": []}))
    }
    async fn html() -> &'static str {
        "<html>maintenance</html>"
    }
    let router = Router::new()
        .route("/a/rest/V1/orders", get(no_total))
        .route("/b/rest/V1/orders", get(html));
    let base = serve(router).await;
    let start = Magento.start_cursor(Resource::Orders, None);
    for (prefix, expected) in [
        (
            "a",
            ConnectorError::Malformed("search result without total_count".to_owned()),
        ),
        (
            "b",
            ConnectorError::Malformed("unexpected JSON at line 1 column 1".to_owned()),
        ),
    ] {
        let fixture = ApiFixture::new(
            &format!("{base}/{prefix}/rest/V1"),
            json!({}),
            json!({"access_token": TOKEN}),
        );
        assert_eq!(
            Magento
                .poll(&fixture.api(), Resource::Orders, &start)
                .await
                .unwrap_err(),
            expected
        );
    }
    let mut store = store_with_orders();
    store.orders[0]["updated_at"] = json!("2000-01-02 00:00:00");
    store.orders[0]["grand_total"] = json!([1]);
    let (_shared, fixture) = fake_magento(store).await;
    assert_eq!(
        poll(&fixture, Resource::Orders, &start).await.unwrap_err(),
        ConnectorError::Malformed("grand_total is not a decimal amount".to_owned())
    );
}
