//! Destinations: the real hub and its sync engine delivering to fake
//! receivers on 127.0.0.1, with short retry timings from the config.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shophub::app::Hub;
use shophub::config::Config;
use shophub::destinations::EngineSettings;

use crate::fakes::webhook_receiver::{whsec, Mode, WebhookReceiver};
use crate::harness::{both_backends, fresh_database, Backend, TestHub, Workspace};

/// Short engine timings so retries and throttling play out in seconds.
pub(crate) fn fast() -> EngineSettings {
    EngineSettings {
        interval_ms: 30,
        retry_min_ms: 30,
        retry_max_ms: 150,
        max_attempts: 1000,
        breaker_failures: 1000,
        breaker_cooldown_ms: 100,
        lease_ms: 10_000,
        request_timeout_ms: 5_000,
    }
}

pub(crate) async fn hub_with(backend: Backend, destinations: EngineSettings) -> TestHub {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database = fresh_database(backend, dir.path()).await;
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        database_url: Some(database.url.clone()),
        workers: 0,
        sync_interval_seconds: 0,
        destinations,
        ..Config::default()
    };
    let hub = Hub::open(config).await.expect("hub opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = hub.start(listener).await.unwrap();
    let base = format!("http://{}", server.addr);
    TestHub {
        hub,
        server: Some(server),
        base,
        http: reqwest::Client::new(),
        dir,
        database,
    }
}

/// Polls until `check` holds; the bound is generous, nothing is timed.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

pub(crate) fn customer(id: &str, name: &str, email: &str) -> Value {
    json!({"kind": "customer", "external_id": id, "updated_at": "2026-06-01T00:00:00Z",
           "name": name, "emails": [email], "phones": []})
}

async fn webhook(hub: &TestHub, ws: &Workspace, url: &str, secret: &str) -> String {
    let (status, body) = hub
        .post(
            &ws.key,
            "/v1/destinations",
            json!({"kind": "webhook", "name": "crm hook", "settings": {"url": url},
                   "secrets": {"signing_secret": secret}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn patch(hub: &TestHub, ws: &Workspace, path: &str, body: Value) -> (u16, Value) {
    let response = hub
        .http
        .patch(hub.url(path))
        .bearer_auth(&ws.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

both_backends! {
    async fn signed_webhooks_rotate_secrets_and_never_show_them(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let (old, new) = (whsec(1), whsec(2));
        let (receiver, url) = WebhookReceiver::start(&[&old]).await;

        let bad = hub.post(&ws.key, "/v1/destinations", json!({"kind": "webhook", "name": "x",
            "settings": {"url": url}, "secrets": {"signing_secret": "not-a-secret"}})).await;
        assert_eq!(bad.0, 422, "{}", bad.1);
        assert_eq!(bad.1["field"], "secrets.signing_secret");
        let id = webhook(&hub, &ws, &url, &old).await;

        hub.deliver(&conn, json!([customer("c-1", "Ada Lovelace", "ada@example.com")])).await;
        eventually("the contact arrives signed", || async { receiver.contacts().len() == 1 }).await;
        let contact = receiver.contacts().into_values().next().unwrap();
        assert_eq!(contact["email"], "ada@example.com");
        assert_eq!(contact["first_name"], "Ada");
        assert_eq!(contact["last_name"], "Lovelace");
        assert_eq!(contact["properties"]["order_count"], 0);

        // Rotation: the new secret signs at once, the old one through its grace.
        let (status, body) = patch(&hub, &ws, &format!("/v1/destinations/{id}"),
            json!({"secrets": {"signing_secret": new}})).await;
        assert_eq!(status, 200, "{body}");
        receiver.trust(&[&new]);
        hub.deliver(&conn, json!([customer("c-2", "Grace Hopper", "grace@example.com")])).await;
        eventually("the new secret verifies", || async { receiver.contacts().len() == 2 }).await;
        receiver.trust(&[&old]);
        hub.deliver(&conn, json!([customer("c-3", "Alan Turing", "alan@example.com")])).await;
        eventually("the old secret still verifies", || async { receiver.contacts().len() == 3 }).await;
        assert_eq!(receiver.refused_signatures(), 0);

        // Secrets never come back, in any shape.
        for path in ["/v1/destinations".to_string(), format!("/v1/destinations/{id}")] {
            let (status, body) = hub.get(&ws.key, &path).await;
            assert_eq!(status, 200);
            let text = body.to_string();
            assert!(!text.contains("whsec_") && !text.contains("signing_secret"), "{text}");
        }
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
        eventually("the status shows no lag", || async {
            let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
            shown["sync"]["lag"] == 0
        }).await;
        assert_eq!(shown["sync"]["breaker"], "closed");
        assert!(shown["sync"]["last_success_at"].is_string(), "{shown}");

        // The per-record log says what went when.
        let profile = hub.find_one(&ws, "email=ada@example.com").await;
        let profile_id = profile["id"].as_str().unwrap();
        let (_, log) = hub.get(&ws.key, &format!("/v1/destinations/{id}/log?profile_id={profile_id}")).await;
        let entries = log["data"].as_array().unwrap();
        assert!(!entries.is_empty() && entries.iter().all(|e| e["profile_id"] == profile_id), "{log}");
        assert_eq!(entries[0]["result"], "sent");
    }

    async fn an_outage_is_retried_with_stable_ids_and_nothing_lost_or_doubled(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let secret = whsec(3);
        let (receiver, url) = WebhookReceiver::start(&[&secret]).await;
        receiver.set_mode(Mode::Fail(503));
        let id = webhook(&hub, &ws, &url, &secret).await;
        hub.deliver(&conn, json!([
            customer("c-1", "Ada Lovelace", "ada@example.com"),
            customer("c-2", "Grace Hopper", "grace@example.com"),
        ])).await;
        hub.deliver(&conn, json!([customer("c-3", "Alan Turing", "alan@example.com")])).await;

        eventually("the first message is retried", || async {
            receiver.0.lock().unwrap().attempts.values().any(|n| *n >= 3)
        }).await;
        // Retries resend one message id, never a new one per try.
        assert_eq!(receiver.0.lock().unwrap().attempts.len(), 1);
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
        assert!(shown["sync"]["consecutive_failures"].as_i64().unwrap() >= 1, "{shown}");
        assert!(shown["sync"]["last_error"].as_str().unwrap().contains("503"), "{shown}");
        assert!(shown["sync"]["lag"].as_i64().unwrap() > 0, "{shown}");

        receiver.set_mode(Mode::Accept);
        eventually("the destination catches up", || async { receiver.contacts().len() == 3 }).await;
        eventually("the cursor reaches the head", || async {
            let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
            shown["sync"]["lag"] == 0
        }).await;
        let accepted = receiver.accepted();
        let mut ids: Vec<&String> = accepted.iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), accepted.len(), "a message was delivered twice");
        assert_eq!(accepted.len(), 3, "one message per profile: {accepted:?}");
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
        assert_eq!(shown["sync"]["consecutive_failures"], 0);
        assert_eq!(shown["sync"]["dead_letters"], 0);
    }

    async fn a_throttled_destination_does_not_delay_another(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let secret = whsec(4);
        let (throttled, throttled_url) = WebhookReceiver::start(&[&secret]).await;
        throttled.set_mode(Mode::Throttle(1));
        let (healthy, healthy_url) = WebhookReceiver::start(&[&secret]).await;
        let slow = webhook(&hub, &ws, &throttled_url, &secret).await;
        webhook(&hub, &ws, &healthy_url, &secret).await;

        let batch: Vec<Value> = (1..=5)
            .map(|n| customer(&format!("c-{n}"), "Ada Lovelace", &format!("ada{n}@example.com")))
            .collect();
        hub.deliver(&conn, Value::Array(batch)).await;
        eventually("the healthy destination has everyone", || async { healthy.contacts().len() == 5 }).await;
        assert!(throttled.total_attempts() >= 1, "the throttled one was tried");
        assert!(throttled.contacts().is_empty());
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{slow}")).await;
        // Throttling paces; it is not a failure and opens no breaker.
        assert_eq!(shown["sync"]["breaker"], "closed", "{shown}");
        assert_eq!(shown["sync"]["dead_letters"], 0);

        throttled.set_mode(Mode::Accept);
        eventually("the throttled destination catches up", || async { throttled.contacts().len() == 5 }).await;
    }

    async fn a_merge_reaches_the_destination_as_one_contact(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let secret = whsec(5);
        let (receiver, url) = WebhookReceiver::start(&[&secret]).await;
        webhook(&hub, &ws, &url, &secret).await;
        hub.deliver(&conn, json!([
            customer("c-1", "Ada Lovelace", "ada@example.com"),
            customer("c-2", "Ada King", "ada.king@example.com"),
        ])).await;
        eventually("both contacts arrive", || async { receiver.contacts().len() == 2 }).await;
        let a = hub.find_one(&ws, "email=ada@example.com").await["id"].as_str().unwrap().to_string();
        let b = hub.find_one(&ws, "email=ada.king@example.com").await["id"].as_str().unwrap().to_string();

        let (status, merged) = hub.post(&ws.key, &format!("/v1/profiles/{a}/merge"), json!({"profile_id": b})).await;
        assert_eq!(status, 200, "{merged}");
        let survivor = merged["profile_id"].as_str().unwrap().to_string();
        let absorbed = if survivor == a { &b } else { &a };
        eventually("one contact remains", || async { receiver.contacts().len() == 1 }).await;
        assert!(receiver.contacts().contains_key(&survivor));
        let accepted = receiver.accepted();
        let merge = accepted
            .iter()
            .find(|(_, m)| m["type"] == "profile.merged")
            .expect("a profile.merged message");
        assert_eq!(merge.1["data"]["op"], "merge");
        assert_eq!(merge.1["data"]["absorbed_profile_id"], absorbed.as_str());
        assert_eq!(merge.1["data"]["into"]["profile_id"], survivor.as_str());
    }

    async fn given_up_changes_are_dead_lettered_and_replayed(backend: Backend) {
        let hub = hub_with(backend, EngineSettings { max_attempts: 2, ..fast() }).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let secret = whsec(6);
        let (receiver, url) = WebhookReceiver::start(&[&secret]).await;
        receiver.set_mode(Mode::Fail(500));
        let id = webhook(&hub, &ws, &url, &secret).await;
        hub.deliver(&conn, json!([customer("c-1", "Ada Lovelace", "ada@example.com")])).await;

        let path = format!("/v1/destinations/{id}/dead-letters");
        eventually("the change is dead-lettered", || async {
            hub.get(&ws.key, &path).await.1["data"].as_array().is_some_and(|d| d.len() == 1)
        }).await;
        let (_, dead) = hub.get(&ws.key, &path).await;
        let letter = &dead["data"][0];
        assert!(letter["error"].as_str().unwrap().contains("500"), "{dead}");
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
        assert_eq!(shown["sync"]["dead_letters"], 1);
        assert_eq!(shown["sync"]["lag"], 0, "the feed moved on: {shown}");

        let refused = hub.post(&ws.key, &format!("/v1/destinations/{id}/replay"), json!({})).await;
        assert_eq!(refused.0, 422, "{}", refused.1);
        receiver.set_mode(Mode::Accept);
        let (status, replay) = hub.post(&ws.key, &format!("/v1/destinations/{id}/replay"),
            json!({"ids": [letter["id"]]})).await;
        assert_eq!(status, 202, "{replay}");
        assert_eq!(replay["queued"], 1);
        eventually("the replay is delivered", || async { receiver.contacts().len() == 1 }).await;
        eventually("the dead-letter list is empty", || async {
            hub.get(&ws.key, &path).await.1["data"].as_array().is_some_and(|d| d.is_empty())
        }).await;
        // The replay went out under the message id the original had.
        let accepted = receiver.accepted();
        assert_eq!(receiver.attempts(&accepted[0].0), 3);
    }

    async fn a_dry_run_shows_the_next_changes_without_sending(backend: Backend) {
        // The engine is off: nothing but the dry run reads the feed.
        let hub = hub_with(backend, EngineSettings { interval_ms: 0, ..fast() }).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let secret = whsec(7);
        let (receiver, url) = WebhookReceiver::start(&[&secret]).await;
        let id = webhook(&hub, &ws, &url, &secret).await;
        hub.deliver(&conn, json!([
            customer("c-1", "Ada Lovelace", "ada@example.com"),
            customer("c-2", "Grace Hopper", "grace@example.com"),
        ])).await;
        for _ in 0..2 {
            let (status, dry) = hub.post(&ws.key, &format!("/v1/destinations/{id}/dry-run"), json!({})).await;
            assert_eq!(status, 200, "{dry}");
            let changes = dry["changes"].as_array().unwrap();
            assert_eq!(changes.len(), 2, "{dry}");
            assert!(changes.iter().all(|c| c["op"] == "upsert"), "{dry}");
            assert_eq!(changes[0]["change"]["payload"]["contact"]["email"], "ada@example.com");
            assert_eq!(dry["cursor"], 0);
        }
        assert_eq!(receiver.total_attempts(), 0);
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{id}")).await;
        assert_eq!(shown["sync"]["cursor"], 0);
    }

    async fn file_destinations_write_changes_and_snapshots(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let out = tempfile::tempdir().unwrap();
        let jsonl = out.path().join("jsonl");
        let csv = out.path().join("csv");
        let mut ids = Vec::new();
        for (dir, format) in [(&jsonl, "jsonl"), (&csv, "csv")] {
            let (status, body) = hub.post(&ws.key, "/v1/destinations", json!({"kind": "file",
                "name": format, "settings": {"directory": dir, "format": format},
                "mapping": {"orders": "traits.order_count"}})).await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_string());
        }
        let relative = hub.post(&ws.key, "/v1/destinations", json!({"kind": "file", "name": "x",
            "settings": {"directory": "out"}})).await;
        assert_eq!(relative.0, 422);

        hub.deliver(&conn, json!([
            customer("c-1", "Ada Lovelace", "ada@example.com"),
            customer("c-2", "Grace Hopper", "grace@example.com"),
        ])).await;
        let read_dir = |dir: &std::path::Path, prefix: &str| -> String {
            let mut text = String::new();
            for entry in std::fs::read_dir(dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_str().unwrap().starts_with(prefix) {
                    text.push_str(&std::fs::read_to_string(path).unwrap());
                }
            }
            text
        };
        eventually("both files have both contacts", || async {
            read_dir(&jsonl, "changes-").lines().count() == 2 && read_dir(&csv, "changes-").lines().count() == 3
        }).await;
        let lines: Vec<Value> = read_dir(&jsonl, "changes-").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["type"], "profile.created");
        assert_eq!(lines[0]["data"]["contact"]["email"], "ada@example.com");
        assert_eq!(lines[0]["data"]["contact"]["properties"], json!({"orders": 0}));
        let csv_text = read_dir(&csv, "changes-");
        assert!(csv_text.starts_with("id,type,timestamp,op,profile_id,email"), "{csv_text}");
        assert!(csv_text.contains("grace@example.com"), "{csv_text}");

        let (status, snapshot) = hub.post(&ws.key, &format!("/v1/destinations/{}/snapshot", ids[0]), json!({})).await;
        assert_eq!(status, 201, "{snapshot}");
        assert_eq!(snapshot["contacts"], 2);
        let snap = read_dir(&jsonl, "snapshot-");
        assert_eq!(snap.lines().count(), 2, "{snap}");
        assert!(snap.contains("grace@example.com"));
    }

    async fn unknown_and_unserved_kinds_are_refused(backend: Backend) {
        let hub = hub_with(backend, fast()).await;
        let ws = hub.workspace("acme").await;
        let unknown = hub.post(&ws.key, "/v1/destinations", json!({"kind": "salesforce", "name": "x"})).await;
        assert_eq!(unknown.0, 422, "{}", unknown.1);
        assert_eq!(unknown.1["field"], "kind");
        // Served by the connectors crate or not, a HubSpot destination
        // without credentials is never created.
        let hubspot = hub.post(&ws.key, "/v1/destinations", json!({"kind": "hubspot", "name": "x"})).await;
        assert!(matches!(hubspot.0, 400 | 422), "{}", hubspot.1);
        let (_, list) = hub.get(&ws.key, "/v1/destinations").await;
        assert_eq!(list["data"], json!([]));
    }
}
