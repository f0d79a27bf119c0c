//! The unified profile through the API: consent that follows identifiers
//! across merges and splits, the golden record with provenance, traits
//! checked against hand-computed values, and erasure.

use serde_json::{json, Value};

use crate::harness::*;

fn record(conn: &Connection, kind: &str, id: &str) -> Value {
    json!({"connection_id": conn.id, "kind": kind, "external_id": id})
}

async fn profile_of(hub: &TestHub, ws: &Workspace, id: &str) -> Value {
    hub.find_one(ws, &format!("platform=custom&external_id={id}"))
        .await
}

fn id_of(profile: &Value) -> String {
    profile["id"].as_str().unwrap().to_string()
}

/// The one consent entry for an identifier and channel, asserting there is one.
fn consent<'a>(profile: &'a Value, identifier: &str, channel: &str) -> &'a Value {
    let found: Vec<&Value> = profile["consent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["identifier"] == identifier && c["channel"] == channel)
        .collect();
    assert_eq!(found.len(), 1, "{identifier} {channel} in {profile}");
    found[0]
}

/// An RFC 3339 time `days` days and an hour before now: whole-day counts
/// stay exact however long the test takes (under a day).
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days) - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn order(id: &str, customer: &str, at: &str, status: &str, currency: &str, total: &str) -> Value {
    json!({"kind": "order", "external_id": id, "created_at": at, "updated_at": at,
           "customer_external_id": customer, "status": status, "currency": currency,
           "total": total, "line_items": [{"title": "Tea", "price": total}]})
}

async fn refresh(hub: &TestHub, ws: &Workspace) -> usize {
    shophub::traits::refresh_workspace(
        hub.hub.store.as_ref(),
        &ws.id,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .unwrap()
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

async fn delete(hub: &TestHub, ws: &Workspace, path: &str) -> (u16, Value) {
    let response = hub
        .http
        .delete(hub.url(path))
        .bearer_auth(&ws.key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn source(conn: &Connection, kind: &str, id: &str) -> Value {
    json!({"connection_id": conn.id, "kind": kind, "external_id": id})
}

both_backends! {
    async fn consent_latest_choice_wins_across_merge_and_split(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let source = format!("custom/{}", conn.id);
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-01T00:00:00Z",
             "name": "Ada", "emails": ["Ada@Example.com"], "accepts_email_marketing": true},
            {"kind": "customer", "external_id": "c-2", "updated_at": "2026-06-01T00:00:00Z",
             "name": "Ada L", "phones": ["13812345678"]},
        ])).await;
        let a = profile_of(&hub, &ws, "c-1").await;
        let b = profile_of(&hub, &ws, "c-2").await;
        assert_ne!(a["id"], b["id"]);
        // The customer record's flag, timed by the record's version.
        let fed = consent(&a, "email:ada@example.com", "email_marketing");
        assert_eq!(fed, &json!({"identifier": "email:ada@example.com", "channel": "email_marketing",
            "granted": true, "source": source, "at": "2026-06-01T00:00:00Z"}));
        assert_eq!(b["consent"], json!([]));

        // Explicit choices through the API; an older one does not win.
        let post = |id: String, body: Value| {
            let hub = &hub;
            let key = ws.key.clone();
            async move { hub.post(&key, &format!("/v1/profiles/{id}/consent"), body).await }
        };
        let (status, body) = post(id_of(&b), json!({"identifier": "phone:+86 138 1234 5678",
            "channel": "sms", "granted": false, "source": "store counter", "at": "2026-06-05T00:00:00Z"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["applied"], true);
        let (status, body) = post(id_of(&a), json!({"identifier": "email:ada@example.com",
            "channel": "email_marketing", "granted": false, "source": "unsubscribe link",
            "at": "2026-06-03T00:00:00Z"})).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = post(id_of(&a), json!({"identifier": "email:ada@example.com",
            "channel": "email_marketing", "granted": true, "source": "old form",
            "at": "2026-06-02T00:00:00Z"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["applied"], false, "an older choice is not applied: {body}");
        assert_eq!(body["consent"][0]["source"], "unsubscribe link", "{body}");
        let a = profile_of(&hub, &ws, "c-1").await;
        assert_eq!(consent(&a, "email:ada@example.com", "email_marketing")["granted"], false);
        let changes = hub.changes(&ws).await;
        let updated = changes.iter().rev()
            .find(|c| c["type"] == "profile.updated" && c["profile_id"] == a["id"])
            .expect("consent change announced");
        assert_eq!(updated["profile"]["consent"][0]["granted"], false, "{updated}");

        // Validation: a stranger's identifier, an unknown channel, a bad time.
        for (body, field) in [
            (json!({"identifier": "email:bob@example.com", "channel": "sms", "granted": true, "source": "x"}), "identifier"),
            (json!({"identifier": "email:ada@example.com", "channel": "fax", "granted": true, "source": "x"}), "channel"),
            (json!({"identifier": "email:ada@example.com", "channel": "sms", "granted": true, "source": "x", "at": "yesterday"}), "at"),
            (json!({"identifier": "ada@example.com", "channel": "sms", "granted": true, "source": "x"}), "identifier"),
        ] {
            let (status, error) = post(id_of(&a), body).await;
            assert_eq!(status, 422, "{error}");
            assert_eq!(error["field"], field, "{error}");
        }
        assert_eq!(post("prof_missing".into(), json!({"identifier": "email:ada@example.com",
            "channel": "sms", "granted": true, "source": "x"})).await.0, 404);

        // A record joining both: its older flag loses to the unsubscribe;
        // the merged profile carries both identifiers' choices.
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-3", "updated_at": "2026-06-02T12:00:00Z",
             "name": "Ada Lovelace", "emails": ["ada@example.com"], "phones": ["13812345678"],
             "accepts_email_marketing": true},
        ])).await;
        let merged = profile_of(&hub, &ws, "c-3").await;
        assert_eq!(profile_of(&hub, &ws, "c-2").await["id"], merged["id"]);
        assert_eq!(merged["consent"].as_array().unwrap().len(), 2, "{merged}");
        let email = consent(&merged, "email:ada@example.com", "email_marketing");
        assert_eq!((&email["granted"], &email["source"]), (&json!(false), &json!("unsubscribe link")));
        let sms = consent(&merged, "phone:+8613812345678", "sms");
        assert_eq!((&sms["granted"], &sms["at"]), (&json!(false), &json!("2026-06-05T00:00:00Z")));

        // Split c-2 out: the phone's choice goes with the phone, to both.
        let merged_id = id_of(&merged);
        let (status, split) = hub.post(&ws.key, &format!("/v1/profiles/{merged_id}/split"),
            json!({"records": [record(&conn, "customer", "c-2")]})).await;
        assert_eq!(status, 200, "{split}");
        let apart = profile_of(&hub, &ws, "c-2").await;
        assert_ne!(apart["id"], merged["id"]);
        assert_eq!(apart["consent"], json!([consent(&merged, "phone:+8613812345678", "sms")]), "{apart}");
        let kept = profile_of(&hub, &ws, "c-1").await;
        assert_eq!(consent(&kept, "email:ada@example.com", "email_marketing")["granted"], false);

        // A later record version is a later choice: it wins.
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-10T00:00:00Z",
             "name": "Ada", "emails": ["ada@example.com"], "accepts_email_marketing": true},
        ])).await;
        let kept = profile_of(&hub, &ws, "c-1").await;
        let email = consent(&kept, "email:ada@example.com", "email_marketing");
        assert_eq!(email, &json!({"identifier": "email:ada@example.com", "channel": "email_marketing",
            "granted": true, "source": source, "at": "2026-06-10T00:00:00Z"}));
    }

    async fn golden_record_follows_source_priority(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let crm = hub.custom(&ws).await;
        let shop = hub.custom(&ws).await;
        hub.deliver(&crm, json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-01T00:00:00Z",
             "name": "Ada Lovelace", "emails": ["ada@example.com"], "phones": ["13812345678"],
             "birth_date": "1990-05-17",
             "address": {"line1": "1 Main St", "city": "Hangzhou", "region": "Zhejiang",
                         "postal_code": "310000", "country": "CN"}},
            {"kind": "order", "external_id": "o-1", "updated_at": "2026-06-05T00:00:00Z",
             "customer_external_id": "c-1", "name": "A. Lovelace", "status": "paid",
             "currency": "CNY", "total": "10.00",
             "shipping_address": {"city": "Shanghai", "region": "Shanghai", "country": "CN"}},
        ])).await;
        hub.deliver(&shop, json!([
            {"kind": "customer", "external_id": "k-1", "updated_at": "2026-06-03T00:00:00Z",
             "name": "Ada King", "emails": ["ada@example.com"],
             "address": {"city": "Ningbo", "region": "Zhejiang", "country": "CN"}},
        ])).await;
        let profile = profile_of(&hub, &ws, "k-1").await;
        assert_eq!(profile_of(&hub, &ws, "c-1").await["id"], profile["id"]);
        // Default: customer records over orders, then the newest (k-1).
        let golden = &profile["golden"];
        assert_eq!(golden["name"], json!({"value": "Ada King", "source": source(&shop, "customer", "k-1")}));
        assert_eq!(profile["name"], "Ada King");
        assert_eq!(golden["email"], json!({"value": "ada@example.com", "source": source(&shop, "customer", "k-1")}));
        assert_eq!(golden["phone"], json!({"value": "+8613812345678", "source": source(&crm, "customer", "c-1")}));
        assert_eq!(golden["birth_date"], json!({"value": "1990-05-17", "source": source(&crm, "customer", "c-1")}));
        assert_eq!(golden["city"]["value"], "Ningbo");
        assert_eq!(golden["country"]["source"], source(&shop, "customer", "k-1"));
        assert_eq!(golden["address"], json!({"value": {"city": "Ningbo", "region": "Zhejiang", "country": "CN"},
            "source": source(&shop, "customer", "k-1")}));

        // The CRM is trusted first: the refresh picks the setting up.
        let (status, settings) = hub.get(&ws.key, "/v1/settings").await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["source_priority"], json!([]));
        assert_eq!(settings["traits"]["value_tiers"][0], json!({"name": "first_time_buyer", "min_spent": "0"}));
        let (status, settings) = patch(&hub, &ws, "/v1/settings", json!({"source_priority": [crm.id]})).await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["source_priority"], json!([crm.id]));
        assert_eq!(settings["traits"]["clv"]["horizon_years"], 3, "untouched settings stay");
        let (status, error) = patch(&hub, &ws, "/v1/settings",
            json!({"traits": {"lifecycle": {"new_days": 0}}})).await;
        assert_eq!((status, error["field"].clone()), (422, json!("traits.lifecycle")), "{error}");
        assert_eq!(refresh(&hub, &ws).await, 1, "one profile changed");
        let profile = profile_of(&hub, &ws, "k-1").await;
        let golden = &profile["golden"];
        assert_eq!(golden["name"], json!({"value": "Ada Lovelace", "source": source(&crm, "customer", "c-1")}));
        assert_eq!(golden["address"]["value"], json!({"line1": "1 Main St", "city": "Hangzhou",
            "region": "Zhejiang", "postcode": "310000", "country": "CN"}));
        assert_eq!(golden["region"]["value"], "Zhejiang");
        let changes = hub.changes(&ws).await;
        let last = changes.last().unwrap();
        assert_eq!((&last["type"], &last["profile"]["golden"]["name"]["value"]),
            (&json!("profile.updated"), &json!("Ada Lovelace")));
        // Nothing changed since: nothing announced.
        assert_eq!(refresh(&hub, &ws).await, 0);
        assert_eq!(hub.changes(&ws).await.len(), changes.len());
    }

    async fn traits_match_hand_computed_values(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let customer = |id: &str| json!({"kind": "customer", "external_id": id,
            "updated_at": "2026-01-01T00:00:00Z", "name": format!("Buyer {id}")});
        let message_at = days_ago(3);
        let last_order_at = days_ago(10);
        hub.deliver(&conn, json!([
            customer("p"), customer("q1"), customer("q2"), customer("q3"), customer("q4"),
            order("p-1", "p", &days_ago(200), "paid", "CNY", "100.00"),
            order("p-2", "p", &days_ago(50), "completed", "CNY", "200.00"),
            order("p-3", "p", &last_order_at, "pending", "CNY", "999.00"),
            order("p-4", "p", &days_ago(5), "cancelled", "CNY", "50.00"),
            order("p-5", "p", &days_ago(100), "paid", "USD", "30.00"),
            {"kind": "review", "external_id": "r-1", "customer_external_id": "p", "rating": 4,
             "rating_scale": 5, "text": "good", "created_at": days_ago(40)},
            {"kind": "review", "external_id": "r-2", "customer_external_id": "p", "rating": 3,
             "rating_scale": 5, "text": "fine", "created_at": days_ago(30)},
            {"kind": "message", "external_id": "m-1", "customer_external_id": "p",
             "conversation_id": "conv-1", "channel": "whatsapp", "direction": "inbound",
             "text": "hello", "sent_at": message_at},
            order("q1-1", "q1", &days_ago(200), "paid", "CNY", "50.00"),
            order("q2-1", "q2", &days_ago(60), "paid", "CNY", "100.00"),
            order("q2-2", "q2", &days_ago(60), "paid", "CNY", "100.00"),
            order("q3-1", "q3", &days_ago(30), "paid", "CNY", "150.00"),
            order("q3-2", "q3", &days_ago(30), "paid", "CNY", "150.00"),
            order("q3-3", "q3", &days_ago(30), "paid", "CNY", "150.00"),
            order("q4-1", "q4", &days_ago(5), "paid", "CNY", "200.00"),
            order("q4-2", "q4", &days_ago(5), "paid", "CNY", "200.00"),
            order("q4-3", "q4", &days_ago(5), "paid", "CNY", "200.00"),
            order("q4-4", "q4", &days_ago(5), "paid", "CNY", "200.00"),
            order("q4-5", "q4", &days_ago(5), "paid", "CNY", "200.00"),
        ])).await;
        // The quintile boundaries come from the refresh.
        assert!(refresh(&hub, &ws).await >= 1);
        let p = profile_of(&hub, &ws, "p").await;
        let t = &p["traits"];
        // Orders not cancelled: p-1, p-2, p-3 (pending), p-5 = 4.
        assert_eq!(t["order_count"], 4, "{t}");
        // Spent: paid and completed only. CNY 100.00 + 200.00; USD 30.00.
        assert_eq!(t["total_spent"], json!({"CNY": "300.00", "USD": "30.00"}));
        // Averages over the spent orders: 300.00 / 2 = 150.00; 30.00 / 1.
        assert_eq!(t["average_order_value"], json!({"CNY": "150.00", "USD": "30.00"}));
        // Last order: the pending one, 10 days (and an hour) ago.
        assert_eq!(t["days_since_last_order"], 10);
        assert_eq!(t["last_order_at"], last_order_at.as_str());
        // Last order 10 days ago (<= 90), first 200 days ago (> 30): active.
        assert_eq!(t["lifecycle_stage"], "active");
        // Workspace: recency days [5, 10, 30, 60, 200] -> cuts [5, 10, 30, 60];
        // 10 is above one cut: 5 - 1 = 4. Frequency [1, 2, 3, 4, 5] -> cuts
        // [1, 2, 3, 4]; 4 is above three: 1 + 3 = 4. Monetary CNY
        // [50, 200, 300, 450, 1000] -> cuts [50, 200, 300, 450]; 300 is above
        // two: 1 + 2 = 3.
        assert_eq!(t["rfm"], json!({"recency": 4, "frequency": 4, "monetary": 3}));
        // CLV in CNY (most buyers' currency): historical 300.00; 200 days
        // counts as a year, so 300/year × 0.3 margin = 90/year;
        // 90/1.1 + 90/1.21 + 90/1.331 = 81.818 + 74.380 + 67.618 = 223.82.
        assert_eq!(t["clv"], json!({"historical": "300.00", "projected": "223.82", "currency": "CNY"}));
        // 300.00 < 500: the first tier.
        assert_eq!(t["value_tier"], "first_time_buyer");
        // Scores 0.8 and 0.6: mean 0.7 on 5 points = 3.5.
        assert_eq!((&t["review_count"], &t["review_average"]), (&json!(2), &json!(3.5)));
        assert_eq!(t["channels"], json!(["custom", "whatsapp"]));
        assert_eq!(t["last_contact_at"], message_at.as_str());

        let q4 = profile_of(&hub, &ws, "q4").await;
        // 5 × 200.00 = 1000.00 >= 500: repeat_buyer; first order 5 days ago: new;
        // rfm: 5 days is at the lowest cut (above none): 5; 5 orders above all
        // four cuts: 5; 1000 above all four: 5.
        assert_eq!(q4["traits"]["value_tier"], "repeat_buyer");
        assert_eq!(q4["traits"]["lifecycle_stage"], "new");
        assert_eq!(q4["traits"]["rfm"], json!({"recency": 5, "frequency": 5, "monetary": 5}));
        let q1 = profile_of(&hub, &ws, "q1").await;
        assert_eq!(q1["traits"]["lifecycle_stage"], "churned", "200 days > 180");
        assert_eq!(q1["traits"]["rfm"], json!({"recency": 1, "frequency": 1, "monetary": 1}));

        // Thresholds are settings: a 100.00 tier and a 1% margin.
        let (status, body) = patch(&hub, &ws, "/v1/settings", json!({"traits": {
            "value_tiers": [{"name": "bronze", "min_spent": "0"}, {"name": "silver", "min_spent": "100"}],
            "clv": {"margin": "0.01"}}})).await;
        assert_eq!(status, 200, "{body}");
        refresh(&hub, &ws).await;
        let p = profile_of(&hub, &ws, "p").await;
        assert_eq!(p["traits"]["value_tier"], "silver");
        // 300 × 0.01 = 3/year; 3 × 2.486852 = 7.46.
        assert_eq!(p["traits"]["clv"]["projected"], "7.46");
    }

    async fn erasure_leaves_nothing_personal(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "e-1", "updated_at": "2026-06-01T00:00:00Z",
             "name": "Eve", "emails": ["eve@example.com"], "phones": ["13900001111"],
             "accepts_email_marketing": true},
            order("e-o1", "e-1", "2026-06-02T00:00:00Z", "paid", "CNY", "88.00"),
            {"kind": "message", "external_id": "e-m1", "customer_external_id": "e-1",
             "conversation_id": "conv-e", "channel": "wechat", "direction": "inbound",
             "text": "where is my parcel", "sent_at": "2026-06-03T00:00:00Z"},
            {"kind": "review", "external_id": "e-r1", "customer_external_id": "e-1", "rating": 1,
             "rating_scale": 5, "text": "terrible", "created_at": "2026-06-04T00:00:00Z"},
            {"kind": "customer", "external_id": "f-1", "updated_at": "2026-06-01T00:00:00Z",
             "name": "Frank", "emails": ["frank@example.com"]},
        ])).await;
        let eve = profile_of(&hub, &ws, "e-1").await;
        let id = id_of(&eve);
        let (status, _) = hub.post(&ws.key, &format!("/v1/profiles/{id}/consent"),
            json!({"identifier": "phone:+8613900001111", "channel": "sms", "granted": true, "source": "form"})).await;
        assert_eq!(status, 200);
        let (_, complaints) = hub.get(&ws.key, "/v1/complaints").await;
        assert_eq!(complaints["data"].as_array().unwrap().len(), 1, "{complaints}");

        let other = hub.workspace("other").await;
        assert_eq!(delete(&hub, &other, &format!("/v1/profiles/{id}")).await.0, 404);
        let (status, erased) = delete(&hub, &ws, &format!("/v1/profiles/{id}")).await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(erased, json!({"erased": id, "records": 4}));

        assert_eq!(hub.get(&ws.key, &format!("/v1/profiles/{id}")).await.0, 404);
        assert_eq!(hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline")).await.0, 404);
        assert_eq!(delete(&hub, &ws, &format!("/v1/profiles/{id}")).await.0, 404);
        for query in ["email=eve@example.com", "phone=%2B8613900001111", "platform=custom&external_id=e-1"] {
            let (_, found) = hub.get(&ws.key, &format!("/v1/profiles?{query}")).await;
            assert_eq!(found["data"], json!([]), "{query}: {found}");
        }
        assert!(hub.hub.store.profile_sources(&id).await.unwrap().is_empty());
        assert!(hub.hub.store.conversations(&id).await.unwrap().is_empty());
        let (_, complaints) = hub.get(&ws.key, "/v1/complaints").await;
        assert_eq!(complaints["data"], json!([]));
        let changes = hub.changes(&ws).await;
        let erased_change = changes.last().unwrap();
        assert_eq!((&erased_change["type"], &erased_change["profile_id"]), (&json!("profile.erased"), &json!(id)));
        assert!(!changes.iter().any(|c| c["profile_id"] == id.as_str() && c.get("profile").is_some()),
            "no view of the erased profile stays in the feed: {changes:?}");
        let feed = serde_json::to_string(&changes).unwrap();
        assert!(!feed.contains("eve@example.com") && !feed.contains("13900001111"), "{feed}");
        // Someone else is untouched.
        assert_eq!(profile_of(&hub, &ws, "f-1").await["name"], "Frank");

        // The same email later is a new person, with no old consent.
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "e-2", "updated_at": "2026-07-01T00:00:00Z",
             "name": "Eve", "emails": ["eve@example.com"], "phones": ["13900001111"]},
        ])).await;
        let again = profile_of(&hub, &ws, "e-2").await;
        assert_ne!(again["id"], json!(id));
        assert_eq!(again["consent"], json!([]), "{again}");
        assert_eq!(again["traits"]["order_count"], 0);
    }
}
