//! Test support: fake platform servers on 127.0.0.1 and API contexts that
//! point at them.

use serde_json::{Map, Value};

use crate::poll::Api;

/// Serves `router` on 127.0.0.1 with a free port; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("fake server runs");
    });
    format!("http://{addr}")
}

/// Owns what an [`Api`] borrows.
pub struct ApiFixture {
    pub http: reqwest::Client,
    pub base_url: String,
    pub settings: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub default_region: Option<String>,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl ApiFixture {
    pub fn new(base_url: &str, settings: Value, secrets: Value) -> ApiFixture {
        let object = |v: Value| v.as_object().cloned().unwrap_or_default();
        ApiFixture {
            http: reqwest::Client::new(),
            base_url: base_url.to_string(),
            settings: object(settings),
            secrets: object(secrets),
            default_region: None,
            now: chrono::Utc::now(),
        }
    }

    pub fn api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            base_url: self.base_url.clone(),
            settings: &self.settings,
            secrets: &self.secrets,
            default_region: self.default_region.as_deref(),
            now: self.now,
        }
    }
}

/// Polls `source` from `cursor` until a page says the sweep is caught up,
/// returning every page in order; panics if it takes more than 50 pages.
pub async fn sweep(
    source: &dyn crate::poll::PollingSource,
    fixture: &ApiFixture,
    resource: crate::poll::Resource,
    mut cursor: Value,
) -> Vec<crate::poll::Page> {
    let mut pages = Vec::new();
    for _ in 0..50 {
        let page = source
            .poll(&fixture.api(), resource, &cursor)
            .await
            .unwrap();
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("sweep did not end");
}
