use base64::Engine as _;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::WooCommerce;
use crate::model::{
    Address, Customer, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, RecordKind,
    SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::{hmac_sha256, sha256_hex};
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

const SECRET: &[u8] = b"woo-test-secret";

fn delivery() -> Value {
    fixtures::load("woocommerce-webhook-delivery.json")
}

fn order_body() -> Value {
    delivery()["body"].clone()
}

fn customer_body() -> Value {
    fixtures::resource("woocommerce-customer.json")
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// The fixture's headers with a real signature of `body` under `secret`.
fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in delivery()["headers"].as_object().unwrap() {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
        );
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body));
    headers.insert(
        "x-wc-webhook-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    headers
}

fn dedupe_key_of(body: &[u8]) -> String {
    match WooCommerce
        .verify(&[SECRET], &signed_headers(SECRET, body), body)
        .unwrap()
    {
        Intake::Delivery { dedupe_key, .. } => dedupe_key,
        Intake::Ping => panic!("not a delivery"),
        Intake::Unwrapped { .. } => panic!("not unwrapped"),
    }
}

fn decode(topic: &str, body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    WooCommerce.decode(topic, &bytes(body), &DecodeContext::default())
}

fn decode_one(topic: &str, body: &Value) -> SourceRecord {
    let mut records = decode(topic, body).unwrap();
    assert_eq!(records.len(), 1, "{topic}");
    records.remove(0)
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

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn berlin_address() -> Address {
    Address {
        line1: Some("1 Main St".to_owned()),
        line2: None,
        city: Some("Berlin".to_owned()),
        region: None,
        postcode: Some("10115".to_owned()),
        country: Some("DE".to_owned()),
    }
}

// --- connector identity -------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("woocommerce").expect("woocommerce in registry");
    assert_eq!(c.platform(), "woocommerce");
    assert_eq!(c.required_settings(), &["store_url"]);
    assert_eq!(c.required_secrets(), &["webhook_secret"]);
}

// --- verify ---------------------------------------------------------------

#[test]
fn verify_accepts_a_correct_signature() {
    let body = bytes(&order_body());
    let intake = WooCommerce
        .verify(&[SECRET], &signed_headers(SECRET, &body), &body)
        .unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key: "order.updated:727:2025-01-01T11:05:00".to_owned(),
            topic: "order.updated".to_owned(),
        }
    );
}

#[test]
fn verify_accepts_the_shared_vector() {
    let body = br#"{"id":1001,"email":"buyer@example.com"}"#;
    let mut headers = signed_headers(SECRET, body);
    headers.insert(
        "X-WC-Webhook-Signature",
        HeaderValue::from_static("cecG7nUVIS/BlDpSymrFN/jxG4a5/RkpRjWE6Z7EsIw="),
    );
    assert!(WooCommerce.verify(&[b"s3cr3t"], &headers, body).is_ok());
}

#[test]
fn verify_rejects_a_tampered_body() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    let mut tampered = order_body();
    tampered["status"] = json!("completed");
    assert_eq!(
        WooCommerce.verify(&[SECRET], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_wrong_secret() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    assert_eq!(
        WooCommerce.verify(&[b"other-secret"], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_missing_signature_header() {
    let body = bytes(&order_body());
    let mut headers = signed_headers(SECRET, &body);
    headers.remove("X-WC-Webhook-Signature");
    assert_eq!(
        WooCommerce.verify(&[SECRET], &headers, &body),
        Err(VerifyError::MissingSignature("X-WC-Webhook-Signature"))
    );
}

#[test]
fn verify_accepts_the_second_secret_during_rotation() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    assert!(WooCommerce
        .verify(&[b"new-secret", SECRET], &headers, &body)
        .is_ok());
}

#[test]
fn verify_accepts_an_empty_secret_signature() {
    // A webhook saved without a secret is signed with an empty key.
    let body = bytes(&order_body());
    let headers = signed_headers(b"", &body);
    assert!(WooCommerce.verify(&[b""], &headers, &body).is_ok());
    assert_eq!(
        WooCommerce.verify(&[SECRET], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_requires_a_topic() {
    let body = bytes(&order_body());
    let mut headers = signed_headers(SECRET, &body);
    headers.remove("X-WC-Webhook-Topic");
    assert!(matches!(
        WooCommerce.verify(&[SECRET], &headers, &body),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn unsigned_ping_is_recognised() {
    assert_eq!(
        WooCommerce.verify(&[SECRET], &HeaderMap::new(), b"webhook_id=12"),
        Ok(Intake::Ping)
    );
}

#[test]
fn only_an_exact_ping_body_skips_the_signature() {
    for body in [
        &b"webhook_id="[..],
        b"webhook_id=12&x=1",
        b"webhook_id=abc",
        b"{\"id\":727}",
        b"",
    ] {
        assert_eq!(
            WooCommerce.verify(&[SECRET], &HeaderMap::new(), body),
            Err(VerifyError::MissingSignature("X-WC-Webhook-Signature")),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn dedupe_key_is_stable_per_resource_version() {
    let body = bytes(&order_body());
    // A retry has a fresh delivery id but the same body.
    let mut retry_headers = signed_headers(SECRET, &body);
    retry_headers.insert(
        "X-WC-Webhook-Delivery-ID",
        HeaderValue::from_static("another-delivery"),
    );
    let Intake::Delivery {
        dedupe_key: retried,
        ..
    } = WooCommerce
        .verify(&[SECRET], &retry_headers, &body)
        .unwrap()
    else {
        panic!("not a delivery")
    };
    assert_eq!(dedupe_key_of(&body), retried);

    let mut newer = order_body();
    newer["date_modified_gmt"] = json!("2025-01-01T11:06:00");
    assert_ne!(dedupe_key_of(&bytes(&newer)), dedupe_key_of(&body));
}

#[test]
fn dedupe_key_falls_back_to_the_body_hash() {
    // `*.deleted` bodies carry only the id.
    let deleted = br#"{"id":727}"#;
    assert_eq!(
        dedupe_key_of(deleted),
        format!("sha256:{}", sha256_hex(deleted))
    );
    let not_json = b"<html>";
    assert_eq!(
        dedupe_key_of(not_json),
        format!("sha256:{}", sha256_hex(not_json))
    );
}

// --- decode: fixtures -----------------------------------------------------

#[test]
fn order_fixture_decodes_exactly() {
    let record = decode_one("order.updated", &order_body());
    let expected = SourceRecord {
        external_id: "727".to_owned(),
        version: Utc.with_ymd_and_hms(2025, 1, 1, 11, 5, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 11, 0, 0).unwrap(),
        // Guest order (customer_id 0): no customer id key.
        keys: vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::Phone, "+4930000000"),
        ],
        body: RecordBody::Order(Order {
            number: "727".to_owned(),
            status: OrderStatus::Paid,
            currency: "EUR".to_owned(),
            total: dec("49.00"),
            customer_id: None,
            buyer_first_name: Some("Ada".to_owned()),
            buyer_last_name: Some("Lovelace".to_owned()),
            email: Some("buyer@example.com".to_owned()),
            phone: Some("+4930000000".to_owned()),
            line_items: vec![LineItem {
                sku: Some("TSHIRT-001".to_owned()),
                title: "T-Shirt".to_owned(),
                quantity: 1,
                total: dec("49.00"),
            }],
            shipping_address: Some(berlin_address()),
        }),
    };
    assert_eq!(record, expected);
}

#[test]
fn customer_fixture_decodes_exactly() {
    let record = decode_one("customer.updated", &customer_body());
    // The fixture has only site-local dates, read as UTC.
    let expected = SourceRecord {
        external_id: "25".to_owned(),
        version: Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2024, 12, 1, 10, 0, 0).unwrap(),
        keys: vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::Phone, "+4930000000"),
            key(KeyKind::CustomerId, "25"),
        ],
        body: RecordBody::Customer(Customer {
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            emails: vec!["buyer@example.com".to_owned()],
            phones: vec!["+4930000000".to_owned()],
            tags: vec![],
            address: Some(berlin_address()),
            accepts_email_marketing: None,
            created_at: Some(Utc.with_ymd_and_hms(2024, 12, 1, 10, 0, 0).unwrap()),
            birth_date: None,
            document_id: None,
        }),
    };
    assert_eq!(record, expected);
}

#[test]
fn order_and_customer_topics_yield_one_record_each() {
    for topic in ["order.created", "order.updated", "order.restored"] {
        assert_eq!(
            decode_one(topic, &order_body()).kind(),
            RecordKind::Order,
            "{topic}"
        );
    }
    for topic in ["customer.created", "customer.updated"] {
        assert_eq!(
            decode_one(topic, &customer_body()).kind(),
            RecordKind::Customer,
            "{topic}"
        );
    }
}

// --- decode: keys and fields ----------------------------------------------

#[test]
fn registered_buyer_order_has_a_customer_id_key() {
    let mut body = order_body();
    body["customer_id"] = json!(25);
    body["billing"]["phone"] = json!("030 901820");
    let ctx = DecodeContext {
        default_region: Some("DE".to_owned()),
    };
    let record = WooCommerce
        .decode("order.created", &bytes(&body), &ctx)
        .unwrap()
        .remove(0);
    assert_eq!(order_of(&record).customer_id.as_deref(), Some("25"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::CustomerId, "25"),
        ]
    );
}

#[test]
fn empty_strings_count_as_absent() {
    let mut body = order_body();
    body["billing"]["email"] = json!("");
    body["billing"]["phone"] = json!("");
    body["billing"]["first_name"] = json!("");
    body["number"] = json!("");
    let record = decode_one("order.updated", &body);
    let order = order_of(&record);
    assert_eq!(
        (order.email.as_deref(), order.phone.as_deref()),
        (None, None)
    );
    assert_eq!(order.buyer_first_name, None);
    assert_eq!(order.number, "727");
    assert!(record.keys.is_empty(), "{:?}", record.keys);
}

#[test]
fn order_status_mapping() {
    for (status, expected) in [
        ("pending", OrderStatus::PendingPayment),
        ("on-hold", OrderStatus::PendingPayment),
        ("checkout-draft", OrderStatus::PendingPayment),
        ("processing", OrderStatus::Paid),
        ("completed", OrderStatus::Completed),
        ("refunded", OrderStatus::Refunded),
        ("cancelled", OrderStatus::Cancelled),
        ("failed", OrderStatus::Cancelled),
        ("trash", OrderStatus::Cancelled),
        ("some-plugin-status", OrderStatus::PendingPayment),
    ] {
        let mut body = order_body();
        body["status"] = json!(status);
        assert_eq!(
            order_of(&decode_one("order.updated", &body)).status,
            expected,
            "{status}"
        );
    }
}

#[test]
fn line_items_and_total_are_exact() {
    let mut body = order_body();
    body["total"] = json!("0.30");
    body["line_items"] = json!([
        {"name": "Sock", "sku": "", "quantity": 3, "total": "0.30"}
    ]);
    let record = decode_one("order.updated", &body);
    let order = order_of(&record);
    assert_eq!(order.total, dec("0.30"));
    assert_eq!(
        order.line_items,
        vec![LineItem {
            sku: None,
            title: "Sock".to_owned(),
            quantity: 3,
            total: dec("0.30")
        }]
    );
}

#[test]
fn customer_collects_both_emails_and_falls_back_to_billing_names() {
    let mut body = customer_body();
    body["billing"]["email"] = json!("Billing@Example.com");
    body["first_name"] = json!("");
    body["billing"]["first_name"] = json!("Augusta");
    let record = decode_one("customer.updated", &body);
    let customer = customer_of(&record);
    assert_eq!(
        customer.emails,
        vec![
            "buyer@example.com".to_owned(),
            "Billing@Example.com".to_owned()
        ]
    );
    assert_eq!(customer.first_name.as_deref(), Some("Augusta"));
    assert!(record
        .keys
        .contains(&key(KeyKind::Email, "billing@example.com")));
}

#[test]
fn version_prefers_gmt_dates_in_order() {
    let mut body = order_body();
    body["date_modified_gmt"] = Value::Null;
    assert_eq!(
        decode_one("order.updated", &body).version,
        Utc.with_ymd_and_hms(2025, 1, 1, 11, 0, 0).unwrap()
    );
    body["date_created_gmt"] = json!("");
    // Only site-local dates left: read as UTC.
    assert_eq!(
        decode_one("order.updated", &body).version,
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 5, 0).unwrap()
    );
}

#[test]
fn newer_modification_time_is_a_newer_version() {
    let older = decode_one("order.updated", &order_body());
    let mut body = order_body();
    body["date_modified_gmt"] = json!("2025-01-01T11:05:01");
    let newer = decode_one("order.updated", &body);
    assert_ne!(older.version, newer.version);
    assert!(newer.version > older.version);
}

// --- decode: errors -------------------------------------------------------

#[test]
fn unknown_topics_decode_to_nothing() {
    assert_eq!(decode("product.updated", &order_body()).unwrap(), vec![]);
    assert_eq!(
        WooCommerce
            .decode("order.deleted", br#"{"id":727}"#, &DecodeContext::default())
            .unwrap(),
        vec![]
    );
}

#[test]
fn invalid_json_is_a_decode_error() {
    let err = WooCommerce
        .decode("order.updated", b"webhook_id=12", &DecodeContext::default())
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: "order.updated".to_owned(),
            reason: "body is not valid JSON".to_owned()
        }
    );
}

#[test]
fn missing_or_bad_required_fields_are_named_without_values() {
    let reason = |topic: &str, body: &Value| match decode(topic, body).unwrap_err() {
        DecodeError::Invalid { reason, .. } => reason,
    };

    let mut body = order_body();
    body.as_object_mut().unwrap().remove("id");
    assert_eq!(reason("order.updated", &body), "missing id");

    let mut body = customer_body();
    body.as_object_mut().unwrap().remove("date_modified");
    body.as_object_mut().unwrap().remove("date_created");
    assert_eq!(
        reason("customer.updated", &body),
        "missing date_modified_gmt"
    );

    let mut body = order_body();
    body["date_modified_gmt"] = json!("01/01/2025");
    assert_eq!(
        reason("order.updated", &body),
        "date_modified_gmt is not a %Y-%m-%dT%H:%M:%S time"
    );

    let mut body = order_body();
    body["total"] = json!("");
    assert_eq!(reason("order.updated", &body), "missing total");

    let mut body = order_body();
    body["customer_id"] = json!("buyer@example.com");
    let text = reason("order.updated", &body);
    assert!(!text.contains("buyer"), "{text}");
}

// =========================================================================
// Polling and webhook administration against a fake WooCommerce
// =========================================================================

mod fake {
    //! A fake WordPress + WooCommerce REST API v3: Basic (or query-string)
    //! key authentication, WordPress error bodies, the real collection
    //! parameters of `/orders`, `/customers`, `/products/reviews` and
    //! `/webhooks` (unknown enum values answer 400 `rest_invalid_param`),
    //! page/offset paging with `X-WP-Total`, `X-WP-TotalPages` and `Link`
    //! headers, a site time zone of UTC+2, and throttling on demand.

    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::{Query, State};
    use axum::response::{IntoResponse, Response};
    use base64::Engine as _;
    use chrono::{DateTime, Duration, NaiveDateTime, Utc};
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
    use serde_json::{json, Value};

    pub(super) const KEY: &str = "ck_0123456789abcdef";
    pub(super) const SECRET: &str = "cs_fedcba9876543210";
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
    const SITE_OFFSET_HOURS: i64 = 2;

    /// One request as the fake saw it.
    #[derive(Debug, Clone)]
    pub(super) struct Seen {
        pub(super) method: Method,
        pub(super) path: String,
        pub(super) query: Vec<(String, String)>,
        pub(super) basic_auth: bool,
    }

    impl Seen {
        pub(super) fn param(&self, name: &str) -> Option<&str> {
            self.query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    #[derive(Debug, Default)]
    pub(super) struct Shop {
        pub(super) orders: Vec<Value>,
        pub(super) customers: Vec<Value>,
        pub(super) reviews: Vec<Value>,
        pub(super) webhooks: Vec<Value>,
        pub(super) seen: Vec<Seen>,
        /// Writes to `/webhooks`: method, path, JSON body.
        pub(super) writes: Vec<(Method, String, Value)>,
        /// The next request answers this instead: status, Retry-After, body.
        pub(super) fail_next: Option<(StatusCode, Option<&'static str>, String)>,
        /// The shop's clock for the `Date` header (else the server's own).
        pub(super) clock: Option<DateTime<Utc>>,
        /// A `Date` header that is not a date (a broken proxy).
        pub(super) garbled_date: bool,
    }

    pub(super) type Shared = Arc<Mutex<Shop>>;

    /// Serves `shop`; returns the API base URL (`…/wp-json/wc/v3`).
    pub(super) async fn start(shop: Shared) -> String {
        let router = axum::Router::new().fallback(handle).with_state(shop);
        format!("{}/wp-json/wc/v3", crate::testkit::serve(router).await)
    }

    pub(super) fn site_time(gmt: &str) -> String {
        let t = NaiveDateTime::parse_from_str(gmt, FORMAT).unwrap();
        (t + Duration::hours(SITE_OFFSET_HOURS))
            .format(FORMAT)
            .to_string()
    }

    fn wp_error(status: StatusCode, code: &str, message: &str) -> Response {
        let body = json!({"code": code, "message": message, "data": {"status": status.as_u16()}});
        (status, axum::Json(body)).into_response()
    }

    fn invalid_param(name: &str) -> Response {
        wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            &format!("Invalid parameter(s): {name}"),
        )
    }

    /// The refusal WooCommerce answers for missing or wrong keys, if any.
    fn refusal(headers: &HeaderMap, query: &[(String, String)]) -> Option<Response> {
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let invalid_key = || {
            wp_error(
                StatusCode::UNAUTHORIZED,
                "woocommerce_rest_authentication_error",
                "Consumer key is invalid.",
            )
        };
        if let Some(auth) = headers.get("authorization") {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"))
            );
            return (auth.to_str().ok() != Some(expected.as_str())).then(invalid_key);
        }
        match (param("consumer_key"), param("consumer_secret")) {
            (Some(KEY), Some(SECRET)) => None,
            (Some(_), _) => Some(invalid_key()),
            _ => Some(wp_error(
                StatusCode::UNAUTHORIZED,
                "woocommerce_rest_cannot_view",
                "Sorry, you cannot list resources.",
            )),
        }
    }

    /// A `date-time` parameter as WordPress reads it in a date query: with
    /// a zone it is converted to site time, without one it is taken as is.
    fn date_param(raw: &str) -> Option<NaiveDateTime> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Some(t.naive_utc() + Duration::hours(SITE_OFFSET_HOURS));
        }
        NaiveDateTime::parse_from_str(raw, FORMAT).ok()
    }

    fn field_time(row: &Value, field: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(row[field].as_str().unwrap(), FORMAT).unwrap()
    }

    async fn handle(
        State(shop): State<Shared>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        Query(query): Query<Vec<(String, String)>>,
        body: Bytes,
    ) -> Response {
        let mut shop = shop.lock().unwrap();
        let path = uri
            .path()
            .strip_prefix("/wp-json/wc/v3/")
            .unwrap_or(uri.path())
            .to_owned();
        let basic_auth = headers.contains_key("authorization");
        shop.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            basic_auth,
        });
        if let Some(refused) = refusal(&headers, &query) {
            return refused;
        }
        if let Some((status, retry_after, body)) = shop.fail_next.take() {
            let mut response = (status, body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(seconds));
            }
            return response;
        }
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut response = match (method.clone(), path.as_str()) {
            (Method::GET, "orders") => list_orders(&shop, &param),
            (Method::GET, "customers") => list_customers(&shop, &param),
            (Method::GET, "products/reviews") => list_reviews(&shop, &param),
            (Method::GET, "webhooks") => list_webhooks(&shop, &param),
            (Method::POST, "webhooks") => create_webhook(&mut shop, &body),
            (Method::PUT, p) if p.starts_with("webhooks/") => update_webhook(&mut shop, p, &body),
            _ => wp_error(
                StatusCode::NOT_FOUND,
                "rest_no_route",
                "No route was found matching the URL and request method.",
            ),
        };
        if let Some(clock) = shop.clock {
            let date = clock.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            response
                .headers_mut()
                .insert("date", HeaderValue::from_str(&date).unwrap());
        }
        if shop.garbled_date {
            response
                .headers_mut()
                .insert("date", HeaderValue::from_static("yesterday"));
        }
        response
    }

    type Param<'a> = &'a dyn Fn(&str) -> Option<String>;

    /// The 400 for a parameter outside its enum; `params` lists
    /// (name, allowed values).
    fn bad_enum(param: Param, params: &[(&str, &[&str])]) -> Option<Response> {
        params.iter().find_map(|(name, allowed)| match param(name) {
            Some(v) if !allowed.contains(&v.as_str()) => Some(invalid_param(name)),
            _ => None,
        })
    }

    /// `page`/`offset`/`per_page` as WooCommerce applies them, with its headers.
    fn paginate(rows: Vec<Value>, param: Param, path: &str) -> Response {
        let per_page: usize = match param("per_page").map(|v| v.parse::<usize>()) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => return invalid_param("per_page"),
        };
        let page: usize = match param("page").map(|v| v.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            _ => return invalid_param("page"),
        };
        let offset: usize = match param("offset").map(|v| v.parse::<usize>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return invalid_param("offset"),
        };
        let skip = if offset > 0 {
            offset
        } else {
            (page - 1) * per_page
        };
        let total = rows.len();
        let pages = total.div_ceil(per_page);
        let body: Vec<Value> = rows.into_iter().skip(skip).take(per_page).collect();
        let mut response = axum::Json(body).into_response();
        let h = response.headers_mut();
        h.insert("x-wp-total", HeaderValue::from(total));
        h.insert("x-wp-totalpages", HeaderValue::from(pages));
        let link = |p: usize, rel: &str| {
            format!("<http://shop.example/wp-json/wc/v3/{path}?page={p}&per_page={per_page}>; rel=\"{rel}\"")
        };
        if page > 1 {
            h.append(
                "link",
                HeaderValue::from_str(&link((page - 1).min(pages), "prev")).unwrap(),
            );
        }
        if pages > page {
            h.append(
                "link",
                HeaderValue::from_str(&link(page + 1, "next")).unwrap(),
            );
        }
        response
    }

    fn sort(rows: &mut [Value], key: impl Fn(&Value) -> (NaiveDateTime, u64), desc: bool) {
        rows.sort_by_key(|r| key(r));
        if desc {
            rows.reverse();
        }
    }

    fn list_orders(shop: &Shop, param: Param) -> Response {
        if let Some(e) = bad_enum(
            param,
            &[
                (
                    "orderby",
                    &["date", "id", "include", "title", "slug", "modified"],
                ),
                ("order", &["asc", "desc"]),
                ("dates_are_gmt", &["true", "false", "1", "0"]),
            ],
        ) {
            return e;
        }
        let statuses = param("status").unwrap_or_else(|| "any".to_owned());
        let gmt = matches!(param("dates_are_gmt").as_deref(), Some("true" | "1"));
        let after = match param("modified_after").map(|v| date_param(&v)) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => return invalid_param("modified_after"),
        };
        let column = if gmt {
            "date_modified_gmt"
        } else {
            "date_modified"
        };
        let mut rows: Vec<Value> = shop
            .orders
            .iter()
            .filter(|o| {
                let status = o["status"].as_str().unwrap();
                if statuses == "any" {
                    status != "trash"
                } else {
                    statuses == status
                }
            })
            .filter(|o| after.map_or(true, |a| field_time(o, column) > a))
            .cloned()
            .collect();
        let id = |o: &Value| o["id"].as_u64().unwrap();
        match param("orderby").as_deref().unwrap_or("date") {
            // WooCommerce adds ID to `modified` and `date` for stable pages;
            // the posts table sorts by the site-time column.
            "modified" => sort(
                &mut rows,
                |o| (field_time(o, "date_modified"), id(o)),
                param("order").as_deref() != Some("asc"),
            ),
            "date" => sort(
                &mut rows,
                |o| (field_time(o, "date_created"), id(o)),
                param("order").as_deref() != Some("asc"),
            ),
            _ => sort(
                &mut rows,
                |o| (NaiveDateTime::default(), id(o)),
                param("order").as_deref() != Some("asc"),
            ),
        }
        paginate(rows, param, "orders")
    }

    fn list_customers(shop: &Shop, param: Param) -> Response {
        if let Some(e) = bad_enum(
            param,
            &[
                ("orderby", &["id", "include", "name", "registered_date"]),
                ("order", &["asc", "desc"]),
            ],
        ) {
            return e;
        }
        // `modified_after` is not a parameter of this endpoint: ignored.
        let role = param("role").unwrap_or_else(|| "customer".to_owned());
        let mut rows: Vec<Value> = shop
            .customers
            .iter()
            .filter(|c| role == "all" || c["role"].as_str() == Some(role.as_str()))
            .cloned()
            .collect();
        let desc = param("order").as_deref() == Some("desc");
        let id = |c: &Value| c["id"].as_u64().unwrap();
        match param("orderby").as_deref().unwrap_or("name") {
            "id" => sort(&mut rows, |c| (NaiveDateTime::default(), id(c)), desc),
            "registered_date" => sort(&mut rows, |c| (field_time(c, "date_created"), id(c)), desc),
            _ => rows.sort_by_key(|c| c["first_name"].as_str().unwrap_or("").to_owned()),
        }
        paginate(rows, param, "customers")
    }

    fn list_reviews(shop: &Shop, param: Param) -> Response {
        if let Some(e) = bad_enum(
            param,
            &[
                ("orderby", &["date", "date_gmt", "id", "include", "product"]),
                ("order", &["asc", "desc"]),
                ("status", &["all", "hold", "approved", "spam", "trash"]),
            ],
        ) {
            return e;
        }
        let status = param("status").unwrap_or_else(|| "approved".to_owned());
        let after = match param("after").map(|v| date_param(&v)) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => return invalid_param("after"),
        };
        let mut rows: Vec<Value> = shop
            .reviews
            .iter()
            .filter(|r| {
                let s = r["status"].as_str().unwrap();
                match status.as_str() {
                    "all" => s == "approved" || s == "hold",
                    wanted => s == wanted,
                }
            })
            // The comment date query compares the site-time `comment_date`.
            .filter(|r| after.map_or(true, |a| field_time(r, "date_created") > a))
            .cloned()
            .collect();
        let desc = param("order").as_deref() != Some("asc");
        let id = |r: &Value| r["id"].as_u64().unwrap();
        match param("orderby").as_deref().unwrap_or("date_gmt") {
            "date_gmt" => sort(
                &mut rows,
                |r| (field_time(r, "date_created_gmt"), id(r)),
                desc,
            ),
            "date" => sort(&mut rows, |r| (field_time(r, "date_created"), id(r)), desc),
            _ => sort(&mut rows, |r| (NaiveDateTime::default(), id(r)), desc),
        }
        paginate(rows, param, "products/reviews")
    }

    fn public_webhook(hook: &Value) -> Value {
        let mut hook = hook.clone();
        // `secret` is only in the edit context.
        hook.as_object_mut().unwrap().remove("secret");
        hook
    }

    fn list_webhooks(shop: &Shop, param: Param) -> Response {
        if let Some(e) = bad_enum(
            param,
            &[
                ("orderby", &["date", "id", "title"]),
                ("order", &["asc", "desc"]),
                ("status", &["all", "active", "paused", "disabled"]),
            ],
        ) {
            return e;
        }
        let status = param("status").unwrap_or_else(|| "all".to_owned());
        let mut rows: Vec<Value> = shop
            .webhooks
            .iter()
            .filter(|h| status == "all" || h["status"].as_str() == Some(status.as_str()))
            .map(public_webhook)
            .collect();
        rows.sort_by_key(|h| h["id"].as_u64().unwrap());
        if param("order").as_deref() == Some("desc") {
            rows.reverse();
        }
        paginate(rows, param, "webhooks")
    }

    fn create_webhook(shop: &mut Shop, body: &[u8]) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return wp_error(
                StatusCode::BAD_REQUEST,
                "rest_invalid_json",
                "Invalid JSON body passed.",
            );
        };
        for field in ["topic", "delivery_url"] {
            if body[field].as_str().map_or(true, str::is_empty) {
                return wp_error(
                    StatusCode::BAD_REQUEST,
                    "rest_missing_callback_param",
                    &format!("Missing parameter(s): {field}"),
                );
            }
        }
        shop.writes
            .push((Method::POST, "webhooks".to_owned(), body.clone()));
        let id = shop
            .webhooks
            .iter()
            .filter_map(|h| h["id"].as_u64())
            .max()
            .unwrap_or(0)
            + 1;
        let mut hook = body;
        hook["id"] = json!(id);
        if hook["status"].is_null() {
            hook["status"] = json!("active");
        }
        shop.webhooks.push(hook.clone());
        (StatusCode::CREATED, axum::Json(hook)).into_response()
    }

    fn update_webhook(shop: &mut Shop, path: &str, body: &[u8]) -> Response {
        let id: Option<u64> = path
            .strip_prefix("webhooks/")
            .and_then(|id| id.parse().ok());
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return wp_error(
                StatusCode::BAD_REQUEST,
                "rest_invalid_json",
                "Invalid JSON body passed.",
            );
        };
        shop.writes
            .push((Method::PUT, path.to_owned(), body.clone()));
        let Some(hook) = shop.webhooks.iter_mut().find(|h| h["id"].as_u64() == id) else {
            return wp_error(
                StatusCode::NOT_FOUND,
                "woocommerce_rest_webhook_invalid_id",
                "Invalid ID.",
            );
        };
        for (k, v) in body.as_object().unwrap() {
            hook[k] = v.clone();
        }
        axum::Json(hook.clone()).into_response()
    }
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use super::client::{APPROVAL_LAG, OVERLAP, PER_PAGE};
use super::{ensure_webhooks, mapping, WebhookAction, WebhookChange};
use crate::model::Review;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::ApiFixture;

fn at(gmt: &str) -> chrono::DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(gmt, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// An order row: the delivery fixture with its own id and modification time.
fn order_row(id: u64, modified_gmt: &str) -> Value {
    let mut o = order_body();
    o["id"] = json!(id);
    o["number"] = json!(id.to_string());
    o["date_created_gmt"] = json!("2024-12-01T00:00:00");
    o["date_created"] = json!(fake::site_time("2024-12-01T00:00:00"));
    o["date_modified_gmt"] = json!(modified_gmt);
    o["date_modified"] = json!(fake::site_time(modified_gmt));
    o["billing"]["email"] = json!(format!("buyer{id}@example.com"));
    o
}

fn customer_row(id: u64, modified_gmt: &str, role: &str) -> Value {
    let mut c = customer_body();
    c["id"] = json!(id);
    c["email"] = json!(format!("customer{id}@example.com"));
    c["role"] = json!(role);
    c["date_created_gmt"] = json!("2024-12-01T00:00:00");
    c["date_created"] = json!(fake::site_time("2024-12-01T00:00:00"));
    c["date_modified_gmt"] = json!(modified_gmt);
    c["date_modified"] = json!(fake::site_time(modified_gmt));
    c
}

fn review_row(id: u64, created_gmt: &str, rating: u64, status: &str) -> Value {
    let mut r = fixtures::resource("woocommerce-review.json");
    r["id"] = json!(id);
    r["date_created_gmt"] = json!(created_gmt);
    r["date_created"] = json!(fake::site_time(created_gmt));
    r["rating"] = json!(rating);
    r["status"] = json!(status);
    r["reviewer_email"] = json!(format!("reviewer{id}@example.com"));
    r
}

fn secrets() -> Value {
    json!({
        "webhook_secret": "whsec_test",
        "consumer_key": fake::KEY,
        "consumer_secret": fake::SECRET,
    })
}

async fn shop_with(shop: fake::Shop) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(shop));
    let base = fake::start(shared.clone()).await;
    let fixture = ApiFixture::new(
        &base,
        json!({"store_url": "https://shop.example"}),
        secrets(),
    );
    (shared, fixture)
}

fn requests(shop: &fake::Shared) -> Vec<fake::Seen> {
    shop.lock().unwrap().seen.clone()
}

fn ids(records: &[SourceRecord]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.external_id.parse().unwrap())
        .collect()
}

/// Polls until the sweep is caught up; returns every page.
async fn sweep(fixture: &ApiFixture, resource: Resource, cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut cursor = cursor;
    for _ in 0..50 {
        let page = WooCommerce
            .poll(&fixture.api(), resource, &cursor)
            .await
            .unwrap();
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("sweep did not end");
}

fn all_records(pages: &[Page]) -> Vec<SourceRecord> {
    pages.iter().flat_map(|p| p.records.clone()).collect()
}

/// 250 orders in shuffled storage order; ids 1..=130 share one second.
fn tied_orders() -> Vec<Value> {
    let mut orders: Vec<Value> = (1..=250u64)
        .map(|id| {
            let modified = if id <= 130 {
                at("2025-01-01T10:00:00")
            } else {
                at("2025-01-01T10:00:00") + chrono::Duration::minutes(id as i64 - 130)
            };
            order_row(id, &stamp(modified))
        })
        .collect();
    orders.reverse();
    orders.swap(3, 200);
    orders
}

// --- polling: connector surface ---------------------------------------------

#[test]
fn polling_is_offered_at_the_store_api() {
    let c = crate::connector("woocommerce").unwrap();
    let polling = c.polling().expect("woocommerce polls");
    assert_eq!(polling.platform(), "woocommerce");
    assert_eq!(
        polling.resources(),
        &[Resource::Orders, Resource::Customers, Resource::Reviews]
    );
    let settings = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(
        polling.default_base_url(&settings(json!({"store_url": " https://shop.example// "}))),
        Some("https://shop.example/wp-json/wc/v3".to_owned())
    );
    assert_eq!(
        polling.default_base_url(&settings(json!({"store_url": "https://example.com/shop"}))),
        Some("https://example.com/shop/wp-json/wc/v3".to_owned())
    );
    assert_eq!(polling.default_base_url(&settings(json!({}))), None);
    assert_eq!(
        polling.default_base_url(&settings(json!({"store_url": ""}))),
        None
    );
}

// --- polling: orders --------------------------------------------------------

#[tokio::test]
async fn orders_sweep_reads_every_order_once_across_pages_and_ties() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: tied_orders(),
        ..Default::default()
    })
    .await;
    let pages = sweep(
        &fixture,
        Resource::Orders,
        WooCommerce.start_cursor(Resource::Orders, None),
    )
    .await;

    let records = all_records(&pages);
    let mut got = ids(&records);
    got.sort_unstable();
    assert_eq!(
        got,
        (1..=250).collect::<Vec<_>>(),
        "every order exactly once"
    );
    assert_eq!(pages.len(), 3);
    assert_eq!(
        pages.iter().map(|p| p.caught_up).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    let newest = at("2025-01-01T12:00:00");
    assert_eq!(pages[2].watermark, Some(newest));
    // Mid-sweep the watermark stays where the sweep started.
    assert_eq!(pages[0].watermark, None);

    let seen = requests(&shop);
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert_eq!(first.path, "orders");
    assert!(first.basic_auth);
    for (name, value) in [
        ("per_page", "100"),
        ("page", "1"),
        ("order", "asc"),
        ("orderby", "modified"),
        ("status", "any"),
        ("dates_are_gmt", "true"),
    ] {
        assert_eq!(first.param(name), Some(value), "{name}");
    }
    assert_eq!(
        first.param("modified_after"),
        None,
        "no filter from the start"
    );
    let step = (PER_PAGE - OVERLAP as u64).to_string();
    assert_eq!(seen[1].param("offset"), Some(step.as_str()));
    assert_eq!(seen[1].param("page"), None);
    assert_eq!(seen[2].param("offset"), Some("180"));

    // The records are the mapped orders.
    let order_1 = records.iter().find(|r| r.external_id == "1").unwrap();
    assert_eq!(order_1.version, at("2025-01-01T10:00:00"));
    assert_eq!(order_1.occurred_at, at("2024-12-01T00:00:00"));
    assert_eq!(
        order_of(order_1).email.as_deref(),
        Some("buyer1@example.com")
    );
}

#[tokio::test]
async fn orders_sweep_resumes_from_a_mid_sweep_cursor() {
    let (_shop, fixture) = shop_with(fake::Shop {
        orders: tied_orders(),
        ..Default::default()
    })
    .await;
    let start = WooCommerce.start_cursor(Resource::Orders, None);
    let first = WooCommerce
        .poll(&fixture.api(), Resource::Orders, &start)
        .await
        .unwrap();
    assert!(!first.caught_up);
    let rest = sweep(&fixture, Resource::Orders, first.cursor.clone()).await;
    // The runner crashed before committing `rest`: it resumes from the
    // cursor committed with the first page.
    let replay = sweep(&fixture, Resource::Orders, first.cursor.clone()).await;
    assert_eq!(all_records(&replay), all_records(&rest));

    let mut got: Vec<u64> = ids(&first.records);
    got.extend(ids(&all_records(&replay)));
    got.sort_unstable();
    assert_eq!(got, (1..=250).collect::<Vec<_>>());
}

#[tokio::test]
async fn next_orders_sweep_starts_lookback_before_the_watermark() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: tied_orders(),
        ..Default::default()
    })
    .await;
    let first = sweep(
        &fixture,
        Resource::Orders,
        WooCommerce.start_cursor(Resource::Orders, None),
    )
    .await;
    let watermark = first.last().unwrap().watermark.unwrap();
    let next_cursor = first.last().unwrap().cursor.clone();

    // One order changes after the sweep.
    {
        let mut shop = shop.lock().unwrap();
        let i = shop
            .orders
            .iter()
            .position(|o| o["id"] == json!(7))
            .unwrap();
        shop.orders[i] = order_row(7, "2025-01-01T12:30:00");
        shop.seen.clear();
    }
    let second = sweep(&fixture, Resource::Orders, next_cursor).await;
    let seen = requests(&shop);
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap();
    assert_eq!(
        seen[0].param("modified_after"),
        Some(stamp(watermark - lookback).as_str()),
        "bare UTC, LOOKBACK before the watermark"
    );
    // Orders modified within the look-back are read again (harmless, same
    // versions); older ones are not.
    let expected: BTreeSet<u64> = (246..=250).chain([7]).collect();
    assert_eq!(
        ids(&all_records(&second))
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        second.last().unwrap().watermark,
        Some(at("2025-01-01T12:30:00"))
    );
}

#[tokio::test]
async fn start_cursor_since_filters_from_that_instant() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: tied_orders(),
        ..Default::default()
    })
    .await;
    let since = at("2025-01-01T11:50:00");
    let pages = sweep(
        &fixture,
        Resource::Orders,
        WooCommerce.start_cursor(Resource::Orders, Some(since)),
    )
    .await;
    assert_eq!(
        requests(&shop)[0].param("modified_after"),
        Some("2025-01-01T11:50:00")
    );
    // Exclusive bound: 11:50 itself (id 240) is not after it.
    assert_eq!(ids(&all_records(&pages)), (241..=250).collect::<Vec<_>>());
    assert_eq!(pages[0].watermark, Some(at("2025-01-01T12:00:00")));
}

/// 250 orders one minute apart, ids in modification order.
fn spaced_orders() -> Vec<Value> {
    (1..=250u64)
        .map(|id| {
            let t = at("2025-01-01T00:00:00") + chrono::Duration::minutes(id as i64);
            order_row(id, &stamp(t))
        })
        .collect()
}

#[tokio::test]
async fn orders_modified_during_a_sweep_are_not_skipped() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: spaced_orders(),
        ..Default::default()
    })
    .await;
    let first = WooCommerce
        .poll(
            &fixture.api(),
            Resource::Orders,
            &WooCommerce.start_cursor(Resource::Orders, None),
        )
        .await
        .unwrap();
    assert_eq!(ids(&first.records), (1..=100).collect::<Vec<_>>());

    // Twenty orders already read change: they move to the end of the
    // result set and everything after them slides twenty rows back.
    {
        let mut shop = shop.lock().unwrap();
        for id in 21..=40u64 {
            let i = shop
                .orders
                .iter()
                .position(|o| o["id"] == json!(id))
                .unwrap();
            shop.orders[i] = order_row(id, "2025-01-02T00:00:00");
        }
    }
    let rest = sweep(&fixture, Resource::Orders, first.cursor.clone()).await;
    let offsets: Vec<Option<String>> = requests(&shop)
        .iter()
        .map(|s| s.param("offset").map(str::to_owned))
        .collect();
    assert!(
        rest[0].records.is_empty() && !rest[0].caught_up,
        "the overlap is missing, so the cursor steps back: {offsets:?}"
    );
    assert_eq!(offsets[1].as_deref(), Some("90"));
    assert_eq!(offsets[2], None, "stepped back to the start");

    let mut all = first.records.clone();
    all.extend(all_records(&rest));
    let got: BTreeSet<u64> = ids(&all).into_iter().collect();
    assert_eq!(got, (1..=250).collect::<BTreeSet<_>>(), "nothing skipped");
    for id in 21..=40u64 {
        assert!(
            all.iter()
                .any(|r| r.external_id == id.to_string() && r.version == at("2025-01-02T00:00:00")),
            "new version of {id}"
        );
    }
    assert_eq!(
        rest.last().unwrap().watermark,
        Some(at("2025-01-02T00:00:00"))
    );
}

#[tokio::test]
async fn a_few_orders_leaving_mid_sweep_are_absorbed_by_the_overlap() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: spaced_orders(),
        ..Default::default()
    })
    .await;
    let first = WooCommerce
        .poll(
            &fixture.api(),
            Resource::Orders,
            &WooCommerce.start_cursor(Resource::Orders, None),
        )
        .await
        .unwrap();
    // Five orders already read are trashed (`status=any` excludes trash).
    {
        let mut shop = shop.lock().unwrap();
        for o in shop
            .orders
            .iter_mut()
            .filter(|o| (11..=15).contains(&o["id"].as_u64().unwrap()))
        {
            o["status"] = json!("trash");
        }
    }
    let rest = sweep(&fixture, Resource::Orders, first.cursor.clone()).await;
    assert!(
        rest.iter().all(|p| !p.records.is_empty()),
        "no step back needed"
    );
    let got: Vec<u64> = ids(&all_records(&rest));
    assert_eq!(got, (101..=250).collect::<Vec<_>>(), "the rest, each once");
}

// --- polling: customers -----------------------------------------------------

#[tokio::test]
async fn customers_are_walked_by_id_and_later_sweeps_emit_only_changes() {
    let roles = ["customer", "subscriber", "customer", "administrator"];
    let customers: Vec<Value> = (1..=150u64)
        .rev()
        .map(|id| {
            let t = at("2025-01-01T00:00:00") + chrono::Duration::hours(id as i64);
            customer_row(id, &stamp(t), roles[id as usize % roles.len()])
        })
        .collect();
    let (shop, fixture) = shop_with(fake::Shop {
        customers,
        clock: Some(at("2025-02-01T00:00:00")),
        ..Default::default()
    })
    .await;

    let first = sweep(
        &fixture,
        Resource::Customers,
        WooCommerce.start_cursor(Resource::Customers, None),
    )
    .await;
    assert_eq!(ids(&all_records(&first)), (1..=150).collect::<Vec<_>>());
    assert_eq!(
        first.last().unwrap().watermark,
        Some(at("2025-02-01T00:00:00"))
    );
    for seen in requests(&shop) {
        assert_eq!(seen.path, "customers");
        assert_eq!(seen.param("orderby"), Some("id"));
        assert_eq!(seen.param("order"), Some("asc"));
        assert_eq!(seen.param("role"), Some("all"));
        assert_eq!(seen.param("modified_after"), None);
    }
    let record = all_records(&first)
        .into_iter()
        .find(|r| r.external_id == "3")
        .unwrap();
    assert!(record.keys.contains(&key(KeyKind::CustomerId, "3")));
    assert!(record
        .keys
        .contains(&key(KeyKind::Email, "customer3@example.com")));

    // Between sweeps: one customer changes; another changed just before the
    // first sweep began (inside the look-back).
    {
        let mut shop = shop.lock().unwrap();
        let i = shop
            .customers
            .iter()
            .position(|c| c["id"] == json!(7))
            .unwrap();
        shop.customers[i] = customer_row(7, "2025-02-01T00:10:00", "customer");
        let i = shop
            .customers
            .iter()
            .position(|c| c["id"] == json!(8))
            .unwrap();
        shop.customers[i] = customer_row(8, "2025-01-31T23:58:00", "customer");
        shop.clock = Some(at("2025-02-01T01:00:00"));
    }
    let second = sweep(
        &fixture,
        Resource::Customers,
        first.last().unwrap().cursor.clone(),
    )
    .await;
    assert_eq!(ids(&all_records(&second)), vec![7, 8]);
    assert_eq!(
        second.last().unwrap().watermark,
        Some(at("2025-02-01T01:00:00"))
    );
}

#[tokio::test]
async fn customer_role_setting_narrows_the_listing() {
    let (shop, mut fixture) = shop_with(fake::Shop {
        customers: vec![
            customer_row(1, "2025-01-01T00:00:00", "customer"),
            customer_row(2, "2025-01-01T00:00:00", "administrator"),
        ],
        garbled_date: true,
        ..Default::default()
    })
    .await;
    fixture
        .settings
        .insert("customer_role".to_owned(), json!("customer"));
    let pages = sweep(
        &fixture,
        Resource::Customers,
        WooCommerce.start_cursor(Resource::Customers, None),
    )
    .await;
    assert_eq!(ids(&all_records(&pages)), vec![1]);
    assert_eq!(requests(&shop)[0].param("role"), Some("customer"));
    // No readable Date header: the next sweep cannot filter and emits
    // everything again.
    assert_eq!(pages[0].watermark, None);
    let again = sweep(&fixture, Resource::Customers, pages[0].cursor.clone()).await;
    assert_eq!(ids(&all_records(&again)), vec![1]);
}

#[tokio::test]
async fn customers_deleted_mid_sweep_are_not_skipped() {
    let customers: Vec<Value> = (1..=250u64)
        .map(|id| customer_row(id, "2025-01-01T00:00:00", "customer"))
        .collect();
    let (shop, fixture) = shop_with(fake::Shop {
        customers,
        clock: Some(at("2025-02-01T00:00:00")),
        ..Default::default()
    })
    .await;
    let first = WooCommerce
        .poll(
            &fixture.api(),
            Resource::Customers,
            &WooCommerce.start_cursor(Resource::Customers, None),
        )
        .await
        .unwrap();
    assert_eq!(ids(&first.records), (1..=100).collect::<Vec<_>>());
    shop.lock()
        .unwrap()
        .customers
        .retain(|c| c["id"].as_u64().unwrap() > 15);

    let rest = sweep(&fixture, Resource::Customers, first.cursor.clone()).await;
    assert!(rest[0].records.is_empty(), "stepped back");
    let got: BTreeSet<u64> = ids(&all_records(&rest)).into_iter().collect();
    assert!(
        (101..=250).all(|id| got.contains(&id)),
        "nothing skipped: {got:?}"
    );
}

// --- polling: reviews -------------------------------------------------------

#[tokio::test]
async fn reviews_sweep_filters_by_creation_in_site_time_and_maps_reviews() {
    let (shop, fixture) = shop_with(fake::Shop {
        reviews: vec![
            // Before `since` in UTC, but after it in site time (UTC+2).
            review_row(1, "2025-01-01T23:30:00", 4, "approved"),
            review_row(2, "2025-01-02T08:00:00", 5, "approved"),
            review_row(3, "2025-01-02T09:00:00", 0, "approved"),
            review_row(4, "2025-01-02T10:00:00", 3, "hold"),
            review_row(5, "2025-01-02T11:00:00", 2, "spam"),
            review_row(6, "2025-01-02T12:00:00", 1, "approved"),
        ],
        ..Default::default()
    })
    .await;
    let since = at("2025-01-02T00:00:00");
    let pages = sweep(
        &fixture,
        Resource::Reviews,
        WooCommerce.start_cursor(Resource::Reviews, Some(since)),
    )
    .await;
    let seen = requests(&shop);
    assert_eq!(seen[0].path, "products/reviews");
    for (name, value) in [
        ("after", "2025-01-02T00:00:00Z"),
        ("orderby", "date_gmt"),
        ("order", "asc"),
        ("status", "approved"),
        ("per_page", "100"),
    ] {
        assert_eq!(seen[0].param(name), Some(value), "{name}");
    }
    let records = all_records(&pages);
    // 3 has no stars; 4 and 5 are not approved.
    assert_eq!(ids(&records), vec![2, 6]);
    let one_star = match &records[1].body {
        RecordBody::Review(review) => review.clone(),
        other => panic!("expected a review, got {other:?}"),
    };
    assert_eq!((one_star.rating, one_star.score), (dec("1"), 0.2));

    // Watermark: the newest creation time; the next sweep starts the
    // look-back plus the approval lag before it.
    let watermark = pages.last().unwrap().watermark.unwrap();
    assert_eq!(watermark, at("2025-01-02T12:00:00"));
    shop.lock().unwrap().seen.clear();
    sweep(
        &fixture,
        Resource::Reviews,
        pages.last().unwrap().cursor.clone(),
    )
    .await;
    let overlap = chrono::Duration::from_std(LOOKBACK + APPROVAL_LAG).unwrap();
    let expected = format!("{}Z", stamp(watermark - overlap));
    assert_eq!(requests(&shop)[0].param("after"), Some(expected.as_str()));
}

#[test]
fn review_fixture_decodes_exactly() {
    let body = bytes(&json!([fixtures::resource("woocommerce-review.json")]));
    let rows =
        mapping::decode_collection(Resource::Reviews, &body, &DecodeContext::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, 22);
    let created = Utc.with_ymd_and_hms(2025, 1, 2, 8, 0, 0).unwrap();
    let expected = SourceRecord {
        external_id: "22".to_owned(),
        version: created,
        occurred_at: created,
        keys: vec![key(KeyKind::Email, "buyer@example.com")],
        body: RecordBody::Review(Review {
            product: Some("93".to_owned()),
            rating: dec("5"),
            rating_scale: dec("5"),
            score: 1.0,
            text: Some("Great shirt.".to_owned()),
            reviewer_name: Some("Ada Lovelace".to_owned()),
            reviewer_email: Some("buyer@example.com".to_owned()),
            verified: Some(true),
        }),
    };
    assert_eq!(rows[0].record, Some(expected));
}

#[test]
fn review_text_product_and_dates() {
    let mut review = fixtures::resource("woocommerce-review.json");
    review["review"] = json!(
        "<p>Fits &amp; washes well.<br />\nWould buy again &#8211; twice.</p>\n<p>&lt;3</p>\n"
    );
    review["product_name"] = json!("T-Shirt");
    review["date_created_gmt"] = Value::Null;
    review["rating"] = json!(4);
    review["verified"] = json!(false);
    review["reviewer_email"] = json!("not-an-email");
    let rows = mapping::decode_collection(
        Resource::Reviews,
        &bytes(&json!([review])),
        &DecodeContext::default(),
    )
    .unwrap();
    let record = rows[0].record.clone().unwrap();
    // Only the site-time date is left: read as UTC, like orders.
    assert_eq!(
        record.version,
        Utc.with_ymd_and_hms(2025, 1, 2, 9, 0, 0).unwrap()
    );
    assert!(record.keys.is_empty(), "an invalid email is no key");
    let RecordBody::Review(review) = record.body else {
        panic!("not a review")
    };
    assert_eq!(
        review.text.as_deref(),
        Some("Fits & washes well.\nWould buy again \u{2013} twice.\n<3")
    );
    assert_eq!(review.product.as_deref(), Some("T-Shirt"));
    assert_eq!((review.score, review.verified), (0.8, Some(false)));
}

#[test]
fn collection_rows_that_cannot_be_read_are_named_without_values() {
    let mut bad = order_row(5, "2025-01-01T00:00:00");
    bad["currency"] = json!("");
    let err = mapping::decode_collection(
        Resource::Orders,
        &bytes(&json!([order_row(4, "2025-01-01T00:00:00"), bad])),
        &DecodeContext::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            topic: "orders".to_owned(),
            reason: "id 5: missing currency".to_owned()
        }
    );
    let mut review = fixtures::resource("woocommerce-review.json");
    review["rating"] = json!("five");
    let err = mapping::decode_collection(
        Resource::Reviews,
        &bytes(&json!([review])),
        &DecodeContext::default(),
    )
    .unwrap_err();
    let DecodeError::Invalid { reason, .. } = err;
    assert!(!reason.contains("five"), "{reason}");
}

// --- polling: errors --------------------------------------------------------

async fn poll_once(fixture: &ApiFixture, resource: Resource) -> Result<Page, ConnectorError> {
    WooCommerce
        .poll(
            &fixture.api(),
            resource,
            &WooCommerce.start_cursor(resource, None),
        )
        .await
}

#[tokio::test]
async fn refused_and_missing_keys_are_unauthorized() {
    let (shop, mut fixture) = shop_with(fake::Shop {
        orders: spaced_orders(),
        ..Default::default()
    })
    .await;
    fixture
        .secrets
        .insert("consumer_secret".to_owned(), json!("cs_wrong"));
    let err = poll_once(&fixture, Resource::Orders).await.unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized(
            "the platform answered 401 (woocommerce_rest_authentication_error)".to_owned()
        )
    );

    fixture.secrets.remove("consumer_secret");
    shop.lock().unwrap().seen.clear();
    let err = poll_once(&fixture, Resource::Customers).await.unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized("secrets.consumer_secret is not set".to_owned())
    );
    assert!(requests(&shop).is_empty(), "no call without keys");
}

#[tokio::test]
async fn throttles_and_failures_are_classified() {
    let (shop, fixture) = shop_with(fake::Shop {
        orders: spaced_orders(),
        ..Default::default()
    })
    .await;
    let fail = |status: StatusCode, retry: Option<&'static str>, body: &str| {
        shop.lock().unwrap().fail_next = Some((status, retry, body.to_owned()));
    };
    let wp = |code: &str| {
        json!({"code": code, "message": "buyer@example.com was refused", "data": {}}).to_string()
    };

    fail(
        StatusCode::TOO_MANY_REQUESTS,
        Some("7"),
        &wp("rest_too_many_requests"),
    );
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    // The same cursor works once the throttle passes.
    assert_eq!(
        poll_once(&fixture, Resource::Orders)
            .await
            .unwrap()
            .records
            .len(),
        100
    );

    fail(
        StatusCode::SERVICE_UNAVAILABLE,
        Some("30"),
        "<html>busy</html>",
    );
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    fail(StatusCode::SERVICE_UNAVAILABLE, None, "<html>down</html>");
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Transient("the platform answered 503".to_owned())
    );
    fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        &wp("internal_server_error"),
    );
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Transient("the platform answered 500 (internal_server_error)".to_owned())
    );
    fail(
        StatusCode::FORBIDDEN,
        None,
        &wp("woocommerce_rest_cannot_view"),
    );
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Unauthorized(
            "the platform answered 403 (woocommerce_rest_cannot_view)".to_owned()
        )
    );
    fail(
        StatusCode::OK,
        None,
        "<html><body>Maintenance</body></html>",
    );
    assert!(matches!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Malformed(_)
    ));
    // A code that is not an identifier is not repeated.
    fail(StatusCode::BAD_REQUEST, None, &wp("buyer@example.com"));
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Permanent("the platform answered 400".to_owned())
    );
}

#[tokio::test]
async fn the_fake_refuses_what_woocommerce_refuses() {
    // Guards the fake: the customers endpoint has no `orderby=modified`.
    let (_shop, fixture) = shop_with(fake::Shop::default()).await;
    let response = fixture
        .http
        .get(format!("{}/customers?orderby=modified", fixture.base_url))
        .basic_auth(fake::KEY, Some(fake::SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let err = crate::http::check_status(response).unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)));
}

#[tokio::test]
async fn wrong_routes_invalid_rows_and_cursors_are_permanent_or_malformed() {
    let mut bad = order_row(3, "2025-01-01T00:00:00");
    bad["total"] = json!("n/a");
    let (_shop, mut fixture) = shop_with(fake::Shop {
        orders: vec![order_row(1, "2025-01-01T00:00:00"), bad],
        ..Default::default()
    })
    .await;
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Malformed(
            "payload is not valid for topic orders: id 3: total is not a decimal amount".to_owned()
        )
    );
    let err = WooCommerce
        .poll(&fixture.api(), Resource::Orders, &json!({"page": "two"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)), "{err:?}");

    fixture.base_url = fixture.base_url.replace("/wc/v3", "/wc/v9");
    assert_eq!(
        poll_once(&fixture, Resource::Orders).await.unwrap_err(),
        ConnectorError::Permanent("the platform answered 404 (rest_no_route)".to_owned())
    );
}

#[tokio::test]
async fn keys_go_in_the_query_string_when_configured() {
    let (shop, mut fixture) = shop_with(fake::Shop {
        orders: vec![order_row(1, "2025-01-01T00:00:00")],
        ..Default::default()
    })
    .await;
    fixture
        .settings
        .insert("query_string_auth".to_owned(), json!(true));
    let page = poll_once(&fixture, Resource::Orders).await.unwrap();
    assert_eq!(ids(&page.records), vec![1]);
    let seen = &requests(&shop)[0];
    assert!(!seen.basic_auth);
    assert_eq!(seen.param("consumer_key"), Some(fake::KEY));
}

// --- webhook administration -------------------------------------------------

const DELIVERY_URL: &str = "https://hub.example/webhooks/woocommerce/42";

fn hook(id: u64, topic: &str, status: &str, url: &str) -> Value {
    json!({"id": id, "name": format!("hook {id}"), "topic": topic, "status": status,
           "delivery_url": url, "secret": "theirs"})
}

#[tokio::test]
async fn ensure_webhooks_creates_reactivates_and_keeps() {
    // 105 webhooks of another integration push ours onto the second page.
    let mut webhooks: Vec<Value> = (1..=105)
        .map(|id| hook(id, "order.updated", "active", "https://other.example/hook"))
        .collect();
    webhooks.extend([
        hook(200, "order.created", "active", DELIVERY_URL),
        hook(201, "order.updated", "disabled", DELIVERY_URL),
        hook(202, "customer.updated", "paused", DELIVERY_URL),
        hook(
            203,
            "customer.created",
            "disabled",
            "https://other.example/hook",
        ),
    ]);
    let (shop, fixture) = shop_with(fake::Shop {
        webhooks,
        ..Default::default()
    })
    .await;
    let topics = [
        "order.created",
        "order.updated",
        "customer.created",
        "customer.updated",
    ];
    let changes = ensure_webhooks(&fixture.api(), DELIVERY_URL, &topics)
        .await
        .unwrap();
    let change = |topic: &str, webhook_id: u64, action: WebhookAction| WebhookChange {
        topic: topic.to_owned(),
        webhook_id,
        action,
    };
    assert_eq!(
        changes,
        vec![
            change("order.created", 200, WebhookAction::Ok),
            change("order.updated", 201, WebhookAction::Reactivated),
            change("customer.created", 204, WebhookAction::Created),
            change("customer.updated", 202, WebhookAction::Reactivated),
        ]
    );
    let listing: Vec<Option<String>> = requests(&shop)
        .iter()
        .filter(|s| s.method == http::Method::GET)
        .map(|s| s.param("page").map(str::to_owned))
        .collect();
    assert_eq!(listing, vec![Some("1".to_owned()), Some("2".to_owned())]);
    assert!(requests(&shop).iter().all(|s| s.basic_auth));

    let writes = shop.lock().unwrap().writes.clone();
    assert_eq!(
        writes,
        vec![
            (
                http::Method::PUT,
                "webhooks/201".to_owned(),
                json!({"status": "active"})
            ),
            (
                http::Method::POST,
                "webhooks".to_owned(),
                json!({
                    "name": "shophub customer.created",
                    "topic": "customer.created",
                    "delivery_url": DELIVERY_URL,
                    "secret": "whsec_test",
                    "status": "active",
                })
            ),
            (
                http::Method::PUT,
                "webhooks/202".to_owned(),
                json!({"status": "active"})
            ),
        ]
    );
    // The other integration's disabled webhook is left alone.
    let statuses: BTreeMap<u64, String> = shop
        .lock()
        .unwrap()
        .webhooks
        .iter()
        .map(|h| {
            (
                h["id"].as_u64().unwrap(),
                h["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(statuses[&203], "disabled");

    // Run again: nothing left to do.
    shop.lock().unwrap().writes.clear();
    let again = ensure_webhooks(&fixture.api(), DELIVERY_URL, &topics)
        .await
        .unwrap();
    assert!(
        again.iter().all(|c| c.action == WebhookAction::Ok),
        "{again:?}"
    );
    assert!(shop.lock().unwrap().writes.is_empty());
}

#[tokio::test]
async fn ensure_webhooks_needs_keys_and_a_secret() {
    let (shop, mut fixture) = shop_with(fake::Shop::default()).await;
    fixture
        .secrets
        .insert("consumer_key".to_owned(), json!("ck_wrong"));
    assert!(matches!(
        ensure_webhooks(&fixture.api(), DELIVERY_URL, &["order.created"]).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    fixture.secrets.remove("webhook_secret");
    assert_eq!(
        ensure_webhooks(&fixture.api(), DELIVERY_URL, &["order.created"]).await,
        Err(ConnectorError::Unauthorized(
            "secrets.webhook_secret is not set".to_owned()
        ))
    );
    assert!(shop.lock().unwrap().writes.is_empty());
}
