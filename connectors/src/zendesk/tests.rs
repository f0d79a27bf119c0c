use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::client::{earliest, EXPORT_DELAY, EXPORT_SPACING};
use super::mapping::{self, CommentsPage, Ticket, Users};
use super::webhook::{ticket_id, verify_at, TOLERANCE};
use super::Zendesk;
use crate::model::{
    Attachment, Direction, IdentityKey, KeyKind, Message, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::signature::{hmac_sha256, sha256_hex};
use crate::testkit::ApiFixture;
use crate::webhook::{DecodeContext, Intake, VerifyError, WebhookSource};

const SECRET: &[u8] = b"zd-signing-secret";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn message(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "ticket-comments.json" => include_str!("fixtures/ticket-comments.json"),
        "ticket-event.json" => include_str!("fixtures/ticket-event.json"),
        other => panic!("no fixture {other}"),
    };
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

/// Headers as Zendesk sends them, signed under `secret` at `timestamp`.
fn signed(secret: &[u8], timestamp: &str, body: &[u8]) -> HeaderMap {
    let mut msg = timestamp.as_bytes().to_vec();
    msg.extend_from_slice(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, &msg));
    let mut headers = HeaderMap::new();
    headers.insert("x-zendesk-account-id", HeaderValue::from_static("123456"));
    headers.insert(
        "x-zendesk-webhook-id",
        HeaderValue::from_static("01F1KRFQ6BG29CNWFR60NK5FNY"),
    );
    headers.insert(
        "x-zendesk-webhook-invocation-id",
        HeaderValue::from_static("8350205582"),
    );
    headers.insert(
        "x-zendesk-webhook-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    headers.insert(
        "x-zendesk-webhook-signature-timestamp",
        HeaderValue::from_str(timestamp).unwrap(),
    );
    headers
}

const SENT: &str = "2025-01-01T12:30:01Z";

fn sent() -> DateTime<Utc> {
    at(SENT)
}

// --- connector identity -----------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("zendesk").expect("zendesk in registry");
    assert_eq!(c.platform(), "zendesk");
    assert_eq!(c.required_settings(), &["subdomain"]);
    assert_eq!(c.required_secrets(), &["webhook_secret"]);
    assert!(c.webhooks().is_some());
    let polling = c.polling().expect("zendesk polls");
    assert_eq!(polling.platform(), "zendesk");
    assert_eq!(polling.resources(), &[Resource::Messages]);
    assert_eq!(polling.credentials(), &["email", "api_token"]);
    let settings = |v: Value| v.as_object().unwrap().clone();
    for raw in [
        "acme",
        " Acme ",
        "acme.zendesk.com",
        "https://acme.zendesk.com/",
    ] {
        assert_eq!(
            polling.default_base_url(&settings(json!({ "subdomain": raw }))),
            Some("https://acme.zendesk.com".to_owned()),
            "{raw}"
        );
    }
    for raw in ["", "evil.com/x", "a b", "acme.example.com"] {
        assert_eq!(
            polling.default_base_url(&settings(json!({ "subdomain": raw }))),
            None,
            "{raw}"
        );
    }
    assert_eq!(polling.default_base_url(&settings(json!({}))), None);
}

// --- verify -------------------------------------------------------------------

#[test]
fn shared_vector_verifies() {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "zendesk-webhook")
        .unwrap();
    let secret = v["inputs"]["secret"].as_str().unwrap();
    let timestamp = v["inputs"]["X-Zendesk-Webhook-Signature-Timestamp"]
        .as_str()
        .unwrap();
    let body = v["inputs"]["body"].as_str().unwrap().as_bytes();
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-Zendesk-Webhook-Signature",
        HeaderValue::from_str(
            v["expected"]["X-Zendesk-Webhook-Signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
    );
    headers.insert(
        "X-Zendesk-Webhook-Signature-Timestamp",
        HeaderValue::from_str(timestamp).unwrap(),
    );
    let now = Utc.timestamp_opt(1_700_000_030, 0).unwrap();
    let intake = verify_at(now, &[secret.as_bytes()], &headers, body).unwrap();
    assert_eq!(
        intake,
        Intake::Delivery {
            dedupe_key: format!("sha256:{}", sha256_hex(body)),
            topic: "trigger".to_owned(),
        }
    );
    // The same request signed with the timestamp after the body fails.
    let mut swapped = body.to_vec();
    swapped.extend_from_slice(timestamp.as_bytes());
    let wrong =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), &swapped));
    headers.insert(
        "X-Zendesk-Webhook-Signature",
        HeaderValue::from_str(&wrong).unwrap(),
    );
    assert_eq!(
        verify_at(now, &[secret.as_bytes()], &headers, body),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verify_accepts_an_event_and_names_its_type() {
    let body = serde_json::to_vec(&fixture("ticket-event.json")).unwrap();
    let headers = signed(SECRET, SENT, &body);
    assert_eq!(
        verify_at(sent(), &[SECRET], &headers, &body),
        Ok(Intake::Delivery {
            dedupe_key: "zendesk:01F1KRFQ6BG29CNWFR60NK5FNY:8350205582".to_owned(),
            topic: "zen:event-type:ticket.comment_added".to_owned(),
        })
    );
}

#[test]
fn verify_rejects_tampering_wrong_secrets_and_missing_headers() {
    let body = br#"{"ticket_id":"35436"}"#;
    let headers = signed(SECRET, SENT, body);
    assert_eq!(
        verify_at(sent(), &[SECRET], &headers, br#"{"ticket_id":"35437"}"#),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        verify_at(sent(), &[b"other"], &headers, body),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        verify_at(sent(), &[], &headers, body),
        Err(VerifyError::BadSignature)
    );
    // A timestamp changed in transit breaks the signature too.
    let mut moved = headers.clone();
    moved.insert(
        "x-zendesk-webhook-signature-timestamp",
        HeaderValue::from_static("2025-01-01T12:30:02Z"),
    );
    assert_eq!(
        verify_at(sent(), &[SECRET], &moved, body),
        Err(VerifyError::BadSignature)
    );
    let mut no_sig = headers.clone();
    no_sig.remove("x-zendesk-webhook-signature");
    assert_eq!(
        verify_at(sent(), &[SECRET], &no_sig, body),
        Err(VerifyError::MissingSignature("X-Zendesk-Webhook-Signature"))
    );
    let mut no_ts = headers.clone();
    no_ts.remove("x-zendesk-webhook-signature-timestamp");
    assert_eq!(
        verify_at(sent(), &[SECRET], &no_ts, body),
        Err(VerifyError::MissingSignature(
            "X-Zendesk-Webhook-Signature-Timestamp"
        ))
    );
    // Rotation: either secret may sign.
    assert!(verify_at(sent(), &[b"new", SECRET], &headers, body).is_ok());
}

#[test]
fn verify_rejects_stale_and_future_timestamps() {
    let body = br#"{"ticket_id":"35436"}"#;
    let headers = signed(SECRET, SENT, body);
    let tolerance = TOLERANCE;
    assert_eq!(tolerance, chrono::Duration::minutes(5));
    assert!(verify_at(sent() + tolerance, &[SECRET], &headers, body).is_ok());
    assert!(verify_at(sent() - tolerance, &[SECRET], &headers, body).is_ok());
    for now in [
        sent() + tolerance + chrono::Duration::seconds(1),
        sent() - tolerance - chrono::Duration::seconds(1),
        sent() + chrono::Duration::days(1),
    ] {
        assert!(
            matches!(
                verify_at(now, &[SECRET], &headers, body),
                Err(VerifyError::Malformed(reason)) if reason.contains("5 minutes")
            ),
            "{now}"
        );
    }
    // A signed timestamp that is not a time is refused, not trusted.
    let odd = signed(SECRET, "yesterday", body);
    assert!(matches!(
        verify_at(sent(), &[SECRET], &odd, body),
        Err(VerifyError::Malformed(_))
    ));
    // The real clock: a request signed now passes `verify`.
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert!(Zendesk
        .verify(&[SECRET], &signed(SECRET, &now, body), body)
        .is_ok());
    assert!(Zendesk.verify(&[SECRET], &headers, body).is_err());
}

#[test]
fn dedupe_keys_tell_invocations_apart_not_webhooks() {
    let body = br#"{"ticket_id":"35436"}"#;
    let key_of = |headers: &HeaderMap| match verify_at(sent(), &[SECRET], headers, body).unwrap() {
        Intake::Delivery { dedupe_key, .. } => dedupe_key,
        other => panic!("{other:?}"),
    };
    let first = signed(SECRET, SENT, body);
    let mut second = first.clone();
    second.insert(
        "x-zendesk-webhook-invocation-id",
        HeaderValue::from_static("8350205583"),
    );
    assert_ne!(key_of(&first), key_of(&second));
    assert_eq!(key_of(&first), key_of(&first.clone()));
    let mut bare = first.clone();
    bare.remove("x-zendesk-webhook-invocation-id");
    assert_eq!(key_of(&bare), format!("sha256:{}", sha256_hex(body)));
}

// --- references ----------------------------------------------------------------

#[test]
fn references_name_the_ticket_of_events_and_trigger_bodies() {
    let event = serde_json::to_vec(&fixture("ticket-event.json")).unwrap();
    assert_eq!(
        Zendesk
            .references("zen:event-type:ticket.comment_added", &event)
            .unwrap(),
        vec![(Resource::Messages, "35436".to_owned())]
    );
    for body in [
        json!({"ticket": {"id": 35436, "requester": {"email": "ada@example.com"}}}),
        json!({"ticket_id": "35436"}),
        json!({"ticket_id": 35436}),
        json!({"id": "35436", "title": "Where is my order?"}),
    ] {
        assert_eq!(
            Zendesk
                .references("trigger", &serde_json::to_vec(&body).unwrap())
                .unwrap(),
            vec![(Resource::Messages, "35436".to_owned())],
            "{body}"
        );
    }
    assert_eq!(
        ticket_id(b"ticket_id=35436&status=open").as_deref(),
        Some("35436")
    );
    // The top-level id of an event is the event's, never the ticket's.
    let mut no_detail = fixture("ticket-event.json");
    no_detail.as_object_mut().unwrap().remove("detail");
    assert!(Zendesk
        .references(
            "zen:event-type:ticket.comment_added",
            &serde_json::to_vec(&no_detail).unwrap()
        )
        .is_err());
}

#[test]
fn references_skip_non_ticket_events_and_refuse_bodies_without_a_ticket() {
    let user_event =
        json!({"type": "zen:event-type:user.email_changed", "detail": {"id": "20978392"}});
    assert_eq!(
        Zendesk
            .references(
                "zen:event-type:user.email_changed",
                &serde_json::to_vec(&user_event).unwrap()
            )
            .unwrap(),
        vec![]
    );
    for body in [
        json!({"ticket": {"subject": "Where is my order?"}}),
        json!({"ticket_id": "abc"}),
        json!({"ticket_id": "0"}),
        json!({"ticket_id": -3}),
    ] {
        let err = Zendesk
            .references("trigger", &serde_json::to_vec(&body).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("no ticket id"), "{err}");
    }
    assert!(Zendesk.references("trigger", b"not json at all").is_err());
    // The delivery itself decodes to nothing: the fetch brings the records.
    assert_eq!(
        Zendesk
            .decode(
                "trigger",
                br#"{"ticket_id":"1"}"#,
                &DecodeContext::default()
            )
            .unwrap(),
        vec![]
    );
}

// --- mapping ---------------------------------------------------------------------

fn fixture_ticket() -> Ticket {
    serde_json::from_value(json!({
        "id": 35436, "subject": "Where is my order?", "status": "open",
        "requester_id": 20978392, "updated_at": "2025-01-01T12:30:00Z"
    }))
    .unwrap()
}

fn fixture_messages(region: Option<&str>) -> Vec<SourceRecord> {
    let page: CommentsPage = serde_json::from_value(fixture("ticket-comments.json")).unwrap();
    let mut users = Users::new();
    mapping::add_users(&mut users, page.users);
    mapping::ticket_messages(&fixture_ticket(), &page.comments, &users, region).unwrap()
}

#[test]
fn public_comments_become_messages_with_the_requesters_keys() {
    let records = fixture_messages(Some("DE"));
    let expected_keys = vec![
        key(KeyKind::Email, "ada@example.com"),
        key(KeyKind::Phone, "+4930901820"),
        key(KeyKind::CustomerId, "20978392"),
    ];
    assert_eq!(records.len(), 2, "the internal note is not a message");

    let inbound = &records[0];
    assert_eq!(inbound.external_id, "1274");
    assert_eq!(inbound.version, at("2025-01-01T12:30:00Z"));
    assert_eq!(inbound.occurred_at, at("2025-01-01T12:00:00Z"));
    assert_eq!(inbound.keys, expected_keys);
    assert_eq!(
        message(inbound),
        &Message {
            conversation_id: "35436".to_owned(),
            channel: "zendesk".to_owned(),
            direction: Direction::Inbound,
            sender_name: Some("Ada Lovelace".to_owned()),
            sender_handle: Some("Ada@Example.com".to_owned()),
            text: Some("Hi, my order #1001 has not arrived yet.\n\nThanks, Ada".to_owned()),
            subject: Some("Where is my order?".to_owned()),
            attachments: vec![Attachment {
                name: Some("receipt.pdf".to_owned()),
                content_type: Some("application/pdf".to_owned()),
                size: Some(2532),
            }],
        }
    );

    let reply = &records[1];
    assert_eq!(reply.external_id, "1276");
    assert_eq!(reply.occurred_at, at("2025-01-01T12:20:00Z"));
    assert_eq!(
        reply.keys, expected_keys,
        "the customer's keys, not the agent's"
    );
    let m = message(reply);
    assert_eq!(m.direction, Direction::Outbound);
    assert_eq!(m.sender_name.as_deref(), Some("Sam Agent"));
    assert_eq!(
        m.text.as_deref(),
        Some("Hello Ada, your parcel is on its way.")
    );
    assert!(m.attachments.is_empty());
}

#[test]
fn direction_falls_back_to_the_requester_when_roles_are_unknown() {
    let page: CommentsPage = serde_json::from_value(fixture("ticket-comments.json")).unwrap();
    let records =
        mapping::ticket_messages(&fixture_ticket(), &page.comments, &Users::new(), None).unwrap();
    let directions: Vec<Direction> = records.iter().map(|r| message(r).direction).collect();
    assert_eq!(directions, vec![Direction::Inbound, Direction::Outbound]);
    // Without the user, only the requester id is a key; the handle is the id.
    assert_eq!(records[0].keys, vec![key(KeyKind::CustomerId, "20978392")]);
    assert_eq!(
        message(&records[0]).sender_handle.as_deref(),
        Some("20978392")
    );
}

#[test]
fn an_edit_of_the_ticket_bumps_the_version_of_the_same_messages() {
    let before = fixture_messages(None);
    let mut ticket = fixture_ticket();
    ticket.updated_at = Some("2025-01-02T08:00:00Z".to_owned());
    ticket.subject = Some("Where is my order #1001?".to_owned());
    let page: CommentsPage = serde_json::from_value(fixture("ticket-comments.json")).unwrap();
    let mut users = Users::new();
    mapping::add_users(&mut users, page.users);
    let after = mapping::ticket_messages(&ticket, &page.comments, &users, None).unwrap();
    assert_eq!(before[0].external_id, after[0].external_id);
    assert!(after[0].version > before[0].version);
    assert_eq!(
        message(&after[0]).subject.as_deref(),
        Some("Where is my order #1001?")
    );
}

#[test]
fn tickets_without_a_requester_and_bad_times_are_handled() {
    let page: CommentsPage = serde_json::from_value(fixture("ticket-comments.json")).unwrap();
    let mut ticket = fixture_ticket();
    ticket.requester_id = None;
    assert_eq!(
        mapping::ticket_messages(&ticket, &page.comments, &Users::new(), None).unwrap(),
        vec![]
    );
    let mut ticket = fixture_ticket();
    ticket.updated_at = Some("soon".to_owned());
    let err = mapping::ticket_messages(&ticket, &page.comments, &Users::new(), None).unwrap_err();
    assert_eq!(err, "ticket 35436: updated_at is not a time");
}

#[test]
fn the_shared_export_sample_decodes() {
    let sample = fixtures::resource("zendesk-incremental-tickets.json");
    let page: super::mapping::ExportPage = serde_json::from_value(sample).unwrap();
    assert_eq!(page.tickets.len(), 1);
    assert_eq!(page.tickets[0].id, 35436);
    assert_eq!(page.tickets[0].requester_id, Some(20978392));
    assert_eq!(
        page.tickets[0].updated().unwrap(),
        at("2025-01-01T12:30:00Z")
    );
    assert_eq!(
        page.after_cursor.as_deref(),
        Some("MTU4MDc1Mzc5OC4wfHw0MzJ8")
    );
    assert_eq!(page.end_of_stream, Some(false));
}

// --- fake Zendesk ------------------------------------------------------------------

mod fake {
    use super::*;
    use axum::body::Bytes;
    use axum::extract::{Query, State};
    use axum::http::{Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    pub(super) const EMAIL: &str = "agent@shop.example";
    pub(super) const TOKEN: &str = "zd-api-token";

    #[derive(Debug, Clone)]
    pub(super) struct Seen {
        pub(super) path: String,
        pub(super) query: Vec<(String, String)>,
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
    pub(super) struct Desk {
        /// Tickets: `id`, `updated_at`, `requester_id`, `subject`, `status`.
        pub(super) tickets: Vec<Value>,
        pub(super) users: Vec<Value>,
        pub(super) comments: HashMap<u64, Vec<Value>>,
        /// Leave users out of the export's sideload.
        pub(super) no_export_users: bool,
        pub(super) seen: Vec<Seen>,
        pub(super) fail_next: Option<(StatusCode, Option<&'static str>, String)>,
        /// Rate-limit headers on every answer: limit, remaining, reset.
        pub(super) rate: Option<(u64, u64, u64)>,
    }

    pub(super) type Shared = Arc<Mutex<Desk>>;

    pub(super) async fn start(desk: Shared) -> String {
        let router = axum::Router::new().fallback(handle).with_state(desk);
        crate::testkit::serve(router).await
    }

    fn error(status: StatusCode, error: &str, description: &str) -> Response {
        (
            status,
            axum::Json(json!({"error": error, "description": description})),
        )
            .into_response()
    }

    fn authorised(headers: &axum::http::HeaderMap) -> bool {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{TOKEN}"))
        );
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    }

    fn unix(ticket: &Value) -> i64 {
        at(ticket["updated_at"].as_str().unwrap()).timestamp()
    }

    async fn handle(
        State(desk): State<Shared>,
        method: Method,
        uri: Uri,
        headers: axum::http::HeaderMap,
        Query(query): Query<Vec<(String, String)>>,
        _body: Bytes,
    ) -> Response {
        let mut desk = desk.lock().unwrap();
        let path = uri.path().to_owned();
        desk.seen.push(Seen {
            path: path.clone(),
            query: query.clone(),
        });
        if !authorised(&headers) {
            return error(
                StatusCode::UNAUTHORIZED,
                "Couldn't authenticate you",
                "Couldn't authenticate you",
            );
        }
        if let Some((status, retry_after, body)) = desk.fail_next.take() {
            let mut response = (status, body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(seconds));
            }
            return response;
        }
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut response = if method != Method::GET {
            error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
        } else if path == "/api/v2/incremental/tickets/cursor.json" {
            export(&desk, &param)
        } else if path == "/api/v2/users/show_many.json" {
            let ids: Vec<u64> = param("ids")
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.parse().ok())
                .collect();
            let users: Vec<Value> = desk
                .users
                .iter()
                .filter(|u| ids.contains(&u["id"].as_u64().unwrap()))
                .cloned()
                .collect();
            axum::Json(json!({"users": users, "next_page": null, "count": users.len()}))
                .into_response()
        } else if let Some(rest) = path.strip_prefix("/api/v2/tickets/") {
            if let Some(id) = rest.strip_suffix("/comments.json") {
                comments(&desk, id, &param)
            } else if let Some(id) = rest.strip_suffix(".json") {
                show(&desk, id)
            } else {
                error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
            }
        } else {
            error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
        };
        if let Some((limit, remaining, reset)) = desk.rate {
            let h = response.headers_mut();
            h.insert("x-rate-limit", HeaderValue::from(limit));
            h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
            h.insert("ratelimit-reset", HeaderValue::from(reset));
        }
        response
    }

    fn users_of(desk: &Desk, ids: &[u64]) -> Vec<Value> {
        desk.users
            .iter()
            .filter(|u| ids.contains(&u["id"].as_u64().unwrap()))
            .cloned()
            .collect()
    }

    /// The cursor-based export: tickets ordered by (updated_at, id) from
    /// `start_time`, continued by an opaque cursor holding the position.
    fn export(desk: &Desk, param: &dyn Fn(&str) -> Option<String>) -> Response {
        let per_page: usize = match param("per_page").map(|v| v.parse::<usize>()) {
            None => 1000,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationParameter",
                    "per_page",
                )
            }
        };
        let (start, offset) = match (param("start_time"), param("cursor")) {
            (Some(start), None) => match start.parse::<i64>() {
                Ok(s) => (s, 0usize),
                Err(_) => return error(StatusCode::BAD_REQUEST, "InvalidValue", "start_time"),
            },
            (None, Some(cursor)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(cursor)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let parts: Option<(i64, usize)> = decoded.and_then(|d| {
                    let (s, o) = d.split_once('|')?;
                    Some((s.parse().ok()?, o.parse().ok()?))
                });
                match parts {
                    Some(p) => p,
                    None => return error(StatusCode::BAD_REQUEST, "InvalidCursor", "cursor"),
                }
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "start_time or cursor",
                )
            }
        };
        let mut rows: Vec<&Value> = desk.tickets.iter().filter(|t| unix(t) >= start).collect();
        rows.sort_by_key(|t| (unix(t), t["id"].as_u64().unwrap()));
        let page: Vec<Value> = rows
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|t| (*t).clone())
            .collect();
        let next = offset + page.len();
        let cursor = base64::engine::general_purpose::STANDARD.encode(format!("{start}|{next}"));
        let requesters: Vec<u64> = page
            .iter()
            .filter_map(|t| t["requester_id"].as_u64())
            .collect();
        let users = if param("include").as_deref() == Some("users") && !desk.no_export_users {
            users_of(desk, &requesters)
        } else {
            Vec::new()
        };
        axum::Json(json!({
            "tickets": page,
            "users": users,
            "after_url": format!("https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
            "after_cursor": cursor,
            "before_url": null,
            "before_cursor": null,
            "end_of_stream": next >= rows.len(),
        }))
        .into_response()
    }

    fn show(desk: &Desk, id: &str) -> Response {
        let Some(ticket) = desk
            .tickets
            .iter()
            .find(|t| t["id"].as_u64().map(|i| i.to_string()).as_deref() == Some(id))
        else {
            return error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found");
        };
        let requester: Vec<u64> = ticket["requester_id"].as_u64().into_iter().collect();
        axum::Json(json!({"ticket": ticket, "users": users_of(desk, &requester)})).into_response()
    }

    /// Cursor pagination: `page[size]` (at most 100) and `page[after]`.
    fn comments(desk: &Desk, id: &str, param: &dyn Fn(&str) -> Option<String>) -> Response {
        let Ok(id) = id.parse::<u64>() else {
            return error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found");
        };
        if !desk.tickets.iter().any(|t| t["id"].as_u64() == Some(id)) {
            return error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found");
        }
        let size: usize = match param("page[size]").map(|v| v.parse::<usize>()) {
            None => 100,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationParameter",
                    "page[size]",
                )
            }
        };
        let offset: usize = match param("page[after]") {
            None => 0,
            Some(c) => match c.strip_prefix("after-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidPaginationParameter",
                        "page[after]",
                    )
                }
            },
        };
        let all = desk.comments.get(&id).cloned().unwrap_or_default();
        let page: Vec<Value> = all.iter().skip(offset).take(size).cloned().collect();
        let next = offset + page.len();
        let authors: Vec<u64> = page
            .iter()
            .filter_map(|c| c["author_id"].as_u64())
            .collect();
        let users = if param("include").as_deref() == Some("users") {
            users_of(desk, &authors)
        } else {
            Vec::new()
        };
        axum::Json(json!({
            "comments": page,
            "users": users,
            "meta": {"has_more": next < all.len(), "after_cursor": format!("after-{next}"), "before_cursor": format!("before-{offset}")},
            "links": {"next": null, "prev": null},
        }))
        .into_response()
    }
}

fn ticket(id: u64, updated: &str, requester: u64) -> Value {
    json!({
        "id": id, "subject": format!("Ticket {id}"), "raw_subject": format!("Ticket {id}"),
        "status": "open", "requester_id": requester, "submitter_id": requester,
        "created_at": "2024-12-31T00:00:00Z", "updated_at": updated, "via": {"channel": "email"}
    })
}

fn comment(id: u64, author: u64, public: bool, created: &str) -> Value {
    json!({
        "id": id, "type": "Comment", "author_id": author, "body": format!("comment {id}"),
        "plain_body": format!("comment {id}"), "public": public, "attachments": [],
        "created_at": created
    })
}

fn end_user(id: u64) -> Value {
    json!({"id": id, "name": format!("User {id}"), "email": format!("user{id}@example.com"), "role": "end-user"})
}

const AGENT: u64 = 9;

/// 230 tickets; 120 share one `updated_at`; ticket 7 has 150 public comments
/// (two comment pages), every other one an inbound comment, an internal
/// note and an agent reply.
fn busy_desk() -> fake::Desk {
    let mut desk = fake::Desk::default();
    desk.users.push(
        json!({"id": AGENT, "name": "Sam Agent", "email": "sam@shop.example", "role": "agent"}),
    );
    for id in 1..=230u64 {
        let updated = if id <= 120 {
            "2025-01-01T10:00:00Z".to_owned()
        } else {
            (at("2025-01-01T10:00:00Z") + chrono::Duration::minutes(id as i64 - 120))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        let requester = 1000 + id;
        desk.tickets.push(ticket(id, &updated, requester));
        desk.users.push(end_user(requester));
        let comments = if id == 7 {
            (0..150)
                .map(|n| comment(700_000 + n, requester, true, "2025-01-01T09:00:00Z"))
                .collect()
        } else {
            vec![
                comment(id * 10 + 1, requester, true, "2025-01-01T09:00:00Z"),
                comment(id * 10 + 2, AGENT, false, "2025-01-01T09:01:00Z"),
                comment(id * 10 + 3, AGENT, true, "2025-01-01T09:02:00Z"),
            ]
        };
        desk.comments.insert(id, comments);
    }
    desk.tickets.reverse();
    desk
}

fn expected_comment_ids() -> Vec<u64> {
    let mut ids = Vec::new();
    for id in 1..=230u64 {
        if id == 7 {
            ids.extend((0..150).map(|n| 700_000 + n));
        } else {
            ids.extend([id * 10 + 1, id * 10 + 3]);
        }
    }
    ids.sort_unstable();
    ids
}

async fn desk_with(desk: fake::Desk) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(desk));
    let base = fake::start(shared.clone()).await;
    let mut fixture = ApiFixture::new(
        &base,
        json!({"subdomain": "acme"}),
        json!({"webhook_secret": "whsec", "email": fake::EMAIL, "api_token": fake::TOKEN}),
    );
    fixture.now = at("2025-01-03T00:00:00Z");
    (shared, fixture)
}

fn exports(desk: &fake::Shared) -> Vec<fake::Seen> {
    desk.lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.path == "/api/v2/incremental/tickets/cursor.json")
        .cloned()
        .collect()
}

async fn sweep(fixture: &ApiFixture, cursor: Value) -> Vec<Page> {
    crate::testkit::sweep(&Zendesk, fixture, Resource::Messages, cursor).await
}

fn comment_ids(pages: &[Page]) -> Vec<u64> {
    let mut ids: Vec<u64> = pages
        .iter()
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| r.external_id.parse::<u64>().unwrap())
        })
        .collect();
    ids.sort_unstable();
    ids
}

// --- polling ---------------------------------------------------------------------

#[tokio::test]
async fn a_sweep_reads_every_public_comment_once_across_pages_and_ties() {
    let (desk, fixture) = desk_with(busy_desk()).await;
    let pages = sweep(&fixture, Zendesk.start_cursor(Resource::Messages, None)).await;
    assert_eq!(pages.len(), 3, "230 tickets at 100 a page");
    assert_eq!(comment_ids(&pages), expected_comment_ids());
    let all: Vec<&SourceRecord> = pages.iter().flat_map(|p| &p.records).collect();
    assert_eq!(all.len(), 150 + 229 * 2, "no duplicates");

    // Keys and direction of one ticket's pair.
    let inbound = all.iter().find(|r| r.external_id == "11").unwrap();
    assert_eq!(
        inbound.keys,
        vec![
            key(KeyKind::Email, "user1001@example.com"),
            key(KeyKind::CustomerId, "1001")
        ]
    );
    assert_eq!(message(inbound).direction, Direction::Inbound);
    assert_eq!(message(inbound).conversation_id, "1");
    let reply = all.iter().find(|r| r.external_id == "13").unwrap();
    assert_eq!(reply.keys, inbound.keys);
    assert_eq!(message(reply).direction, Direction::Outbound);
    assert_eq!(message(reply).sender_name.as_deref(), Some("Sam Agent"));

    // The export was read from 2007 with its own cursor, never re-filtered.
    let calls = exports(&desk);
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].param("start_time"),
        Some(earliest().timestamp().to_string().as_str())
    );
    assert_eq!(calls[0].param("per_page"), Some("100"));
    assert_eq!(calls[0].param("include"), Some("users"));
    assert_eq!(calls[0].param("exclude_deleted"), Some("true"));
    assert!(calls[1].param("start_time").is_none());
    assert!(calls[1].param("cursor").is_some());
    // Ticket 7's 150 comments took two comment pages.
    let seven: Vec<fake::Seen> = desk
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.path == "/api/v2/tickets/7/comments.json")
        .cloned()
        .collect();
    assert_eq!(seven.len(), 2);
    assert_eq!(seven[1].param("page[after]"), Some("after-100"));

    // Not caught up: paced for the 10-a-minute export limit.
    assert_eq!(pages[0].pace, Some(EXPORT_SPACING));
    assert!(!pages[0].caught_up && pages[2].caught_up);
    let last = at("2025-01-01T10:00:00Z") + chrono::Duration::minutes(110);
    assert_eq!(pages[2].watermark, Some(last));
    assert_eq!(pages[0].watermark, None);
}

#[tokio::test]
async fn a_sweep_resumes_from_a_mid_sweep_cursor() {
    let (_desk, fixture) = desk_with(busy_desk()).await;
    let first = Zendesk
        .poll(
            &fixture.api(),
            Resource::Messages,
            &Zendesk.start_cursor(Resource::Messages, None),
        )
        .await
        .unwrap();
    // A crash after the first page: the stored cursor yields the rest.
    let rest = sweep(&fixture, first.cursor.clone()).await;
    let mut ids = comment_ids(std::slice::from_ref(&first));
    ids.extend(comment_ids(&rest));
    ids.sort_unstable();
    assert_eq!(ids, expected_comment_ids());
    assert_eq!(rest.len(), 2);
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let (desk, fixture) = desk_with(busy_desk()).await;
    let pages = sweep(&fixture, Zendesk.start_cursor(Resource::Messages, None)).await;
    let watermark = pages.last().unwrap().watermark.unwrap();
    desk.lock().unwrap().seen.clear();
    let next = sweep(&fixture, pages.last().unwrap().cursor.clone()).await;
    let calls = exports(&desk);
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap();
    assert_eq!(
        calls[0].param("start_time"),
        Some((watermark - lookback).timestamp().to_string().as_str())
    );
    // Only the tickets changed in the overlap come again.
    assert_eq!(next.len(), 1);
    let tickets: Vec<String> = next[0]
        .records
        .iter()
        .map(|r| message(r).conversation_id.clone())
        .collect();
    assert!(
        tickets.iter().all(|t| t.parse::<u64>().unwrap() >= 225),
        "{tickets:?}"
    );
    assert_eq!(next[0].watermark, Some(watermark));
}

#[tokio::test]
async fn start_cursor_since_and_recent_starts_are_clamped() {
    let (desk, fixture) = desk_with(busy_desk()).await;
    let since = at("2025-01-01T11:40:00Z");
    let pages = sweep(
        &fixture,
        Zendesk.start_cursor(Resource::Messages, Some(since)),
    )
    .await;
    assert_eq!(
        exports(&desk)[0].param("start_time"),
        Some(since.timestamp().to_string().as_str())
    );
    let tickets: std::collections::BTreeSet<u64> = pages
        .iter()
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| message(r).conversation_id.parse().unwrap())
        })
        .collect();
    assert_eq!(tickets, (220..=230).collect());

    // A start too close to now is moved back.
    desk.lock().unwrap().seen.clear();
    let future = fixture.now + chrono::Duration::minutes(3);
    Zendesk
        .poll(
            &fixture.api(),
            Resource::Messages,
            &Zendesk.start_cursor(Resource::Messages, Some(future)),
        )
        .await
        .unwrap();
    assert_eq!(
        exports(&desk)[0].param("start_time"),
        Some(
            (fixture.now - EXPORT_DELAY)
                .timestamp()
                .to_string()
                .as_str()
        )
    );
}

#[tokio::test]
async fn requesters_missing_from_sideloads_are_read_by_id() {
    let mut desk = fake::Desk {
        no_export_users: true,
        ..Default::default()
    };
    desk.users.push(end_user(77));
    desk.users.push(
        json!({"id": AGENT, "name": "Sam Agent", "email": "sam@shop.example", "role": "agent"}),
    );
    desk.tickets.push(ticket(5, "2025-01-01T10:00:00Z", 77));
    // The requester never wrote: only the agent's comment is there.
    desk.comments
        .insert(5, vec![comment(51, AGENT, true, "2025-01-01T09:00:00Z")]);
    let (desk, fixture) = desk_with(desk).await;
    let pages = sweep(&fixture, Zendesk.start_cursor(Resource::Messages, None)).await;
    let records: Vec<&SourceRecord> = pages.iter().flat_map(|p| &p.records).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].keys,
        vec![
            key(KeyKind::Email, "user77@example.com"),
            key(KeyKind::CustomerId, "77")
        ]
    );
    let lookups: Vec<fake::Seen> = desk
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.path == "/api/v2/users/show_many.json")
        .cloned()
        .collect();
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].param("ids"), Some("77"));
}

#[tokio::test]
async fn fetch_reads_one_ticket_for_a_webhook() {
    let (desk, fixture) = desk_with(busy_desk()).await;
    let records = Zendesk
        .fetch(&fixture.api(), Resource::Messages, "12")
        .await
        .unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    assert_eq!(ids, vec!["121", "123"]);
    assert!(records
        .iter()
        .all(|r| message(r).subject.as_deref() == Some("Ticket 12")));
    let paths: Vec<String> = desk
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/api/v2/tickets/12.json",
            "/api/v2/tickets/12/comments.json"
        ]
    );

    // A ticket gone since the notification yields nothing.
    assert_eq!(
        Zendesk
            .fetch(&fixture.api(), Resource::Messages, "99999")
            .await
            .unwrap(),
        vec![]
    );
    assert!(matches!(
        Zendesk
            .fetch(&fixture.api(), Resource::Messages, "12/../1")
            .await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        Zendesk.fetch(&fixture.api(), Resource::Reviews, "12").await,
        Err(ConnectorError::Permanent(_))
    ));
}

async fn poll_start(fixture: &ApiFixture) -> Result<Page, ConnectorError> {
    Zendesk
        .poll(
            &fixture.api(),
            Resource::Messages,
            &Zendesk.start_cursor(Resource::Messages, None),
        )
        .await
}

#[tokio::test]
async fn throttles_refusals_and_failures_are_classified() {
    let (desk, mut fixture) = desk_with(busy_desk()).await;
    let fail = |status: http::StatusCode, retry: Option<&'static str>, body: &str| {
        desk.lock().unwrap().fail_next = Some((status, retry, body.to_owned()));
    };
    fail(
        http::StatusCode::TOO_MANY_REQUESTS,
        Some("42"),
        "Too Many Requests",
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(42))
        }
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap().records.len(),
        100 * 2 + 150 - 2
    );

    fail(http::StatusCode::INTERNAL_SERVER_ERROR, None, "oops");
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Transient(_)
    ));
    fail(
        http::StatusCode::FORBIDDEN,
        None,
        r#"{"error":"Forbidden"}"#,
    );
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized(_)
    ));
    fail(http::StatusCode::OK, None, "<html>maintenance</html>");
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Malformed(_)
    ));
    fail(http::StatusCode::OK, None, r#"{"tickets": []}"#);
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Malformed("export page has no end_of_stream".to_owned())
    );
    assert!(matches!(
        Zendesk
            .poll(&fixture.api(), Resource::Messages, &json!({"page": 3}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        Zendesk
            .poll(&fixture.api(), Resource::Orders, &json!({"start_time": 0}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));

    // Wrong token: the fake refuses like Zendesk.
    fixture
        .secrets
        .insert("api_token".to_owned(), json!("wrong"));
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("the platform answered 401".to_owned())
    );
    // Missing credentials: no call at all.
    fixture.secrets.remove("email");
    desk.lock().unwrap().seen.clear();
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("secrets.email is not set".to_owned())
    );
    assert!(desk.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn a_nearly_spent_rate_limit_paces_until_the_reset() {
    let (desk, fixture) = desk_with(busy_desk()).await;
    desk.lock().unwrap().rate = Some((700, 30, 41));
    let page = poll_start(&fixture).await.unwrap();
    assert_eq!(page.pace, Some(Duration::from_secs(41)));
    desk.lock().unwrap().rate = Some((700, 600, 41));
    let page = poll_start(&fixture).await.unwrap();
    assert_eq!(page.pace, Some(EXPORT_SPACING));
}

#[test]
fn cursors_round_trip_as_documented() {
    let since = at("2025-01-01T00:00:00Z");
    assert_eq!(
        Zendesk.start_cursor(Resource::Messages, Some(since)),
        json!({"start_time": since.timestamp(), "watermark": "2025-01-01T00:00:00Z"})
    );
    let none: BTreeMap<String, Value> =
        serde_json::from_value(Zendesk.start_cursor(Resource::Messages, None)).unwrap();
    assert_eq!(none.len(), 1);
    assert_eq!(none["start_time"], json!(earliest().timestamp()));
}
