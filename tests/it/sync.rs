//! Polling against a fake WooCommerce: backfills that resume, throttling,
//! revoked keys, and webhooks and polls agreeing on one order.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use shophub::sync::{Mode, SyncError};
use shophub_connectors::poll::Resource;

use crate::fakes::woocommerce::{FakeWoo, KEY, SECRET};
use crate::harness::*;

fn order(id: i64, email: &str, modified: &str, status: &str) -> Value {
    let mut order = woocommerce_order(id, email, "", "10.00", modified);
    order["status"] = json!(status);
    order
}

/// Orders spread over a few minutes, several sharing one timestamp.
fn orders(count: i64) -> Vec<Value> {
    (0..count)
        .map(|i| {
            order(
                1000 + i,
                &format!("buyer{}@example.com", i % 40),
                &format!("2026-03-01T10:{:02}:00", i / 10),
                "processing",
            )
        })
        .collect()
}

async fn polled_connection(hub: &TestHub, ws: &Workspace, fake_base: &str) -> Connection {
    let secret = "woo-secret".to_string();
    let (status, body) = hub
        .post(&ws.key, "/v1/connections", json!({
            "platform": "woocommerce", "name": "polled",
            "settings": {"store_url": "https://shop.example.com", "api_base_url": fake_base},
            "secrets": {"webhook_secret": secret, "consumer_key": KEY, "consumer_secret": SECRET}
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    Connection {
        id: body["id"].as_str().unwrap().into(),
        webhook_url: body["webhook_url"].as_str().unwrap().into(),
        secret,
    }
}

async fn stream(hub: &TestHub, ws: &Workspace, conn: &Connection, name: &str) -> Value {
    let (_, body) = hub
        .get(&ws.key, &format!("/v1/connections/{}", conn.id))
        .await;
    body["sync"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The callback path Shopify redirects to, with the given `hmac`.
fn shopify_callback(state: &str, hmac: String) -> String {
    format!(
        "/oauth/shopify/callback?{}&hmac={hmac}",
        callback_params(state)
    )
}

fn callback_params(state: &str) -> String {
    let timestamp = chrono::Utc::now().timestamp();
    format!("code=the-code&shop=acme.myshopify.com&state={state}&timestamp={timestamp}")
}

/// Signed as Shopify signs: hex HMAC-SHA256 of the sorted parameters.
fn signed_shopify_callback(state: &str, client_secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let params = callback_params(state);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(client_secret.as_bytes()).unwrap();
    mac.update(params.as_bytes());
    let hmac = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    format!("/oauth/shopify/callback?{params}&hmac={hmac}")
}

async fn order_count(hub: &TestHub, ws: &Workspace) -> i64 {
    let mut total = 0;
    for i in 0..40 {
        let (_, body) = hub
            .get(&ws.key, &format!("/v1/profiles?email=buyer{i}@example.com"))
            .await;
        for profile in body["data"].as_array().unwrap() {
            total += profile["traits"]["order_count"].as_i64().unwrap();
        }
    }
    total
}

both_backends! {
    async fn an_interrupted_backfill_resumes_without_gaps_or_duplicates(backend: Backend) {
        let fake = FakeWoo::default();
        *fake.orders.lock().unwrap() = orders(250);
        let base = fake.start().await;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;
        let syncer = hub.hub.syncer();

        syncer.prepare_backfill(&conn.id, Resource::Orders, None).await.unwrap();
        // Killed after the first page.
        let first = syncer.run_stream(&conn.id, Resource::Orders, Mode::Backfill, Some(1), |_| {}).await.unwrap();
        assert!(!first.caught_up);
        assert_eq!(first.records, 100);

        // Run again: it resumes where it stopped.
        syncer.prepare_backfill(&conn.id, Resource::Orders, None).await.unwrap();
        let done = syncer.run_stream(&conn.id, Resource::Orders, Mode::Backfill, None, |_| {}).await.unwrap();
        assert!(done.caught_up);
        assert_eq!(order_count(&hub, &ws).await, 250);
        let backfill = stream(&hub, &ws, &conn, "backfill:orders").await;
        assert_eq!(backfill["caught_up"], true);
        assert_eq!(backfill["watermark"], "2026-03-01T10:24:00Z");
    }

    async fn a_429_storm_is_waited_out(backend: Backend) {
        let fake = FakeWoo::default();
        *fake.orders.lock().unwrap() = orders(120);
        fake.throttle_next.store(5, Ordering::SeqCst);
        let base = fake.start().await;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;
        let progress = hub.hub.syncer().run_stream(&conn.id, Resource::Orders, Mode::Incremental, None, |_| {}).await.unwrap();
        assert!(progress.caught_up);
        assert_eq!(fake.throttled.load(Ordering::SeqCst), 5);
        assert_eq!(order_count(&hub, &ws).await, 120);
    }

    async fn a_revoked_key_stops_polling_until_new_credentials_arrive(backend: Backend) {
        let fake = FakeWoo::default();
        *fake.orders.lock().unwrap() = orders(250);
        fake.revoke_after.store(1, Ordering::SeqCst);
        let base = fake.start().await;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;
        let syncer = hub.hub.syncer();

        let error = syncer.run_stream(&conn.id, Resource::Orders, Mode::Incremental, None, |_| {}).await.unwrap_err();
        assert!(matches!(error, SyncError::NeedsReauth(_)), "{error}");
        let (_, shown) = hub.get(&ws.key, &format!("/v1/connections/{}", conn.id)).await;
        assert_eq!(shown["auth_status"], "needs_reauth");
        assert_eq!(order_count(&hub, &ws).await, 100, "the page before the revocation was kept");

        // No more calls while the connection waits for credentials.
        let calls = fake.requests.load(Ordering::SeqCst);
        assert!(syncer.run_stream(&conn.id, Resource::Orders, Mode::Incremental, None, |_| {}).await.is_err());
        assert_eq!(fake.requests.load(Ordering::SeqCst), calls);
        let (status, _) = hub.post(&ws.key, &format!("/v1/connections/{}/sync", conn.id), json!({})).await;
        assert_eq!(status, 409);

        // New credentials: polling resumes and completes.
        fake.revoke_now(false);
        let patch = hub.http.patch(hub.url(&format!("/v1/connections/{}", conn.id))).bearer_auth(&ws.key)
            .json(&json!({"secrets": {"consumer_secret": SECRET}})).send().await.unwrap();
        assert_eq!(patch.status().as_u16(), 200);
        let done = syncer.run_stream(&conn.id, Resource::Orders, Mode::Incremental, None, |_| {}).await.unwrap();
        assert!(done.caught_up);
        assert_eq!(order_count(&hub, &ws).await, 250);
    }

    async fn a_webhook_and_a_poll_of_one_order_apply_once_and_old_pages_lose(backend: Backend) {
        let fake = FakeWoo::default();
        let base = fake.start().await;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;

        // The webhook brings the newest version: completed at 12:00.
        let newest = order(77, "buyer1@example.com", "2026-03-02T12:00:00", "completed");
        assert_eq!(hub.send_woocommerce(&conn, "order.updated", &newest).await.0, 200);
        hub.drain().await;
        let changes_before = hub.changes(&ws).await.len();

        // The poll sees the same version, and an older one of another read.
        *fake.orders.lock().unwrap() = vec![newest.clone()];
        hub.hub.syncer().run_stream(&conn.id, Resource::Orders, Mode::Incremental, None, |_| {}).await.unwrap();
        assert_eq!(hub.changes(&ws).await.len(), changes_before, "the same version changed nothing");

        let stale = order(77, "buyer1@example.com", "2026-03-02T09:00:00", "processing");
        *fake.orders.lock().unwrap() = vec![stale];
        let syncer = hub.hub.syncer();
        syncer.prepare_backfill(&conn.id, Resource::Orders, None).await.unwrap();
        syncer.run_stream(&conn.id, Resource::Orders, Mode::Backfill, None, |_| {}).await.unwrap();

        let profile = hub.find_one(&ws, "email=buyer1@example.com").await;
        let id = profile["id"].as_str().unwrap();
        let (_, timeline) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline")).await;
        let entries = timeline["data"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "one order, however it arrived");
        assert_eq!(entries[0]["order"]["status"], "completed");
        assert_eq!(hub.changes(&ws).await.len(), changes_before);
    }

    async fn backfill_and_sync_through_the_api(backend: Backend) {
        let fake = FakeWoo::default();
        *fake.orders.lock().unwrap() = orders(30);
        let base = fake.start().await;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;
        let (status, body) = hub.post(&ws.key, &format!("/v1/connections/{}/backfill", conn.id), json!({"resource": "orders"})).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["streams"], json!(["backfill:orders"]));
        let mut done = Value::Null;
        for _ in 0..200 {
            done = stream(&hub, &ws, &conn, "backfill:orders").await;
            if done["caught_up"] == true { break; }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(done["caught_up"], true);
        assert_eq!(done["records"], 30);
        assert_eq!(order_count(&hub, &ws).await, 30);

        // A webhook-only connection cannot be polled, and says why.
        let plain = hub.woocommerce(&ws).await;
        let (status, body) = hub.post(&ws.key, &format!("/v1/connections/{}/backfill", plain.id), json!({})).await;
        assert_eq!(status, 422, "{body}");
        let (status, _) = hub.post(&ws.key, &format!("/v1/connections/{}/backfill", conn.id), json!({"resource": "invoices"})).await;
        assert_eq!(status, 422);
    }
}

both_backends! {
    async fn the_scheduler_reconciles_and_restores_disabled_webhooks(backend: Backend) {
        let fake = FakeWoo::default();
        *fake.orders.lock().unwrap() = orders(15);
        let base = fake.start().await;
        let options = Options { public_url: Some("https://hub.example.com".into()), sync_interval_seconds: 1, ..Options::default() };
        let hub = spawn_with(backend, options).await;
        let ws = hub.workspace("acme").await;
        let conn = polled_connection(&hub, &ws, &base).await;
        let ours = format!("https://hub.example.com/webhooks/woocommerce/{}", conn.id);
        // WooCommerce disabled one subscription after failed deliveries.
        fake.webhooks.lock().unwrap().push(json!({"id": 1, "topic": "order.created", "delivery_url": ours, "status": "disabled"}));
        // A webhook-only connection must never be polled (it has no keys).
        hub.woocommerce(&ws).await;

        // Bounded wait for the background sweep; nothing is timed.
        let mut swept = false;
        for _ in 0..300 {
            if order_count(&hub, &ws).await == 15 && fake.webhooks.lock().unwrap().len() == 5 {
                swept = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(swept, "the sweep loaded the orders and restored the subscriptions");
        let hooks = fake.webhooks.lock().unwrap().clone();
        assert!(hooks.iter().all(|h| h["status"] == "active" && h["delivery_url"] == ours.as_str()), "{hooks:?}");
        let topics: Vec<&str> = hooks.iter().map(|h| h["topic"].as_str().unwrap()).collect();
        for topic in ["customer.created", "customer.updated", "order.created", "order.updated", "order.restored"] {
            assert!(topics.contains(&topic), "{topics:?}");
        }
        let orders_stream = stream(&hub, &ws, &conn, "orders").await;
        assert_eq!(orders_stream["caught_up"], true);

        // Asked directly, nothing is left to change.
        let (status, body) = hub.post(&ws.key, &format!("/v1/connections/{}/webhooks", conn.id), json!({})).await;
        assert_eq!((status, body["changes"].clone()), (200, json!([])), "{body}");
    }

    async fn shopify_installs_through_oauth(backend: Backend) {
        use crate::fakes::shopify::{FakeShopify, TOKEN};
        let fake = FakeShopify::default();
        let base = fake.start().await;
        let options = Options { public_url: Some("https://hub.example.com".into()), ..Options::default() };
        let hub = spawn_with(backend, options).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({
            "platform": "shopify", "name": "oauth",
            "settings": {"shop_domain": "acme.myshopify.com", "client_id": "app-id", "api_base_url": base},
            "secrets": {"webhook_secret": "hush"}})).await;
        assert_eq!(status, 201, "{conn}");
        let id = conn["id"].as_str().unwrap();

        let (status, started) = hub.post(&ws.key, &format!("/v1/connections/{id}/install"), json!({})).await;
        assert_eq!(status, 200, "{started}");
        let install = url::Url::parse(started["install_url"].as_str().unwrap()).unwrap();
        assert_eq!(install.host_str(), Some("acme.myshopify.com"));
        let param = |name: &str| install.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
        assert_eq!(param("client_id"), "app-id");
        assert_eq!(param("redirect_uri"), "https://hub.example.com/oauth/shopify/callback");
        let state = param("state");

        // A forged callback is refused, and uses up its state.
        let forged = shopify_callback(&state, "0".repeat(64));
        let answer = hub.http.get(hub.url(&forged)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 401);

        // Shopify redirects back with a query signed with the client secret.
        let (_, started) = hub.post(&ws.key, &format!("/v1/connections/{id}/install"), json!({})).await;
        let install = url::Url::parse(started["install_url"].as_str().unwrap()).unwrap();
        let state = install.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        let query = signed_shopify_callback(&state, "hush");
        let callback = hub.http.get(hub.url(&query)).send().await.unwrap();
        assert_eq!(callback.status().as_u16(), 200);
        let done: Value = callback.json().await.unwrap();
        assert_eq!(done["status"], "connected", "{done}");
        assert_eq!(done["webhooks"].as_array().unwrap().len(), 7, "{done}");
        assert_eq!(fake.exchanges.lock().unwrap()[0]["client_id"], "app-id");
        let subscriptions = fake.subscriptions.lock().unwrap().clone();
        assert!(subscriptions.iter().all(|(_, uri)| uri == &format!("https://hub.example.com/webhooks/shopify/{id}")));

        // The token is sealed at rest, never shown, and polling now has it.
        let sealed = hub.hub.store.connection_secrets(id).await.unwrap().unwrap().secrets;
        assert!(!sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
        let (_, shown) = hub.get(&ws.key, &format!("/v1/connections/{id}")).await;
        assert!(!shown.to_string().contains(TOKEN));
        assert_eq!(hub.hub.syncer().resources(id).await.unwrap().len(), 2);

        // A state is good once.
        let replay = hub.http.get(hub.url(&query)).send().await.unwrap();
        assert_eq!(replay.status().as_u16(), 400);
    }
}
