//! Messages and reviews on the profile: timeline filters, conversations,
//! and complaints that staff follow up.

use serde_json::{json, Value};
use shophub::complaints::ComplaintRules;
use shophub::import::{self, Format};

use crate::harness::*;

async fn load(hub: &TestHub, connection_id: &str, records: &[Value]) {
    let file = hub
        .dir
        .path()
        .join(format!("{}.jsonl", uuid::Uuid::new_v4().simple()));
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let report = import::run(
        hub.hub.store.as_ref(),
        connection_id,
        &file,
        &Format::JsonLines,
        &ComplaintRules::default(),
    )
    .await
    .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

fn message(
    id: &str,
    conversation: &str,
    channel: &str,
    direction: &str,
    text: &str,
    at: &str,
) -> Value {
    json!({"kind": "message", "external_id": id, "conversation_id": conversation, "channel": channel,
           "direction": direction, "sender": {"phone": "+8613812345678", "name": "王伟"}, "text": text, "sent_at": at,
           "customer_external_id": "u1"})
}

fn review(id: &str, stars: i64, at: &str) -> Value {
    json!({"kind": "review", "external_id": id, "product": "茶具", "rating": stars, "rating_scale": 5, "text": "…",
           "reviewer": {"email": "wang.wei@example.com"}, "customer_external_id": "u1", "created_at": at, "updated_at": at})
}

both_backends! {
    async fn complaints_are_found_followed_up_and_resolved(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.connect(&ws, "custom", json!({"default_region": "CN"})).await;
        load(&hub, &conn.id, &[
            json!({"kind": "customer", "external_id": "u1", "updated_at": "2026-01-01T00:00:00Z", "name": "王伟",
                   "emails": ["wang.wei@example.com"], "phones": ["+8613812345678"]}),
            json!({"kind": "order", "external_id": "o1", "updated_at": "2026-02-01T00:00:00Z", "created_at": "2026-02-01T00:00:00Z",
                   "customer_external_id": "u1", "status": "paid", "currency": "CNY", "total": "99.00", "line_items": []}),
            message("m1", "wx-1", "wechat", "inbound", "在吗?杯子破损了", "2026-02-03T00:00:00Z"),
            message("m2", "wx-1", "wechat", "outbound", "抱歉,我们给您退款", "2026-02-03T00:05:00Z"),
            message("m3", "wa-1", "whatsapp", "inbound", "I will file a complaint with 12315", "2026-02-04T00:00:00Z"),
            review("r1", 1, "2026-02-05T00:00:00Z"),
            review("r2", 5, "2026-02-06T00:00:00Z"),
        ]).await;

        let profile = hub.find_one(&ws, "email=wang.wei@example.com").await;
        let id = profile["id"].as_str().unwrap().to_string();
        assert_eq!(profile["traits"]["complaints"], json!({"open": 3, "by_severity": {"high": 2, "medium": 1}}));

        let (_, open) = hub.get(&ws.key, "/v1/complaints").await;
        let open = open["data"].as_array().unwrap().clone();
        assert_eq!(open.len(), 3, "{open:?}");
        assert!(open.iter().all(|c| c["profile_id"] == id.as_str() && c["status"] == "open"));
        let reasons: Vec<&str> = open.iter().map(|c| c["reason"].as_str().unwrap()).collect();
        assert!(reasons.contains(&"review rated 1 of 5") && reasons.contains(&"message mentions \"破损\""), "{reasons:?}");
        let (_, high) = hub.get(&ws.key, "/v1/complaints?severity=high").await;
        assert_eq!(high["data"].as_array().unwrap().len(), 2);

        // Staff resolve the broken-cup complaint: the profile follows.
        let cup = open.iter().find(|c| c["record"]["external_id"] == "m1").unwrap()["id"].as_i64().unwrap();
        let (status, _) = hub.post(&ws.key, &format!("/v1/complaints/{cup}/resolve"), json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(hub.post(&ws.key, &format!("/v1/complaints/{cup}/resolve"), json!({})).await.0, 404);
        let (_, profile) = hub.get(&ws.key, &format!("/v1/profiles/{id}")).await;
        assert_eq!(profile["traits"]["complaints"], json!({"open": 2, "by_severity": {"high": 2}}));
        let (_, resolved) = hub.get(&ws.key, "/v1/complaints?status=resolved").await;
        assert_eq!(resolved["data"][0]["id"], cup);
        let last = hub.changes(&ws).await.pop().unwrap();
        assert_eq!((last["type"].as_str(), last["profile"]["traits"]["complaints"]["open"].as_i64()), (Some("profile.updated"), Some(2)));

        // The reviewer edits the one-star review to four stars: no longer a complaint.
        load(&hub, &conn.id, &[review("r1", 4, "2026-02-07T00:00:00Z")]).await;
        let (_, profile) = hub.get(&ws.key, &format!("/v1/profiles/{id}")).await;
        assert_eq!(profile["traits"]["complaints"], json!({"open": 1, "by_severity": {"high": 1}}));

        // Other workspaces see none of it.
        let other = hub.workspace("other").await;
        assert_eq!(hub.get(&other.key, "/v1/complaints").await.1["data"], json!([]));
        assert_eq!(hub.post(&other.key, "/v1/complaints/1/resolve", json!({})).await.0, 404);
    }

    async fn the_timeline_filters_by_kind_channel_and_conversation(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.connect(&ws, "custom", json!({"default_region": "CN"})).await;
        load(&hub, &conn.id, &[
            json!({"kind": "order", "external_id": "o1", "updated_at": "2026-02-01T00:00:00Z", "created_at": "2026-02-01T00:00:00Z",
                   "customer_external_id": "u1", "status": "paid", "currency": "CNY", "total": "99.00", "line_items": []}),
            message("m1", "wx-1", "wechat", "inbound", "你好", "2026-02-03T00:00:00Z"),
            message("m2", "wx-1", "wechat", "outbound", "您好!", "2026-02-03T00:01:00Z"),
            message("m3", "wa-1", "whatsapp", "inbound", "hi", "2026-02-04T00:00:00Z"),
            review("r1", 5, "2026-02-05T00:00:00Z"),
        ]).await;
        let profile = hub.find_one(&ws, "platform=custom&external_id=u1").await;
        let id = profile["id"].as_str().unwrap();
        let ids = |body: &Value| body["data"].as_array().unwrap().iter().map(|e| e["external_id"].as_str().unwrap().to_string()).collect::<Vec<_>>();

        let (_, all) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline")).await;
        assert_eq!(ids(&all), ["r1", "m3", "m2", "m1", "o1"]);
        let (_, messages) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?kind=message")).await;
        assert_eq!(ids(&messages), ["m3", "m2", "m1"]);
        let (_, wechat) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?channel=wechat")).await;
        assert_eq!(ids(&wechat), ["m2", "m1"]);
        assert_eq!(wechat["data"][0]["message"]["direction"], "outbound");
        let (_, custom) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?channel=custom")).await;
        assert_eq!(ids(&custom), ["r1", "o1"], "records other than messages take their platform as channel");
        let (_, thread) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?conversation=wa-1")).await;
        assert_eq!(ids(&thread), ["m3"]);
        assert_eq!(hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?kind=invoice")).await.0, 422);

        let (_, conversations) = hub.get(&ws.key, &format!("/v1/profiles/{id}/conversations")).await;
        assert_eq!(conversations["data"], json!([
            {"conversation_id": "wa-1", "channel": "whatsapp", "messages": 1, "first_at": "2026-02-04T00:00:00Z", "last_at": "2026-02-04T00:00:00Z"},
            {"conversation_id": "wx-1", "channel": "wechat", "messages": 2, "first_at": "2026-02-03T00:00:00Z", "last_at": "2026-02-03T00:01:00Z"},
        ]));
    }
}
