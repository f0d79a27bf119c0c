//! Webhook intake: signatures, routing, limits, duplicates and dead letters.

use serde_json::{json, Value};

use crate::harness::*;

async fn inbox(hub: &TestHub, ws: &Workspace, status: &str) -> Vec<Value> {
    let (code, body) = hub
        .get(&ws.key, &format!("/v1/inbox?status={status}"))
        .await;
    assert_eq!(code, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn received(hub: &TestHub, ws: &Workspace, conn: &Connection) -> i64 {
    let (_, body) = hub
        .get(&ws.key, &format!("/v1/connections/{}", conn.id))
        .await;
    body["deliveries"]["received"].as_i64().unwrap()
}

both_backends! {
    async fn missing_wrong_and_tampered_signatures_are_refused(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let woo = hub.woocommerce(&ws).await;
        let body = shopify_customer(1, "a@example.com", "", "2026-01-01T00:00:00Z", "A").to_string();

        let unsigned = hub.send_raw(&shop.webhook_url, body.clone().into_bytes(),
            &[("X-Shopify-Topic", "customers/create"), ("X-Shopify-Event-Id", "e1")]).await;
        assert_eq!(unsigned.0, 401);
        assert_eq!(unsigned.1["code"], "bad_signature");

        let wrong = sign("not-the-secret", body.as_bytes());
        let (status, _) = hub.send_raw(&shop.webhook_url, body.clone().into_bytes(),
            &[("X-Shopify-Topic", "customers/create"), ("X-Shopify-Hmac-Sha256", &wrong)]).await;
        assert_eq!(status, 401);

        let right = sign(&shop.secret, body.as_bytes());
        let tampered = body.replace("a@example.com", "b@example.com");
        let (status, _) = hub.send_raw(&shop.webhook_url, tampered.into_bytes(),
            &[("X-Shopify-Topic", "customers/create"), ("X-Shopify-Hmac-Sha256", &right)]).await;
        assert_eq!(status, 401);

        let (status, _) = hub.send_raw(&woo.webhook_url, body.clone().into_bytes(),
            &[("X-WC-Webhook-Topic", "customer.created")]).await;
        assert_eq!(status, 401);

        assert_eq!(received(&hub, &ws, &shop).await, 0, "nothing refused was stored");
        assert_eq!(received(&hub, &ws, &woo).await, 0);
    }

    async fn unknown_or_mismatched_connections_are_not_found(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let body = json!({"id": 1});
        let unknown = Connection { id: "con_nope".into(), webhook_url: "/webhooks/shopify/con_nope".into(), secret: shop.secret.clone() };
        assert_eq!(hub.send_shopify(&unknown, "customers/create", "e", &body).await.0, 404);

        let wrong_platform = Connection { webhook_url: format!("/webhooks/woocommerce/{}", shop.id), ..unknown };
        assert_eq!(hub.send_woocommerce(&wrong_platform, "customer.created", &body).await.0, 404);

        let hostile = "/webhooks/%F0%9F%92%A3'%20OR%201=1--/..%2F..%2Fetc";
        assert_eq!(hub.send_raw(hostile, b"{}".to_vec(), &[]).await.0, 404);

        let (status, _) = hub.http.delete(hub.url(&format!("/v1/connections/{}", shop.id)))
            .bearer_auth(&ws.key).send().await.map(|r| (r.status().as_u16(), ())).unwrap();
        assert_eq!(status, 204);
        assert_eq!(hub.send_shopify(&shop, "customers/create", "e2", &body).await.0, 404, "deleted connections take nothing");
    }

    async fn oversized_bodies_get_413(backend: Backend) {
        let hub = spawn_with(backend, Options { body_limit_bytes: 4096, ..Options::default() }).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let mut customer = shopify_customer(1, "a@example.com", "", "2026-01-01T00:00:00Z", "A");
        customer["note"] = json!("x".repeat(5000));
        let (status, body) = hub.send_shopify(&shop, "customers/create", "big", &customer).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(received(&hub, &ws, &shop).await, 0);
        let small = shopify_customer(2, "b@example.com", "", "2026-01-01T00:00:00Z", "B");
        assert_eq!(hub.send_shopify(&shop, "customers/create", "small", &small).await.0, 200);
    }

    async fn a_duplicate_delivery_is_acknowledged_and_processed_once(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let woo = hub.woocommerce(&ws).await;
        let customer = shopify_customer(1, "a@example.com", "", "2026-01-01T00:00:00Z", "A");
        let first = hub.send_shopify(&shop, "customers/create", "evt-dup", &customer).await;
        let again = hub.send_shopify(&shop, "customers/create", "evt-dup", &customer).await;
        assert_eq!((first.0, first.1["status"].as_str()), (200, Some("accepted")));
        assert_eq!((again.0, again.1["status"].as_str()), (200, Some("duplicate")));

        // WooCommerce's delivery id changes on every attempt; the resource
        // version identifies the event.
        let order = woocommerce_order(7, "a@example.com", "", "5.00", "2026-02-01T11:05:00");
        assert_eq!(hub.send_woocommerce(&woo, "order.created", &order).await.1["status"], "accepted");
        assert_eq!(hub.send_woocommerce(&woo, "order.created", &order).await.1["status"], "duplicate");

        assert_eq!(hub.drain().await, 2);
        assert_eq!(received(&hub, &ws, &shop).await, 1);
        let profile = hub.find_one(&ws, "email=a@example.com").await;
        assert_eq!(profile["traits"]["order_count"], 1);
    }

    async fn undecodable_payloads_go_to_dead_letters_without_holding_others(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let broken = b"{\"id\": 1, \"email\": ".to_vec();
        let signature = sign(&shop.secret, &broken);
        let (status, _) = hub.send_raw(&shop.webhook_url, broken, &[
            ("X-Shopify-Topic", "customers/create"), ("X-Shopify-Hmac-Sha256", &signature),
            ("X-Shopify-Event-Id", "evt-broken")]).await;
        assert_eq!(status, 200, "a verified delivery is kept even if it cannot be read");
        let good = shopify_customer(2, "ok@example.com", "", "2026-01-01T00:00:00Z", "Ok");
        hub.send_shopify(&shop, "customers/create", "evt-good", &good).await;
        assert_eq!(hub.drain().await, 2);

        hub.find_one(&ws, "email=ok@example.com").await;
        let dead = inbox(&hub, &ws, "dead").await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["topic"], "customers/create");
        let error = dead[0]["error"].as_str().unwrap();
        assert!(error.contains("customers/create"), "{error}");

        let id = dead[0]["id"].as_i64().unwrap();
        let (status, body) = hub.post(&ws.key, &format!("/v1/inbox/{id}/replay"), json!({})).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
        assert!(inbox(&hub, &ws, "dead").await.is_empty());
        assert_eq!(inbox(&hub, &ws, "pending").await.len(), 1);
        assert_eq!(hub.drain().await, 1);
        assert_eq!(inbox(&hub, &ws, "dead").await.len(), 1, "still unreadable, back in dead letters");
        let (status, _) = hub.post(&ws.key, "/v1/inbox/999999/replay", json!({})).await;
        assert_eq!(status, 404);
    }

    async fn woocommerce_ping_is_answered_and_not_stored(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let woo = hub.woocommerce(&ws).await;
        let (status, _) = hub.http.post(hub.url(&woo.webhook_url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("webhook_id=12").send().await.map(|r| (r.status().as_u16(), ())).unwrap();
        assert_eq!(status, 200);
        assert_eq!(received(&hub, &ws, &woo).await, 0);
    }

    async fn shared_signature_vectors_are_accepted(backend: Backend) {
        let vectors: Value = serde_json::from_str(&std::fs::read_to_string(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/platforms/signature-test-vectors.json")).unwrap()).unwrap();
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        for (name, platform, header, topic_header, topic) in [
            ("shopify-webhook", "shopify", "X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "customers/create"),
            ("woocommerce-webhook", "woocommerce", "X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "customer.created"),
        ] {
            let vector = vectors["vectors"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap();
            let secret = vector["inputs"]["secret"].as_str().unwrap();
            let settings = match platform {
                "shopify" => json!({"shop_domain": "x.myshopify.com"}),
                _ => json!({"store_url": "https://x.example"}),
            };
            let (_, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": platform, "name": name,
                "settings": settings, "secrets": {"webhook_secret": secret}})).await;
            let url = conn["webhook_url"].as_str().unwrap();
            let body = vector["inputs"]["body"].as_str().unwrap().as_bytes().to_vec();
            let expected = vector["expected"][header].as_str().unwrap();
            let (status, answer) = hub.send_raw(url, body.clone(), &[(header, expected), (topic_header, topic)]).await;
            assert_eq!(status, 200, "{name}: {answer}");
            let mut tampered = body;
            tampered[2] ^= 1;
            assert_eq!(hub.send_raw(url, tampered, &[(header, expected), (topic_header, topic)]).await.0, 401);
        }
    }
}
