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
