//! The hub syncing out to the tools merchants use: the real hub and its
//! sync engine against the fake HubSpot, Mailchimp and Klaviyo servers,
//! from ingestion through consent, merges, erasures and rate limits.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

use crate::destinations::{customer, eventually, fast, hub_with};
use crate::fakes::hubspot::FakeHubSpot;
use crate::fakes::klaviyo::FakeKlaviyo;
use crate::fakes::mailchimp::FakeMailchimp;
use crate::harness::{both_backends, Backend, TestHub, Workspace};

const HUBSPOT_TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
const MAILCHIMP_KEY: &str = "0123456789abcdef0123456789abcdef-us6";
const KLAVIYO_KEY: &str = "pk_0123456789abcdef0123456789abcdef01";
const LIST_ID: &str = "a1b2c3d4e5";

async fn hub(backend: Backend) -> TestHub {
    hub_with(backend, fast()).await
}

async fn destination(hub: &TestHub, ws: &Workspace, body: Value) -> String {
    let (status, created) = hub.post(&ws.key, "/v1/destinations", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn hubspot(hub: &TestHub, ws: &Workspace, base: &str, settings: Value) -> String {
    let mut settings = settings;
    settings["api_base_url"] = json!(base);
    destination(
        hub,
        ws,
        json!({"kind": "hubspot", "name": "crm", "settings": settings,
        "secrets": {"access_token": HUBSPOT_TOKEN}}),
    )
    .await
}

async fn mailchimp(hub: &TestHub, ws: &Workspace, base: &str) -> String {
    destination(
        hub,
        ws,
        json!({"kind": "mailchimp", "name": "newsletter",
        "settings": {"api_base_url": base, "list_id": LIST_ID},
        "secrets": {"api_key": MAILCHIMP_KEY}}),
    )
    .await
}

async fn profile_id(hub: &TestHub, ws: &Workspace, email: &str) -> String {
    let found = hub.find_one(ws, &format!("email={email}")).await;
    found["id"].as_str().unwrap().to_string()
}

/// The destination's sync status once its cursor reached the feed's head.
async fn caught_up(hub: &TestHub, ws: &Workspace, id: &str) -> Value {
    let path = format!("/v1/destinations/{id}");
    eventually("the destination reaches the head of the feed", || async {
        hub.get(&ws.key, &path).await.1["sync"]["lag"] == 0
    })
    .await;
    hub.get(&ws.key, &path).await.1
}

/// A HubSpot account whose shared quota another app drains while the storm
/// is on: every request the hub makes then finds the rolling window full and
/// gets the fake's own 429 with HubSpot's rate-limit headers. Upserts that
/// HubSpot served are recorded, to count how often each contact was written.
#[derive(Clone)]
struct Storm {
    fake: FakeHubSpot,
    on: Arc<AtomicBool>,
    throttled: Arc<AtomicUsize>,
    served_upserts: Arc<Mutex<Vec<String>>>,
}

impl Storm {
    async fn start(fake: FakeHubSpot) -> (Storm, String) {
        let storm = Storm {
            fake: fake.clone(),
            on: Arc::default(),
            throttled: Arc::default(),
            served_upserts: Arc::default(),
        };
        let app = fake.router().layer(axum::middleware::from_fn_with_state(
            storm.clone(),
            neighbour,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (storm, format!("http://{addr}"))
    }

    /// Emails written by served upserts, one entry per write.
    fn written(&self) -> Vec<String> {
        self.served_upserts.lock().unwrap().clone()
    }
}

async fn neighbour(State(storm): State<Storm>, request: Request, next: Next) -> Response {
    if storm.on.load(Ordering::SeqCst) {
        // The other app takes the window's free slot first.
        let _ = storm.fake.quota.admit();
    }
    let upsert = request.uri().path().ends_with("/batch/upsert");
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if response.status() == 429 {
        storm.throttled.fetch_add(1, Ordering::SeqCst);
    } else if upsert && response.status().is_success() {
        let sent: Value = serde_json::from_slice(&bytes).unwrap();
        let emails = sent["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string());
        storm.served_upserts.lock().unwrap().extend(emails);
    }
    response
}

/// Two profiles synced as two HubSpot contacts, merged through the API;
/// the second record is dated `second_updated_at`.
async fn merge_into_one_hubspot_contact(backend: Backend, second_updated_at: &str) {
    let hub = hub(backend).await;
    let ws = hub.workspace("acme").await;
    let conn = hub.custom(&ws).await;
    let fake = FakeHubSpot::new(HUBSPOT_TOKEN);
    let base = fake.start().await;
    let id = hubspot(&hub, &ws, &base, json!({})).await;
    hub.deliver(
        &conn,
        json!([
            customer("c-1", "Ada Lovelace", "ada@example.com"),
            {"kind": "customer", "external_id": "c-2", "updated_at": second_updated_at,
             "name": "Ada King", "emails": ["ada.king@example.com"], "phones": []},
        ]),
    )
    .await;
    eventually("both contacts arrive", || async {
        fake.contacts().len() == 2
    })
    .await;
    let a = profile_id(&hub, &ws, "ada@example.com").await;
    let b = profile_id(&hub, &ws, "ada.king@example.com").await;

    let (status, merged) = hub
        .post(
            &ws.key,
            &format!("/v1/profiles/{a}/merge"),
            json!({"profile_id": b}),
        )
        .await;
    assert_eq!(status, 200, "{merged}");
    let survivor = merged["profile_id"].as_str().unwrap().to_string();
    eventually("HubSpot merges the two contacts", || async {
        fake.crm.lock().unwrap().merges.len() == 1
    })
    .await;
    let shown = caught_up(&hub, &ws, &id).await;
    assert_eq!(shown["sync"]["dead_letters"], 0, "{shown}");

    // One contact remains, carrying the survivor's data.
    let (_, profile) = hub.get(&ws.key, &format!("/v1/profiles/{survivor}")).await;
    let emails: Vec<&str> = profile["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 2, "{profile}");
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let contact = &contacts[0];
    let email = contact.properties["email"].clone();
    let golden = profile["golden"]["email"]["value"]
        .as_str()
        .unwrap_or(emails[0]);
    assert_eq!(
        email, golden,
        "the survivor's email keys the contact: {contact:?}"
    );
    let other = emails.iter().find(|e| **e != email).unwrap();
    assert_eq!(
        contact
            .properties
            .get("hs_additional_emails")
            .map(String::as_str),
        Some(*other),
        "{contact:?}"
    );
    let name = profile["golden"]["name"]["value"]
        .as_str()
        .or(profile["name"].as_str())
        .unwrap();
    let (first, last) = name.split_once(' ').unwrap();
    assert_eq!(contact.properties["firstname"], first, "{contact:?}");
    assert_eq!(contact.properties["lastname"], last, "{contact:?}");
    let (primary, absorbed) = fake.crm.lock().unwrap().merges[0];
    assert_eq!(contact.id, primary);
    assert!(!fake.crm.lock().unwrap().contacts.contains_key(&absorbed));
}

both_backends! {
    async fn consent_withdrawal_reaches_mailchimp(backend: Backend) {
        let hub = hub(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let fake = FakeMailchimp::new(MAILCHIMP_KEY, LIST_ID);
        let base = fake.start().await;
        let id = mailchimp(&hub, &ws, &base).await;

        let mut ada = customer("c-1", "Ada Lovelace", "Ada@Example.com");
        ada["accepts_email_marketing"] = json!(true);
        hub.deliver(&conn, json!([ada, customer("c-2", "Grace Hopper", "grace@example.com")])).await;
        eventually("both members arrive", || async { fake.members().len() == 2 }).await;
        let member = fake.member("ada@example.com").unwrap();
        assert_eq!(member.status, "subscribed");
        assert_eq!(member.merge_fields["FNAME"], "Ada");
        assert_eq!(member.merge_fields["LNAME"], "Lovelace");
        // Never asked is never subscribed.
        assert_eq!(fake.member("grace@example.com").unwrap().status, "transactional");

        let ada_id = profile_id(&hub, &ws, "ada@example.com").await;
        let (status, body) = hub.post(&ws.key, &format!("/v1/profiles/{ada_id}/consent"),
            json!({"identifier": "email:ada@example.com", "channel": "email_marketing",
                   "granted": false, "source": "unsubscribe link"})).await;
        assert_eq!(status, 200, "{body}");
        eventually("the member is unsubscribed", || async {
            fake.member("ada@example.com").is_some_and(|m| m.status == "unsubscribed")
        }).await;
        let shown = caught_up(&hub, &ws, &id).await;
        assert_eq!(shown["sync"]["dead_letters"], 0, "{shown}");
        assert_eq!(fake.member("grace@example.com").unwrap().status, "transactional");
        assert_eq!(fake.members().len(), 2);
        let (_, log) = hub.get(&ws.key, &format!("/v1/destinations/{id}/log?profile_id={ada_id}")).await;
        let sent = log["data"].as_array().unwrap().iter().filter(|e| e["result"] == "sent").count();
        assert_eq!(sent, 2, "subscribed, then unsubscribed: {log}");
    }

    async fn a_merge_reaches_hubspot_as_one_contact(backend: Backend) {
        merge_into_one_hubspot_contact(backend, "2026-06-01T00:00:00Z").await;
    }

    async fn a_merge_taking_the_absorbed_email_reaches_hubspot_as_one_contact(backend: Backend) {
        // The absorbed record is newer: its email becomes the survivor's, so
        // HubSpot keeps that contact and folds the survivor's old one in.
        merge_into_one_hubspot_contact(backend, "2026-07-01T00:00:00Z").await;
    }

    async fn an_erasure_reaches_klaviyo_as_a_data_privacy_deletion(backend: Backend) {
        let hub = hub(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let fake = FakeKlaviyo::new(KLAVIYO_KEY);
        let base = fake.start().await;
        let id = destination(&hub, &ws, json!({"kind": "klaviyo", "name": "flows",
            "settings": {"api_base_url": base}, "secrets": {"api_key": KLAVIYO_KEY}})).await;
        hub.deliver(&conn, json!([
            customer("c-1", "Eve Example", "eve@example.com"),
            customer("c-2", "Frank Example", "frank@example.com"),
        ])).await;
        eventually("both profiles are imported", || async { fake.profiles().len() == 2 }).await;
        let eve = profile_id(&hub, &ws, "eve@example.com").await;
        let frank = profile_id(&hub, &ws, "frank@example.com").await;
        let imported = fake.by_email("eve@example.com").unwrap();
        assert_eq!(imported.external_id.as_deref(), Some(eve.as_str()));
        assert_eq!(imported.first_name.as_deref(), Some("Eve"));
        assert_eq!(fake.by_email("frank@example.com").unwrap().external_id.as_deref(), Some(frank.as_str()));
        assert!(fake.account.lock().unwrap().jobs.iter().all(|j| j == "profile-bulk-import-job"));

        let response = hub.http.delete(hub.url(&format!("/v1/profiles/{eve}"))).bearer_auth(&ws.key)
            .send().await.unwrap();
        assert_eq!(response.status(), 200);
        eventually("Klaviyo receives the deletion", || async {
            fake.account.lock().unwrap().deletions.len() == 1
        }).await;
        assert_eq!(fake.account.lock().unwrap().deletions[0], json!({"email": "eve@example.com"}));
        assert!(fake.by_email("eve@example.com").is_none());
        assert_eq!(fake.profiles().len(), 1, "the other profile stays");
        let shown = caught_up(&hub, &ws, &id).await;
        assert_eq!(shown["sync"]["dead_letters"], 0, "{shown}");
        let jobs = fake.account.lock().unwrap().jobs.clone();
        assert_eq!(jobs.iter().filter(|j| *j == "data-privacy-deletion-job").count(), 1, "{jobs:?}");
    }

    async fn a_hubspot_429_storm_does_not_hold_up_mailchimp(backend: Backend) {
        let hub = hub(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let fake = FakeHubSpot::new(HUBSPOT_TOKEN);
        // One request per 200 ms window, so each 429 asks for a short wait.
        fake.quota.limit(1, Duration::from_millis(200));
        let (storm, hubspot_base) = Storm::start(fake.clone()).await;
        let chimp = FakeMailchimp::new(MAILCHIMP_KEY, LIST_ID);
        let chimp_base = chimp.start().await;
        let slow = hubspot(&hub, &ws, &hubspot_base, json!({"max_batch": 2})).await;
        let quick = mailchimp(&hub, &ws, &chimp_base).await;

        hub.deliver(&conn, json!([customer("c-0", "Ada Lovelace", "ada0@example.com")])).await;
        eventually("both tools have the first contact", || async {
            fake.contacts().len() == 1 && chimp.members().len() == 1
        }).await;

        storm.on.store(true, Ordering::SeqCst);
        let batch: Vec<Value> = (1..=6)
            .map(|n| customer(&format!("c-{n}"), "Ada Lovelace", &format!("ada{n}@example.com")))
            .collect();
        hub.deliver(&conn, Value::Array(batch)).await;
        let mut renamed = customer("c-0", "Ada King", "ada0@example.com");
        renamed["updated_at"] = json!("2026-07-01T00:00:00Z");
        hub.deliver(&conn, json!([renamed])).await;

        // Mailchimp gets everything while HubSpot refuses every request.
        eventually("Mailchimp has every change", || async {
            chimp.members().len() == 7
                && chimp.member("ada0@example.com").is_some_and(|m| m.merge_fields["FNAME"] == "Ada" && m.merge_fields["LNAME"] == "King")
        }).await;
        eventually("HubSpot keeps throttling", || async { storm.throttled.load(Ordering::SeqCst) >= 3 }).await;
        assert_eq!(fake.contacts().len(), 1, "nothing got through the storm");
        assert_eq!(caught_up(&hub, &ws, &quick).await["sync"]["dead_letters"], 0);
        let (_, shown) = hub.get(&ws.key, &format!("/v1/destinations/{slow}")).await;
        assert!(shown["sync"]["lag"].as_i64().unwrap() > 0, "{shown}");
        // Throttling paces; it is not a failure and opens no breaker.
        assert_eq!(shown["sync"]["breaker"], "closed", "{shown}");
        assert_eq!(shown["sync"]["consecutive_failures"], 0, "{shown}");

        storm.on.store(false, Ordering::SeqCst);
        eventually("HubSpot catches up", || async {
            fake.contacts().len() == 7
                && fake.by_email("ada0@example.com").is_some_and(|c| c.properties["lastname"] == "King")
        }).await;
        let shown = caught_up(&hub, &ws, &slow).await;
        assert_eq!(shown["sync"]["dead_letters"], 0, "{shown}");
        assert_eq!(shown["sync"]["breaker"], "closed", "{shown}");
        // Each new contact written once; the renamed one twice (created, renamed).
        let mut written = storm.written();
        written.sort();
        let mut expected: Vec<String> = (0..=6).map(|n| format!("ada{n}@example.com")).collect();
        expected.push("ada0@example.com".into());
        expected.sort();
        assert_eq!(written, expected);
    }
}
