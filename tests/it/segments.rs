//! Segments and manual tags over HTTP: membership follows records as they
//! arrive and tags as people change them, with the feed telling each step.

use serde_json::{json, Value};

use crate::harness::*;

fn kinds_for(changes: &[Value], kind: &str, segment_id: &str) -> usize {
    changes
        .iter()
        .filter(|c| c["type"] == kind && c["segment_id"] == segment_id)
        .count()
}

async fn member_ids(hub: &TestHub, ws: &Workspace, segment_id: &str) -> Vec<String> {
    let (status, body) = hub.get(&ws.key, &format!("/v1/segments/{segment_id}/members")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

pub async fn send_json(hub: &TestHub, method: &str, key: &str, path: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = hub.http.request(method, hub.url(path)).bearer_auth(key);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn order(id: &str, status: &str, updated_at: &str) -> Value {
    json!({"kind": "order", "external_id": id, "updated_at": updated_at, "created_at": "2026-06-01T00:00:00Z",
           "customer_external_id": "c-1", "status": status, "currency": "CNY", "total": "99.00", "line_items": []})
}

both_backends! {
    async fn segments_follow_records_and_tags(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let (status, repeat) = hub.post(&ws.key, "/v1/segments", json!({"name": "repeat buyers",
            "filter": {"all": [{"field": "traits.order_count", "op": "gte", "value": 2}, {"platform": "custom"}]}})).await;
        assert_eq!(status, 201, "{repeat}");
        let repeat = repeat["id"].as_str().unwrap().to_string();
        let (_, vip) = hub.post(&ws.key, "/v1/segments", json!({"name": "vip", "filter": {"tag": "vip"}})).await;
        let vip = vip["id"].as_str().unwrap().to_string();

        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-01T00:00:00Z", "name": "Ada",
             "emails": ["ada@example.com"], "tags": ["Wholesale"]},
            order("o-1", "paid", "2026-06-01T00:00:00Z"),
        ])).await;
        let profile = hub.find_one(&ws, "email=ada@example.com").await;
        let id = profile["id"].as_str().unwrap().to_string();
        assert_eq!(profile["tags"], json!(["wholesale"]));
        assert_eq!(profile["segments"], json!([]));
        assert!(member_ids(&hub, &ws, &repeat).await.is_empty());

        // A second order: the profile enters, once.
        hub.deliver(&conn, json!([order("o-2", "paid", "2026-06-02T00:00:00Z")])).await;
        assert_eq!(member_ids(&hub, &ws, &repeat).await, [id.as_str()]);
        let profile = hub.find_one(&ws, "email=ada@example.com").await;
        assert_eq!(profile["segments"], json!([repeat]));
        let changes = hub.changes(&ws).await;
        assert_eq!(kinds_for(&changes, "segment.entered", &repeat), 1);
        let entered = changes.iter().find(|c| c["type"] == "segment.entered").unwrap();
        assert_eq!(entered["profile_id"], id.as_str());
        assert_eq!((&entered["segment_id"], &entered["name"]), (&json!(repeat), &json!("repeat buyers")));

        // A manual tag puts it in the tag segment; removing it takes it out.
        let (status, tagged) = hub.post(&ws.key, &format!("/v1/profiles/{id}/tags"), json!({"add": [" VIP "]})).await;
        assert_eq!(status, 200, "{tagged}");
        assert_eq!(tagged["tags"], json!(["vip", "wholesale"]));
        assert_eq!(member_ids(&hub, &ws, &vip).await, [id.as_str()]);
        let (_, shown) = hub.get(&ws.key, &format!("/v1/profiles/{id}")).await;
        assert_eq!(shown["tags"], json!(["vip", "wholesale"]));
        let (status, _) = hub.post(&ws.key, &format!("/v1/profiles/{id}/tags"), json!({"remove": ["vip"]})).await;
        assert_eq!(status, 200);
        assert!(member_ids(&hub, &ws, &vip).await.is_empty());
        let changes = hub.changes(&ws).await;
        assert_eq!(kinds_for(&changes, "segment.entered", &vip), 1);
        assert_eq!(kinds_for(&changes, "segment.exited", &vip), 1);
        assert!(changes.iter().any(|c| c["type"] == "profile.updated"
            && c["profile"]["tags"] == json!(["vip", "wholesale"])));

        // A cancelled order: back to one order, out of the segment.
        hub.deliver(&conn, json!([order("o-2", "cancelled", "2026-06-03T00:00:00Z")])).await;
        assert!(member_ids(&hub, &ws, &repeat).await.is_empty());
        assert_eq!(kinds_for(&hub.changes(&ws).await, "segment.exited", &repeat), 1);

        // A segment created later is evaluated over existing profiles; a
        // deleted one lets its members go.
        let (status, wholesale) = hub.post(&ws.key, "/v1/segments", json!({"name": "wholesale",
            "filter": {"field": "tags", "op": "contains", "value": "wholesale"}})).await;
        assert_eq!(status, 201);
        assert_eq!(wholesale["members_changed"], 1);
        let wholesale = wholesale["id"].as_str().unwrap().to_string();
        assert_eq!(member_ids(&hub, &ws, &wholesale).await, [id.as_str()]);
        let (status, renamed) = send_json(&hub, "PATCH", &ws.key, &format!("/v1/segments/{wholesale}"),
            json!({"filter": {"field": "tags", "op": "contains", "value": "retail"}})).await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["members_changed"], 1);
        assert!(member_ids(&hub, &ws, &wholesale).await.is_empty());
        let (status, _) = send_json(&hub, "DELETE", &ws.key, &format!("/v1/segments/{vip}"), Value::Null).await;
        assert_eq!(status, 204);
        let (status, _) = hub.get(&ws.key, &format!("/v1/segments/{vip}")).await;
        assert_eq!(status, 404);
        let (_, list) = hub.get(&ws.key, "/v1/segments").await;
        assert_eq!(list["data"].as_array().unwrap().len(), 2);
    }

    async fn segment_filters_are_validated(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let bad = [
            (json!({"name": "x", "filter": {"field": "traits.order_count", "op": "gtx", "value": 1}}), "filter.op: unknown op"),
            (json!({"name": "x", "filter": {"all": [{"tag": "a"}, {"field": "secret", "op": "eq", "value": 1}]}}), "filter.all[1].field"),
            (json!({"name": "x", "filter": {"consent": {"channel": "fax"}}}), "filter.consent.channel"),
            (json!({"name": "x"}), "filter: missing"),
            (json!({"name": " ", "filter": {"tag": "a"}}), "name:"),
        ];
        for (body, expected) in bad {
            let (status, answer) = hub.post(&ws.key, "/v1/segments", body).await;
            assert_eq!(status, 400, "{answer}");
            assert!(answer["detail"].as_str().unwrap().starts_with(expected), "{answer}");
        }
        let (_, list) = hub.get(&ws.key, "/v1/segments").await;
        assert_eq!(list["data"], json!([]));
        let (status, _) = hub.post(&ws.key, "/v1/profiles/prof_nope/tags", json!({"add": ["x"]})).await;
        assert_eq!(status, 404);
    }

    async fn manual_tags_follow_a_merge(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-01T00:00:00Z", "emails": ["a@example.com"]},
            {"kind": "customer", "external_id": "c-2", "updated_at": "2026-06-01T00:00:00Z", "emails": ["b@example.com"]},
        ])).await;
        let b = hub.find_one(&ws, "email=b@example.com").await;
        let (status, _) = hub.post(&ws.key, &format!("/v1/profiles/{}/tags", b["id"].as_str().unwrap()), json!({"add": ["vip"]})).await;
        assert_eq!(status, 200);
        let (_, segment) = hub.post(&ws.key, "/v1/segments", json!({"name": "vip", "filter": {"tag": "vip"}})).await;
        let segment = segment["id"].as_str().unwrap().to_string();
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "c-3", "updated_at": "2026-06-02T00:00:00Z",
             "emails": ["a@example.com", "b@example.com"]},
        ])).await;
        let merged = hub.find_one(&ws, "email=a@example.com").await;
        assert_eq!(hub.find_one(&ws, "email=b@example.com").await["id"], merged["id"]);
        assert_eq!(merged["tags"], json!(["vip"]));
        assert_eq!(member_ids(&hub, &ws, &segment).await, [merged["id"].as_str().unwrap()]);
    }
}
