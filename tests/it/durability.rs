//! Nothing acknowledged is lost, and each delivery takes effect once, across
//! restarts, crashes and competing workers.

use crate::harness::*;

both_backends! {
    async fn data_survives_a_restart(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let customer = shopify_customer(1, "kept@example.com", "", "2026-01-01T00:00:00Z", "K");
        hub.send_shopify(&shop, "customers/create", "e1", &customer).await;
        hub.drain().await;
        let before = hub.find_one(&ws, "email=kept@example.com").await;

        let hub = hub.restart(Options::default()).await;
        let after = hub.find_one(&ws, "email=kept@example.com").await;
        assert_eq!(before["id"], after["id"]);
        // The connection's secret still decrypts: the master key was kept too.
        let again = shopify_customer(2, "new@example.com", "", "2026-01-01T00:00:00Z", "N");
        assert_eq!(hub.send_shopify(&shop, "customers/create", "e2", &again).await.0, 200);
    }

    async fn acknowledged_deliveries_survive_a_stop_before_processing(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        for i in 0..10 {
            let c = shopify_customer(i, &format!("b{i}@example.com"), "", "2026-01-01T00:00:00Z", "B");
            assert_eq!(hub.send_shopify(&shop, "customers/create", &format!("e{i}"), &c).await.0, 200);
        }
        let hub = hub.restart(Options::default()).await;
        assert_eq!(hub.drain().await, 10);
        for i in 0..10 {
            hub.find_one(&ws, &format!("email=b{i}@example.com")).await;
        }
    }

    async fn a_worker_that_dies_mid_delivery_loses_its_lease_not_the_delivery(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        let c = shopify_customer(1, "crash@example.com", "", "2026-01-01T00:00:00Z", "C");
        hub.send_shopify(&shop, "customers/create", "e1", &c).await;
        let store = hub.hub.store.clone();

        // A worker claims the delivery and dies before committing.
        let now = shophub::clock::now_ms();
        let lease = 60_000;
        let crashed = store.claim_deliveries(now, lease, 10).await.unwrap();
        assert_eq!(crashed.len(), 1);
        assert!(store.claim_deliveries(now + 1, lease, 10).await.unwrap().is_empty(), "leased deliveries are not handed out twice");

        // After the lease runs out another worker takes it over.
        let retaken = store.claim_deliveries(now + lease + 1, lease, 10).await.unwrap();
        assert_eq!(retaken.len(), 1);
        assert_eq!(retaken[0].attempts, 2);

        // The dead worker's late commit is fenced off...
        let mut late = store.begin_write(&ws.id).await.unwrap();
        assert!(!late.complete_delivery(crashed[0].id, &crashed[0].lease_token, now).await.unwrap());
        drop(late);
        // ...and the new owner's counts, once.
        let worker = hub.hub.worker();
        assert_eq!(worker.process(&retaken[0]).await, shophub::worker::Outcome::Done);
        assert_eq!(worker.process(&retaken[0]).await, shophub::worker::Outcome::LeaseLost);
        let profile = hub.find_one(&ws, "email=crash@example.com").await;
        let created = hub.changes(&ws).await.iter().filter(|c| c["profile_id"] == profile["id"]).count();
        assert_eq!(created, 1);
    }

    async fn concurrent_deliveries_are_all_stored_once(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let shop = hub.shopify(&ws).await;
        // Every event is sent twice, all at once.
        let events: Vec<(String, serde_json::Value)> = (0..40)
            .map(|i| (format!("e{}", i % 20), shopify_customer(i % 20, &format!("c{}@example.com", i % 20), "", "2026-01-01T00:00:00Z", "C")))
            .collect();
        let sends = events.iter().map(|(event, body)| hub.send_shopify(&shop, "customers/create", event, body));
        let answers = futures_util::future::join_all(sends).await;
        assert!(answers.iter().all(|(status, _)| *status == 200));
        let accepted = answers.iter().filter(|(_, body)| body["status"] == "accepted").count();
        assert_eq!(accepted, 20);
        assert_eq!(hub.drain().await, 20);
    }
}
