//! Webhook verification and decoding; the polling, OAuth and registration
//! suites against a fake shop are in the submodules.

mod fake;
mod oauth_flow;
mod polling;
mod registration;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::Shopify;
use crate::model::{
    Address, Customer, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::{hmac_sha256, sha256_hex};
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

const SECRET: &[u8] = b"shopify-test-secret";

fn delivery() -> Value {
    fixtures::load("shopify-webhook-delivery.json")
}

fn order_body() -> Value {
    delivery()["body"].clone()
}

fn customer_body() -> Value {
    fixtures::resource("shopify-customer.json")
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body))
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
    headers.insert(
        "x-shopify-hmac-sha256",
        HeaderValue::from_str(&sign(secret, body)).unwrap(),
    );
    headers
}

fn decode(topic: &str, body: &Value) -> Result<Vec<SourceRecord>, DecodeError> {
    Shopify.decode(topic, &bytes(body), &DecodeContext::default())
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

// --- connector identity -------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("shopify").expect("shopify in registry");
    assert_eq!(c.platform(), "shopify");
    assert_eq!(c.required_settings(), &["shop_domain"]);
    assert_eq!(c.required_secrets(), &["webhook_secret"]);
    assert!(c.webhooks().is_some());
    assert!(c.polling().is_some());
}

// --- verify ---------------------------------------------------------------

#[test]
fn verify_accepts_a_correct_signature() {
    let body = bytes(&order_body());
    let intake = Shopify
        .verify(&[SECRET], &signed_headers(SECRET, &body), &body)
        .unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key: "98880550-7158-44d4-b7cd-2c97c8a091b5".to_owned(),
            topic: "orders/create".to_owned(),
        }
    );
}

#[test]
fn verify_accepts_the_shared_vector() {
    let body = br#"{"id":1001,"email":"buyer@example.com"}"#;
    let mut headers = signed_headers(SECRET, body);
    headers.insert(
        "X-Shopify-Hmac-Sha256",
        HeaderValue::from_static("cecG7nUVIS/BlDpSymrFN/jxG4a5/RkpRjWE6Z7EsIw="),
    );
    assert!(Shopify.verify(&[b"s3cr3t"], &headers, body).is_ok());
}

#[test]
fn verify_rejects_a_tampered_body() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    let mut tampered = order_body();
    tampered["total_price"] = json!("0.01");
    assert_eq!(
        Shopify.verify(&[SECRET], &headers, &bytes(&tampered)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_wrong_secret() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    assert_eq!(
        Shopify.verify(&[b"other-secret"], &headers, &body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        Shopify.verify(&[], &headers, &body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_rejects_a_missing_signature_header() {
    let body = bytes(&order_body());
    let mut headers = signed_headers(SECRET, &body);
    headers.remove("X-Shopify-Hmac-Sha256");
    assert_eq!(
        Shopify.verify(&[SECRET], &headers, &body),
        Err(VerifyError::MissingSignature("X-Shopify-Hmac-Sha256"))
    );
}

#[test]
fn verify_accepts_the_second_secret_during_rotation() {
    let body = bytes(&order_body());
    let headers = signed_headers(SECRET, &body);
    assert!(Shopify
        .verify(&[b"new-secret", SECRET], &headers, &body)
        .is_ok());
}

#[test]
fn verify_requires_a_topic() {
    let body = bytes(&order_body());
    let mut headers = signed_headers(SECRET, &body);
    headers.remove("X-Shopify-Topic");
    assert!(matches!(
        Shopify.verify(&[SECRET], &headers, &body),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn dedupe_key_falls_back_to_webhook_id_then_body_hash() {
    let body = bytes(&order_body());
    let mut headers = signed_headers(SECRET, &body);
    headers.remove("X-Shopify-Event-Id");
    let Intake::Delivery { dedupe_key, .. } = Shopify.verify(&[SECRET], &headers, &body).unwrap()
    else {
        panic!("not a delivery")
    };
    assert_eq!(dedupe_key, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");

    headers.remove("X-Shopify-Webhook-Id");
    let Intake::Delivery { dedupe_key, .. } = Shopify.verify(&[SECRET], &headers, &body).unwrap()
    else {
        panic!("not a delivery")
    };
    assert_eq!(dedupe_key, format!("sha256:{}", sha256_hex(&body)));
}

// --- decode: fixtures -----------------------------------------------------

#[test]
fn order_fixture_decodes_exactly() {
    let record = decode_one("orders/create", &order_body());
    let expected = SourceRecord {
        external_id: "450789469".to_owned(),
        // 07:00 at -05:00.
        version: Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap(),
        // The fixture's +1 555 555 0100 is a fictional number (555 is no
        // area code), so it is kept in the body but is not a key.
        keys: vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::CustomerId, "207119551"),
        ],
        body: RecordBody::Order(Order {
            number: "#1001".to_owned(),
            status: OrderStatus::Paid,
            currency: "USD".to_owned(),
            total: dec("49.00"),
            customer_id: Some("207119551".to_owned()),
            buyer_first_name: Some("Ada".to_owned()),
            buyer_last_name: Some("Lovelace".to_owned()),
            email: Some("buyer@example.com".to_owned()),
            phone: Some("+15555550100".to_owned()),
            line_items: vec![LineItem {
                sku: Some("TSHIRT-001".to_owned()),
                title: "T-Shirt".to_owned(),
                quantity: 1,
                total: dec("49.00"),
            }],
            shipping_address: Some(Address {
                line1: Some("1 Main St".to_owned()),
                line2: None,
                city: Some("Ottawa".to_owned()),
                region: Some("ON".to_owned()),
                postcode: Some("K1A 0A1".to_owned()),
                country: Some("CA".to_owned()),
            }),
        }),
    };
    assert_eq!(record, expected);
}

#[test]
fn customer_fixture_decodes_exactly() {
    let record = decode_one("customers/update", &customer_body());
    let expected = SourceRecord {
        external_id: "207119551".to_owned(),
        version: Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2024, 12, 1, 15, 0, 0).unwrap(),
        keys: vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::CustomerId, "207119551"),
        ],
        body: RecordBody::Customer(Customer {
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            emails: vec!["buyer@example.com".to_owned()],
            phones: vec!["+15555550100".to_owned()],
            tags: vec!["vip".to_owned()],
            address: Some(Address {
                line1: Some("1 Main St".to_owned()),
                line2: None,
                city: Some("Ottawa".to_owned()),
                region: None,
                postcode: Some("K1A 0A1".to_owned()),
                country: Some("CA".to_owned()),
            }),
            accepts_email_marketing: Some(true),
            created_at: Some(Utc.with_ymd_and_hms(2024, 12, 1, 15, 0, 0).unwrap()),
            birth_date: None,
            document_id: None,
        }),
    };
    assert_eq!(record, expected);
}

#[test]
fn every_order_topic_yields_one_order_and_customer_topics_one_customer() {
    for topic in [
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
    ] {
        let record = decode_one(topic, &order_body());
        assert_eq!(record.kind(), crate::model::RecordKind::Order, "{topic}");
    }
    for topic in ["customers/create", "customers/update"] {
        let record = decode_one(topic, &customer_body());
        assert_eq!(record.kind(), crate::model::RecordKind::Customer, "{topic}");
    }
}

// --- decode: keys ---------------------------------------------------------

#[test]
fn order_keys_use_buyer_contacts_but_not_the_recipient_phone() {
    let mut body = order_body();
    body["email"] = json!("Buyer@Example.com");
    body["contact_email"] = json!("contact@example.com");
    body["customer"]["email"] = json!("account@example.com");
    body["customer"]["phone"] = json!("+86 138 1234 5678");
    body["billing_address"]["phone"] = json!("030 901820");
    body["shipping_address"]["phone"] = json!("+86 139 0000 1111");
    let ctx = DecodeContext {
        default_region: Some("DE".to_owned()),
    };
    let record = Shopify
        .decode("orders/updated", &bytes(&body), &ctx)
        .unwrap()
        .remove(0);
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "account@example.com"),
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::Email, "contact@example.com"),
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::Phone, "+8613812345678"),
            key(KeyKind::CustomerId, "207119551"),
        ]
    );
    // The order's own contact fields win over the customer's.
    assert_eq!(
        order_of(&record).email.as_deref(),
        Some("Buyer@Example.com")
    );
    assert_eq!(
        order_of(&record).phone.as_deref(),
        Some("+86 138 1234 5678")
    );
}

#[test]
fn guest_order_has_no_customer_id() {
    let mut body = order_body();
    body["customer"] = Value::Null;
    let record = decode_one("orders/create", &body);
    assert_eq!(order_of(&record).customer_id, None);
    assert_eq!(record.keys, vec![key(KeyKind::Email, "buyer@example.com")]);
    // Names fall back to the billing address.
    assert_eq!(order_of(&record).buyer_first_name.as_deref(), Some("Ada"));
}

#[test]
fn customer_keys_include_the_default_address_phone() {
    let mut body = customer_body();
    body["phone"] = Value::Null;
    body["default_address"]["phone"] = json!("+49 30 901820");
    let record = decode_one("customers/create", &body);
    assert!(record.keys.contains(&key(KeyKind::Phone, "+4930901820")));
    assert_eq!(
        customer_of(&record).phones,
        vec!["+49 30 901820".to_owned()]
    );
}

#[test]
fn customer_without_email_or_phone_still_has_its_id_key() {
    let mut body = customer_body();
    body["email"] = Value::Null;
    body["phone"] = Value::Null;
    let record = decode_one("customers/create", &body);
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "207119551")]);
    assert!(customer_of(&record).emails.is_empty());
}

// --- decode: fields -------------------------------------------------------

#[test]
fn order_status_follows_the_most_final_state() {
    let cases: &[(Value, OrderStatus)] = &[
        (
            json!({"financial_status": "pending"}),
            OrderStatus::PendingPayment,
        ),
        (
            json!({"financial_status": "authorized"}),
            OrderStatus::PendingPayment,
        ),
        (
            json!({"financial_status": null}),
            OrderStatus::PendingPayment,
        ),
        (json!({"financial_status": "paid"}), OrderStatus::Paid),
        (
            json!({"financial_status": "partially_paid"}),
            OrderStatus::Paid,
        ),
        (
            json!({"financial_status": "partially_refunded"}),
            OrderStatus::Paid,
        ),
        (
            json!({"financial_status": "paid", "fulfillment_status": "fulfilled"}),
            OrderStatus::Shipped,
        ),
        (
            json!({"financial_status": "paid", "fulfillment_status": "fulfilled", "closed_at": "2025-01-02T00:00:00Z"}),
            OrderStatus::Completed,
        ),
        (
            json!({"financial_status": "refunded", "fulfillment_status": "fulfilled"}),
            OrderStatus::Refunded,
        ),
        (
            json!({"financial_status": "refunded", "cancelled_at": "2025-01-02T00:00:00Z"}),
            OrderStatus::Cancelled,
        ),
    ];
    for (patch, expected) in cases {
        let mut body = order_body();
        for (field, value) in patch.as_object().unwrap() {
            body[field] = value.clone();
        }
        let record = decode_one("orders/updated", &body);
        assert_eq!(order_of(&record).status, *expected, "{patch}");
    }
}

#[test]
fn line_item_total_is_price_times_quantity_exactly() {
    let mut body = order_body();
    body["line_items"] = json!([
        {"title": "Sock", "sku": "", "quantity": 3, "price": "0.10"},
        {"title": "Hat", "sku": null, "quantity": 2, "price": "19.99"}
    ]);
    body["total_price"] = json!("40.28");
    let record = decode_one("orders/create", &body);
    let order = order_of(&record);
    assert_eq!(order.total, dec("40.28"));
    assert_eq!(
        order.line_items,
        vec![
            LineItem {
                sku: None,
                title: "Sock".to_owned(),
                quantity: 3,
                total: dec("0.30")
            },
            LineItem {
                sku: None,
                title: "Hat".to_owned(),
                quantity: 2,
                total: dec("39.98")
            },
        ]
    );
}

#[test]
fn number_falls_back_to_order_number_then_id() {
    let mut body = order_body();
    body["name"] = Value::Null;
    body["order_number"] = json!(1001);
    assert_eq!(order_of(&decode_one("orders/create", &body)).number, "1001");
    body["order_number"] = Value::Null;
    assert_eq!(
        order_of(&decode_one("orders/create", &body)).number,
        "450789469"
    );
}

#[test]
fn currency_is_upper_cased() {
    let mut body = order_body();
    body["currency"] = json!("eur");
    assert_eq!(
        order_of(&decode_one("orders/create", &body)).currency,
        "EUR"
    );
}

#[test]
fn marketing_consent_states() {
    for (state, expected) in [
        (json!({"state": "subscribed"}), Some(true)),
        (json!({"state": "unsubscribed"}), Some(false)),
        (json!({"state": "not_subscribed"}), Some(false)),
        (Value::Null, None),
    ] {
        let mut body = customer_body();
        body["email_marketing_consent"] = state.clone();
        let record = decode_one("customers/update", &body);
        assert_eq!(
            customer_of(&record).accepts_email_marketing,
            expected,
            "{state}"
        );
    }
}

#[test]
fn tags_are_split_on_commas() {
    let mut body = customer_body();
    body["tags"] = json!("vip, wholesale,, newsletter ");
    let record = decode_one("customers/update", &body);
    assert_eq!(
        customer_of(&record).tags,
        vec!["vip", "wholesale", "newsletter"]
    );
}

#[test]
fn updated_at_sets_the_version() {
    let older = decode_one("customers/update", &customer_body());
    let mut body = customer_body();
    body["updated_at"] = json!("2025-01-01T07:00:01-05:00");
    let newer = decode_one("customers/update", &body);
    assert_ne!(older.version, newer.version);
    assert!(newer.version > older.version);

    // The same instant in another offset is the same version.
    body["updated_at"] = json!("2025-01-01T13:00:00+01:00");
    assert_eq!(decode_one("customers/update", &body).version, older.version);
}

// --- decode: errors -------------------------------------------------------

#[test]
fn unknown_topics_decode_to_nothing() {
    assert_eq!(decode("app/uninstalled", &order_body()).unwrap(), vec![]);
    assert_eq!(
        Shopify
            .decode("shop/redact", b"not json", &DecodeContext::default())
            .unwrap(),
        vec![]
    );
}

#[test]
fn invalid_json_is_a_decode_error() {
    let err = Shopify
        .decode("orders/create", b"{\"id\": 1,", &DecodeContext::default())
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::Invalid { ref topic, .. } if topic == "orders/create"),
        "{err}"
    );
}

#[test]
fn missing_or_bad_required_fields_are_named_without_values() {
    let reason = |topic: &str, body: &Value| match decode(topic, body).unwrap_err() {
        DecodeError::Invalid { reason, .. } => reason,
    };

    let mut body = order_body();
    body.as_object_mut().unwrap().remove("id");
    assert_eq!(reason("orders/create", &body), "missing id");

    let mut body = order_body();
    body["updated_at"] = Value::Null;
    assert_eq!(reason("orders/create", &body), "missing updated_at");

    let mut body = customer_body();
    body["updated_at"] = json!("yesterday at noon");
    assert_eq!(
        reason("customers/update", &body),
        "updated_at is not an RFC 3339 time"
    );

    let mut body = order_body();
    body["total_price"] = json!("forty-nine");
    assert_eq!(
        reason("orders/create", &body),
        "total_price is not a decimal amount"
    );

    // A wrongly typed field: the reason must not quote the value.
    let mut body = customer_body();
    body["id"] = json!("buyer@example.com");
    let text = reason("customers/update", &body);
    assert!(!text.contains("buyer"), "{text}");
}
