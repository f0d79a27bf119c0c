use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::client::{ORDER_BY, PER_PAGE};
use super::mapping::{review_row, ReviewList, TpReview};
use super::sweep::{Row, FULL_SWEEP_EVERY};
use super::Trustpilot;
use crate::model::{IdentityKey, KeyKind, RecordBody, Review, SourceRecord};
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::ApiFixture;

const UNIT: &str = "46d6a890ffa235a75b00021d";
const KEY: &str = "tp-api-key";
const OAUTH: &str = "tp-business-token";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn review_of(record: &SourceRecord) -> &Review {
    match &record.body {
        RecordBody::Review(r) => r,
        other => panic!("expected a review, got {other:?}"),
    }
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "reviews-page.json" => include_str!("fixtures/reviews-page.json"),
        "private-review.json" => include_str!("fixtures/private-review.json"),
        other => panic!("no fixture {other}"),
    };
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("_note");
    value
}

fn row(value: Value) -> Result<Row, String> {
    let review: TpReview = serde_json::from_value(value).unwrap();
    review_row(&review, None)
}

// --- connector and mapping ---------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("trustpilot").expect("in registry");
    assert_eq!(c.platform(), "trustpilot");
    assert_eq!(c.required_settings(), &["business_unit_id"]);
    assert_eq!(c.required_secrets(), &["api_key"]);
    assert!(c.webhooks().is_none());
    let polling = c.polling().unwrap();
    assert_eq!(polling.resources(), &[Resource::Reviews]);
    assert_eq!(
        polling.default_base_url(&serde_json::Map::new()),
        Some("https://api.trustpilot.com".to_owned())
    );
}

#[test]
fn a_public_page_decodes_exactly() {
    let list: ReviewList = serde_json::from_value(fixture("reviews-page.json")).unwrap();
    assert!(list.has_next(2));
    let rows: Vec<Row> = list
        .reviews
        .iter()
        .map(|r| review_row(r, None).unwrap())
        .collect();

    let revised = rows[0].record.as_ref().unwrap();
    assert_eq!(revised.external_id, "5e3de1b45fb06f0001790b51");
    assert_eq!(revised.version, at("2025-01-22T08:00:00Z"));
    assert_eq!(revised.occurred_at, at("2025-01-20T10:15:00Z"));
    assert_eq!(rows[0].created, at("2025-01-20T10:15:00Z"));
    assert_eq!(
        revised.keys,
        vec![key(KeyKind::CustomerId, "5e3de1b45fb06f0001790b50")]
    );
    assert_eq!(
        review_of(revised),
        &Review {
            product: None,
            rating: Decimal::from(2),
            rating_scale: Decimal::from(5),
            score: 0.4,
            text: Some(
                "Slow delivery\n\nThe parcel arrived two weeks late and nobody answered my emails."
                    .to_owned()
            ),
            reviewer_name: Some("John D.".to_owned()),
            reviewer_email: None,
            verified: Some(true),
        }
    );

    // Never revised: `updatedAt` is null, the version is the creation.
    let plain = rows[1].record.as_ref().unwrap();
    assert_eq!(plain.version, at("2025-01-19T18:00:00Z"));
    let review = review_of(plain);
    assert_eq!(
        review.text.as_deref(),
        Some("Lovely shop"),
        "title repeats text"
    );
    assert_eq!(review.score, 1.0);
    assert_eq!(review.verified, Some(false));
}

#[test]
fn a_private_review_carries_the_customers_email() {
    let record = row(fixture("private-review.json")).unwrap().record.unwrap();
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "john.doe@example.com"),
            key(KeyKind::CustomerId, "5e3de1b45fb06f0001790b50"),
        ]
    );
    assert_eq!(
        review_of(&record).reviewer_email.as_deref(),
        Some("John.Doe@Example.com")
    );
    // The other spelling works too.
    let mut v = fixture("private-review.json");
    v.as_object_mut().unwrap().remove("referralEmail");
    v["consumer"]["email"] = json!("john@example.com");
    let record = row(v).unwrap().record.unwrap();
    assert!(record
        .keys
        .contains(&key(KeyKind::Email, "john@example.com")));
}

#[test]
fn a_revision_keeps_the_id_with_a_newer_version() {
    let before = row(fixture("private-review.json")).unwrap().record.unwrap();
    let mut v = fixture("private-review.json");
    v["stars"] = json!(4);
    v["text"] = json!("Late, but support sorted it out.");
    v["updatedAt"] = json!("2025-02-01T12:00:00Z");
    let after = row(v).unwrap().record.unwrap();
    assert_eq!(after.external_id, before.external_id);
    assert!(after.version > before.version);
    assert_eq!(after.occurred_at, before.occurred_at);
    assert_eq!(review_of(&after).rating, Decimal::from(4));
}

#[test]
fn unrated_and_broken_reviews() {
    let mut v = fixture("private-review.json");
    v["stars"] = json!(0);
    assert_eq!(row(v).unwrap().record, None);
    let mut v = fixture("private-review.json");
    v["stars"] = json!(6);
    assert_eq!(
        row(v).unwrap_err(),
        "review 5e3de1b45fb06f0001790b51: stars is above 5"
    );
    let mut v = fixture("private-review.json");
    v["createdAt"] = json!("John's day");
    assert_eq!(
        row(v).unwrap_err(),
        "review 5e3de1b45fb06f0001790b51: createdAt is not a time"
    );
}

// --- fake Trustpilot -------------------------------------------------------------------

mod fake {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    #[derive(Debug, Default)]
    pub(super) struct Unit {
        pub(super) reviews: Vec<Value>,
        /// (path, page) of every listing call.
        pub(super) calls: Vec<(String, u32)>,
        pub(super) fail_next: Option<(StatusCode, Option<&'static str>, String)>,
    }

    pub(super) type Shared = Arc<Mutex<Unit>>;

    pub(super) async fn start(unit: Shared) -> String {
        let router = axum::Router::new().fallback(handle).with_state(unit);
        crate::testkit::serve(router).await
    }

    fn refuse(status: StatusCode, message: &str) -> Response {
        (status, axum::Json(json!({"message": message}))).into_response()
    }

    async fn handle(
        State(unit): State<Shared>,
        uri: Uri,
        headers: HeaderMap,
        Query(query): Query<Vec<(String, String)>>,
    ) -> Response {
        let mut unit = unit.lock().unwrap();
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let public = format!("/v1/business-units/{UNIT}/reviews");
        let private = format!("/v1/private/business-units/{UNIT}/reviews");
        let path = uri.path().to_owned();
        if header("apikey").as_deref() != Some(KEY) {
            return refuse(StatusCode::UNAUTHORIZED, "Invalid ApiKey");
        }
        if path == private && header("authorization") != Some(format!("Bearer {OAUTH}")) {
            return refuse(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        if let Some((status, retry_after, body)) = unit.fail_next.take() {
            let mut response = (status, body).into_response();
            if let Some(s) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(s));
            }
            return response;
        }
        if path != public && path != private {
            return refuse(StatusCode::NOT_FOUND, "Not found");
        }
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let page: u32 = match param("page").map(|p| p.parse::<u32>()) {
            None => 1,
            Some(Ok(p)) if p >= 1 => p,
            _ => return refuse(StatusCode::BAD_REQUEST, "page"),
        };
        let per_page: usize = match param("perPage").map(|p| p.parse::<usize>()) {
            None => 20,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => return refuse(StatusCode::BAD_REQUEST, "perPage"),
        };
        if !matches!(param("orderBy").as_deref(), None | Some("createdat.desc")) {
            return refuse(StatusCode::BAD_REQUEST, "orderBy");
        }
        unit.calls.push((path.clone(), page));
        let mut rows = unit.reviews.clone();
        rows.sort_by(|a, b| {
            let t = |r: &Value| at(r["createdAt"].as_str().unwrap());
            t(b).cmp(&t(a))
                .then_with(|| b["id"].as_str().cmp(&a["id"].as_str()))
        });
        let total = rows.len();
        let skip = (page as usize - 1) * per_page;
        let reviews: Vec<Value> = rows
            .into_iter()
            .map(|mut r| {
                if path == public {
                    let o = r.as_object_mut().unwrap();
                    o.remove("referralEmail");
                    o.remove("referenceId");
                }
                r
            })
            .skip(skip)
            .take(per_page)
            .collect();
        let mut links = vec![];
        if skip + per_page < total {
            links.push(json!({
                "href": format!("https://api.trustpilot.com{path}?page={}&perPage={per_page}", page + 1),
                "method": "GET", "rel": "next-page"
            }));
        }
        if page > 1 {
            links.push(json!({"href": "…", "method": "GET", "rel": "prev-page"}));
        }
        axum::Json(json!({"links": links, "reviews": reviews})).into_response()
    }
}

fn listed(n: u64, created: &str) -> Value {
    json!({
        "id": format!("r{n:04}"),
        "consumer": {"id": format!("c{n:04}"), "displayName": format!("Consumer {n}")},
        "stars": 1 + n % 5,
        "title": format!("Title {n}"),
        "text": "Text",
        "createdAt": created,
        "updatedAt": null,
        "isVerified": n % 2 == 0,
        "referralEmail": format!("consumer{n}@example.com"),
        "referenceId": format!("order-{n}")
    })
}

/// 230 reviews; 1..=110 share one second.
fn busy_unit() -> fake::Unit {
    let mut unit = fake::Unit::default();
    for n in 1..=230u64 {
        let created = if n <= 110 {
            "2025-01-10T12:00:00Z".to_owned()
        } else {
            (at("2025-01-10T12:00:00Z") + chrono::Duration::hours(n as i64 - 110))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        unit.reviews.push(listed(n, &created));
    }
    unit
}

const NOW: &str = "2025-03-01T00:00:00Z";

async fn unit_with(unit: fake::Unit) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(unit));
    let base = fake::start(shared.clone()).await;
    let mut fixture = ApiFixture::new(
        &base,
        json!({"business_unit_id": UNIT}),
        json!({"api_key": KEY}),
    );
    fixture.now = at(NOW);
    (shared, fixture)
}

async fn sweep(fixture: &ApiFixture, cursor: Value) -> Vec<Page> {
    crate::testkit::sweep(&Trustpilot, fixture, Resource::Reviews, cursor).await
}

fn ids(pages: &[Page]) -> Vec<String> {
    let mut ids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.external_id.clone()))
        .collect();
    ids.sort();
    ids
}

fn range(from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|n| format!("r{n:04}")).collect()
}

#[tokio::test]
async fn the_first_sweep_reads_every_review_once_across_pages_and_ties() {
    let (unit, fixture) = unit_with(busy_unit()).await;
    let pages = sweep(&fixture, Trustpilot.start_cursor(Resource::Reviews, None)).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), range(1, 230));
    let public = format!("/v1/business-units/{UNIT}/reviews");
    assert_eq!(
        unit.lock().unwrap().calls,
        vec![(public.clone(), 1), (public.clone(), 2), (public, 3)]
    );
    // Public listing: no emails, consumer ids only.
    let first = &pages[0].records[0];
    assert_eq!(first.keys.len(), 1);
    assert_eq!(first.keys[0].kind, KeyKind::CustomerId);
    assert_eq!(
        pages[2].watermark,
        Some(at("2025-01-10T12:00:00Z") + chrono::Duration::hours(120))
    );
    assert_eq!((PER_PAGE, ORDER_BY), (100, "createdat.desc"));
}

#[tokio::test]
async fn the_private_listing_is_used_with_an_oauth_token() {
    let (unit, mut fixture) = unit_with(busy_unit()).await;
    fixture
        .secrets
        .insert("access_token".to_owned(), json!(OAUTH));
    let pages = sweep(&fixture, Trustpilot.start_cursor(Resource::Reviews, None)).await;
    assert_eq!(ids(&pages), range(1, 230));
    let calls = unit.lock().unwrap().calls.clone();
    assert!(calls.iter().all(|(p, _)| p.starts_with("/v1/private/")));
    let r7 = pages
        .iter()
        .flat_map(|p| &p.records)
        .find(|r| r.external_id == "r0007")
        .unwrap();
    assert_eq!(
        r7.keys,
        vec![
            key(KeyKind::Email, "consumer7@example.com"),
            key(KeyKind::CustomerId, "c0007")
        ]
    );
    // A refused token is Unauthorized.
    fixture
        .secrets
        .insert("access_token".to_owned(), json!("expired"));
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized(_)
    ));
}

#[tokio::test]
async fn a_sweep_resumes_from_a_mid_sweep_cursor() {
    let (_unit, fixture) = unit_with(busy_unit()).await;
    let first = poll_start(&fixture).await.unwrap();
    let rest = sweep(&fixture, first.cursor.clone()).await;
    let mut all = ids(std::slice::from_ref(&first));
    all.extend(ids(&rest));
    all.sort();
    assert_eq!(all, range(1, 230));
    assert_eq!(rest.len(), 2);
}

#[tokio::test]
async fn recent_sweeps_stop_at_the_bound_and_full_sweeps_find_revisions() {
    let (unit, mut fixture) = unit_with(busy_unit()).await;
    let first = sweep(&fixture, Trustpilot.start_cursor(Resource::Reviews, None)).await;
    let watermark = first.last().unwrap().watermark.unwrap();
    {
        let mut u = unit.lock().unwrap();
        u.reviews.push(listed(231, "2025-03-01T00:20:00Z"));
        let old = u.reviews.iter_mut().find(|r| r["id"] == "r0003").unwrap();
        old["stars"] = json!(5);
        old["updatedAt"] = json!("2025-03-01T00:30:00Z");
        u.calls.clear();
    }
    fixture.now = at(NOW) + chrono::Duration::hours(2);
    let recent = sweep(&fixture, first.last().unwrap().cursor.clone()).await;
    assert_eq!(
        unit.lock().unwrap().calls.len(),
        1,
        "one page reaches the bound"
    );
    assert_eq!(ids(&recent), vec!["r0230".to_owned(), "r0231".to_owned()]);
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap();
    assert!(recent[0]
        .records
        .iter()
        .all(|r| r.version >= watermark - lookback));

    unit.lock().unwrap().calls.clear();
    fixture.now = at(NOW) + FULL_SWEEP_EVERY + chrono::Duration::minutes(1);
    let full = sweep(&fixture, recent.last().unwrap().cursor.clone()).await;
    assert_eq!(unit.lock().unwrap().calls.len(), 3);
    assert_eq!(ids(&full), vec!["r0003".to_owned(), "r0231".to_owned()]);
    let revised = full
        .iter()
        .flat_map(|p| &p.records)
        .find(|r| r.external_id == "r0003")
        .unwrap();
    assert_eq!(revised.version, at("2025-03-01T00:30:00Z"));
    assert_eq!(revised.occurred_at, at("2025-01-10T12:00:00Z"));
    assert_eq!(review_of(revised).rating, Decimal::from(5));
}

async fn poll_start(fixture: &ApiFixture) -> Result<Page, ConnectorError> {
    Trustpilot
        .poll(
            &fixture.api(),
            Resource::Reviews,
            &Trustpilot.start_cursor(Resource::Reviews, None),
        )
        .await
}

#[tokio::test]
async fn throttles_refusals_and_failures_are_classified() {
    let (unit, mut fixture) = unit_with(busy_unit()).await;
    let fail = |status: http::StatusCode, retry: Option<&'static str>, body: &str| {
        unit.lock().unwrap().fail_next = Some((status, retry, body.to_owned()));
    };
    fail(
        http::StatusCode::TOO_MANY_REQUESTS,
        Some("60"),
        r#"{"message":"Too many requests"}"#,
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(poll_start(&fixture).await.unwrap().records.len(), 100);
    fail(http::StatusCode::SERVICE_UNAVAILABLE, None, "");
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Transient(_)
    ));
    fail(
        http::StatusCode::FORBIDDEN,
        None,
        r#"{"message":"Forbidden"}"#,
    );
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized(_)
    ));
    fail(http::StatusCode::OK, None, r#"{"reviews": [{"id": 5}]}"#);
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Malformed(_)
    ));
    fixture
        .settings
        .insert("business_unit_id".to_owned(), json!("../admin"));
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Permanent(m) if m.contains("business_unit_id")
    ));
    fixture.settings.insert(
        "business_unit_id".to_owned(),
        json!("ffffffffffffffffffffffff"),
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Permanent("the platform answered 404".to_owned())
    );
    fixture
        .settings
        .insert("business_unit_id".to_owned(), json!(UNIT));

    fixture.secrets.insert("api_key".to_owned(), json!("wrong"));
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("the platform answered 401".to_owned())
    );
    fixture.secrets.remove("api_key");
    unit.lock().unwrap().calls.clear();
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("secrets.api_key is not set".to_owned())
    );
    assert!(unit.lock().unwrap().calls.is_empty());
    assert!(matches!(
        Trustpilot
            .poll(&fixture.api(), Resource::Messages, &json!({}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
}
