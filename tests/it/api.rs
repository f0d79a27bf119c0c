//! The `/v1` API: keys, tenancy, connections, operations endpoints.

use serde_json::{json, Value};

use crate::harness::*;

both_backends! {
    async fn requests_without_a_valid_key_get_401(backend: Backend) {
        let hub = spawn(backend).await;
        hub.workspace("acme").await;
        for path in ["/v1/connections", "/v1/changes", "/v1/inbox", "/v1/profiles?email=a@example.com"] {
            let anonymous = hub.http.get(hub.url(path)).send().await.unwrap();
            assert_eq!(anonymous.status().as_u16(), 401, "{path}");
            let body: Value = anonymous.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized");
            assert_eq!(hub.get("shk_forged", path).await.0, 401, "{path}");
        }
    }

    async fn a_key_never_sees_another_workspace(backend: Backend) {
        let hub = spawn(backend).await;
        let mine = hub.workspace("mine").await;
        let theirs = hub.workspace("theirs").await;
        let shop = hub.shopify(&theirs).await;
        let customer = shopify_customer(1, "secret@example.com", "", "2026-01-01T00:00:00Z", "S");
        hub.send_shopify(&shop, "customers/create", "e1", &customer).await;
        let broken = b"not json".to_vec();
        let signature = sign(&shop.secret, &broken);
        hub.send_raw(&shop.webhook_url, broken, &[("X-Shopify-Topic", "customers/create"), ("X-Shopify-Hmac-Sha256", &signature)]).await;
        hub.drain().await;
        let profile = hub.find_one(&theirs, "email=secret@example.com").await;
        let profile_id = profile["id"].as_str().unwrap();
        let dead = hub.get(&theirs.key, "/v1/inbox?status=dead").await.1["data"][0]["id"].as_i64().unwrap();

        assert_eq!(hub.get(&mine.key, &format!("/v1/connections/{}", shop.id)).await.0, 404);
        assert_eq!(hub.get(&mine.key, &format!("/v1/profiles/{profile_id}")).await.0, 404);
        assert_eq!(hub.get(&mine.key, &format!("/v1/profiles/{profile_id}/timeline")).await.0, 404);
        assert_eq!(hub.get(&mine.key, "/v1/profiles?email=secret@example.com").await.1["data"], json!([]));
        assert_eq!(hub.get(&mine.key, "/v1/connections").await.1["data"], json!([]));
        assert_eq!(hub.get(&mine.key, "/v1/changes").await.1["data"], json!([]));
        assert_eq!(hub.get(&mine.key, "/v1/inbox?status=dead").await.1["data"], json!([]));
        assert_eq!(hub.post(&mine.key, &format!("/v1/inbox/{dead}/replay"), json!({})).await.0, 404);
        let delete = hub.http.delete(hub.url(&format!("/v1/connections/{}", shop.id))).bearer_auth(&mine.key).send().await.unwrap();
        assert_eq!(delete.status().as_u16(), 404);
        assert_eq!(hub.get(&theirs.key, &format!("/v1/connections/{}", shop.id)).await.0, 200);
    }

    async fn connections_are_created_listed_shown_and_deleted_without_revealing_secrets(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        assert_eq!(shop.webhook_url, format!("/webhooks/shopify/{}", shop.id));

        let customer = shopify_customer(1, "a@example.com", "", "2026-01-01T00:00:00Z", "A");
        hub.send_shopify(&shop, "customers/create", "e1", &customer).await;
        hub.drain().await;

        let (status, shown) = hub.get(&ws.key, &format!("/v1/connections/{}", shop.id)).await;
        assert_eq!(status, 200);
        assert_eq!(shown["platform"], "shopify");
        assert_eq!(shown["settings"]["shop_domain"], "test.myshopify.com");
        assert_eq!(shown["deliveries"]["received"], 1);
        assert_eq!(shown["deliveries"]["processed"], 1);
        assert!(shown["deliveries"]["last_delivery_at"].is_string());
        let (_, listed) = hub.get(&ws.key, "/v1/connections").await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        for body in [&shown, &listed] {
            assert!(!body.to_string().contains(&shop.secret), "secrets are never returned");
        }

        // At rest the secret is sealed: the database never holds it in clear.
        let sealed = hub.hub.store.connection_secrets(&shop.id).await.unwrap().unwrap().secrets;
        assert!(!sealed.windows(shop.secret.len()).any(|w| w == shop.secret.as_bytes()));

        let delete = hub.http.delete(hub.url(&format!("/v1/connections/{}", shop.id))).bearer_auth(&ws.key).send().await.unwrap();
        assert_eq!(delete.status().as_u16(), 204);
        assert_eq!(hub.get(&ws.key, &format!("/v1/connections/{}", shop.id)).await.0, 404);
        hub.find_one(&ws, "email=a@example.com").await;
    }

    async fn invalid_connections_get_422_naming_the_field(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        for (body, field) in [
            (json!({"platform": "ebay", "name": "x"}), "platform"),
            (json!({"platform": "shopify", "name": "x", "secrets": {"webhook_secret": "s"}}), "settings.shop_domain"),
            (json!({"platform": "woocommerce", "name": "x", "settings": {"store_url": "https://x"}}), "secrets.webhook_secret"),
            (json!({"platform": "woocommerce", "name": "", "settings": {"store_url": "https://x"}, "secrets": {"webhook_secret": "s"}}), "name"),
            (json!({"platform": "shopify", "name": "x", "settings": {"shop_domain": "x", "api_base_url": "ftp://x"}, "secrets": {"webhook_secret": "s"}}), "settings.api_base_url"),
        ] {
            let (status, answer) = hub.post(&ws.key, "/v1/connections", body).await;
            assert_eq!(status, 422, "{answer}");
            assert_eq!(answer["field"], field, "{answer}");
        }
        let raw = hub.http.post(hub.url("/v1/connections")).bearer_auth(&ws.key)
            .header("Content-Type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(raw.status().as_u16(), 400);
    }

    async fn profile_lookups_validate_their_input(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        assert_eq!(hub.get(&ws.key, "/v1/profiles").await.0, 400);
        assert_eq!(hub.get(&ws.key, "/v1/profiles?email=not-an-email").await.0, 422);
        assert_eq!(hub.get(&ws.key, "/v1/profiles?phone=138****5678").await.0, 422);
        assert_eq!(hub.get(&ws.key, "/v1/profiles?email=nobody@example.com").await.1["data"], json!([]));
        assert_eq!(hub.get(&ws.key, "/v1/profiles/prof_missing").await.0, 404);
    }

    async fn health_readiness_and_metrics_answer(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let customer = shopify_customer(1, "a@example.com", "", "2026-01-01T00:00:00Z", "A");
        hub.send_shopify(&shop, "customers/create", "e1", &customer).await;
        hub.send_raw(&shop.webhook_url, b"{}".to_vec(), &[("X-Shopify-Topic", "customers/create")]).await;
        hub.drain().await;

        assert_eq!(hub.http.get(hub.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
        let ready: Value = hub.http.get(hub.url("/readyz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        let metrics = hub.http.get(hub.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for name in ["shophub_webhooks_received_total", "shophub_webhooks_rejected_total", "shophub_deliveries_processed_total", "shophub_processing_seconds"] {
            assert!(metrics.contains(name), "{name} missing from /metrics");
        }
        assert!(metrics.contains("reason=\"bad_signature\""));
    }
}
