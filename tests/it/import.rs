//! `shophub import`: canonical JSON Lines and CSV exports, through the CLI.

use std::process::Command;

use serde_json::json;

use crate::harness::*;

fn import(hub: &TestHub, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shophub"))
        .arg("import")
        .args(args)
        .env("SHOPHUB_DATABASE_URL", &hub.database.url)
        .env("SHOPHUB_DATA_DIR", &hub.hub.config.data_dir)
        .env("SHOPHUB_LOG", "warn")
        .output()
        .expect("shophub runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

both_backends! {
    async fn json_lines_load_and_bad_lines_are_reported_by_number(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.connect(&ws, "custom", json!({"default_region": "CN"})).await;
        let file = hub.dir.path().join("records.jsonl");
        let lines = [
            json!({"kind": "customer", "external_id": "c1", "updated_at": "2026-01-01T00:00:00Z", "name": "王伟", "emails": ["wang.wei@example.com"], "phones": ["138 1234 5678"]}).to_string(),
            json!({"kind": "order", "external_id": "o1", "updated_at": "2026-02-01T00:00:00Z", "created_at": "2026-02-01T00:00:00Z", "customer_external_id": "c1", "status": "paid", "currency": "CNY", "total": "199.00", "line_items": [{"title": "茶", "quantity": 1, "price": "199.00"}]}).to_string(),
            "{not json".to_string(),
            json!({"kind": "review", "external_id": "r1", "product": "茶", "rating": 2, "rating_scale": 5, "text": "太慢了", "reviewer": {"email": "wang.wei@example.com"}, "created_at": "2026-02-10T00:00:00Z"}).to_string(),
            json!({"external_id": "x"}).to_string(),
            String::new(),
            json!({"kind": "message", "external_id": "m1", "conversation_id": "t1", "channel": "wechat", "direction": "inbound", "sender": {"phone": "+8613812345678"}, "text": "在吗", "sent_at": "2026-02-11T00:00:00Z"}).to_string(),
        ];
        std::fs::write(&file, lines.join("\n")).unwrap();

        let (ok, stdout, stderr) = import(&hub, &["--connection", &conn.id, file.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("4 records loaded, 2 lines skipped"), "{stdout}");
        assert!(stderr.contains("line 3: skipped") && stderr.contains("line 5: skipped: missing kind"), "{stderr}");

        let profile = hub.find_one(&ws, "phone=13812345678&region=CN").await;
        assert_eq!(profile["traits"]["order_count"], 1);
        assert_eq!(profile["traits"]["total_spent"], json!({"CNY": "199.00"}));
        let id = profile["id"].as_str().unwrap();
        let (_, timeline) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline")).await;
        let kinds: Vec<&str> = timeline["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["message", "review", "order"], "newest first");
        assert_eq!(timeline["data"][1]["review"]["score"], 0.4);

        // Loading the same file again changes nothing.
        let changes = hub.changes(&ws).await.len();
        assert!(import(&hub, &["--connection", &conn.id, file.to_str().unwrap()]).0);
        assert_eq!(hub.changes(&ws).await.len(), changes);
    }

    async fn csv_exports_load_through_presets(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.connect(&ws, "custom", json!({})).await;

        let shopify = hub.dir.path().join("customers_export.csv");
        std::fs::write(&shopify, "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address City,Default Address Country Code,Phone,Tags\n\
            '7001,Ada,Lovelace,ada@example.com,yes,London,GB,'+86 139 1234 5678,vip\n\
            '7002,Grace,Hopper,grace@example.com,no,Arlington,US,,\n").unwrap();
        let (ok, stdout, stderr) = import(&hub, &["--connection", &conn.id, "--preset", "shopify-customers", shopify.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("2 records loaded, 0 lines skipped"), "{stdout}");
        let ada = hub.find_one(&ws, "email=ada@example.com").await;
        assert_eq!(ada["name"], "Ada Lovelace");
        assert_eq!(ada["phones"], json!(["+8613912345678"]));

        // Seller-centre exports come GBK-encoded, with masked buyers.
        let header = "订单编号,买家会员名,收货人姓名,联系手机,买家实际支付金额,订单状态,订单创建时间,订单付款时间,宝贝标题,宝贝总数量";
        let rows = ["=\"3021234567890123\",t**1,王伟,138****5678,199.00,交易成功,2026-03-01 20:15:00,2026-03-01 20:16:30,龙井茶,2",
                    "=\"3021234567890124\",t**1,李娜,139****0000,59.00,交易关闭,2026-03-02 10:00:00,,绿茶,1",
                    "=\"\",,,,,,,,,"];
        let text = format!("{header}\n{}\n", rows.join("\n"));
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let taobao = hub.dir.path().join("ExportOrderList.csv");
        std::fs::write(&taobao, &gbk).unwrap();
        let (ok, stdout, stderr) = import(&hub, &["--connection", &conn.id, "--preset", "taobao-orders", taobao.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("2 records loaded, 1 lines skipped"), "{stdout} {stderr}");
        assert!(stderr.contains("line 4: skipped: missing external_id"), "{stderr}");
        // Masked buyers share no key: they stay two people, never merged.
        let (_, changes) = hub.get(&ws.key, "/v1/changes?limit=1000").await;
        let created = changes["data"].as_array().unwrap().iter().filter(|c| c["type"] == "profile.created").count();
        assert_eq!(created, 4, "two Shopify customers and two separate Taobao buyers");
        assert_eq!(hub.get(&ws.key, "/v1/profiles?phone=138****5678").await.0, 422);

        let (ok, _, stderr) = import(&hub, &["--connection", &conn.id, taobao.to_str().unwrap()]);
        assert!(!ok && stderr.contains("--preset"), "{stderr}");
    }
}
