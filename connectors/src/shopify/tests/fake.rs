//! A fake shop speaking the GraphQL Admin API and the OAuth token endpoint
//! the way Shopify does: `X-Shopify-Access-Token` checked on every call,
//! Relay connections sorted by `UPDATED_AT` with opaque `endCursor`s that
//! encode the last sort value and id, `query: "updated_at:>='…'"` filters,
//! `extensions.cost` from a leaky bucket, `THROTTLED` errors, 429s and 401s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::payload::fixtures;
use crate::shopify::API_VERSION;
use crate::testkit;

pub(crate) const TOKEN: &str = "shpat_fake_token";
pub(crate) const CLIENT_ID: &str = "fake-client-id";
pub(crate) const CLIENT_SECRET: &str = "fake-client-secret";
pub(crate) const CODE: &str = "0907a61c0c8d55e99db179b68161bc00";
pub(crate) const SHOP_DOMAIN: &str = "example-store.myshopify.com";

/// Requested costs the fake reports per operation (roughly what Shopify
/// computes for the client's queries).
pub(crate) const ORDERS_COST: f64 = 852.0;
pub(crate) const CUSTOMERS_COST: f64 = 402.0;
pub(crate) const LINES_COST: f64 = 302.0;
pub(crate) const SMALL_COST: f64 = 10.0;
pub(crate) const RESTORE_RATE: f64 = 100.0;
pub(crate) const BUCKET: f64 = 2000.0;

/// A scripted answer replacing the next GraphQL call's.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The shared `shopify-graphql-throttle.json` body, HTTP 200.
    ThrottleFixture,
    /// HTTP 429 with `Retry-After`.
    TooManyRequests(&'static str),
    Status(u16),
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// A GraphQL error with this `extensions.code`.
    Code(&'static str),
}

/// An order: its node without `lineItems`, and all its line items.
#[derive(Debug, Clone)]
pub(crate) struct FakeOrder {
    pub(crate) node: Value,
    pub(crate) lines: Vec<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) op: &'static str,
    pub(crate) query: String,
    pub(crate) variables: Value,
}

#[derive(Debug)]
pub(crate) struct Shop {
    pub(crate) token: String,
    pub(crate) orders: Vec<FakeOrder>,
    pub(crate) customers: Vec<Value>,
    /// (id, topic enum, uri)
    pub(crate) subscriptions: Vec<(String, String, String)>,
    /// Serve at most this many nodes per page whatever `first` says (0: no
    /// cap). Shopify may return fewer than asked; clients must follow
    /// `hasNextPage`.
    pub(crate) page_cap: usize,
    pub(crate) available: f64,
    /// Points restored before each call (the fake has no clock).
    pub(crate) restore_per_call: f64,
    pub(crate) failures: VecDeque<Failure>,
    pub(crate) seen: Vec<Seen>,
    pub(crate) next_id: u64,
    // OAuth
    pub(crate) code_used: bool,
    pub(crate) refresh_token: Option<String>,
    pub(crate) token_requests: Vec<Value>,
}

impl Default for Shop {
    fn default() -> Self {
        Shop {
            token: TOKEN.to_owned(),
            orders: Vec::new(),
            customers: Vec::new(),
            subscriptions: Vec::new(),
            page_cap: 0,
            available: BUCKET,
            restore_per_call: BUCKET,
            failures: VecDeque::new(),
            seen: Vec::new(),
            next_id: 1,
            code_used: false,
            refresh_token: None,
            token_requests: Vec::new(),
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Shop>>;

pub(crate) async fn start(shop: Shop) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(shop));
    let router = Router::new()
        .route(
            &format!("/admin/api/{API_VERSION}/graphql.json"),
            post(graphql),
        )
        .route("/admin/oauth/access_token", post(token))
        .with_state(shared.clone());
    (testkit::serve(router).await, shared)
}

// --- test data ------------------------------------------------------------

/// A paid order of one line, bought by customer `id + 1000`.
pub(crate) fn order(id: u64, updated_at: &str) -> FakeOrder {
    FakeOrder {
        node: json!({
            "id": format!("gid://shopify/Order/{id}"),
            "name": format!("#{id}"),
            "email": format!("buyer{id}@example.com"),
            "phone": null,
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": updated_at,
            "cancelledAt": null,
            "closedAt": null,
            "displayFinancialStatus": "PAID",
            "displayFulfillmentStatus": "UNFULFILLED",
            "totalPriceSet": {"shopMoney": {"amount": "10.0", "currencyCode": "USD"}},
            "customer": {
                "id": format!("gid://shopify/Customer/{}", id + 1000),
                "firstName": "Ada",
                "lastName": null,
                "defaultEmailAddress": {"emailAddress": format!("buyer{id}@example.com")},
                "defaultPhoneNumber": null
            },
            "billingAddress": null,
            "shippingAddress": null
        }),
        lines: vec![line("Item", 1, "10.0")],
    }
}

pub(crate) fn line(title: &str, quantity: i64, price: &str) -> Value {
    json!({
        "title": title,
        "sku": format!("SKU-{title}"),
        "quantity": quantity,
        "originalUnitPriceSet": {"shopMoney": {"amount": price}}
    })
}

pub(crate) fn customer(id: u64, updated_at: &str) -> Value {
    json!({
        "id": format!("gid://shopify/Customer/{id}"),
        "firstName": "Ada",
        "lastName": "Lovelace",
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": updated_at,
        "tags": [],
        "defaultEmailAddress": {"emailAddress": format!("c{id}@example.com"), "marketingState": "NOT_SUBSCRIBED"},
        "defaultPhoneNumber": null,
        "defaultAddress": null
    })
}

/// The orders of a fixture answer, line items split off.
pub(crate) fn orders_from_fixture(answer: &Value) -> Vec<FakeOrder> {
    answer["data"]["orders"]["nodes"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|node| {
            let mut node = node.clone();
            let lines = node
                .as_object_mut()
                .unwrap()
                .remove("lineItems")
                .map(|c| c["nodes"].as_array().cloned().unwrap_or_default())
                .unwrap_or_default();
            FakeOrder { node, lines }
        })
        .collect()
}

// --- GraphQL --------------------------------------------------------------

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
    )
        .into_response()
}

fn gql_error(message: &str, code: &str) -> Response {
    Json(json!({"errors": [{"message": message, "extensions": {"code": code}}]})).into_response()
}

async fn graphql(
    State(shop): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut shop = shop.lock().unwrap();
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(shop.token.as_str()) {
        return unauthorized();
    }
    let query = body["query"].as_str().unwrap_or_default().to_owned();
    let variables = body.get("variables").cloned().unwrap_or(Value::Null);
    let op = operation(&query);
    shop.seen.push(Seen {
        op,
        query: query.clone(),
        variables: variables.clone(),
    });

    if let Some(failure) = shop.failures.pop_front() {
        return match failure {
            Failure::ThrottleFixture => Json(fixtures::resource("shopify-graphql-throttle.json")).into_response(),
            Failure::TooManyRequests(after) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", after)],
                Json(json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."})),
            )
                .into_response(),
            Failure::Status(code) => (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"errors": "fake failure"})),
            )
                .into_response(),
            Failure::Garbage => (StatusCode::OK, "<html>maintenance</html>").into_response(),
            Failure::Code(code) => gql_error("Access denied for this field.", code),
        };
    }

    let requested = match op {
        "orders" => ORDERS_COST,
        "customers" => CUSTOMERS_COST,
        "order" => LINES_COST,
        _ => SMALL_COST,
    };
    shop.available = (shop.available + shop.restore_per_call).min(BUCKET);
    if shop.available < requested {
        return Json(json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
            "extensions": {"cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": null,
                "throttleStatus": {"maximumAvailable": BUCKET, "currentlyAvailable": shop.available, "restoreRate": RESTORE_RATE}
            }}
        }))
        .into_response();
    }

    let data = match op {
        "orders" | "customers" => match list(&shop, op, &query, &variables) {
            Ok(data) => data,
            Err(message) => return gql_error(&message, "BAD_REQUEST"),
        },
        "order" => order_lines(&shop, &query, &variables),
        "webhookSubscriptions" => subscriptions(&shop, &variables),
        "webhookSubscriptionCreate" => create_subscription(&mut shop, &variables),
        _ => return gql_error("unknown operation", "BAD_REQUEST"),
    };
    let actual = (requested / 10.0).round();
    shop.available -= actual;
    Json(json!({
        "data": data,
        "extensions": {"cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {"maximumAvailable": BUCKET, "currentlyAvailable": shop.available, "restoreRate": RESTORE_RATE}
        }}
    }))
    .into_response()
}

fn operation(query: &str) -> &'static str {
    if query.contains("webhookSubscriptionCreate(") {
        "webhookSubscriptionCreate"
    } else if query.contains("webhookSubscriptions(") {
        "webhookSubscriptions"
    } else if query.contains("customers(") {
        "customers"
    } else if query.contains("orders(") {
        "orders"
    } else if query.contains("order(id:") {
        "order"
    } else {
        "unknown"
    }
}

/// The number after `lineItems(first: ` in the query text.
fn line_items_first(query: &str) -> usize {
    let rest = query
        .split("lineItems(first: ")
        .nth(1)
        .expect("lineItems(first: N)");
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

fn encode_cursor(value: Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

fn decode_cursor(cursor: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .expect("a cursor this fake issued");
    serde_json::from_slice(&bytes).expect("cursor json")
}

fn numeric_id(node: &Value) -> u64 {
    node["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn updated_at(node: &Value) -> DateTime<Utc> {
    node["updatedAt"].as_str().unwrap().parse().unwrap()
}

fn page_size(shop: &Shop, first: usize) -> usize {
    if shop.page_cap > 0 {
        first.min(shop.page_cap)
    } else {
        first
    }
}

/// `orders`/`customers`: filter, sort by (updatedAt, id), resume after the
/// cursor, take a page.
fn list(shop: &Shop, op: &str, query: &str, variables: &Value) -> Result<Value, String> {
    if !query.contains("sortKey: UPDATED_AT") {
        return Err("this fake only serves sortKey: UPDATED_AT".to_owned());
    }
    let first = variables["first"].as_u64().ok_or("first is required")? as usize;
    if first == 0 || first > 250 {
        return Err("first must be between 1 and 250".to_owned());
    }
    let from = match variables.get("query").and_then(Value::as_str) {
        None => None,
        Some(filter) => {
            let ts = filter
                .strip_prefix("updated_at:>='")
                .and_then(|rest| rest.strip_suffix('\''))
                .ok_or_else(|| format!("unsupported search {filter:?}"))?;
            Some(
                ts.parse::<DateTime<Utc>>()
                    .map_err(|_| "bad timestamp".to_owned())?,
            )
        }
    };
    let after = variables
        .get("after")
        .and_then(Value::as_str)
        .map(decode_cursor)
        .map(|c| {
            (
                c["last_value"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap(),
                c["last_id"].as_u64().unwrap(),
            )
        });

    let mut nodes: Vec<(DateTime<Utc>, u64, Value)> = match op {
        "orders" => {
            let n = line_items_first(query);
            shop.orders
                .iter()
                .map(|o| {
                    let mut node = o.node.clone();
                    node["lineItems"] = line_connection(&o.lines, 0, n);
                    (updated_at(&o.node), numeric_id(&o.node), node)
                })
                .collect()
        }
        _ => shop
            .customers
            .iter()
            .map(|c| (updated_at(c), numeric_id(c), c.clone()))
            .collect(),
    };
    nodes.retain(|(t, _, _)| from.map_or(true, |from| *t >= from));
    nodes.sort_by_key(|(t, id, _)| (*t, *id));
    if let Some(after) = after {
        nodes.retain(|(t, id, _)| (*t, *id) > after);
    }
    let size = page_size(shop, first);
    let has_next = nodes.len() > size;
    nodes.truncate(size);
    let end_cursor = nodes
        .last()
        .map(|(t, id, _)| encode_cursor(json!({"last_id": id, "last_value": t.to_rfc3339()})));
    let nodes: Vec<Value> = nodes.into_iter().map(|(_, _, n)| n).collect();
    Ok(json!({ op: {
        "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor},
        "nodes": nodes,
    }}))
}

fn line_connection(lines: &[Value], offset: usize, first: usize) -> Value {
    let page: Vec<Value> = lines.iter().skip(offset).take(first).cloned().collect();
    let end = offset + page.len();
    json!({
        "pageInfo": {
            "hasNextPage": end < lines.len(),
            "endCursor": (!page.is_empty()).then(|| encode_cursor(json!({"offset": end}))),
        },
        "nodes": page,
    })
}

fn order_lines(shop: &Shop, query: &str, variables: &Value) -> Value {
    let id = variables["id"].as_str().unwrap_or_default();
    let Some(order) = shop.orders.iter().find(|o| o.node["id"] == id) else {
        return json!({"order": null});
    };
    let offset = variables
        .get("after")
        .and_then(Value::as_str)
        .map(|c| decode_cursor(c)["offset"].as_u64().unwrap() as usize)
        .unwrap_or(0);
    json!({"order": {"lineItems": line_connection(&order.lines, offset, line_items_first(query))}})
}

fn subscriptions(shop: &Shop, variables: &Value) -> Value {
    let offset = variables
        .get("after")
        .and_then(Value::as_str)
        .map(|c| decode_cursor(c)["offset"].as_u64().unwrap() as usize)
        .unwrap_or(0);
    let size = page_size(shop, 100);
    let page: Vec<Value> = shop
        .subscriptions
        .iter()
        .skip(offset)
        .take(size)
        .map(|(id, topic, uri)| json!({"id": id, "topic": topic, "uri": uri}))
        .collect();
    let end = offset + page.len();
    json!({"webhookSubscriptions": {
        "pageInfo": {
            "hasNextPage": end < shop.subscriptions.len(),
            "endCursor": (!page.is_empty()).then(|| encode_cursor(json!({"offset": end}))),
        },
        "nodes": page,
    }})
}

fn create_subscription(shop: &mut Shop, variables: &Value) -> Value {
    let topic = variables["topic"].as_str().unwrap_or_default().to_owned();
    let uri = variables["webhookSubscription"]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let format = variables["webhookSubscription"]["format"].as_str();
    let mut errors = Vec::new();
    if !topic.chars().all(|c| c.is_ascii_uppercase() || c == '_') || topic.is_empty() {
        errors.push(json!({"field": ["topic"], "message": "Topic is invalid"}));
    }
    if uri.is_empty() {
        errors.push(
            json!({"field": ["webhookSubscription", "uri"], "message": "Address can't be blank"}),
        );
    }
    if format != Some("JSON") {
        errors.push(
            json!({"field": ["webhookSubscription", "format"], "message": "Format must be JSON"}),
        );
    }
    if shop
        .subscriptions
        .iter()
        .any(|(_, t, u)| *t == topic && *u == uri)
    {
        errors.push(json!({"field": ["webhookSubscription", "uri"], "message": "Address for this topic has already been taken"}));
    }
    if !errors.is_empty() {
        return json!({"webhookSubscriptionCreate": {"webhookSubscription": null, "userErrors": errors}});
    }
    let id = format!("gid://shopify/WebhookSubscription/{}", 9000 + shop.next_id);
    shop.next_id += 1;
    shop.subscriptions
        .push((id.clone(), topic.clone(), uri.clone()));
    json!({"webhookSubscriptionCreate": {
        "webhookSubscription": {"id": id, "topic": topic, "uri": uri},
        "userErrors": []
    }})
}

// --- OAuth token endpoint -------------------------------------------------

async fn token(State(shop): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut shop = shop.lock().unwrap();
    shop.token_requests.push(body.clone());
    if body["client_id"] != CLIENT_ID || body["client_secret"] != CLIENT_SECRET {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client authentication failed."})),
        )
            .into_response();
    }
    let expiring_answer = |shop: &mut Shop| {
        shop.next_id += 1;
        let refresh = format!("shprt_{}", shop.next_id);
        shop.refresh_token = Some(refresh.clone());
        shop.token = format!("shpat_{}", shop.next_id);
        json!({
            "access_token": shop.token,
            "scope": "read_orders,read_customers",
            "expires_in": 3600,
            "refresh_token": refresh,
            "refresh_token_expires_in": 7776000
        })
    };
    if body["grant_type"] == "refresh_token" {
        if body["refresh_token"].as_str().is_none()
            || body["refresh_token"].as_str() != shop.refresh_token.as_deref()
        {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."})),
            )
                .into_response();
        }
        return Json(expiring_answer(&mut shop)).into_response();
    }
    if body["code"] != CODE || shop.code_used {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "The authorization code was not found or was already used"})),
        )
            .into_response();
    }
    shop.code_used = true;
    if body["expiring"] == "1" {
        return Json(expiring_answer(&mut shop)).into_response();
    }
    Json(json!({"access_token": TOKEN, "scope": "read_orders,read_customers"})).into_response()
}
