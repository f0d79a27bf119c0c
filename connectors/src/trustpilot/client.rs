//! The Trustpilot client: one page of a business unit's service reviews per
//! `poll`, newest first, driven by the sweep of [`super::sweep`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::mapping::{self, ReviewList};
use super::sweep::Cursor;
use super::Trustpilot;
use crate::http as wire;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};
use crate::webhook::Connector;

/// Reviews per page: the API's maximum.
pub(super) const PER_PAGE: u32 = 100;

/// The API key header every call carries.
pub(super) const API_KEY_HEADER: &str = "apikey";

/// The listing order every sweep relies on.
pub(super) const ORDER_BY: &str = "createdat.desc";

const RESOURCES: &[Resource] = &[Resource::Reviews];

impl Connector for Trustpilot {
    fn platform(&self) -> &'static str {
        "trustpilot"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["business_unit_id"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["api_key"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl PollingSource for Trustpilot {
    fn platform(&self) -> &'static str {
        "trustpilot"
    }

    fn default_base_url(&self, _settings: &Map<String, Value>) -> Option<String> {
        Some("https://api.trustpilot.com".to_owned())
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
                "trustpilot does not sync {}",
                resource.as_str()
            )));
        }
        let mut cursor = Cursor::read(cursor, "Trustpilot")?;
        cursor.begin(api.now);
        let unit = business_unit(api)?;
        let key = api.require_secret("api_key")?;
        let token = api.secret("access_token");
        let path = match token {
            Some(_) => format!("/v1/private/business-units/{unit}/reviews"),
            None => format!("/v1/business-units/{unit}/reviews"),
        };
        let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
        let query = [
            ("page", cursor.page.to_string()),
            ("perPage", PER_PAGE.to_string()),
            ("orderBy", ORDER_BY.to_owned()),
        ];
        let mut request = api
            .http
            .get(url)
            .header(API_KEY_HEADER, key)
            .header(http::header::ACCEPT, "application/json")
            .query(&query);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = wire::check_status(wire::send(request).await?)?;
        let list: ReviewList = wire::json(response).await?;
        let last = !list.has_next(PER_PAGE as usize);
        let rows = list
            .reviews
            .iter()
            .map(|r| mapping::review_row(r, api.default_region))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConnectorError::Malformed)?;
        Ok(cursor.advance(rows, last))
    }
}

/// The business unit id (an opaque hex id such as `46d6a890ffa235a75b00021d`).
fn business_unit(api: &Api<'_>) -> Result<String, ConnectorError> {
    let raw = api
        .setting("business_unit_id")
        .map(str::trim)
        .ok_or_else(|| ConnectorError::Permanent("settings.business_unit_id is not set".into()))?;
    let valid =
        !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConnectorError::Permanent(
            "settings.business_unit_id is not a business unit id".to_owned(),
        ))
    }
}
