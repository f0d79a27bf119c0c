use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::client::{ORDER_BY, PAGE_SIZE};
use super::mapping::{review_row, GbReview};
use super::GoogleBusiness;
use crate::model::{RecordBody, Review, SourceRecord};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::ApiFixture;

const TOKEN: &str = "ya29.test-token";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn review_of(record: &SourceRecord) -> &Review {
    match &record.body {
        RecordBody::Review(r) => r,
        other => panic!("expected a review, got {other:?}"),
    }
}

fn sample() -> Value {
    fixtures::resource("google-business-review.json")
}

fn row(value: Value) -> Result<super::mapping::Row, String> {
    let review: GbReview = serde_json::from_value(value).unwrap();
    review_row(&review)
}

// --- connector and mapping -------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("google_business").expect("in registry");
    assert_eq!(c.platform(), "google_business");
    assert_eq!(c.required_settings(), &["account_id", "location_id"]);
    assert_eq!(c.required_secrets(), &["access_token"]);
    assert!(c.webhooks().is_none());
    let polling = c.polling().unwrap();
    assert_eq!(polling.resources(), &[Resource::Reviews]);
    assert_eq!(
        polling.default_base_url(&serde_json::Map::new()),
        Some("https://mybusiness.googleapis.com".to_owned())
    );
}

#[test]
fn the_shared_sample_decodes_exactly() {
    let row = row(sample()).unwrap();
    let record = row.record.unwrap();
    assert_eq!(record.external_id, "AbcDef");
    assert_eq!(record.version, at("2026-07-01T10:00:00Z"));
    assert_eq!(record.occurred_at, at("2026-07-01T10:00:00Z"));
    assert!(record.keys.is_empty(), "Google gives no reviewer identity");
    assert_eq!(
        review_of(&record),
        &Review {
            product: None,
            rating: Decimal::from(5),
            rating_scale: Decimal::from(5),
            score: 1.0,
            text: Some("Great service!".to_owned()),
            reviewer_name: Some("Jane Doe".to_owned()),
            reviewer_email: None,
            verified: None,
        }
    );
}

#[test]
fn stars_scale_and_anonymity_are_read() {
    let mut v = sample();
    v["starRating"] = json!("TWO");
    v["reviewer"]["isAnonymous"] = json!(true);
    v["reviewer"]["displayName"] = json!("A Google User");
    v["updateTime"] = json!("2026-07-03T08:00:00.613Z");
    let record = row(v).unwrap().record.unwrap();
    let review = review_of(&record);
    assert_eq!(review.rating, Decimal::from(2));
    assert_eq!(review.score, 0.4);
    assert_eq!(review.reviewer_name, None);
    assert_eq!(
        record.version,
        at("2026-07-03T08:00:00.613Z"),
        "fractional seconds kept"
    );
    assert_eq!(record.occurred_at, at("2026-07-01T10:00:00Z"));
}

#[test]
fn an_edit_keeps_the_id_with_a_newer_version() {
    let before = row(sample()).unwrap().record.unwrap();
    let mut v = sample();
    v["comment"] = json!("Great service, fast delivery!");
    v["starRating"] = json!("FOUR");
    v["updateTime"] = json!("2026-07-05T09:30:00Z");
    let after = row(v).unwrap().record.unwrap();
    assert_eq!(after.external_id, before.external_id);
    assert!(after.version > before.version);
    assert_eq!(after.occurred_at, before.occurred_at);
    assert_eq!(review_of(&after).rating, Decimal::from(4));
}

#[test]
fn unrated_and_broken_reviews() {
    let mut v = sample();
    v["starRating"] = json!("STAR_RATING_UNSPECIFIED");
    let r = row(v).unwrap();
    assert_eq!(r.record, None);
    assert_eq!(r.version, at("2026-07-01T10:00:00Z"));

    let mut v = sample();
    v["starRating"] = json!("SIX");
    assert_eq!(
        row(v).unwrap_err(),
        "review AbcDef: starRating is not ONE to FIVE"
    );
    let mut v = sample();
    v["updateTime"] = json!("Jane's birthday");
    let err = row(v).unwrap_err();
    assert_eq!(err, "review AbcDef: updateTime is not a time");
    let mut v = sample();
    v.as_object_mut().unwrap().remove("reviewId");
    assert_eq!(row(v).unwrap().record.unwrap().external_id, "AbcDef");
}

// --- fake API ------------------------------------------------------------------------

mod fake {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    pub(super) const PATH: &str = "/v4/accounts/123456789/locations/222222222/reviews";

    #[derive(Debug, Default)]
    pub(super) struct Location {
        pub(super) reviews: Vec<Value>,
        pub(super) seen: Vec<Vec<(String, String)>>,
        pub(super) fail_next: Option<(StatusCode, Option<&'static str>, String)>,
    }

    pub(super) type Shared = Arc<Mutex<Location>>;

    pub(super) async fn start(location: Shared) -> String {
        let router = axum::Router::new().fallback(handle).with_state(location);
        crate::testkit::serve(router).await
    }

    fn google_error(status: StatusCode, name: &str, message: &str) -> Response {
        let body = json!({"error": {"code": status.as_u16(), "message": message, "status": name}});
        (status, axum::Json(body)).into_response()
    }

    async fn handle(
        State(location): State<Shared>,
        uri: Uri,
        headers: HeaderMap,
        Query(query): Query<Vec<(String, String)>>,
    ) -> Response {
        let mut location = location.lock().unwrap();
        location.seen.push(query.clone());
        let expected = format!("Bearer {TOKEN}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
        }
        if let Some((status, retry_after, body)) = location.fail_next.take() {
            let mut response = (status, body).into_response();
            if let Some(s) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(s));
            }
            return response;
        }
        if uri.path() != PATH {
            return google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Requested entity was not found.",
            );
        }
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let size: usize = match param("pageSize").map(|v| v.parse::<usize>()) {
            None => 50,
            Some(Ok(n)) if (1..=50).contains(&n) => n,
            _ => return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "pageSize"),
        };
        let order = param("orderBy");
        if !matches!(
            order.as_deref(),
            None | Some("updateTime desc") | Some("rating") | Some("rating desc")
        ) {
            return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "orderBy");
        }
        let offset: usize = match param("pageToken") {
            None => 0,
            Some(t) => match base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
            {
                Some(n) => n,
                None => {
                    return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "pageToken")
                }
            },
        };
        let mut rows = location.reviews.clone();
        // Newest update first; ties in a stable order of their own.
        rows.sort_by(|a, b| {
            let t = |r: &Value| at(r["updateTime"].as_str().unwrap());
            t(b).cmp(&t(a))
                .then_with(|| a["reviewId"].as_str().cmp(&b["reviewId"].as_str()))
        });
        let page: Vec<Value> = rows.iter().skip(offset).take(size).cloned().collect();
        let next = offset + page.len();
        let mut body = json!({
            "reviews": page,
            "averageRating": 4.2,
            "totalReviewCount": rows.len(),
        });
        if next < rows.len() {
            body["nextPageToken"] =
                json!(base64::engine::general_purpose::STANDARD.encode(format!("offset:{next}")));
        }
        axum::Json(body).into_response()
    }
}

fn review(n: u32, updated: &str) -> Value {
    let stars = ["ONE", "TWO", "THREE", "FOUR", "FIVE"][(n % 5) as usize];
    json!({
        "name": format!("accounts/123456789/locations/222222222/reviews/r{n:03}"),
        "reviewId": format!("r{n:03}"),
        "reviewer": {"displayName": format!("Reviewer {n}"), "isAnonymous": false},
        "starRating": stars,
        "comment": format!("review {n}"),
        "createTime": "2026-01-01T00:00:00Z",
        "updateTime": updated,
    })
}

/// 130 reviews; the first 60 share one update time.
fn busy_location() -> fake::Location {
    let mut location = fake::Location::default();
    for n in 0..130u32 {
        let updated = if n < 60 {
            "2026-07-01T10:00:00Z".to_owned()
        } else {
            (at("2026-07-01T10:00:00Z") + chrono::Duration::minutes(i64::from(n) - 59))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        location.reviews.push(review(n, &updated));
    }
    location
}

async fn location_with(location: fake::Location) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(location));
    let base = fake::start(shared.clone()).await;
    let fixture = ApiFixture::new(
        &base,
        json!({"account_id": "accounts/123456789", "location_id": "222222222"}),
        json!({"access_token": TOKEN}),
    );
    (shared, fixture)
}

async fn sweep(fixture: &ApiFixture, cursor: Value) -> Vec<Page> {
    crate::testkit::sweep(&GoogleBusiness, fixture, Resource::Reviews, cursor).await
}

fn ids(pages: &[Page]) -> Vec<String> {
    let mut ids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.external_id.clone()))
        .collect();
    ids.sort();
    ids
}

fn all_ids() -> Vec<String> {
    (0..130u32).map(|n| format!("r{n:03}")).collect()
}

#[tokio::test]
async fn a_full_sweep_reads_every_review_once_across_pages_and_ties() {
    let (location, fixture) = location_with(busy_location()).await;
    let pages = sweep(
        &fixture,
        GoogleBusiness.start_cursor(Resource::Reviews, None),
    )
    .await;
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), all_ids());
    let newest = at("2026-07-01T10:00:00Z") + chrono::Duration::minutes(70);
    assert_eq!(pages[2].watermark, Some(newest));
    assert!(pages[..2]
        .iter()
        .all(|p| !p.caught_up && p.watermark.is_none()));
    let seen = location.lock().unwrap().seen.clone();
    let param =
        |q: &Vec<(String, String)>, n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(param(&seen[0], "pageSize"), Some(PAGE_SIZE.to_string()));
    assert_eq!(param(&seen[0], "orderBy").as_deref(), Some(ORDER_BY));
    assert_eq!(param(&seen[0], "pageToken"), None);
    assert!(param(&seen[1], "pageToken").is_some());
}

#[tokio::test]
async fn a_sweep_resumes_from_a_mid_sweep_cursor() {
    let (_location, fixture) = location_with(busy_location()).await;
    let first = GoogleBusiness
        .poll(
            &fixture.api(),
            Resource::Reviews,
            &GoogleBusiness.start_cursor(Resource::Reviews, None),
        )
        .await
        .unwrap();
    let rest = sweep(&fixture, first.cursor.clone()).await;
    let mut all = ids(std::slice::from_ref(&first));
    all.extend(ids(&rest));
    all.sort();
    assert_eq!(all, all_ids());
}

#[tokio::test]
async fn the_next_sweep_stops_lookback_before_the_watermark_and_sees_edits() {
    let (location, fixture) = location_with(busy_location()).await;
    let pages = sweep(
        &fixture,
        GoogleBusiness.start_cursor(Resource::Reviews, None),
    )
    .await;
    let watermark = pages.last().unwrap().watermark.unwrap();
    // An old review is edited; a new one arrives.
    {
        let mut loc = location.lock().unwrap();
        loc.reviews[3]["updateTime"] = json!("2026-07-02T09:00:00Z");
        loc.reviews[3]["starRating"] = json!("ONE");
        loc.reviews.push(review(500, "2026-07-02T08:00:00Z"));
        loc.seen.clear();
    }
    let next = sweep(&fixture, pages.last().unwrap().cursor.clone()).await;
    assert_eq!(next.len(), 1, "one page reaches the bound");
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap();
    let emitted: Vec<(String, DateTime<Utc>)> = next[0]
        .records
        .iter()
        .map(|r| (r.external_id.clone(), r.version))
        .collect();
    assert_eq!(emitted[0], ("r003".to_owned(), at("2026-07-02T09:00:00Z")));
    assert_eq!(emitted[1].0, "r500");
    assert!(emitted.iter().all(|(_, v)| *v >= watermark - lookback));
    // Reviews r124..r129 fall inside the five-minute overlap.
    assert_eq!(emitted.len(), 2 + 6);
    assert_eq!(
        review_of(&next[0].records[0]).rating,
        Decimal::from(1),
        "the edit's new stars"
    );
    assert_eq!(next[0].watermark, Some(at("2026-07-02T09:00:00Z")));
}

#[tokio::test]
async fn start_cursor_since_emits_from_that_instant() {
    let (_location, fixture) = location_with(busy_location()).await;
    let since = at("2026-07-01T11:00:00Z");
    let pages = sweep(
        &fixture,
        GoogleBusiness.start_cursor(Resource::Reviews, Some(since)),
    )
    .await;
    assert_eq!(pages.len(), 1);
    let got = ids(&pages);
    let expected: Vec<String> = (119..130u32).map(|n| format!("r{n:03}")).collect();
    assert_eq!(got, expected);
}

async fn poll_start(fixture: &ApiFixture) -> Result<Page, ConnectorError> {
    GoogleBusiness
        .poll(
            &fixture.api(),
            Resource::Reviews,
            &GoogleBusiness.start_cursor(Resource::Reviews, None),
        )
        .await
}

#[tokio::test]
async fn throttles_refusals_and_failures_are_classified() {
    let (location, mut fixture) = location_with(busy_location()).await;
    let fail = |status: http::StatusCode, retry: Option<&'static str>, body: Value| {
        location.lock().unwrap().fail_next = Some((status, retry, body.to_string()));
    };
    let google = |code: u16, status: &str| json!({"error": {"code": code, "message": "jane@example.com quota", "status": status}});
    fail(
        http::StatusCode::TOO_MANY_REQUESTS,
        Some("30"),
        google(429, "RESOURCE_EXHAUSTED"),
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(poll_start(&fixture).await.unwrap().records.len(), 50);
    fail(
        http::StatusCode::FORBIDDEN,
        None,
        google(403, "RESOURCE_EXHAUSTED"),
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::RateLimited { retry_after: None }
    );
    fail(
        http::StatusCode::FORBIDDEN,
        None,
        google(403, "PERMISSION_DENIED"),
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("the platform answered 403 (PERMISSION_DENIED)".to_owned())
    );
    fail(
        http::StatusCode::SERVICE_UNAVAILABLE,
        None,
        google(503, "UNAVAILABLE"),
    );
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Transient(m) if !m.contains("jane")
    ));
    fail(http::StatusCode::OK, None, json!({"reviews": {"oops": 1}}));
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Malformed(_)
    ));

    // A location that does not exist.
    fixture
        .settings
        .insert("location_id".to_owned(), json!("locations/999"));
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Permanent("the platform answered 404 (NOT_FOUND)".to_owned())
    );
    fixture
        .settings
        .insert("location_id".to_owned(), json!("../../x?y"));
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Permanent(m) if m.contains("settings.location_id")
    ));
    fixture
        .settings
        .insert("location_id".to_owned(), json!("222222222"));

    fixture
        .secrets
        .insert("access_token".to_owned(), json!("expired"));
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("the platform answered 401 (UNAUTHENTICATED)".to_owned())
    );
    fixture.secrets.remove("access_token");
    location.lock().unwrap().seen.clear();
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("secrets.access_token is not set".to_owned())
    );
    assert!(location.lock().unwrap().seen.is_empty());
    assert!(matches!(
        GoogleBusiness
            .poll(&fixture.api(), Resource::Messages, &json!({}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        GoogleBusiness
            .poll(&fixture.api(), Resource::Reviews, &json!({"page": 2}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
}
