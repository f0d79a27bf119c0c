//! A fake Shopify: the OAuth token endpoint and the GraphQL Admin API's
//! webhook subscriptions, behind the access token it issued.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN: &str = "shpat_issued";

#[derive(Clone, Default)]
pub struct FakeShopify {
    /// (topic, uri) of each subscription.
    pub subscriptions: Arc<Mutex<Vec<(String, String)>>>,
    /// The codes exchanged, with the client id and secret they came with.
    pub exchanges: Arc<Mutex<Vec<Value>>>,
}

impl FakeShopify {
    pub async fn start(&self) -> String {
        let app = Router::new()
            .route("/admin/oauth/access_token", post(exchange))
            .route("/admin/api/{version}/graphql.json", post(graphql))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

async fn exchange(State(fake): State<FakeShopify>, Json(body): Json<Value>) -> Response {
    if body["code"] != "the-code" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    fake.exchanges.lock().unwrap().push(body);
    Json(json!({"access_token": TOKEN, "scope": "read_orders,read_customers"})).into_response()
}

async fn graphql(
    State(fake): State<FakeShopify>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        != Some(TOKEN)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": "[API] Invalid API key or access token"})),
        )
            .into_response();
    }
    let query = request["query"].as_str().unwrap_or_default();
    let variables = &request["variables"];
    let mut subscriptions = fake.subscriptions.lock().unwrap();
    if query.contains("webhookSubscriptionCreate") {
        let topic = variables["topic"].as_str().unwrap_or_default().to_string();
        let uri = variables["webhookSubscription"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        subscriptions.push((topic.clone(), uri.clone()));
        let id = format!("gid://shopify/WebhookSubscription/{}", subscriptions.len());
        return Json(json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": {"id": id, "topic": topic, "uri": uri}, "userErrors": []}}}))
        .into_response();
    }
    let nodes: Vec<Value> = subscriptions
        .iter()
        .enumerate()
        .map(|(i, (topic, uri))| json!({"id": format!("gid://shopify/WebhookSubscription/{}", i + 1), "topic": topic, "uri": uri}))
        .collect();
    Json(json!({"data": {"webhookSubscriptions": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}}}))
        .into_response()
}
