use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::client::PER_PAGE;
use super::mapping::{review_row, JmReview};
use super::sweep::{Row, FULL_SWEEP_EVERY};
use super::Judgeme;
use crate::model::{IdentityKey, KeyKind, RecordBody, Review, SourceRecord};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::testkit::ApiFixture;

const SHOP: &str = "example-store.myshopify.com";
const TOKEN: &str = "jm-private-token";

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

/// The review inside the shared webhook sample: the same representation
/// the API lists.
fn sample() -> Value {
    fixtures::resource("judgeme-review.json")["review"].clone()
}

fn row(value: Value) -> Result<Row, String> {
    let review: JmReview = serde_json::from_value(value).unwrap();
    review_row(&review, Some("US"))
}

// --- connector and mapping ------------------------------------------------------

#[test]
fn registered_with_its_settings() {
    let c = crate::connector("judgeme").expect("in registry");
    assert_eq!(c.platform(), "judgeme");
    assert_eq!(c.required_settings(), &["shop_domain"]);
    assert_eq!(c.required_secrets(), &["api_token"]);
    assert!(c.webhooks().is_none());
    let polling = c.polling().unwrap();
    assert_eq!(polling.resources(), &[Resource::Reviews]);
    assert_eq!(
        polling.default_base_url(&serde_json::Map::new()),
        Some("https://judge.me/api/v1".to_owned())
    );
}

#[test]
fn the_shared_sample_decodes_exactly() {
    let row = row(sample()).unwrap();
    let record = row.record.unwrap();
    assert_eq!(record.external_id, "434");
    assert_eq!(record.version, at("2025-01-02T08:39:09Z"));
    assert_eq!(record.occurred_at, at("2025-01-02T08:39:09Z"));
    assert_eq!(
        record.keys,
        vec![
            key(KeyKind::Email, "buyer@example.com"),
            key(KeyKind::CustomerId, "207119551"),
        ]
    );
    assert_eq!(
        review_of(&record),
        &Review {
            product: Some("632910392".to_owned()),
            rating: Decimal::from(5),
            rating_scale: Decimal::from(5),
            score: 1.0,
            text: Some("Great shirt\n\nFits well.".to_owned()),
            reviewer_name: Some("Ada L.".to_owned()),
            reviewer_email: Some("buyer@example.com".to_owned()),
            verified: Some(true),
        }
    );
}

#[test]
fn listing_fields_product_phone_and_rating() {
    let mut v = sample();
    v["rating"] = json!(2);
    v["product_title"] = json!("Linen Shirt");
    v["product_handle"] = json!("linen-shirt");
    v["verified"] = json!("email");
    v["reviewer"]["phone"] = json!("(415) 555-2671");
    v["title"] = json!("");
    let record = row(v).unwrap().record.unwrap();
    let review = review_of(&record);
    assert_eq!(review.product.as_deref(), Some("Linen Shirt"));
    assert_eq!(review.rating, Decimal::from(2));
    assert_eq!(review.score, 0.4);
    assert_eq!(review.verified, Some(false));
    assert_eq!(review.text.as_deref(), Some("Fits well."));
    assert!(record.keys.contains(&key(KeyKind::Phone, "+14155552671")));
}

#[test]
fn an_edit_keeps_the_id_with_a_newer_version() {
    let before = row(sample()).unwrap().record.unwrap();
    let mut v = sample();
    v["rating"] = json!(1);
    v["body"] = json!("Shrank after one wash.");
    v["updated_at"] = json!("2025-01-09T17:00:00+01:00");
    let after = row(v).unwrap().record.unwrap();
    assert_eq!(after.external_id, before.external_id);
    assert_eq!(after.version, at("2025-01-09T16:00:00Z"));
    assert!(after.version > before.version);
    assert_eq!(after.occurred_at, before.occurred_at);
    assert_eq!(review_of(&after).score, 0.2);
}

#[test]
fn unrated_and_broken_reviews() {
    for rating in [json!(0), Value::Null] {
        let mut v = sample();
        v["rating"] = rating;
        assert_eq!(row(v).unwrap().record, None);
    }
    let mut v = sample();
    v["rating"] = json!(7);
    assert_eq!(row(v).unwrap_err(), "review 434: rating is above 5");
    let mut v = sample();
    v["rating"] = json!("five");
    assert_eq!(row(v).unwrap_err(), "review 434: rating is not a number");
    let mut v = sample();
    v["created_at"] = json!("buyer@example.com");
    let err = row(v).unwrap_err();
    assert_eq!(err, "review 434: created_at is not a time");
    let mut v = sample();
    v.as_object_mut().unwrap().remove("created_at");
    assert_eq!(row(v).unwrap_err(), "review 434: missing created_at");
}

// --- fake Judge.me ------------------------------------------------------------------

mod fake {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::{HeaderValue, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    #[derive(Debug, Default)]
    pub(super) struct Shop {
        pub(super) reviews: Vec<Value>,
        /// Pages asked for, in order.
        pub(super) pages: Vec<u32>,
        pub(super) fail_next: Option<(StatusCode, Option<&'static str>, String)>,
    }

    pub(super) type Shared = Arc<Mutex<Shop>>;

    pub(super) async fn start(shop: Shared) -> String {
        let router = axum::Router::new().fallback(handle).with_state(shop);
        format!("{}/api/v1", crate::testkit::serve(router).await)
    }

    async fn handle(
        State(shop): State<Shared>,
        uri: Uri,
        Query(query): Query<Vec<(String, String)>>,
    ) -> Response {
        let mut shop = shop.lock().unwrap();
        let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if param("shop_domain").as_deref() != Some(SHOP)
            || param("api_token").as_deref() != Some(TOKEN)
        {
            let body =
                json!({"error": "Failed to authenticate. Shop domain or Api Token is wrong"});
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
        if let Some((status, retry_after, body)) = shop.fail_next.take() {
            let mut response = (status, body).into_response();
            if let Some(s) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(s));
            }
            return response;
        }
        if uri.path() != "/api/v1/reviews" {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "Not found"})),
            )
                .into_response();
        }
        let page: u32 = param("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let per_page: usize = param("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(10)
            .clamp(1, 100);
        shop.pages.push(page);
        let mut rows = shop.reviews.clone();
        rows.sort_by(|a, b| {
            let t = |r: &Value| at(r["created_at"].as_str().unwrap());
            t(b).cmp(&t(a))
                .then_with(|| b["id"].as_u64().cmp(&a["id"].as_u64()))
        });
        let reviews: Vec<Value> = rows
            .into_iter()
            .skip((page as usize - 1) * per_page)
            .take(per_page)
            .collect();
        axum::Json(json!({"current_page": page, "per_page": per_page, "reviews": reviews}))
            .into_response()
    }
}

fn listed(id: u64, created: &str) -> Value {
    json!({
        "id": id, "title": format!("Review {id}"), "body": "Nice.", "rating": 1 + id % 5,
        "product_external_id": 632910392, "product_title": "Linen Shirt",
        "product_handle": "linen-shirt", "reviewer": {"id": 1000 + id, "external_id": 5000 + id,
        "email": format!("buyer{id}@example.com"), "phone": null, "name": format!("Buyer {id}")},
        "verified": "buyer", "published": true, "hidden": false, "curated": "ok",
        "created_at": created, "updated_at": created
    })
}

/// 250 reviews created over January; ids 1..=120 share one second.
fn busy_shop() -> fake::Shop {
    let mut shop = fake::Shop::default();
    for id in 1..=250u64 {
        let created = if id <= 120 {
            "2025-01-10T12:00:00+00:00".to_owned()
        } else {
            (at("2025-01-10T12:00:00Z") + chrono::Duration::hours(id as i64 - 120)).to_rfc3339()
        };
        shop.reviews.push(listed(id, &created));
    }
    shop
}

const NOW: &str = "2025-03-01T00:00:00Z";

async fn shop_with(shop: fake::Shop) -> (fake::Shared, ApiFixture) {
    let shared = Arc::new(Mutex::new(shop));
    let base = fake::start(shared.clone()).await;
    let mut fixture = ApiFixture::new(
        &base,
        json!({"shop_domain": SHOP}),
        json!({"api_token": TOKEN}),
    );
    fixture.now = at(NOW);
    (shared, fixture)
}

async fn sweep(fixture: &ApiFixture, cursor: Value) -> Vec<Page> {
    crate::testkit::sweep(&Judgeme, fixture, Resource::Reviews, cursor).await
}

fn ids(pages: &[Page]) -> Vec<u64> {
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

#[tokio::test]
async fn the_first_sweep_reads_every_review_once_across_pages_and_ties() {
    let (shop, fixture) = shop_with(busy_shop()).await;
    let pages = sweep(&fixture, Judgeme.start_cursor(Resource::Reviews, None)).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), (1..=250).collect::<Vec<_>>());
    assert_eq!(shop.lock().unwrap().pages, vec![1, 2, 3]);
    let newest = at("2025-01-10T12:00:00Z") + chrono::Duration::hours(130);
    assert_eq!(pages[2].watermark, Some(newest));
    assert!(pages[2].caught_up && !pages[0].caught_up);
    // The cursor records the full sweep's start on the hub's clock.
    assert_eq!(pages[2].cursor["full_at"], json!(NOW));
    assert_eq!(PER_PAGE, 100);
}

#[tokio::test]
async fn a_sweep_resumes_from_a_mid_sweep_cursor() {
    let (shop, fixture) = shop_with(busy_shop()).await;
    let first = Judgeme
        .poll(
            &fixture.api(),
            Resource::Reviews,
            &Judgeme.start_cursor(Resource::Reviews, None),
        )
        .await
        .unwrap();
    let rest = sweep(&fixture, first.cursor.clone()).await;
    let mut all = ids(std::slice::from_ref(&first));
    all.extend(ids(&rest));
    all.sort_unstable();
    assert_eq!(all, (1..=250).collect::<Vec<_>>());
    assert_eq!(shop.lock().unwrap().pages, vec![1, 2, 3]);
}

#[tokio::test]
async fn recent_sweeps_stop_at_the_bound_and_full_sweeps_find_old_edits() {
    let (shop, mut fixture) = shop_with(busy_shop()).await;
    let first = sweep(&fixture, Judgeme.start_cursor(Resource::Reviews, None)).await;
    let watermark = first.last().unwrap().watermark.unwrap();
    {
        let mut s = shop.lock().unwrap();
        // A new review, and an edit of an old one (deep in the listing).
        s.reviews.push(listed(251, "2025-03-01T00:20:00+00:00"));
        let old = s.reviews.iter_mut().find(|r| r["id"] == 5).unwrap();
        old["rating"] = json!(1);
        old["updated_at"] = json!("2025-03-01T00:30:00+00:00");
        s.pages.clear();
    }

    // An hour later: a recent sweep reads one page.
    fixture.now = at(NOW) + chrono::Duration::hours(1);
    let recent = sweep(&fixture, first.last().unwrap().cursor.clone()).await;
    assert_eq!(shop.lock().unwrap().pages, vec![1]);
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap();
    let got = ids(&recent);
    // The new review and the newest one (inside the overlap); not the edit.
    assert_eq!(got, vec![250, 251]);
    assert!(recent[0]
        .records
        .iter()
        .all(|r| r.version >= watermark - lookback));
    let after_recent = recent.last().unwrap().cursor.clone();
    assert_eq!(
        after_recent["full_at"],
        json!(NOW),
        "a recent sweep keeps full_at"
    );

    // A day after the last full sweep: the whole listing is read again and
    // only what changed since (with the overlap) is emitted.
    shop.lock().unwrap().pages.clear();
    fixture.now = at(NOW) + FULL_SWEEP_EVERY;
    let full = sweep(&fixture, after_recent).await;
    assert_eq!(shop.lock().unwrap().pages, vec![1, 2, 3]);
    assert_eq!(ids(&full), vec![5, 251]);
    let edited = full
        .iter()
        .flat_map(|p| &p.records)
        .find(|r| r.external_id == "5")
        .unwrap();
    assert_eq!(edited.version, at("2025-03-01T00:30:00Z"));
    assert_eq!(review_of(edited).rating, Decimal::from(1));
    assert_eq!(
        full.last().unwrap().cursor["full_at"],
        json!((at(NOW) + FULL_SWEEP_EVERY).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    assert_eq!(
        full.last().unwrap().watermark,
        Some(at("2025-03-01T00:30:00Z"))
    );
}

#[tokio::test]
async fn start_cursor_since_emits_what_changed_since_then() {
    let (_shop, fixture) = shop_with(busy_shop()).await;
    let since = at("2025-01-15T00:00:00Z");
    let pages = sweep(
        &fixture,
        Judgeme.start_cursor(Resource::Reviews, Some(since)),
    )
    .await;
    // 12:00 on the 10th plus (id - 120) hours reaches the 15th at id 228.
    assert_eq!(ids(&pages), (228..=250).collect::<Vec<_>>());
}

async fn poll_start(fixture: &ApiFixture) -> Result<Page, ConnectorError> {
    Judgeme
        .poll(
            &fixture.api(),
            Resource::Reviews,
            &Judgeme.start_cursor(Resource::Reviews, None),
        )
        .await
}

#[tokio::test]
async fn throttles_refusals_and_failures_are_classified() {
    let (shop, mut fixture) = shop_with(busy_shop()).await;
    let fail = |status: http::StatusCode, retry: Option<&'static str>, body: &str| {
        shop.lock().unwrap().fail_next = Some((status, retry, body.to_owned()));
    };
    fail(
        http::StatusCode::TOO_MANY_REQUESTS,
        Some("12"),
        r#"{"error":"Throttled"}"#,
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(12))
        }
    );
    assert_eq!(poll_start(&fixture).await.unwrap().records.len(), 100);
    fail(
        http::StatusCode::BAD_GATEWAY,
        None,
        "<html>bad gateway</html>",
    );
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Transient(_)
    ));
    fail(http::StatusCode::OK, None, r#"{"reviews": [{"id": "x"}]}"#);
    assert!(matches!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Malformed(_)
    ));
    fail(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        None,
        r#"{"error":"Failed to authenticate. Shop domain or Api Token is wrong"}"#,
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized(
            "the platform answered 422 (authentication failed)".to_owned()
        )
    );
    fail(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        None,
        r#"{"error":"per_page"}"#,
    );
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Permanent("the platform answered 422".to_owned())
    );

    fixture
        .secrets
        .insert("api_token".to_owned(), json!("wrong"));
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized(
            "the platform answered 401 (authentication failed)".to_owned()
        )
    );
    fixture.secrets.remove("api_token");
    shop.lock().unwrap().pages.clear();
    assert_eq!(
        poll_start(&fixture).await.unwrap_err(),
        ConnectorError::Unauthorized("secrets.api_token is not set".to_owned())
    );
    assert!(shop.lock().unwrap().pages.is_empty());
    assert!(matches!(
        Judgeme
            .poll(&fixture.api(), Resource::Orders, &json!({}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        Judgeme
            .poll(&fixture.api(), Resource::Reviews, &json!({"page": "two"}))
            .await,
        Err(ConnectorError::Permanent(_))
    ));
}
