//! Profile search over HTTP: every kind of identifier, names across Han and
//! pinyin with a typo, ranking, the index following merges, splits and a
//! rebuild, and input that must not be read as SQL.

use serde_json::{json, Value};

use crate::harness::*;

fn customer(id: &str, at: &str, name: &str, emails: &[&str], phones: &[&str]) -> Value {
    json!({"kind": "customer", "external_id": id, "updated_at": at, "name": name,
           "emails": emails, "phones": phones})
}

async fn search(hub: &TestHub, ws: &Workspace, q: &str) -> (u16, Value) {
    let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    hub.get(&ws.key, &format!("/v1/profiles/search?q={q}"))
        .await
}

/// The results' profile ids, best first.
async fn ids(hub: &TestHub, ws: &Workspace, q: &str) -> Vec<String> {
    let (status, body) = search(hub, ws, q).await;
    assert_eq!(status, 200, "{q}: {body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The first result for `q`, which must be `expected`, with `field` among what matched.
async fn top(hub: &TestHub, ws: &Workspace, q: &str, expected: &str, field: &str) -> Value {
    let (status, body) = search(hub, ws, q).await;
    assert_eq!(status, 200, "{q}: {body}");
    let first = body["data"][0].clone();
    assert_eq!(first["profile_id"], expected, "{q}: {body}");
    let matched: Vec<&str> = first["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(matched.contains(&field), "{q}: {field} not in {matched:?}");
    first
}

async fn profile_of(hub: &TestHub, ws: &Workspace, id: &str) -> String {
    let found = hub
        .find_one(ws, &format!("platform=custom&external_id={id}"))
        .await;
    found["id"].as_str().unwrap().to_string()
}

both_backends! {
    async fn every_identifier_finds_its_profile(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("crm-1001", "2026-06-01T00:00:00Z", "Ada Lovelace", &["Ada.Love+shop@gmail.com"], &["13812345678"]),
            {"kind": "order", "external_id": "o-1", "number": "#SO-5001", "created_at": "2026-06-02T00:00:00Z",
             "customer_external_id": "crm-1001", "status": "paid", "currency": "CNY", "total": "99.00", "line_items": []},
            customer("crm-2002", "2026-06-01T00:00:00Z", "Bob Brown", &["bob@example.com"], &["13900001111"]),
        ])).await;
        let ada = profile_of(&hub, &ws, "crm-1001").await;

        let first = top(&hub, &ws, "ADA.LOVE+SHOP@GMAIL.COM", &ada, "email").await;
        assert_eq!(first["name"], "Ada Lovelace");
        assert_eq!(first["emails"], json!(["ada.love+shop@gmail.com"]));
        assert_eq!(first["phones"], json!(["+8613812345678"]));
        assert_eq!(first["score"], 100);
        // The mailbox Gmail delivers to, however it is written.
        top(&hub, &ws, "adalove@googlemail.com", &ada, "email").await;
        for phone in ["+86 138-1234-5678", "138 1234 5678", "(138) 1234.5678", "+8613812345678"] {
            top(&hub, &ws, phone, &ada, "phone").await;
        }
        top(&hub, &ws, "5678", &ada, "phone_last4").await;
        top(&hub, &ws, "CRM-1001", &ada, "customer_id").await;
        top(&hub, &ws, "SO-5001", &ada, "order_number").await;
        top(&hub, &ws, "#so5001", &ada, "order_number").await;
        top(&hub, &ws, "lovelace ada", &ada, "name").await;
        assert_eq!(ids(&hub, &ws, "ada@example.com").await, Vec::<String>::new());
        assert_eq!(ids(&hub, &ws, "bob@example.com").await.len(), 1);
        // The existing exact lookup keeps working beside search.
        assert_eq!(hub.find_one(&ws, "email=ada.love%2Bshop@gmail.com").await["id"], ada.as_str());
    }

    async fn results_are_ranked(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("old", "2026-01-01T00:00:00Z", "Li Na", &[], &["13800005678"]),
            customer("new", "2026-05-01T00:00:00Z", "Zhao Min", &[], &["13911115678"]),
            customer("mid", "2026-03-01T00:00:00Z", "Qian Yu", &[], &["15022225678"]),
            customer("han", "2026-02-01T00:00:00Z", "王伟", &[], &[]),
            customer("homophone", "2026-04-01T00:00:00Z", "汪伟", &[], &[]),
            customer("latin", "2026-03-15T00:00:00Z", "Wei WANG", &[], &[]),
            customer("partial", "2026-06-01T00:00:00Z", "Wang Fang", &[], &[]),
        ])).await;
        let [old, new, mid, han, homophone, latin, partial] = {
            let mut out = Vec::new();
            for id in ["old", "new", "mid", "han", "homophone", "latin", "partial"] {
                out.push(profile_of(&hub, &ws, id).await);
            }
            <[String; 7]>::try_from(out).unwrap()
        };

        // The last four digits are shared: all three, most recent first.
        let (status, body) = search(&hub, &ws, "5678").await;
        assert_eq!(status, 200);
        let found: Vec<&str> = body["data"].as_array().unwrap().iter()
            .map(|r| r["profile_id"].as_str().unwrap()).collect();
        assert_eq!(found, [new.as_str(), mid.as_str(), old.as_str()], "{body}");
        assert!(body["data"].as_array().unwrap().iter().all(|r| r["matched"] == json!(["phone_last4"])));
        // A whole number beats its last four.
        assert_eq!(ids(&hub, &ws, "139 1111 5678").await, [new.as_str()]);

        // Han as written first; then the same reading, most recent first;
        // a profile matching one token of two comes last.
        let found = ids(&hub, &ws, "王伟").await;
        assert_eq!(found, [han.clone(), homophone.clone(), latin.clone(), partial.clone()]);
        let (_, body) = search(&hub, &ws, "王伟").await;
        let scores: Vec<u64> = body["data"].as_array().unwrap().iter().map(|r| r["score"].as_u64().unwrap()).collect();
        assert!(scores[0] > scores[1] && scores[1] == scores[2] && scores[2] > scores[3], "{scores:?}");
        assert_eq!(ids(&hub, &ws, "wang wei").await[..3], [homophone.clone(), latin.clone(), han.clone()]);
        // An unfinished last token still ranks the full names above Wang Fang.
        let typing = ids(&hub, &ws, "wang we").await;
        assert_eq!(typing.last(), Some(&partial), "{typing:?}");
        assert_eq!(typing.len(), 4);
        // limit bounds the answer.
        let (_, body) = hub.get(&ws.key, "/v1/profiles/search?q=5678&limit=2").await;
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
    }

    async fn han_and_pinyin_find_each_other_with_a_typo(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("xm", "2026-06-01T00:00:00Z", "王小明", &[], &[]),
            customer("ll", "2026-06-01T00:00:00Z", "Li Lei", &[], &[]),
            customer("js", "2026-06-01T00:00:00Z", "Jonathan Smith", &[], &[]),
            customer("jo", "2026-06-01T00:00:00Z", "Joan Jones", &[], &[]),
        ])).await;
        let xm = profile_of(&hub, &ws, "xm").await;
        let ll = profile_of(&hub, &ws, "ll").await;
        let js = profile_of(&hub, &ws, "js").await;
        for q in ["wang xiaoming", "Xiaoming WANG", "xiao ming wang", "ＷＡＮＧ Xiaoming", "王小明"] {
            top(&hub, &ws, q, &xm, "name").await;
        }
        top(&hub, &ws, "李雷", &ll, "name").await;
        top(&hub, &ws, "lei li", &ll, "name").await;
        for q in ["Jonathon Smith", "jonathan smtih", "smiht", "Jonathn"] {
            let first = top(&hub, &ws, q, &js, "name_fuzzy").await;
            assert!(first["score"].as_u64().unwrap() > 0);
        }
        assert!(!ids(&hub, &ws, "smiht").await.contains(&profile_of(&hub, &ws, "jo").await));
        // Two typos in one token is another name.
        assert_eq!(ids(&hub, &ws, "smoht").await, Vec::<String>::new());
    }

    async fn the_index_follows_merges_splits_and_rebuilds(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("c-a", "2026-06-01T00:00:00Z", "Alice Chen", &["alice@example.com"], &[]),
        ])).await;
        hub.deliver(&conn, json!([
            customer("c-b", "2026-06-01T00:00:00Z", "Bettina Chen", &[], &["13912345678"]),
        ])).await;
        let a = profile_of(&hub, &ws, "c-a").await;
        let b = profile_of(&hub, &ws, "c-b").await;
        assert_ne!(a, b);
        assert_eq!(ids(&hub, &ws, "bettina").await, [b.as_str()]);

        // A record with both keys joins them: B is absorbed into A.
        hub.deliver(&conn, json!([
            customer("c-c", "2026-06-02T00:00:00Z", "Alice Chen", &["alice@example.com"], &["13912345678"]),
        ])).await;
        let merged = profile_of(&hub, &ws, "c-b").await;
        assert_eq!(merged, a);
        assert_eq!(ids(&hub, &ws, "bettina").await, [a.as_str()]);
        assert_eq!(ids(&hub, &ws, "139 1234 5678").await, [a.as_str()]);
        assert!(!ids(&hub, &ws, "chen").await.contains(&b), "the absorbed profile is gone from the index");

        // A person takes c-b out again: its name goes with it.
        let (status, split) = hub.post(&ws.key, &format!("/v1/profiles/{a}/split"),
            json!({"records": [{"connection_id": conn.id, "kind": "customer", "external_id": "c-b"}]})).await;
        assert_eq!(status, 200, "{split}");
        let apart = split["into"][0].as_str().unwrap().to_string();
        assert_eq!(ids(&hub, &ws, "bettina").await, [apart.as_str()]);
        let alice = ids(&hub, &ws, "alice chen").await;
        assert_eq!(alice[0], a);

        // A rebuild leaves the same answers.
        shophub::resolve::rebuild::rebuild(hub.hub.store.as_ref(), &ws.id, 1).await.unwrap();
        assert_eq!(ids(&hub, &ws, "bettina").await, [profile_of(&hub, &ws, "c-b").await]);
        assert_eq!(ids(&hub, &ws, "alice@example.com").await, [profile_of(&hub, &ws, "c-a").await]);
        // Re-indexing finds nothing to change and keeps the answers.
        assert_eq!(shophub::search::reindex(hub.hub.store.as_ref(), &ws.id).await.unwrap(), 2);
        assert_eq!(ids(&hub, &ws, "bettina").await, [profile_of(&hub, &ws, "c-b").await]);
    }

    async fn hostile_input_is_only_text(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("c-1", "2026-06-01T00:00:00Z", "Seán O'Brien", &["sean@example.com"], &[]),
            customer("c-2", "2026-06-01T00:00:00Z", "Ada Lovelace", &[], &[]),
        ])).await;
        let sean = profile_of(&hub, &ws, "c-1").await;
        for q in ["%", "_", "%%", "a%", "a_a", "' OR '1'='1", "\"; DROP TABLE search_terms; --", "*", "\\"] {
            assert_eq!(ids(&hub, &ws, q).await, Vec::<String>::new(), "{q}");
        }
        top(&hub, &ws, "o'brien", &sean, "name").await;
        top(&hub, &ws, "SEAN O BRIEN", &sean, "name").await;
        let long = "a".repeat(201);
        assert_eq!(search(&hub, &ws, &long).await.0, 400);
        assert_eq!(search(&hub, &ws, "   ").await.0, 400);
        assert_eq!(hub.get(&ws.key, "/v1/profiles/search").await.0, 400);
        assert_eq!(hub.get(&ws.key, "/v1/profiles/search?q=ada&limit=x").await.0, 400);
        // The table is still there.
        top(&hub, &ws, "ada lovelace", &profile_of(&hub, &ws, "c-2").await, "name").await;
    }
}
