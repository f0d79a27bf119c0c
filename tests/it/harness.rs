//! Starts the real hub on port 0 against a fresh database and talks HTTP to
//! it. Every test runs once per backend: SQLite always, PostgreSQL when
//! `SHOPHUB_TEST_DATABASE_URL` is set (each test in its own schema).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shophub::app::{Hub, Server};
use shophub::config::Config;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body against each backend.
macro_rules! both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: $crate::harness::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::harness::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::harness::postgres_admin_url().is_some() {
                    run($crate::harness::Backend::Postgres).await
                } else {
                    eprintln!("SHOPHUB_TEST_DATABASE_URL is not set: PostgreSQL half skipped");
                }
            }
        }
    )*};
}
pub(crate) use both_backends;

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("SHOPHUB_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh, empty database for one test; a PostgreSQL schema is dropped
/// when the last holder lets go.
pub struct TestDatabase {
    pub url: String,
    schema: Option<String>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(schema), Some(admin)) = (self.schema.take(), postgres_admin_url()) else {
            return;
        };
        // Drop runs inside the test's runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> Arc<TestDatabase> {
    let database = match backend {
        Backend::Sqlite => TestDatabase {
            url: format!("sqlite://{}", dir.join("test.db").display()),
            schema: None,
        },
        Backend::Postgres => {
            let admin = postgres_admin_url().expect("PostgreSQL URL");
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("PostgreSQL reachable");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let separator = if admin.contains('?') { '&' } else { '?' };
            let url = format!("{admin}{separator}options=-c%20search_path%3D{schema}");
            TestDatabase {
                url,
                schema: Some(schema),
            }
        }
    };
    Arc::new(database)
}

pub struct TestHub {
    pub hub: Hub,
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub database: Arc<TestDatabase>,
}

pub struct Options {
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub public_url: Option<String>,
    pub sync_interval_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        // No background workers and no scheduled sweeps: tests drain the
        // inbox and poll themselves, so nothing has to be waited for.
        Options {
            workers: 0,
            body_limit_bytes: 2 * 1024 * 1024,
            public_url: None,
            sync_interval_seconds: 0,
        }
    }
}

pub async fn spawn(backend: Backend) -> TestHub {
    spawn_with(backend, Options::default()).await
}

pub async fn spawn_with(backend: Backend, options: Options) -> TestHub {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database = fresh_database(backend, dir.path()).await;
    start(dir, database, options).await
}

pub async fn start(
    dir: Arc<tempfile::TempDir>,
    database: Arc<TestDatabase>,
    options: Options,
) -> TestHub {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        database_url: Some(database.url.clone()),
        body_limit_bytes: options.body_limit_bytes,
        workers: options.workers,
        sync_interval_seconds: options.sync_interval_seconds,
        public_url: options.public_url,
        ..Config::default()
    };
    let hub = Hub::open(config).await.expect("hub opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = hub.start(listener).await.unwrap();
    let base = format!("http://{}", server.addr);
    TestHub {
        hub,
        server: Some(server),
        base,
        http: reqwest::Client::new(),
        dir,
        database,
    }
}

pub struct Workspace {
    pub id: String,
    pub key: String,
}

pub struct Connection {
    pub id: String,
    pub webhook_url: String,
    pub secret: String,
}

impl TestHub {
    /// Stops the server gracefully and starts a new hub on the same database.
    pub async fn restart(mut self, options: Options) -> TestHub {
        self.server.take().unwrap().stop().await.unwrap();
        let (dir, database) = (self.dir.clone(), self.database.clone());
        drop(self);
        start(dir, database, options).await
    }

    pub async fn drain(&self) -> usize {
        self.hub.worker().run_until_idle().await.unwrap()
    }

    pub async fn workspace(&self, name: &str) -> Workspace {
        let created = shophub::workspaces::create(self.hub.store.as_ref(), name)
            .await
            .unwrap();
        Workspace {
            id: created.id,
            key: created.api_key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A `custom` connection (Standard Webhooks, canonical records) whose
    /// phones are read in China.
    pub async fn custom(&self, ws: &Workspace) -> Connection {
        let secret = format!("whsec_{}", STANDARD.encode([9u8; 32]));
        let (status, conn) = self
            .post(
                &ws.key,
                "/v1/connections",
                json!({"platform": "custom", "name": "chat export",
                       "settings": {"default_region": "CN"}, "secrets": {"webhook_secret": secret}}),
            )
            .await;
        assert_eq!(status, 201, "{conn}");
        Connection {
            id: conn["id"].as_str().unwrap().into(),
            webhook_url: conn["webhook_url"].as_str().unwrap().into(),
            secret,
        }
    }

    /// Delivers canonical records to a `custom` connection, signed, and
    /// applies them.
    pub async fn deliver(&self, conn: &Connection, records: Value) {
        let body = json!({"records": records}).to_string();
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let key = STANDARD
            .decode(conn.secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let headers = [
            ("webhook-id", id.as_str()),
            ("webhook-timestamp", timestamp.as_str()),
            ("webhook-signature", signature.as_str()),
        ];
        let (status, answer) = self
            .send_raw(&conn.webhook_url, body.into_bytes(), &headers)
            .await;
        assert_eq!(status, 200, "{answer}");
        self.drain().await;
    }

    pub async fn connect(&self, ws: &Workspace, platform: &str, settings: Value) -> Connection {
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                &ws.key,
                "/v1/connections",
                json!({"platform": platform, "name": format!("{platform} store"),
                       "settings": settings, "secrets": {"webhook_secret": secret}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Connection {
            id: body["id"].as_str().unwrap().to_string(),
            webhook_url: body["webhook_url"].as_str().unwrap().to_string(),
            secret,
        }
    }

    pub async fn shopify(&self, ws: &Workspace) -> Connection {
        self.connect(
            ws,
            "shopify",
            json!({"shop_domain": "test.myshopify.com", "default_region": "CN"}),
        )
        .await
    }

    pub async fn woocommerce(&self, ws: &Workspace) -> Connection {
        self.connect(
            ws,
            "woocommerce",
            json!({"store_url": "https://shop.example.com", "default_region": "CN"}),
        )
        .await
    }

    /// Sends a delivery signed the way Shopify signs it.
    pub async fn send_shopify(
        &self,
        conn: &Connection,
        topic: &str,
        event_id: &str,
        body: &Value,
    ) -> (u16, Value) {
        let raw = body.to_string();
        let signature = sign(&conn.secret, raw.as_bytes());
        self.send_raw(
            &conn.webhook_url,
            raw.into_bytes(),
            &[
                ("X-Shopify-Topic", topic),
                ("X-Shopify-Hmac-Sha256", &signature),
                ("X-Shopify-Shop-Domain", "test.myshopify.com"),
                ("X-Shopify-Event-Id", event_id),
                ("X-Shopify-API-Version", "2025-01"),
            ],
        )
        .await
    }

    /// Sends a delivery signed the way WooCommerce signs it.
    pub async fn send_woocommerce(
        &self,
        conn: &Connection,
        topic: &str,
        body: &Value,
    ) -> (u16, Value) {
        let raw = body.to_string();
        let signature = sign(&conn.secret, raw.as_bytes());
        let (resource, event) = topic.split_once('.').unwrap();
        self.send_raw(
            &conn.webhook_url,
            raw.into_bytes(),
            &[
                ("X-WC-Webhook-Topic", topic),
                ("X-WC-Webhook-Resource", resource),
                ("X-WC-Webhook-Event", event),
                ("X-WC-Webhook-Signature", &signature),
                ("X-WC-Webhook-Source", "https://shop.example.com/"),
                (
                    "X-WC-Webhook-Delivery-ID",
                    &uuid::Uuid::new_v4().simple().to_string(),
                ),
            ],
        )
        .await
    }

    pub async fn send_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .body(body)
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The one profile found by a lookup query, asserting there is exactly one.
    pub async fn find_one(&self, ws: &Workspace, query: &str) -> Value {
        let (status, body) = self.get(&ws.key, &format!("/v1/profiles?{query}")).await;
        assert_eq!(status, 200, "{body}");
        let found = body["data"].as_array().unwrap();
        assert_eq!(found.len(), 1, "expected one profile for {query}: {body}");
        found[0].clone()
    }

    pub async fn changes(&self, ws: &Workspace) -> Vec<Value> {
        let (status, body) = self.get(&ws.key, "/v1/changes?after=0&limit=1000").await;
        assert_eq!(status, 200);
        body["data"].as_array().unwrap().clone()
    }
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

pub fn shopify_customer(
    id: i64,
    email: &str,
    phone: &str,
    updated_at: &str,
    first_name: &str,
) -> Value {
    json!({
        "id": id, "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
        "email": email, "phone": phone, "first_name": first_name, "last_name": "Lovelace",
        "state": "enabled", "verified_email": true, "tags": "",
        "created_at": "2026-01-01T10:00:00+08:00", "updated_at": updated_at,
        "default_address": null
    })
}

pub fn woocommerce_order(
    id: i64,
    email: &str,
    phone: &str,
    total: &str,
    modified_gmt: &str,
) -> Value {
    json!({
        "id": id, "number": id.to_string(), "status": "processing", "currency": "EUR",
        "date_created": "2026-02-01T12:00:00", "date_created_gmt": "2026-02-01T11:00:00",
        "date_modified": modified_gmt, "date_modified_gmt": modified_gmt,
        "total": total, "customer_id": 0, "customer_note": "",
        "billing": {"first_name": "Ada", "last_name": "Lovelace", "email": email, "phone": phone,
                    "address_1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"},
        "shipping": {"first_name": "Ada", "last_name": "Lovelace", "city": "Berlin", "country": "DE", "phone": ""},
        "line_items": [{"id": 1, "product_id": 93, "variation_id": 0, "sku": "TSHIRT-001",
                        "name": "T-Shirt", "quantity": 1, "total": total}]
    })
}
