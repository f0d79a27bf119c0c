//! Webhooks of the platforms beyond Shopify and WooCommerce, through the
//! real hub: their own signatures and secret keys, their expected
//! acknowledgements, and thin webhooks followed by a fetch.

use std::path::PathBuf;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::*;

fn fixture(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/src")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

async fn post_raw(
    hub: &TestHub,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut request = hub
        .http
        .post(hub.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

both_backends! {
    async fn custom_records_signed_the_standard_webhooks_way(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let key = [7u8; 32];
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let (_, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "custom", "name": "erp",
            "settings": {"default_region": "CN"}, "secrets": {"webhook_secret": secret}})).await;
        let url = conn["webhook_url"].as_str().unwrap();
        let body = json!({"records": [
            {"kind": "customer", "external_id": "u1", "updated_at": "2026-04-01T00:00:00Z", "name": "李娜", "emails": ["li.na@example.com"]},
            {"kind": "order", "external_id": "o9", "updated_at": "2026-04-02T00:00:00Z", "customer_external_id": "u1",
             "status": "paid", "currency": "CNY", "total": "88.00", "line_items": []}
        ]}).to_string();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("msg_1.{timestamp}.{body}").as_bytes());
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let headers = [("webhook-id", "msg_1".to_string()), ("webhook-timestamp", timestamp.clone()), ("webhook-signature", signature)];
        let (status, answer) = post_raw(&hub, url, &body, &headers).await;
        assert_eq!(status, 200, "{answer}");
        let stale = [("webhook-id", "msg_2".to_string()), ("webhook-timestamp", "1600000000".to_string()), ("webhook-signature", headers[2].1.clone())];
        assert_ne!(post_raw(&hub, url, &body, &stale).await.0, 200);
        assert_eq!(hub.drain().await, 1);
        let profile = hub.find_one(&ws, "email=li.na@example.com").await;
        assert_eq!(profile["name"], "李娜");
        assert_eq!(profile["traits"]["total_spent"], json!({"CNY": "88.00"}));
    }

    async fn youzan_pushes_verify_with_the_client_secret_and_get_youzans_answer(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "youzan", "name": "有赞",
            "settings": {"client_id": "cid", "kdt_id": "567323"},
            "secrets": {"client_secret": "s3cr3t", "access_token": "tok"}})).await;
        assert_eq!(status, 201, "{conn}");
        let url = conn["webhook_url"].as_str().unwrap();
        let body = fixture("youzan/fixtures/trade-push.json")["body"].to_string();
        let sign = |secret: &str| {
            use md5::{Digest, Md5};
            Md5::digest(format!("cid{body}{secret}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let headers = |sign: String| vec![("Event-Sign", sign), ("Client-Id", "cid".to_string()), ("Event-Type", "trade_TradeBuyerPay".to_string())];
        let (status, answer) = post_raw(&hub, url, &body, &headers(sign("s3cr3t"))).await;
        assert_eq!((status, answer.as_str()), (200, r#"{"code":0,"msg":"success"}"#));
        assert_eq!(post_raw(&hub, url, &body, &headers(sign("wrong"))).await.0, 401);
        assert_eq!(hub.drain().await, 1);
        let profile = hub.find_one(&ws, "phone=13700000000&region=CN").await;
        assert_eq!(profile["traits"]["order_count"], 1);
    }

    async fn bigcommerce_thin_webhooks_are_followed_by_a_fetch(backend: Backend) {
        let order = fixture("bigcommerce/fixtures/order.json");
        let products = fixture("bigcommerce/fixtures/order-products.json");
        let app = Router::new()
            .route("/stores/abc/v2/orders/{id}", get(move |Path(id): Path<u64>, headers: HeaderMap| {
                let order = order.clone();
                async move {
                    if headers.get("x-auth-token").and_then(|v| v.to_str().ok()) != Some("bc-token") {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    if id != 173331 { return StatusCode::NOT_FOUND.into_response(); }
                    Json(order).into_response()
                }
            }))
            .route("/stores/abc/v2/orders/{id}/products", get(move || { let p = products.clone(); async move { Json(p) } }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/stores/abc", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "bigcommerce", "name": "bc",
            "settings": {"store_hash": "abc", "api_base_url": base},
            "secrets": {"access_token": "bc-token", "webhook_secret": "hook-secret"}})).await;
        assert_eq!(status, 201, "{conn}");
        let url = conn["webhook_url"].as_str().unwrap();
        let body = json!({"scope": "store/order/updated", "store_id": "1001", "producer": "stores/abc",
            "hash": "3f9ea420af83450d7ef9f78b08c8af25b2213637", "created_at": 1561482670,
            "data": {"type": "order", "id": 173331}}).to_string();
        assert_eq!(post_raw(&hub, url, &body, &[]).await.0, 401, "the shared secret header is required");
        let (status, answer) = post_raw(&hub, url, &body, &[("X-Shophub-Webhook-Secret", "hook-secret".into())]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(hub.drain().await, 1);
        let profile = hub.find_one(&ws, "email=ada@example.com").await;
        assert_eq!(profile["traits"]["order_count"], 1);
        assert_eq!(profile["traits"]["total_spent"], json!({"USD": "215.4500"}));
    }
}
