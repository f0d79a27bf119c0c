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
