//! The Judge.me API v1 client: one page of `GET /reviews` per `poll`,
//! driven by the newest-first sweep of [`super::sweep`].

use chrono::{DateTime, Utc};
use reqwest::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mapping::{self, ReviewList};
use super::sweep::Cursor;
use super::Judgeme;
use crate::http as wire;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};
use crate::webhook::Connector;

/// Reviews per page.
pub(super) const PER_PAGE: u32 = 100;

const RESOURCES: &[Resource] = &[Resource::Reviews];

impl Connector for Judgeme {
    fn platform(&self) -> &'static str {
        "judgeme"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["shop_domain"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["api_token"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl PollingSource for Judgeme {
    fn platform(&self) -> &'static str {
        "judgeme"
    }

    fn default_base_url(&self, _settings: &Map<String, Value>) -> Option<String> {
        Some("https://judge.me/api/v1".to_owned())
    }

    fn resources(&self) -> &'static [Resource] {
        RESOURCES
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        Cursor::start(since).to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Reviews {
            return Err(ConnectorError::Permanent(format!(
                "judgeme does not sync {}",
                resource.as_str()
            )));
        }
        let mut cursor = Cursor::read(cursor, "Judge.me")?;
        cursor.begin(api.now);
        let shop = api
            .setting("shop_domain")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConnectorError::Permanent("settings.shop_domain is not set".into()))?;
        let token = api.require_secret("api_token")?;
        let url = format!("{}/reviews", api.base_url.trim_end_matches('/'));
        let query = [
            ("shop_domain", shop.to_owned()),
            ("api_token", token.to_owned()),
            ("page", cursor.page.to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
        let request = api
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .query(&query);
        let response = check(wire::send(request).await?).await?;
        let list: ReviewList = wire::json(response).await?;
        let last = list.reviews.len() < PER_PAGE as usize;
        let rows = list
            .reviews
            .iter()
            .map(|r| mapping::review_row(r, api.default_region))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConnectorError::Malformed)?;
        Ok(cursor.advance(rows, last))
    }
}

/// Judge.me's error body: `{"error": "<message>"}`.
#[derive(Deserialize)]
struct JmError {
    error: Option<String>,
}

/// Classifies a failed answer. Judge.me answers a wrong token or shop
/// domain with one message ("Failed to authenticate...") whatever the
/// status, so that message makes the answer `Unauthorized`. The message
/// itself is not repeated.
async fn check(response: Response) -> Result<Response, ConnectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let refused = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<JmError>(&b).ok())
        .and_then(|e| e.error)
        .is_some_and(|m| m.to_ascii_lowercase().contains("authenticate"));
    if refused {
        return Err(ConnectorError::Unauthorized(format!(
            "the platform answered {} (authentication failed)",
            status.as_u16()
        )));
    }
    Err(wire::classify(status, &headers))
}
