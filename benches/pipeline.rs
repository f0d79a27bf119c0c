//! Measures the pipeline on this machine and prints figures (nothing is
//! asserted): webhook intake throughput and latency over loopback, worker
//! processing rate, and profile lookup latency.
//!
//!   cargo bench --bench pipeline
//!
//! SQLite always; PostgreSQL too when `SHOPHUB_TEST_DATABASE_URL` is set.
//! `SHOPHUB_BENCH_DELIVERIES` (default 4000), `SHOPHUB_BENCH_CONCURRENCY`
//! (default 64) and `SHOPHUB_BENCH_IMPORT_RECORDS` (default 20000) size the run. Traffic goes only to 127.0.0.1.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../tests/it/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use harness::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn run(backend: Backend, deliveries: usize, concurrency: usize) {
    let hub = spawn(backend).await;
    let ws = hub.workspace("bench").await;
    let shop = hub.shopify(&ws).await;
    let bodies: Vec<(String, serde_json::Value)> = (0..deliveries)
        .map(|i| {
            let email = format!("buyer{}@example.com", i % (deliveries / 2).max(1));
            (
                format!("evt-{i}"),
                shopify_customer(i as i64, &email, "", "2026-01-01T00:00:00Z", "Bench"),
            )
        })
        .collect();

    let started = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(bodies.iter())
        .map(|(event, body)| {
            let (hub, shop) = (&hub, &shop);
            async move {
                let sent = Instant::now();
                let (status, _) = hub
                    .send_shopify(shop, "customers/create", event, body)
                    .await;
                assert_eq!(status, 200);
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let intake = started.elapsed();
    latencies.sort();

    let started = Instant::now();
    let processed = hub.drain().await;
    let processing = started.elapsed();

    let mut lookups = Vec::with_capacity(1000);
    for i in 0..1000 {
        let sent = Instant::now();
        let (status, body) = hub
            .get(
                &ws.key,
                &format!(
                    "/v1/profiles?email=buyer{}@example.com",
                    i % (deliveries / 2).max(1)
                ),
            )
            .await;
        lookups.push(sent.elapsed());
        assert_eq!(
            (status, body["data"].as_array().map(|d| d.len())),
            (200, Some(1))
        );
    }
    lookups.sort();

    println!(
        "{backend:?}: intake {deliveries} signed deliveries at concurrency {concurrency}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        deliveries as f64 / intake.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    println!(
        "{backend:?}: one worker applied {processed} deliveries (resolution, profile view, change feed): {:.0}/s",
        processed as f64 / processing.as_secs_f64()
    );
    println!(
        "{backend:?}: profile lookup by email over HTTP, 1000 sequential: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&lookups, 0.5),
        percentile(&lookups, 0.99)
    );
}

/// Loads canonical JSON Lines through `shophub import`'s code path.
async fn import(backend: Backend, records: usize) {
    let hub = spawn(backend).await;
    let ws = hub.workspace("bench").await;
    let conn = hub
        .connect(&ws, "custom", serde_json::json!({"default_region": "CN"}))
        .await;
    let file = hub.dir.path().join("records.jsonl");
    let lines: Vec<String> = (0..records)
        .map(|i| {
            let buyer = i % (records / 3).max(1);
            if i % 3 == 0 {
                serde_json::json!({"kind": "customer", "external_id": format!("c{buyer}"), "updated_at": "2026-01-01T00:00:00Z",
                    "name": "Bench Buyer", "emails": [format!("buyer{buyer}@example.com")], "phones": [format!("+86139{buyer:08}")]})
            } else {
                serde_json::json!({"kind": "order", "external_id": format!("o{i}"), "updated_at": "2026-02-01T00:00:00Z",
                    "customer_external_id": format!("c{buyer}"), "email": format!("buyer{buyer}@example.com"),
                    "status": "paid", "currency": "CNY", "total": "99.00", "line_items": []})
            }
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let started = Instant::now();
    let rules = shophub::complaints::ComplaintRules::default();
    let report = shophub::import::run(
        hub.hub.store.as_ref(),
        &conn.id,
        &file,
        &shophub::import::Format::JsonLines,
        &rules,
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    println!(
        "{backend:?}: import of {} canonical records (customers and their orders, resolved into profiles): {:.0}/s",
        report.loaded,
        report.loaded as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; there are no tests here.
    }
    let deliveries = env_usize("SHOPHUB_BENCH_DELIVERIES", 4000);
    let concurrency = env_usize("SHOPHUB_BENCH_CONCURRENCY", 64);
    let records = env_usize("SHOPHUB_BENCH_IMPORT_RECORDS", 20000);
    run(Backend::Sqlite, deliveries, concurrency).await;
    import(Backend::Sqlite, records).await;
    if postgres_admin_url().is_some() {
        run(Backend::Postgres, deliveries, concurrency).await;
        import(Backend::Postgres, records).await;
    } else {
        println!("Postgres: skipped (set SHOPHUB_TEST_DATABASE_URL)");
    }
}
