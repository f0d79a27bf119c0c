//! Deliveries become unified profiles: merging, versioning, the change feed.

use serde_json::json;

use crate::harness::*;

both_backends! {
    async fn shopify_customer_and_woocommerce_order_become_one_profile(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let woo = hub.woocommerce(&ws).await;

        let customer = shopify_customer(207119551, "Ada@Example.com", "+86 138 1234 5678", "2026-01-02T10:00:00+08:00", "Ada");
        assert_eq!(hub.send_shopify(&shop, "customers/create", "evt-1", &customer).await.0, 200);
        // Same buyer, email in other case with spaces, phone without country code.
        let order = woocommerce_order(727, "  ADA@example.COM ", "138-1234-5678", "49.00", "2026-02-01T11:05:00");
        assert_eq!(hub.send_woocommerce(&woo, "order.created", &order).await.0, 200);
        assert_eq!(hub.drain().await, 2);

        let by_email = hub.find_one(&ws, "email=ada@example.com").await;
        let by_phone = hub.find_one(&ws, "phone=%2B8613812345678").await;
        let by_local_phone = hub.find_one(&ws, "phone=13812345678&region=CN").await;
        let by_platform_id = hub.find_one(&ws, "platform=shopify&external_id=207119551").await;
        for other in [&by_phone, &by_local_phone, &by_platform_id] {
            assert_eq!(other["id"], by_email["id"]);
        }
        assert_eq!(by_email["emails"], json!(["ada@example.com"]));
        assert_eq!(by_email["phones"], json!(["+8613812345678"]));
        assert_eq!(by_email["name"], "Ada Lovelace");
        let traits = &by_email["traits"];
        assert_eq!(traits["order_count"], 1);
        assert_eq!(traits["total_spent"], json!({"EUR": "49.00"}));
        assert_eq!(traits["first_order_at"], "2026-02-01T11:00:00Z");
        assert_eq!(traits["last_order_at"], "2026-02-01T11:00:00Z");
        let platforms: Vec<&str> = by_email["identities"].as_array().unwrap().iter()
            .flat_map(|identity| identity["sources"].as_array().unwrap())
            .map(|source| source["platform"].as_str().unwrap())
            .collect();
        assert!(platforms.contains(&"shopify") && platforms.contains(&"woocommerce"), "{platforms:?}");

        let id = by_email["id"].as_str().unwrap();
        let (status, timeline) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline")).await;
        assert_eq!(status, 200);
        assert_eq!(timeline["data"][0]["type"], "order");
        assert_eq!(timeline["data"][0]["order"]["total"], "49.00");
        assert_eq!(timeline["data"][0]["platform"], "woocommerce");
    }

    async fn a_linking_record_merges_profiles_and_the_old_id_resolves(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let woo = hub.woocommerce(&ws).await;

        // Two buyers as far as the hub can tell: one known by email, one by phone.
        let customer = shopify_customer(1, "grace@example.com", "", "2026-01-02T10:00:00Z", "Grace");
        hub.send_shopify(&shop, "customers/create", "evt-a", &customer).await;
        hub.drain().await;
        let order = woocommerce_order(5, "", "+4930901820", "10.00", "2026-02-01T11:05:00");
        hub.send_woocommerce(&woo, "order.created", &order).await;
        hub.drain().await;
        let first = hub.find_one(&ws, "email=grace@example.com").await;
        let second = hub.find_one(&ws, "phone=%2B4930901820").await;
        assert_ne!(first["id"], second["id"]);

        // The customer adds the phone: both are one person now.
        let with_phone = shopify_customer(1, "grace@example.com", "+49 30 901820", "2026-03-01T10:00:00Z", "Grace");
        hub.send_shopify(&shop, "customers/update", "evt-b", &with_phone).await;
        hub.drain().await;

        let merged = hub.find_one(&ws, "phone=%2B4930901820").await;
        assert_eq!(merged["id"], first["id"], "the older profile survives");
        assert_eq!(merged["traits"]["order_count"], 1);
        let absorbed = second["id"].as_str().unwrap();
        let (status, via_alias) = hub.get(&ws.key, &format!("/v1/profiles/{absorbed}")).await;
        assert_eq!(status, 200);
        assert_eq!(via_alias["id"], first["id"]);

        let changes = hub.changes(&ws).await;
        let merge = changes.iter().find(|c| c["type"] == "profile.merged").expect("a merge change");
        assert_eq!(merge["survivor"], first["id"]);
        assert_eq!(merge["absorbed"], json!([absorbed]));
        let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let kinds: Vec<&str> = changes.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "profile.created").count(), 2, "{kinds:?}");
    }

    async fn an_older_version_never_overwrites_a_newer_one(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;

        let newer = shopify_customer(9, "ada@example.com", "", "2026-05-01T10:00:00Z", "Augusta");
        let older = shopify_customer(9, "ada@example.com", "", "2026-04-01T10:00:00Z", "Ada");
        hub.send_shopify(&shop, "customers/update", "evt-new", &newer).await;
        hub.drain().await;
        hub.send_shopify(&shop, "customers/update", "evt-old", &older).await;
        hub.drain().await;

        let profile = hub.find_one(&ws, "email=ada@example.com").await;
        assert_eq!(profile["name"], "Augusta Lovelace");
        let kinds: Vec<String> = hub.changes(&ws).await.iter().map(|c| c["type"].as_str().unwrap().to_string()).collect();
        assert_eq!(kinds, ["profile.created"], "the stale update changed nothing");
    }

    async fn change_feed_pages_with_a_cursor(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        for i in 0..5 {
            let c = shopify_customer(100 + i, &format!("buyer{i}@example.com"), "", "2026-01-02T10:00:00Z", "B");
            hub.send_shopify(&shop, "customers/create", &format!("evt-{i}"), &c).await;
        }
        hub.drain().await;
        let (_, page) = hub.get(&ws.key, "/v1/changes?after=0&limit=2").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["has_more"], true);
        let after = page["next_after"].as_i64().unwrap();
        let (_, rest) = hub.get(&ws.key, &format!("/v1/changes?after={after}&limit=100")).await;
        assert_eq!(rest["data"].as_array().unwrap().len(), 3);
        assert!(rest["data"][0]["seq"].as_i64().unwrap() > after);
        assert_eq!(rest["data"][0]["type"], "profile.created");
        assert!(rest["data"][0]["profile"]["emails"].is_array());
    }

    async fn background_workers_process_without_being_driven(backend: Backend) {
        let hub = spawn_with(backend, Options { workers: 1, ..Options::default() }).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let customer = shopify_customer(3, "lin@example.com", "", "2026-01-02T10:00:00Z", "Lin");
        assert_eq!(hub.send_shopify(&shop, "customers/create", "evt-w", &customer).await.0, 200);
        // Bounded wait for the real worker loop; no timing is asserted.
        let mut found = 0;
        for _ in 0..200 {
            let (_, body) = hub.get(&ws.key, "/v1/profiles?email=lin@example.com").await;
            found = body["data"].as_array().map_or(0, |d| d.len());
            if found == 1 { break; }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(found, 1);
    }
}

both_backends! {
    async fn hostile_strings_are_stored_and_returned_intact(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let hostile = "Robert'); DROP TABLE profiles;-- \u{0000} \u{202e}evil\u{202c} 王伟 🧨";
        let customer = shopify_customer(66, "bobby@example.com", "", "2026-01-01T00:00:00Z", hostile);
        assert_eq!(hub.send_shopify(&shop, "customers/create", "evt-hostile", &customer).await.0, 200);
        assert_eq!(hub.drain().await, 1);
        let profile = hub.find_one(&ws, "email=bobby@example.com").await;
        assert_eq!(profile["name"], format!("{hostile} Lovelace"));
        let (status, _) = hub.get(&ws.key, "/v1/profiles?email=%27%20OR%201%3D1--%40example.com").await;
        assert_eq!(status, 422);
    }

    async fn competing_workers_never_split_one_buyer(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let woo = hub.woocommerce(&ws).await;
        // Thirty records of five buyers, spread over two platforms.
        for i in 0..30i64 {
            let email = format!("p{}@example.com", i % 5);
            if i % 2 == 0 {
                let c = shopify_customer(i, &email, "", "2026-01-01T00:00:00Z", "P");
                hub.send_shopify(&shop, "customers/create", &format!("e{i}"), &c).await;
            } else {
                let o = woocommerce_order(i, &email, "", "1.00", "2026-02-01T11:05:00");
                hub.send_woocommerce(&woo, "order.created", &o).await;
            }
        }
        // Three workers at once, as three hub processes would be.
        let (a, b, c) = (hub.hub.worker(), hub.hub.worker(), hub.hub.worker());
        let (x, y, z) = tokio::join!(a.run_until_idle(), b.run_until_idle(), c.run_until_idle());
        assert_eq!(x.unwrap() + y.unwrap() + z.unwrap(), 30);
        for i in 0..5 {
            let profile = hub.find_one(&ws, &format!("email=p{i}@example.com")).await;
            assert_eq!(profile["traits"]["order_count"], 3);
        }
    }
}
