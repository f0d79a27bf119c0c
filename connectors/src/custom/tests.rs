use std::path::PathBuf;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::canonical::{decode, decode_value, split_name};
use super::{verify_at, Custom, TOPIC};
use crate::model::{
    Address, Customer, Direction, IdentityKey, KeyKind, LineItem, Message, Order, OrderStatus,
    RecordBody, Review, SourceRecord,
};
use crate::payload::fixtures;
use crate::signature::hmac_sha256;
use crate::webhook::{DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

// --- signing helpers --------------------------------------------------------------

struct Vector {
    secret: String,
    id: String,
    timestamp: String,
    body: String,
    signature: String,
}

/// The official Standard Webhooks vector from the shared file.
fn official() -> Vector {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "standard-webhooks-v1")
        .expect("standard-webhooks-v1 vector")
        .clone();
    assert_eq!(v["official_vector"], json!(true));
    let s = |x: &Value| x.as_str().unwrap().to_owned();
    Vector {
        secret: s(&v["inputs"]["secret"]),
        id: s(&v["inputs"]["webhook-id"]),
        timestamp: s(&v["inputs"]["webhook-timestamp"]),
        body: s(&v["inputs"]["body"]),
        signature: s(&v["expected"]["webhook-signature"]),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

/// `v1,<base64>` for `body` under a `whsec_` secret.
fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut msg = format!("{id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, &msg))
    )
}

const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn verify_vector(
    secrets: &[&str],
    h: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Intake, VerifyError> {
    let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    verify_at(&secrets, h, body.as_bytes(), now)
}

// --- connector identity -------------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("custom").expect("custom in registry");
    assert_eq!(c.platform(), "custom");
    assert!(c.required_settings().is_empty());
    assert_eq!(c.required_secrets(), &["webhook_secret"]);
    assert!(c.webhooks().is_some());
    assert!(c.polling().is_none());
}

// --- verify ---------------------------------------------------------------------------

#[test]
fn the_official_vector_verifies() {
    let v = official();
    // Our signer reproduces the published signature.
    assert_eq!(
        sign(&v.secret, &v.id, &v.timestamp, v.body.as_bytes()),
        v.signature
    );
    let ts: i64 = v.timestamp.parse().unwrap();
    let intake = verify_vector(
        &[&v.secret],
        &headers(&v.id, &v.timestamp, &v.signature),
        &v.body,
        at(ts + 10),
    );
    assert_eq!(
        intake,
        Ok(Intake::Delivery {
            dedupe_key: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".to_owned(),
            topic: TOPIC.to_owned(),
        })
    );
}

#[test]
fn a_bare_base64_secret_is_accepted_too() {
    let v = official();
    let bare = v.secret.strip_prefix("whsec_").unwrap();
    let ts: i64 = v.timestamp.parse().unwrap();
    assert!(verify_vector(
        &[bare],
        &headers(&v.id, &v.timestamp, &v.signature),
        &v.body,
        at(ts)
    )
    .is_ok());
}

#[test]
fn either_secret_verifies_during_a_rotation() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    let h = headers(&v.id, &v.timestamp, &v.signature);
    assert!(verify_vector(&[OTHER_SECRET, &v.secret], &h, &v.body, at(ts)).is_ok());
    assert!(verify_vector(&[&v.secret, OTHER_SECRET], &h, &v.body, at(ts)).is_ok());
    assert_eq!(
        verify_vector(&[OTHER_SECRET], &h, &v.body, at(ts)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn any_v1_entry_of_several_may_match_and_other_versions_are_ignored() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    let other = sign(OTHER_SECRET, &v.id, &v.timestamp, v.body.as_bytes());
    let digest = v.signature.strip_prefix("v1,").unwrap();
    let several = format!(
        "{other} v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw== v1,not*base64 {}",
        v.signature
    );
    assert!(verify_vector(
        &[&v.secret],
        &headers(&v.id, &v.timestamp, &several),
        &v.body,
        at(ts)
    )
    .is_ok());
    // The right digest under another version tag does not count.
    for header in [
        format!("v1a,{digest}"),
        format!("v2,{digest}"),
        digest.to_owned(),
        other,
    ] {
        assert_eq!(
            verify_vector(
                &[&v.secret],
                &headers(&v.id, &v.timestamp, &header),
                &v.body,
                at(ts)
            ),
            Err(VerifyError::BadSignature),
            "{header}"
        );
    }
}

#[test]
fn timestamps_outside_five_minutes_either_way_are_refused() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    let h = headers(&v.id, &v.timestamp, &v.signature);
    assert!(verify_vector(&[&v.secret], &h, &v.body, at(ts + 300)).is_ok());
    assert!(verify_vector(&[&v.secret], &h, &v.body, at(ts - 300)).is_ok());
    assert_eq!(
        verify_vector(&[&v.secret], &h, &v.body, at(ts + 301)),
        Err(VerifyError::Malformed(
            "webhook-timestamp is more than 5 minutes old".to_owned()
        ))
    );
    assert_eq!(
        verify_vector(&[&v.secret], &h, &v.body, at(ts - 301)),
        Err(VerifyError::Malformed(
            "webhook-timestamp is more than 5 minutes in the future".to_owned()
        ))
    );
}

#[test]
fn the_real_clock_is_used_by_verify() {
    let secret = OTHER_SECRET;
    let body = br#"{"kind":"customer","external_id":"1","updated_at":"2025-01-01T00:00:00Z"}"#;
    let now = Utc::now().timestamp().to_string();
    let h = headers("msg_live", &now, &sign(secret, "msg_live", &now, body));
    assert!(Custom.verify(&[secret.as_bytes()], &h, body).is_ok());
    let old = (Utc::now().timestamp() - 3600).to_string();
    let h = headers("msg_old", &old, &sign(secret, "msg_old", &old, body));
    assert!(matches!(
        Custom.verify(&[secret.as_bytes()], &h, body),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn missing_headers_are_named() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut h = headers(&v.id, &v.timestamp, &v.signature);
        h.remove(name);
        assert_eq!(
            verify_vector(&[&v.secret], &h, &v.body, at(ts)),
            Err(VerifyError::MissingSignature(name)),
            "{name}"
        );
    }
}

#[test]
fn svix_header_names_are_accepted() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    let mut h = HeaderMap::new();
    h.insert("svix-id", HeaderValue::from_str(&v.id).unwrap());
    h.insert(
        "svix-timestamp",
        HeaderValue::from_str(&v.timestamp).unwrap(),
    );
    h.insert(
        "svix-signature",
        HeaderValue::from_str(&v.signature).unwrap(),
    );
    assert!(verify_vector(&[&v.secret], &h, &v.body, at(ts)).is_ok());
}

#[test]
fn tampering_with_body_id_or_timestamp_breaks_the_signature() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    let tampered_body = v.body.replace("test_user", "admin");
    assert_eq!(
        verify_vector(
            &[&v.secret],
            &headers(&v.id, &v.timestamp, &v.signature),
            &tampered_body,
            at(ts)
        ),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        verify_vector(
            &[&v.secret],
            &headers("msg_other", &v.timestamp, &v.signature),
            &v.body,
            at(ts)
        ),
        Err(VerifyError::BadSignature)
    );
    let later = (ts + 1).to_string();
    assert_eq!(
        verify_vector(
            &[&v.secret],
            &headers(&v.id, &later, &v.signature),
            &v.body,
            at(ts)
        ),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn unusable_secrets_are_a_clear_error() {
    let v = official();
    let ts: i64 = v.timestamp.parse().unwrap();
    assert_eq!(
        verify_vector(
            &["whsec_%%%", ""],
            &headers(&v.id, &v.timestamp, &v.signature),
            &v.body,
            at(ts)
        ),
        Err(VerifyError::Malformed(
            "no webhook secret is a whsec_ base64 secret".to_owned()
        ))
    );
}

// --- canonical records ------------------------------------------------------------------

fn local_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/custom/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ctx(region: Option<&str>) -> DecodeContext {
    DecodeContext {
        default_region: region.map(str::to_owned),
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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

fn fixture_records() -> Vec<SourceRecord> {
    let body = serde_json::to_vec(&local_fixture("records.json")).unwrap();
    Custom.decode(TOPIC, &body, &ctx(Some("CN"))).unwrap()
}

#[test]
fn a_customer_decodes_exactly() {
    let record = &fixture_records()[0];
    assert_eq!(record.external_id, "crm-1001");
    assert_eq!(record.version, t("2025-04-01T08:00:00Z"));
    assert_eq!(record.occurred_at, t("2024-11-11T03:11:11Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "ada.work@example.com"),
            key(KeyKind::Email, "ada@example.com"),
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::Phone, "+8613812345678"),
            key(KeyKind::CustomerId, "crm-1001"),
        ]
    );
    assert_eq!(
        record.body,
        RecordBody::Customer(Customer {
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            emails: vec![
                "Ada@Example.com".to_owned(),
                "ada.work@example.com".to_owned()
            ],
            phones: vec!["+49 30 901820".to_owned(), "+86 138-1234-5678".to_owned()],
            tags: vec![],
            address: Some(Address {
                line1: Some("Invalidenstr. 1".to_owned()),
                line2: None,
                city: Some("Berlin".to_owned()),
                region: Some("BE".to_owned()),
                postcode: Some("10115".to_owned()),
                country: Some("DE".to_owned()),
            }),
            accepts_email_marketing: None,
            created_at: Some(t("2024-11-11T03:11:11Z")),
            birth_date: None,
            document_id: None,
        })
    );
}

#[test]
fn an_order_decodes_exactly() {
    let record = &fixture_records()[1];
    assert_eq!(record.external_id, "erp-5001");
    assert_eq!(record.version, t("2025-04-02T09:30:00Z"));
    assert_eq!(record.occurred_at, t("2025-04-02T09:00:00Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "zhang.wei@example.com"),
            key(KeyKind::Phone, "+8613812345678"),
            key(KeyKind::CustomerId, "crm-1001"),
        ]
    );
    assert_eq!(
        record.body,
        RecordBody::Order(Order {
            number: "SO-5001".to_owned(),
            status: OrderStatus::Paid,
            currency: "CNY".to_owned(),
            total: dec("199.00"),
            customer_id: Some("crm-1001".to_owned()),
            // A Chinese name is kept whole.
            buyer_first_name: Some("张伟".to_owned()),
            buyer_last_name: None,
            email: Some("zhang.wei@example.com".to_owned()),
            phone: Some("138 1234 5678".to_owned()),
            line_items: vec![
                LineItem {
                    sku: Some("TEA-01".to_owned()),
                    title: "龙井茶".to_owned(),
                    quantity: 2,
                    total: dec("119.00"),
                },
                LineItem {
                    sku: None,
                    title: "Gift wrap".to_owned(),
                    quantity: 1,
                    total: dec("80"),
                },
            ],
            shipping_address: Some(Address {
                line1: Some("南京西路 1 号".to_owned()),
                line2: None,
                city: Some("上海".to_owned()),
                region: None,
                postcode: Some("200040".to_owned()),
                country: Some("CN".to_owned()),
            }),
        })
    );
    // Without a region the local phone is not a key.
    let value = &local_fixture("records.json")["records"][1];
    let plain = decode_value(value, &ctx(None)).unwrap();
    assert!(plain.keys.iter().all(|k| k.kind != KeyKind::Phone));
}

#[test]
fn a_message_decodes_exactly() {
    let record = &fixture_records()[2];
    assert_eq!(record.external_id, "msg-77");
    assert_eq!(record.version, t("2025-04-02T02:00:00Z"));
    assert_eq!(record.occurred_at, t("2025-04-02T02:00:00Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "zhang.wei@example.com"),
            key(KeyKind::Phone, "+8613812345678")
        ]
    );
    assert_eq!(
        record.body,
        RecordBody::Message(Message {
            conversation_id: "conv-9".to_owned(),
            channel: "wechat".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("张伟".to_owned()),
            sender_handle: Some("wx_zhangwei".to_owned()),
            text: Some("请问什么时候发货?".to_owned()),
            subject: None,
            attachments: Vec::new(),
        })
    );
}

#[test]
fn an_outbound_sender_is_the_shop_and_gives_no_keys() {
    let mut value = local_fixture("records.json")["records"][2].clone();
    value["direction"] = json!("outbound");
    value["customer_external_id"] = json!("crm-1001");
    let record = decode_value(&value, &ctx(None)).unwrap();
    assert_eq!(record.keys, vec![key(KeyKind::CustomerId, "crm-1001")]);
}

#[test]
fn a_review_decodes_exactly() {
    let record = &fixture_records()[3];
    assert_eq!(record.external_id, "rev-3");
    assert_eq!(record.version, t("2025-04-05T12:00:00Z"));
    assert_eq!(record.keys, vec![key(KeyKind::Email, "ada@example.com")]);
    assert_eq!(
        record.body,
        RecordBody::Review(Review {
            product: Some("TEA-01".to_owned()),
            rating: dec("4"),
            rating_scale: dec("5"),
            score: 0.8,
            text: Some("Fresh and fragrant.".to_owned()),
            reviewer_name: Some("Ada".to_owned()),
            reviewer_email: Some("ada@example.com".to_owned()),
            verified: Some(true),
        })
    );
    let ten_point = json!({"kind": "review", "external_id": 9, "rating": "7.5", "rating_scale": 10,
        "created_at": "2025-01-01T00:00:00Z"});
    match decode_value(&ten_point, &ctx(None)).unwrap().body {
        RecordBody::Review(r) => {
            assert_eq!(
                (r.rating, r.rating_scale, r.score),
                (dec("7.5"), dec("10"), 0.75)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_split_only_when_latin() {
    assert_eq!(
        split_name("Ada Lovelace"),
        (Some("Ada".into()), Some("Lovelace".into()))
    );
    assert_eq!(
        split_name("Mary Ann Smith"),
        (Some("Mary".into()), Some("Ann Smith".into()))
    );
    assert_eq!(
        split_name("José Álvarez-Núñez"),
        (Some("José".into()), Some("Álvarez-Núñez".into()))
    );
    assert_eq!(split_name("Cher"), (Some("Cher".into()), None));
    assert_eq!(split_name("张伟"), (Some("张伟".into()), None));
    assert_eq!(split_name("欧阳 娜娜"), (Some("欧阳 娜娜".into()), None));
    assert_eq!(
        split_name("Иван Петров"),
        (Some("Иван Петров".into()), None)
    );
    // Explicit parts win over `name`.
    let value = json!({"kind": "customer", "external_id": "1", "updated_at": "2025-01-01T00:00:00Z",
        "name": "Ada Lovelace", "first_name": "Augusta Ada", "last_name": "King"});
    match decode_value(&value, &ctx(None)).unwrap().body {
        RecordBody::Customer(c) => {
            assert_eq!(
                (c.first_name.as_deref(), c.last_name.as_deref()),
                (Some("Augusta Ada"), Some("King"))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn order_statuses_and_defaults() {
    let base = json!({"kind": "order", "external_id": "o", "created_at": "2025-01-01T00:00:00Z",
        "currency": "usd", "total": 10});
    for (word, status) in [
        ("pending", OrderStatus::PendingPayment),
        ("pending_payment", OrderStatus::PendingPayment),
        ("paid", OrderStatus::Paid),
        ("shipped", OrderStatus::Shipped),
        ("completed", OrderStatus::Completed),
        ("refunded", OrderStatus::Refunded),
        ("cancelled", OrderStatus::Cancelled),
        ("canceled", OrderStatus::Cancelled),
    ] {
        let mut value = base.clone();
        value["status"] = json!(word);
        let record = decode_value(&value, &ctx(None)).unwrap();
        let RecordBody::Order(order) = &record.body else {
            panic!()
        };
        assert_eq!(order.status, status, "{word}");
        // No updated_at: created_at is the version; no number: the external id.
        assert_eq!(record.version, t("2025-01-01T00:00:00Z"));
        assert_eq!(order.number, "o");
        assert_eq!(order.total, dec("10"));
        assert!(record.keys.is_empty());
    }
}

#[test]
fn money_is_exact_from_strings_and_numbers() {
    let value = json!({"kind": "order", "external_id": "o", "created_at": "2025-01-01T00:00:00Z",
        "currency": "EUR", "status": "paid", "total": 0.1,
        "line_items": [{"title": "a", "price": "0.10", "quantity": 3}, {"title": "b", "price": 199.99}]});
    let record = decode_value(&value, &ctx(None)).unwrap();
    let RecordBody::Order(order) = &record.body else {
        panic!()
    };
    assert_eq!(order.total.to_string(), "0.1");
    assert_eq!(order.line_items[0].total.to_string(), "0.30");
    assert_eq!(order.line_items[1].total.to_string(), "199.99");
}

#[test]
fn every_body_form_decodes() {
    let customer =
        json!({"kind": "customer", "external_id": "c1", "updated_at": "2025-01-01T00:00:00Z"});
    let forms = [
        (customer.clone(), 1),
        (json!([customer.clone(), customer.clone()]), 2),
        (json!({"records": [customer.clone()]}), 1),
        (json!({"records": []}), 0),
        (json!([]), 0),
        (
            json!({"type": "records.upserted", "timestamp": "2025-01-01T00:00:00Z", "data": customer.clone()}),
            1,
        ),
        (
            json!({"type": "records.upserted", "data": {"records": [customer.clone(), customer.clone()]}}),
            2,
        ),
    ];
    for (body, count) in forms {
        let records = Custom
            .decode(TOPIC, &serde_json::to_vec(&body).unwrap(), &ctx(None))
            .unwrap();
        assert_eq!(records.len(), count, "{body}");
        assert!(records.iter().all(|r| r.external_id == "c1"));
    }
}

fn reason(err: DecodeError) -> String {
    let DecodeError::Invalid { topic, reason } = err;
    assert_eq!(topic, TOPIC);
    reason
}

fn decode_err(body: &Value) -> String {
    reason(decode(TOPIC, &serde_json::to_vec(body).unwrap(), &ctx(None)).unwrap_err())
}

#[test]
fn body_errors_are_named() {
    assert_eq!(
        reason(decode(TOPIC, b"{nope", &ctx(None)).unwrap_err()),
        "body is not valid JSON"
    );
    assert_eq!(
        decode_err(&json!("ada@example.com")),
        "body is not a record, a list of records or {\"records\": [...]}"
    );
    assert_eq!(decode_err(&json!({"hello": "world"})), "missing kind");
    assert_eq!(
        decode_err(&json!({"records": {"kind": "customer"}})),
        "records is not a list"
    );
    assert_eq!(
        decode_err(&json!(["ada@example.com"])),
        "records[0]: record is not a JSON object"
    );
    let good =
        json!({"kind": "customer", "external_id": "c1", "updated_at": "2025-01-01T00:00:00Z"});
    let bad = json!({"kind": "customer", "updated_at": "2025-01-01T00:00:00Z", "emails": ["secret@example.com"]});
    assert_eq!(
        decode_err(&json!({"records": [good, bad]})),
        "records[1]: missing external_id"
    );
}

#[test]
fn record_errors_name_the_field_never_the_value() {
    let customer =
        json!({"kind": "customer", "external_id": "c1", "updated_at": "2025-01-01T00:00:00Z"});
    let order = json!({"kind": "order", "external_id": "o1", "updated_at": "2025-01-01T00:00:00Z",
        "status": "paid", "currency": "USD", "total": "1.00"});
    let message = json!({"kind": "message", "external_id": "m1", "sent_at": "2025-01-01T00:00:00Z",
        "conversation_id": "c", "channel": "sms", "direction": "inbound"});
    let review = json!({"kind": "review", "external_id": "r1", "created_at": "2025-01-01T00:00:00Z", "rating": 3});
    let with = |base: &Value, field: &str, value: Value| {
        let mut v = base.clone();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(field);
        } else {
            v[field] = value;
        }
        v
    };
    let secret = json!("secret@example.com");
    let cases = [
        (with(&customer, "kind", Value::Null), "missing kind"),
        (
            with(&customer, "kind", json!("invoice")),
            "unknown kind (expected customer, order, message or review)",
        ),
        (
            with(&customer, "external_id", json!("  ")),
            "missing external_id",
        ),
        (
            with(&customer, "external_id", json!({"id": 1})),
            "external_id is not a string or an integer",
        ),
        (
            with(&customer, "updated_at", Value::Null),
            "missing updated_at",
        ),
        (
            with(&customer, "updated_at", secret.clone()),
            "updated_at is not an RFC 3339 time",
        ),
        (
            with(&customer, "emails", secret.clone()),
            "emails is not a list of strings",
        ),
        (with(&customer, "name", json!(42)), "name is not a string"),
        (
            with(&customer, "address", secret.clone()),
            "address is not an object",
        ),
        (
            with(&customer, "address", json!({"city": 7})),
            "address.city is not a string",
        ),
        (
            with(&order, "status", secret.clone()),
            "status is not one of pending, paid, shipped, completed, refunded, cancelled",
        ),
        (with(&order, "status", Value::Null), "missing status"),
        (
            with(&order, "currency", json!("dollars")),
            "currency is not a three-letter code",
        ),
        (
            with(&order, "total", secret.clone()),
            "total is not a decimal number",
        ),
        (with(&order, "total", Value::Null), "missing total"),
        (
            with(&order, "line_items", json!([{"title": "x"}])),
            "line_items[0].price is missing",
        ),
        (
            with(
                &order,
                "line_items",
                json!([{"price": "1", "quantity": 1.5}]),
            ),
            "line_items[0].quantity is not a whole number",
        ),
        (
            with(&order, "line_items", json!([{"price": "1"}, "x"])),
            "line_items[1] is not an object",
        ),
        (
            with(&order, "line_items", secret.clone()),
            "line_items is not a list",
        ),
        (
            with(&message, "direction", json!("sideways")),
            "direction is not inbound or outbound",
        ),
        (
            with(&message, "conversation_id", Value::Null),
            "missing conversation_id",
        ),
        (with(&message, "channel", Value::Null), "missing channel"),
        (with(&message, "sent_at", Value::Null), "missing sent_at"),
        (
            with(&message, "sender", json!({"email": 5})),
            "sender.email is not a string",
        ),
        (with(&review, "rating", Value::Null), "missing rating"),
        (
            with(&review, "rating", json!(6)),
            "rating is outside 0..=rating_scale",
        ),
        (
            with(&review, "rating_scale", json!(0)),
            "rating_scale is not positive",
        ),
        (
            with(&review, "created_at", Value::Null),
            "missing created_at",
        ),
    ];
    for (value, expected) in cases {
        let err = decode_value(&value, &ctx(None)).unwrap_err();
        assert_eq!(err, expected, "{value}");
        assert!(!err.contains("secret"), "{err}");
        // The same error through a delivery body, unprefixed for one record.
        assert_eq!(decode_err(&value), expected);
    }
}
