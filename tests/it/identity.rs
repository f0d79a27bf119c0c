//! The identity graph: links explained, profiles split and unlinked by a
//! person, values that must not link, and a rebuild that arrives at the
//! same profiles as incremental resolution.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::harness::*;

fn customer(id: &str, at: &str, name: &str, emails: &[&str], phones: &[&str]) -> Value {
    json!({"kind": "customer", "external_id": id, "updated_at": at, "name": name,
           "emails": emails, "phones": phones})
}

fn record(conn: &Connection, kind: &str, id: &str) -> Value {
    json!({"connection_id": conn.id, "kind": kind, "external_id": id})
}

async fn profile_of(hub: &TestHub, ws: &Workspace, id: &str) -> String {
    let found = hub
        .find_one(ws, &format!("platform=custom&external_id={id}"))
        .await;
    found["id"].as_str().unwrap().to_string()
}

/// Which records share a profile, as sets of external ids keyed by profile id.
async fn partition(hub: &TestHub, ws: &Workspace) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut after = String::new();
    loop {
        let ids = hub
            .hub
            .store
            .profile_ids(&ws.id, &after, 100)
            .await
            .unwrap();
        let Some(last) = ids.last() else { break };
        after = last.clone();
        for id in ids {
            let records = hub.hub.store.profile_sources(&id).await.unwrap();
            out.insert(id, records.into_iter().map(|r| r.external_id).collect());
        }
    }
    out
}

both_backends! {
    async fn links_are_explained_and_splits_hold(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("c-1", "2026-06-01T00:00:00Z", "王伟", &["wei@example.com"], &[]),
            customer("c-2", "2026-06-01T00:00:00Z", "Wang Wei", &["wei@example.com"], &["13812345678"]),
            customer("c-3", "2026-06-01T00:00:00Z", "W. Wang", &[], &["+86 138 1234 5678"]),
        ])).await;
        let id = profile_of(&hub, &ws, "c-1").await;
        assert_eq!(profile_of(&hub, &ws, "c-3").await, id);

        let (status, explained) = hub.get(&ws.key, &format!("/v1/profiles/{id}/explain")).await;
        assert_eq!(status, 200, "{explained}");
        let links = explained["links"].as_array().unwrap();
        assert_eq!(links.len(), 2, "a spanning set of links: {explained}");
        let texts: Vec<&str> = links.iter().map(|l| l["explanation"].as_str().unwrap()).collect();
        assert!(texts.iter().any(|t| t.starts_with("same email wei@example.com on custom customer c-")), "{texts:?}");
        assert!(texts.iter().any(|t| t.starts_with("same phone +8613812345678 on custom customer c-")), "{texts:?}");
        assert_eq!(explained["records"].as_array().unwrap().len(), 3);

        // A person takes c-3 out: the larger part keeps the id.
        let (status, split) = hub.post(&ws.key, &format!("/v1/profiles/{id}/split"),
            json!({"records": [record(&conn, "customer", "c-3")]})).await;
        assert_eq!(status, 200, "{split}");
        assert_eq!(split["profile_id"], id.as_str(), "{split}");
        let new_id = split["into"][0].as_str().unwrap().to_string();
        assert_eq!(profile_of(&hub, &ws, "c-3").await, new_id);
        assert_eq!(profile_of(&hub, &ws, "c-2").await, id);
        let changes = hub.changes(&ws).await;
        let split_change = changes.iter().find(|c| c["type"] == "profile.split").expect("profile.split in the feed");
        assert_eq!(split_change["into"][0], new_id.as_str());
        assert_eq!(split_change["reason"], "split by a person");
        let explained = hub.get(&ws.key, &format!("/v1/profiles/{id}/explain")).await.1;
        assert_eq!(explained["links"].as_array().unwrap().len(), 1, "the phone link is gone: {explained}");

        // The phone still joins c-2 and c-3, but a person said no: a new
        // version of c-3 and a new record with that phone do not undo it.
        hub.deliver(&conn, json!([
            customer("c-3", "2026-06-02T00:00:00Z", "W. Wang", &[], &["13812345678"]),
            customer("c-4", "2026-06-02T00:00:00Z", "Wang W", &[], &["13812345678"]),
        ])).await;
        assert_eq!(profile_of(&hub, &ws, "c-3").await, new_id);
        assert_ne!(profile_of(&hub, &ws, "c-2").await, new_id);

        // Splits are validated.
        let stranger = hub.post(&ws.key, &format!("/v1/profiles/{id}/split"),
            json!({"records": [record(&conn, "customer", "nope")]})).await;
        assert_eq!(stranger.0, 422, "{}", stranger.1);
        assert_eq!(hub.post(&ws.key, "/v1/profiles/prof_missing/split",
            json!({"records": [record(&conn, "customer", "c-1")]})).await.0, 404);
    }

    async fn the_model_links_names_across_scripts_and_masked_phones(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let address = json!({"line1": "文三路 100 号 3 单元", "city": "杭州", "region": "浙江",
                             "postal_code": "310012", "country": "CN"});
        hub.deliver(&conn, json!([
            {"kind": "customer", "external_id": "tb-1", "updated_at": "2026-06-01T00:00:00Z", "name": "王伟",
             "phones": ["138****5678"], "address": address, "birth_date": "1990-05-17"},
            {"kind": "customer", "external_id": "shop-1", "updated_at": "2026-06-02T00:00:00Z",
             "first_name": "Wei", "last_name": "WANG", "emails": ["wei.wang@example.com"],
             "phones": ["+86 138 1234 5678"], "address": address, "birth_date": "1990-05-17"},
            // Same common name, elsewhere, nothing else shared: another person.
            {"kind": "customer", "external_id": "other-1", "updated_at": "2026-06-02T00:00:00Z", "name": "王伟",
             "emails": ["ww@example.org"], "address": {"city": "成都", "region": "四川", "country": "CN"}},
        ])).await;
        let id = profile_of(&hub, &ws, "tb-1").await;
        assert_eq!(profile_of(&hub, &ws, "shop-1").await, id, "王伟 and WANG Wei at one address are one buyer");
        assert_ne!(profile_of(&hub, &ws, "other-1").await, id, "a common name alone joins nobody");
        let explained = hub.get(&ws.key, &format!("/v1/profiles/{id}/explain")).await.1;
        let link = &explained["links"][0];
        assert_eq!(link["rule"], "model", "{explained}");
        assert!(link["score"].as_f64().unwrap() >= 0.99);
        let compared = link["evidence"]["compared"].as_array().unwrap();
        let level = |field: &str| compared.iter().find(|c| c["field"] == field).map(|c| c["level"].clone());
        assert_eq!(level("name"), Some(json!("exact")), "{compared:?}");
        assert_eq!(level("phone"), Some(json!("masked")), "{compared:?}");
        assert!(link["explanation"].as_str().unwrap().starts_with("model match (score "), "{link}");
    }

    async fn erasing_the_bridging_record_splits_the_profile(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("c-1", "2026-06-01T00:00:00Z", "Ada", &["ada@example.com"], &[]),
            customer("c-2", "2026-06-01T00:00:00Z", "Ada", &["ada@example.com"], &["13812345678"]),
            customer("c-3", "2026-06-01T00:00:00Z", "Ada", &[], &["13812345678"]),
        ])).await;
        let id = profile_of(&hub, &ws, "c-1").await;
        assert_eq!(profile_of(&hub, &ws, "c-3").await, id);
        let path = format!("/v1/records/{}/customer/c-2", conn.id);
        let erased = hub.http.delete(hub.url(&path)).bearer_auth(&ws.key).send().await.unwrap();
        assert_eq!(erased.status().as_u16(), 200);
        assert_ne!(profile_of(&hub, &ws, "c-1").await, profile_of(&hub, &ws, "c-3").await);
        let (_, found) = hub.get(&ws.key, "/v1/profiles?platform=custom&external_id=c-2").await;
        assert_eq!(found["data"].as_array().unwrap().len(), 0, "{found}");
        let changes = hub.changes(&ws).await;
        assert!(changes.iter().any(|c| c["type"] == "profile.split" && c["reason"] == "a record was erased"));
        let again = hub.http.delete(hub.url(&path)).bearer_auth(&ws.key).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 404);
        let other = hub.workspace("other").await;
        let stranger = hub.http.delete(hub.url(&format!("/v1/records/{}/customer/c-1", conn.id)))
            .bearer_auth(&other.key).send().await.unwrap();
        assert_eq!(stranger.status().as_u16(), 404, "another workspace cannot erase");
    }

    async fn unlinking_an_identity_splits_where_it_alone_held(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("a", "2026-06-01T00:00:00Z", "Ada", &["family@example.com", "ada@example.com"], &[]),
            customer("b", "2026-06-01T00:00:00Z", "Bob", &["family@example.com"], &[]),
        ])).await;
        let id = profile_of(&hub, &ws, "a").await;
        assert_eq!(profile_of(&hub, &ws, "b").await, id);
        let (status, body) = hub.post(&ws.key, &format!("/v1/profiles/{id}/unlink"),
            json!({"kind": "email", "value": "family@example.com"})).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(profile_of(&hub, &ws, "a").await, profile_of(&hub, &ws, "b").await);
        let protected = hub.get(&ws.key, "/v1/identity/protected").await.1;
        assert!(protected["data"].as_array().unwrap().iter()
            .any(|p| p["value"] == "family@example.com" && p["source"] == "unlinked"), "{protected}");
        assert_eq!(hub.post(&ws.key, &format!("/v1/profiles/{id}/unlink"),
            json!({"kind": "shoe_size", "value": "42"})).await.0, 422);
    }

    async fn implausible_and_placeholder_values_stop_linking(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        // Placeholder email: never a key.
        hub.deliver(&conn, json!([
            customer("p-1", "2026-06-01T00:00:00Z", "One", &["test@test.com"], &[]),
            customer("p-2", "2026-06-01T00:00:00Z", "Two", &["test@test.com"], &[]),
        ])).await;
        assert_ne!(profile_of(&hub, &ws, "p-1").await, profile_of(&hub, &ws, "p-2").await);

        // The shop typed its own phone on orders of eight different buyers.
        let buyers: Vec<Value> = (0..8).map(|i| customer(&format!("s-{i}"), "2026-06-01T00:00:00Z",
            &format!("Buyer {i}"), &[&format!("buyer{i}@example.com")], &["0571 8888 1234"])).collect();
        for buyer in buyers {
            hub.deliver(&conn, json!([buyer])).await;
        }
        let mut profiles = BTreeSet::new();
        for i in 0..8 {
            profiles.insert(profile_of(&hub, &ws, &format!("s-{i}")).await);
        }
        assert_eq!(profiles.len(), 8, "the shop's phone joins nobody");
        let protected = hub.get(&ws.key, "/v1/identity/protected").await.1;
        let shop_phone = protected["data"].as_array().unwrap().iter()
            .find(|p| p["value"] == "+8657188881234").unwrap_or_else(|| panic!("{protected}"));
        assert_eq!(shop_phone["source"], "detected");
        assert!(shop_phone["reason"].as_str().unwrap().contains("distinct email"));

        // An operator blocks a value by hand, and can lift it again.
        hub.deliver(&conn, json!([
            customer("f-1", "2026-06-01T00:00:00Z", "Fa", &[], &["13900001111"]),
            customer("f-2", "2026-06-01T00:00:00Z", "Fb", &[], &["13900001111"]),
        ])).await;
        assert_eq!(profile_of(&hub, &ws, "f-1").await, profile_of(&hub, &ws, "f-2").await);
        let (status, body) = hub.post(&ws.key, "/v1/identity/protected",
            json!({"kind": "phone", "value": "+8613900001111", "reason": "front desk phone"})).await;
        assert_eq!(status, 201, "{body}");
        assert_ne!(profile_of(&hub, &ws, "f-1").await, profile_of(&hub, &ws, "f-2").await);
        let lifted = hub.http.delete(hub.url("/v1/identity/protected/phone/+8613900001111"))
            .bearer_auth(&ws.key).send().await.unwrap();
        assert_eq!(lifted.status().as_u16(), 204);
        let again = hub.http.delete(hub.url("/v1/identity/protected/phone/+8613900001111"))
            .bearer_auth(&ws.key).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 404);
    }

    async fn a_rejected_suggestion_is_never_overridden_by_a_rule(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("shop-2", "2026-01-01T00:00:00Z", "李娜", &[], &["13900001111"]),
            {"kind": "message", "external_id": "m2", "conversation_id": "chat-7", "channel": "wechat",
             "direction": "inbound", "customer_external_id": "wx-7",
             "text": "她电话 139 0000 1111", "sent_at": "2026-01-04T00:00:00Z"},
        ])).await;
        let open = hub.get(&ws.key, "/v1/suggestions").await.1;
        let id = open["data"][0]["id"].as_i64().unwrap();
        assert_eq!(hub.post(&ws.key, &format!("/v1/suggestions/{id}/reject"), json!({})).await.0, 200);
        // Later the chat user's record carries the same phone: still apart.
        hub.deliver(&conn, json!([
            {"kind": "message", "external_id": "m3", "conversation_id": "chat-7", "channel": "wechat",
             "direction": "inbound", "customer_external_id": "wx-7",
             "sender": {"phone": "13900001111"}, "text": "再问一下", "sent_at": "2026-01-05T00:00:00Z"},
        ])).await;
        let li = profile_of(&hub, &ws, "shop-2").await;
        let chat = hub.find_one(&ws, "platform=custom&external_id=wx-7").await;
        assert_ne!(chat["id"].as_str().unwrap(), li);
    }

    async fn rebuild_arrives_at_the_same_profiles_from_shuffled_input(backend: Backend) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let hub = spawn(backend).await;
        // 60 people, each with up to four records that share keys in a
        // chain (email, then phone, then customer id), plus households that
        // share nothing a key would use.
        const FIRST: [&str; 12] = ["Ada", "Bruno", "Chiara", "Dmitri", "Eun-ji", "Farid", "Greta",
            "Hiroshi", "Ines", "Jonas", "Kaveh", "Lucia"];
        const LAST: [&str; 5] = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Castillo"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut records = Vec::new();
        for p in 0..60 {
            let name = format!("{} {}", FIRST[p % 12], LAST[p / 12]);
            let email = format!("person{p}@example.com");
            let phone = format!("139{:08}", rand::Rng::gen_range(&mut rng, 10_000_000..99_999_999));
            records.push(customer(&format!("{p}-a"), "2026-06-01T00:00:00Z", &name, &[&email], &[]));
            if p % 2 == 0 {
                records.push(customer(&format!("{p}-b"), "2026-06-01T00:00:00Z", &name, &[&email], &[&phone]));
                records.push(customer(&format!("{p}-c"), "2026-06-01T00:00:00Z", &name, &[], &[&phone]));
            }
            if p % 3 == 0 {
                records.push(customer(&format!("{p}-d"), "2026-06-01T00:00:00Z", &name, &[&format!("other{p}@example.com")], &[]));
            }
        }
        let mut shapes = Vec::new();
        for seed in [1u64, 2] {
            let ws = hub.workspace(&format!("shuffle-{seed}")).await;
            let conn = hub.custom(&ws).await;
            let mut shuffled = records.clone();
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            for chunk in shuffled.chunks(7) {
                hub.deliver(&conn, json!(chunk)).await;
            }
            let before = partition(&hub, &ws).await;
            let report = shophub::resolve::rebuild::rebuild(hub.hub.store.as_ref(), &ws.id, 1).await.unwrap();
            assert_eq!(report.records_moved, 0, "{report:?}");
            let after = partition(&hub, &ws).await;
            assert_eq!(before, after, "same profiles, same ids");
            shapes.push(after.into_values().collect::<BTreeSet<_>>());
        }
        assert_eq!(shapes[0], shapes[1], "the order records arrived in does not matter");
        // Each person is one profile: the model joins the second account
        // (same name, another email) only when it is sure, and never two people.
        let people: BTreeSet<String> = shapes[0].iter()
            .map(|set| set.iter().next().unwrap().split('-').next().unwrap().to_string()).collect();
        assert_eq!(people.len(), 60, "{:?}", shapes[0]);
        for set in &shapes[0] {
            let owners: BTreeSet<&str> = set.iter().map(|r| r.split('-').next().unwrap()).collect();
            assert_eq!(owners.len(), 1, "two people joined: {set:?}");
        }
    }

    async fn rebuild_takes_protections_into_account(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, json!([
            customer("x", "2026-06-01T00:00:00Z", "X", &["shared@example.com", "x@example.com"], &[]),
            customer("y", "2026-06-01T00:00:00Z", "Y", &["shared@example.com"], &[]),
        ])).await;
        let before = profile_of(&hub, &ws, "x").await;
        assert_eq!(profile_of(&hub, &ws, "y").await, before);
        // Protected behind the hub's back (as an older hub would have left it).
        let mut tx = hub.hub.store.begin_write(&ws.id).await.unwrap();
        tx.protect(&ws.id, "email", "shared@example.com", "configured", "test", 1).await.unwrap();
        tx.commit().await.unwrap();
        let report = shophub::resolve::rebuild::rebuild(hub.hub.store.as_ref(), &ws.id, 2).await.unwrap();
        assert_eq!((report.records_moved, report.split), (1, 1), "{report:?}");
        assert_eq!(profile_of(&hub, &ws, "x").await, before, "the oldest part keeps the id");
        assert_ne!(profile_of(&hub, &ws, "y").await, before);
    }
}
