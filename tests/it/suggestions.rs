//! A message that mentions another customer's email, phone or order is
//! evidence, never a silent merge: it becomes a suggestion a person decides.

use serde_json::json;

use crate::harness::*;

both_backends! {
    async fn mentions_become_suggestions_that_people_accept_or_reject(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        // A known shop customer, and a chat user who only has a handle.
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "shop-1", "updated_at": "2026-01-01T00:00:00Z", "name": "王伟",
             "emails": ["wang.wei@example.com"]},
            {"kind": "order", "external_id": "727", "updated_at": "2026-01-02T00:00:00Z", "customer_external_id": "shop-1",
             "status": "paid", "currency": "CNY", "total": "99.00", "line_items": []},
        ])).await;
        hub.deliver(&conn, json!([
            {"kind": "message", "external_id": "m1", "conversation_id": "chat-9", "channel": "wechat", "direction": "inbound",
             "customer_external_id": "wx-9", "text": "我的邮箱是 wang.wei@example.com,订单号727", "sent_at": "2026-01-03T00:00:00Z"},
        ])).await;

        let shop = hub.find_one(&ws, "email=wang.wei@example.com").await;
        let chat = hub.find_one(&ws, "platform=custom&external_id=wx-9").await;
        assert_ne!(shop["id"], chat["id"], "a mention never merges silently");

        let (_, open) = hub.get(&ws.key, "/v1/suggestions").await;
        let open = open["data"].as_array().unwrap().clone();
        assert_eq!(open.len(), 1, "email and order point at the same profile: one suggestion per pair");
        let mut pair: Vec<&str> = open[0]["profiles"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        pair.sort();
        let mut expected = vec![shop["id"].as_str().unwrap(), chat["id"].as_str().unwrap()];
        expected.sort();
        assert_eq!(pair, expected);
        assert!(["email", "order"].contains(&open[0]["evidence"]["mention"]["kind"].as_str().unwrap()));

        let id = open[0]["id"].as_i64().unwrap();
        let (status, accepted) = hub.post(&ws.key, &format!("/v1/suggestions/{id}/accept"), json!({})).await;
        assert_eq!(status, 200, "{accepted}");
        assert_eq!(accepted["profile_id"], shop["id"], "the older profile survives");
        let merged = hub.find_one(&ws, "platform=custom&external_id=wx-9").await;
        assert_eq!(merged["id"], shop["id"]);
        assert_eq!(merged["traits"]["order_count"], 1);
        assert!(hub.changes(&ws).await.iter().any(|c| c["type"] == "profile.merged"));
        assert_eq!(hub.post(&ws.key, &format!("/v1/suggestions/{id}/accept"), json!({})).await.0, 404);

        // Another mention, this time rejected: the profiles stay apart.
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "shop-2", "updated_at": "2026-01-01T00:00:00Z", "name": "李娜", "phones": ["13900001111"]},
            {"kind": "message", "external_id": "m2", "conversation_id": "chat-7", "channel": "wechat", "direction": "inbound",
             "customer_external_id": "wx-7", "text": "帮我朋友问一下,她电话 139 0000 1111", "sent_at": "2026-01-04T00:00:00Z"},
        ])).await;
        let (_, open) = hub.get(&ws.key, "/v1/suggestions").await;
        let id = open["data"][0]["id"].as_i64().unwrap();
        assert_eq!(open["data"][0]["evidence"]["mention"], json!({"kind": "phone", "value": "+8613900001111"}));
        assert_eq!(hub.post(&ws.key, &format!("/v1/suggestions/{id}/reject"), json!({})).await.0, 200);
        let li = hub.find_one(&ws, "phone=13900001111&region=CN").await;
        let friend = hub.find_one(&ws, "platform=custom&external_id=wx-7").await;
        assert_ne!(li["id"], friend["id"]);
        assert_eq!(hub.get(&ws.key, "/v1/suggestions?status=rejected").await.1["data"].as_array().unwrap().len(), 1);

        // People can also merge by hand, and only within their workspace.
        let (status, merged) = hub.post(&ws.key, &format!("/v1/profiles/{}/merge", li["id"].as_str().unwrap()),
            json!({"profile_id": friend["id"]})).await;
        assert_eq!(status, 200, "{merged}");
        let other = hub.workspace("other").await;
        assert_eq!(hub.post(&other.key, &format!("/v1/profiles/{}/merge", li["id"].as_str().unwrap()),
            json!({"profile_id": friend["id"]})).await.0, 404);
    }
}
