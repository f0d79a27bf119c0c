//! The Business Profile reviews client: one page of
//! `accounts.locations.reviews.list` per `poll`, newest update first, and
//! the sweep cursor.

use chrono::{DateTime, Utc};
use reqwest::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mapping::{self, ReviewList};
use super::GoogleBusiness;
use crate::http as wire;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::webhook::Connector;

/// Reviews per page: the API's maximum.
pub(super) const PAGE_SIZE: u32 = 50;

/// The listing order every sweep relies on.
pub(super) const ORDER_BY: &str = "updateTime desc";

const RESOURCES: &[Resource] = &[Resource::Reviews];

impl Connector for GoogleBusiness {
    fn platform(&self) -> &'static str {
        "google_business"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["account_id", "location_id"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["access_token"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl PollingSource for GoogleBusiness {
    fn platform(&self) -> &'static str {
        "google_business"
    }

    fn default_base_url(&self, _settings: &Map<String, Value>) -> Option<String> {
        Some("https://mybusiness.googleapis.com".to_owned())
    }

    fn resources(&self) -> &'static [Resource] {
        RESOURCES
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        Cursor {
            emit_from: since,
            watermark: since,
            ..Cursor::default()
        }
        .to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Reviews {
            return Err(ConnectorError::Permanent(format!(
                "google_business does not sync {}",
                resource.as_str()
            )));
        }
        let mut cursor = Cursor::read(cursor)?;
        let path = reviews_path(api)?;
        let mut query = vec![
            ("pageSize", PAGE_SIZE.to_string()),
            ("orderBy", ORDER_BY.to_owned()),
        ];
        if let Some(token) = &cursor.page_token {
            query.push(("pageToken", token.clone()));
        }
        let token = api.require_secret("access_token")?;
        let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
        let request = api
            .http
            .get(url)
            .bearer_auth(token)
            .header(http::header::ACCEPT, "application/json")
            .query(&query);
        let response = check(wire::send(request).await?).await?;
        let list: ReviewList = wire::json(response).await?;

        let mut records = Vec::new();
        let mut passed_bound = false;
        for review in &list.reviews {
            let row = mapping::review_row(review).map_err(ConnectorError::Malformed)?;
            let wanted = cursor.emit_from.map_or(true, |from| row.version >= from);
            passed_bound |= !wanted;
            cursor.seen = cursor.seen.max(Some(row.version));
            if let (true, Some(record)) = (wanted, row.record) {
                records.push(record);
            }
        }
        let next_token = list.next_page_token.filter(|t| !t.trim().is_empty());
        match next_token {
            // Newest update first: once a review older than the bound
            // shows, everything after it is older too.
            Some(token) if !passed_bound => {
                cursor.page_token = Some(token);
                Ok(Page {
                    records,
                    watermark: cursor.watermark,
                    cursor: cursor.to_value(),
                    caught_up: false,
                    pace: None,
                })
            }
            _ => {
                let watermark = cursor.watermark.max(cursor.seen);
                let lookback = chrono::Duration::from_std(LOOKBACK).expect("lookback fits");
                let next = Cursor {
                    emit_from: watermark.map(|w| w - lookback).or(cursor.emit_from),
                    watermark,
                    ..Cursor::default()
                };
                Ok(Page {
                    records,
                    cursor: next.to_value(),
                    caught_up: true,
                    watermark,
                    pace: None,
                })
            }
        }
    }
}

/// `/v4/accounts/{a}/locations/{l}/reviews` from the settings, which may
/// hold bare ids or resource names (`accounts/123`, `locations/456`).
fn reviews_path(api: &Api<'_>) -> Result<String, ConnectorError> {
    let id = |key: &str, prefix: &str| -> Result<String, ConnectorError> {
        let raw = api
            .setting(key)
            .ok_or_else(|| ConnectorError::Permanent(format!("settings.{key} is not set")))?
            .trim();
        let raw = raw.rsplit_once(prefix).map_or(raw, |(_, rest)| rest);
        let raw = raw.trim_matches('/');
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(raw.to_owned())
        } else {
            Err(ConnectorError::Permanent(format!(
                "settings.{key} is not a Business Profile id"
            )))
        }
    };
    let account = id("account_id", "accounts/")?;
    let location = id("location_id", "locations/")?;
    Ok(format!(
        "/v4/accounts/{account}/locations/{location}/reviews"
    ))
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Deserialize)]
struct GoogleError {
    error: Option<GoogleErrorBody>,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    status: Option<String>,
}

/// Classifies a failed answer, naming Google's status (`UNAUTHENTICATED`,
/// `PERMISSION_DENIED`, `RESOURCE_EXHAUSTED`...; the message is left out,
/// it may echo request values). `RESOURCE_EXHAUSTED` is a throttle whatever
/// the HTTP status.
async fn check(response: Response) -> Result<Response, ConnectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let code = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<GoogleError>(&b).ok())
        .and_then(|e| e.error?.status)
        .filter(|c| {
            !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
    if code.as_deref() == Some("RESOURCE_EXHAUSTED") {
        return Err(ConnectorError::RateLimited {
            retry_after: wire::retry_after(&headers),
        });
    }
    let error = wire::classify(status, &headers);
    let Some(code) = code else { return Err(error) };
    Err(match error {
        ConnectorError::Unauthorized(m) => ConnectorError::Unauthorized(format!("{m} ({code})")),
        ConnectorError::Transient(m) => ConnectorError::Transient(format!("{m} ({code})")),
        ConnectorError::Permanent(m) => ConnectorError::Permanent(format!("{m} ({code})")),
        other => other,
    })
}

// --- cursor -------------------------------------------------------------------

/// A sweep reads the listing newest update first, from the first page until
/// a review older than `emit_from` shows (or the pages end). `emit_from` is
/// fixed for the sweep; ties on it are emitted (`>=`), and paging goes on
/// past reviews that share a time, so none is skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// `nextPageToken` of the last page read in this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
    /// Reviews updated before this are not emitted and end the sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emit_from: Option<DateTime<Utc>>,
    /// Highest `updateTime` seen in this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<DateTime<Utc>>,
    /// What the last completed sweep established (or the starting `since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<DateTime<Utc>>,
}

impl Cursor {
    fn read(value: &Value) -> Result<Cursor, ConnectorError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent("cursor is not a Google Business sweep cursor".to_owned())
        })
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("cursor serialises")
    }
}
