//! A fake WooCommerce REST API v3: HTTP Basic with consumer key and secret,
//! `modified_after` with `dates_are_gmt`, `page`/`per_page` with
//! `X-WP-Total`/`X-WP-TotalPages`, 429 storms and revoked keys on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

pub const KEY: &str = "ck_test";
pub const SECRET: &str = "cs_test";

#[derive(Clone, Default)]
pub struct FakeWoo {
    pub orders: Arc<Mutex<Vec<Value>>>,
    pub customers: Arc<Mutex<Vec<Value>>>,
    /// Answer this many of the next requests with 429.
    pub throttle_next: Arc<AtomicUsize>,
    /// After this many more successful list requests, refuse the key (0: never).
    pub revoke_after: Arc<AtomicUsize>,
    pub revoked: Arc<Mutex<bool>>,
    pub requests: Arc<AtomicUsize>,
    pub throttled: Arc<AtomicUsize>,
    /// Webhook subscriptions, as `GET /webhooks` lists them.
    pub webhooks: Arc<Mutex<Vec<Value>>>,
}

impl FakeWoo {
    pub async fn start(&self) -> String {
        let app = Router::new()
            .route("/wp-json/wc/v3/orders", get(list_orders))
            .route("/wp-json/wc/v3/customers", get(list_customers))
            .route("/wp-json/wc/v3/products/reviews", get(list_reviews))
            .route(
                "/wp-json/wc/v3/webhooks",
                get(list_webhooks).post(create_webhook),
            )
            .route(
                "/wp-json/wc/v3/webhooks/{id}",
                axum::routing::put(update_webhook),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/wp-json/wc/v3")
    }

    pub fn revoke_now(&self, revoked: bool) {
        *self.revoked.lock().unwrap() = revoked;
    }
}

async fn list_orders(
    State(fake): State<FakeWoo>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let items = fake.orders.lock().unwrap().clone();
    page(&fake, &headers, &q, items)
}

async fn list_customers(
    State(fake): State<FakeWoo>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let items = fake.customers.lock().unwrap().clone();
    page(&fake, &headers, &q, items)
}

async fn list_reviews(
    State(fake): State<FakeWoo>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page(&fake, &headers, &q, Vec::new())
}

async fn list_webhooks(
    State(fake): State<FakeWoo>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let hooks = fake.webhooks.lock().unwrap().clone();
    page(&fake, &headers, &q, hooks)
}

async fn create_webhook(State(fake): State<FakeWoo>, Json(mut hook): Json<Value>) -> Response {
    let mut hooks = fake.webhooks.lock().unwrap();
    hook["id"] = serde_json::json!(hooks.len() + 1);
    hook["date_modified_gmt"] = serde_json::json!("2026-01-01T00:00:00");
    hooks.push(hook.clone());
    (StatusCode::CREATED, Json(hook)).into_response()
}

async fn update_webhook(
    State(fake): State<FakeWoo>,
    axum::extract::Path(id): axum::extract::Path<u64>,
    Json(change): Json<Value>,
) -> Response {
    let mut hooks = fake.webhooks.lock().unwrap();
    let Some(hook) = hooks.iter_mut().find(|h| h["id"].as_u64() == Some(id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(status) = change.get("status") {
        hook["status"] = status.clone();
    }
    Json(hook.clone()).into_response()
}

fn page(
    fake: &FakeWoo,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    mut items: Vec<Value>,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let expected = format!("Basic {}", STANDARD.encode(format!("{KEY}:{SECRET}")));
    let authorised =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorised || *fake.revoked.lock().unwrap() {
        let body = serde_json::json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if fake.throttle_next.load(Ordering::SeqCst) > 0 {
        fake.throttle_next.fetch_sub(1, Ordering::SeqCst);
        fake.throttled.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "0")],
            "slow down",
        )
            .into_response();
    }
    if let Some(after) = q.get("modified_after") {
        let after = after.trim_end_matches('Z').to_string();
        items.retain(|item| item["date_modified_gmt"].as_str().unwrap_or("") > after.as_str());
    }
    match q.get("orderby").map(String::as_str) {
        Some("id") => items.sort_by_key(|item| item["id"].as_i64()),
        _ => items.sort_by(|a, b| {
            (a["date_modified_gmt"].as_str(), a["id"].as_i64())
                .cmp(&(b["date_modified_gmt"].as_str(), b["id"].as_i64()))
        }),
    }
    let per_page: usize = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    // WordPress lets `offset` override `page`.
    let skip = q
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or((page - 1) * per_page);
    let total = items.len();
    let pages = total.div_ceil(per_page);
    let body: Vec<Value> = items.into_iter().skip(skip).take(per_page).collect();
    let remaining = fake.revoke_after.load(Ordering::SeqCst);
    if remaining > 0 {
        if remaining == 1 {
            *fake.revoked.lock().unwrap() = true;
        }
        fake.revoke_after.fetch_sub(1, Ordering::SeqCst);
    }
    (
        [
            ("X-WP-Total", total.to_string()),
            ("X-WP-TotalPages", pages.to_string()),
        ],
        Json(body),
    )
        .into_response()
}
