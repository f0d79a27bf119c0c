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
}
