//! The binary: subcommands share one configuration, and migrations stay paired.

use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn shophub(args: &[&str], database_url: &str, data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shophub"))
        .args(args)
        .env("SHOPHUB_DATABASE_URL", database_url)
        .env("SHOPHUB_DATA_DIR", data_dir)
        .env("SHOPHUB_LOG", "warn")
        .output()
        .expect("shophub runs")
}

both_backends! {
    async fn workspace_create_prints_a_key_the_server_accepts(backend: Backend) {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let database = fresh_database(backend, dir.path()).await;
        let url = database.url.clone();
        let data = dir.path().join("data");
        let migrate = shophub(&["migrate"], &url, &data);
        assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
        let out = shophub(&["workspace", "create", "Acme Store", "--json"], &url, &data);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = created["api_key"].as_str().unwrap();
        assert!(created["id"].as_str().unwrap().starts_with("ws_"));

        let hub = start(dir, database, Options::default()).await;
        assert_eq!(hub.get(key, "/v1/connections").await.0, 200);
    }
}

both_backends! {
    async fn export_and_rebuild_run_beside_a_live_hub(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        hub.deliver(&conn, serde_json::json!([
            {"kind": "customer", "external_id": "c-1", "updated_at": "2026-06-01T00:00:00Z", "name": "Ada",
             "emails": ["ada@example.com"]},
            {"kind": "order", "external_id": "o-1", "updated_at": "2026-06-02T00:00:00Z", "email": "ADA@example.com",
             "status": "paid", "currency": "EUR", "total": "12.50", "line_items": []},
            {"kind": "customer", "external_id": "c-2", "updated_at": "2026-06-01T00:00:00Z", "name": "Bob"},
        ])).await;
        let url = hub.database.url.clone();
        let data = hub.dir.path().join("data");

        let out_file = hub.dir.path().join("profiles.jsonl");
        let export = shophub(&["export", "profiles", "--workspace", &ws.id, "--format", "jsonl",
            "--out", out_file.to_str().unwrap()], &url, &data);
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        let lines: Vec<Value> = std::fs::read_to_string(&out_file).unwrap().lines()
            .map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let ada = lines.iter().find(|p| p["name"] == "Ada").expect("Ada exported");
        assert_eq!(ada["emails"], serde_json::json!(["ada@example.com"]));
        assert_eq!(ada["traits"]["total_spent"]["EUR"], "12.50");
        let mut sources: Vec<&str> = ada["records"].as_array().unwrap().iter()
            .map(|r| r["external_id"].as_str().unwrap()).collect();
        sources.sort();
        assert_eq!(sources, ["c-1", "o-1"]);
        assert_eq!(ada["records"][0]["connection_id"], conn.id.as_str());

        let rebuild = shophub(&["resolve", "rebuild", "--workspace", &ws.id], &url, &data);
        assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
        let report: Value = serde_json::from_slice(&rebuild.stdout).unwrap();
        assert_eq!(report["records"], 3);
        assert_eq!(report["profiles_after"], 2);
        assert_eq!(report["records_moved"], 0);
    }
}

#[test]
fn migration_histories_are_kept_in_step() {
    let names = |backend: &str| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/").to_string() + backend;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"));
    assert!(!names("sqlite").is_empty());
}
