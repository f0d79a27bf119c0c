//! The Zendesk Support API client: one incremental-export page per `poll`
//! (plus the comment reads its tickets need), the sweep cursor, fetching one
//! ticket for thin webhooks, and error classification.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use http::HeaderMap;
use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mapping::{self, CommentsPage, ExportPage, Ticket, TicketShow, UserList, Users};
use super::Zendesk;
use crate::http as wire;
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};

/// Tickets per export page (the API allows up to 1000; every ticket costs
/// at least one comments call, so pages stay small).
pub(super) const EXPORT_PAGE_SIZE: u32 = 100;

/// Comments per comments call: the API's maximum.
pub(super) const COMMENT_PAGE_SIZE: u32 = 100;

/// A ticket holds at most 5000 comments, which is 50 pages of 100.
const MAX_COMMENT_PAGES: usize = 50;

/// The incremental endpoints allow 10 requests a minute.
pub(super) const EXPORT_SPACING: Duration = Duration::from_secs(6);

/// The export leaves out the last minute, and older docs say a
/// `start_time` less than five minutes old is refused: starts are kept
/// at least this far back.
pub(super) const EXPORT_DELAY: chrono::Duration = chrono::Duration::minutes(5);

/// The start of history: Zendesk was founded in 2007, no account has data
/// from before.
pub(super) fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2007, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

const RESOURCES: &[Resource] = &[Resource::Messages];

/// The account's host from `subdomain` (`acme`, or `acme.zendesk.com`).
pub(super) fn subdomain(settings: &Map<String, Value>) -> Option<String> {
    let raw = settings.get("subdomain")?.as_str()?.trim();
    let raw = raw
        .strip_prefix("https://")
        .unwrap_or(raw)
        .trim_end_matches('/');
    let name = raw.strip_suffix(".zendesk.com").unwrap_or(raw);
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| name.to_ascii_lowercase())
}

#[async_trait::async_trait]
impl PollingSource for Zendesk {
    fn platform(&self) -> &'static str {
        "zendesk"
    }

    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String> {
        subdomain(settings).map(|name| format!("https://{name}.zendesk.com"))
    }

    fn resources(&self) -> &'static [Resource] {
        RESOURCES
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["email", "api_token"]
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        Cursor {
            start_time: since.unwrap_or_else(earliest).timestamp(),
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
        if resource != Resource::Messages {
            return Err(ConnectorError::Permanent(format!(
                "zendesk does not sync {}",
                resource.as_str()
            )));
        }
        let mut cursor = Cursor::read(cursor)?;
        let mut query = vec![
            ("per_page", EXPORT_PAGE_SIZE.to_string()),
            ("include", "users".to_owned()),
            ("exclude_deleted", "true".to_owned()),
        ];
        match &cursor.after {
            Some(after) => query.push(("cursor", after.clone())),
            None => {
                // A start too close to now is refused.
                let latest = (api.now - EXPORT_DELAY).timestamp();
                query.push((
                    "start_time",
                    cursor.start_time.min(latest).max(0).to_string(),
                ));
            }
        }
        let mut meter = Meter::default();
        let response = get(
            api,
            &mut meter,
            "/api/v2/incremental/tickets/cursor.json",
            &query,
        )
        .await?
        .ok_or_else(|| ConnectorError::Permanent("the platform answered 404".to_owned()))?;
        let page: ExportPage = wire::json(response).await?;
        let end_of_stream = page
            .end_of_stream
            .ok_or_else(|| ConnectorError::Malformed("export page has no end_of_stream".into()))?;

        let mut users = Users::new();
        mapping::add_users(&mut users, page.users);
        let mut records = Vec::new();
        for ticket in &page.tickets {
            let updated = ticket.updated().map_err(ConnectorError::Malformed)?;
            cursor.seen = cursor.seen.max(Some(updated));
            if ticket.is_deleted() {
                continue;
            }
            records.extend(ticket_records(api, &mut meter, ticket, &mut users).await?);
        }

        if end_of_stream {
            let watermark = cursor.watermark.max(cursor.seen);
            let start = watermark.map_or(cursor.start_time, |w| {
                (w - chrono::Duration::from_std(LOOKBACK).expect("lookback fits")).timestamp()
            });
            let next = Cursor {
                start_time: start,
                watermark,
                ..Cursor::default()
            };
            return Ok(Page {
                records,
                cursor: next.to_value(),
                caught_up: true,
                watermark,
                pace: meter.pace,
            });
        }
        let after = page
            .after_cursor
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                ConnectorError::Malformed("export page has no after_cursor".to_owned())
            })?;
        cursor.after = Some(after);
        Ok(Page {
            records,
            cursor: cursor.to_value(),
            caught_up: false,
            watermark: cursor.watermark,
            pace: Some(meter.pace.unwrap_or_default().max(EXPORT_SPACING)),
        })
    }

    async fn fetch(
        &self,
        api: &Api<'_>,
        resource: Resource,
        id: &str,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        if resource != Resource::Messages {
            return Err(ConnectorError::Permanent(format!(
                "zendesk cannot fetch {}",
                resource.as_str()
            )));
        }
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::Permanent(
                "a ticket id must be numeric".to_owned(),
            ));
        }
        let mut meter = Meter::default();
        let path = format!("/api/v2/tickets/{id}.json");
        let query = [("include", "users".to_owned())];
        // A ticket deleted since the notification has nothing left to read.
        let Some(response) = get(api, &mut meter, &path, &query).await? else {
            return Ok(Vec::new());
        };
        let show: TicketShow = wire::json(response).await?;
        if show.ticket.is_deleted() {
            return Ok(Vec::new());
        }
        let mut users = Users::new();
        mapping::add_users(&mut users, show.users);
        ticket_records(api, &mut meter, &show.ticket, &mut users).await
    }
}

/// Every public comment of `ticket` as messages: reads all comment pages
/// (sideloading their authors) and the requester if no sideload had them.
async fn ticket_records(
    api: &Api<'_>,
    meter: &mut Meter,
    ticket: &Ticket,
    users: &mut Users,
) -> Result<Vec<SourceRecord>, ConnectorError> {
    let path = format!("/api/v2/tickets/{}/comments.json", ticket.id);
    let mut comments = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_COMMENT_PAGES {
        let mut query = vec![
            ("page[size]", COMMENT_PAGE_SIZE.to_string()),
            ("include", "users".to_owned()),
        ];
        if let Some(after) = &after {
            query.push(("page[after]", after.clone()));
        }
        // Deleted between the export and this call: nothing to read.
        let Some(response) = get(api, meter, &path, &query).await? else {
            return Ok(Vec::new());
        };
        let page: CommentsPage = wire::json(response).await?;
        comments.extend(page.comments);
        mapping::add_users(users, page.users);
        match page.meta {
            Some(meta) if meta.has_more => {
                let next = meta.after_cursor.filter(|c| !c.trim().is_empty());
                if next.is_none() || next == after {
                    return Err(ConnectorError::Malformed(format!(
                        "ticket {}: comments page has more but no new after_cursor",
                        ticket.id
                    )));
                }
                after = next;
            }
            _ => {
                after = None;
                break;
            }
        }
    }
    if after.is_some() {
        return Err(ConnectorError::Malformed(format!(
            "ticket {}: comments did not end after {MAX_COMMENT_PAGES} pages",
            ticket.id
        )));
    }
    if let Some(requester) = ticket.requester_id {
        if !users.contains_key(&requester) {
            load_users(api, meter, users, &[requester]).await?;
        }
    }
    mapping::ticket_messages(ticket, &comments, users, api.default_region)
        .map_err(ConnectorError::Malformed)
}

/// Reads users no sideload carried (`show_many`, up to 100 ids a call).
async fn load_users(
    api: &Api<'_>,
    meter: &mut Meter,
    users: &mut Users,
    ids: &[u64],
) -> Result<(), ConnectorError> {
    let ids: BTreeSet<u64> = ids.iter().copied().collect();
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    for chunk in ids.chunks(100) {
        let query = [("ids", chunk.join(","))];
        if let Some(response) = get(api, meter, "/api/v2/users/show_many.json", &query).await? {
            let list: UserList = wire::json(response).await?;
            mapping::add_users(users, list.users);
        }
    }
    Ok(())
}

// --- cursor -------------------------------------------------------------------

/// Where a sweep stands. A sweep is one incremental export from the fixed
/// `start_time`, continued by `after` until `end_of_stream`; the export's
/// own cursor keeps ties on one timestamp in order, so nothing is skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// Unix seconds the sweep's export started from.
    start_time: i64,
    /// The export's `after_cursor` of the last page read in this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    /// Highest ticket `updated_at` seen in this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<DateTime<Utc>>,
    /// What the last completed sweep established (or the starting `since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<DateTime<Utc>>,
}

impl Cursor {
    fn read(value: &Value) -> Result<Cursor, ConnectorError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent("cursor is not a Zendesk sweep cursor".to_owned())
        })
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("cursor serialises")
    }
}

// --- HTTP ---------------------------------------------------------------------

/// What the responses of one `poll` said about the account's rate limit.
#[derive(Debug, Default)]
struct Meter {
    pace: Option<Duration>,
}

impl Meter {
    /// When fewer than a tenth of the minute's requests are left, wait for
    /// the window to reset (`ratelimit-reset`, else a minute).
    fn read(&mut self, headers: &HeaderMap) {
        let number = |names: &[&str]| {
            names.iter().find_map(|name| {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let (Some(limit), Some(remaining)) = (
            number(&["x-rate-limit", "ratelimit-limit"]),
            number(&["x-rate-limit-remaining", "ratelimit-remaining"]),
        ) else {
            return;
        };
        if remaining.saturating_mul(10) <= limit {
            let wait = Duration::from_secs(number(&["ratelimit-reset"]).unwrap_or(60).min(3600));
            self.pace = self.pace.max(Some(wait));
        }
    }
}

/// One authenticated GET of `{base_url}{path}`; `None` for a 404.
async fn get(
    api: &Api<'_>,
    meter: &mut Meter,
    path: &str,
    query: &[(&str, String)],
) -> Result<Option<Response>, ConnectorError> {
    let email = api.require_secret("email")?;
    let token = api.require_secret("api_token")?;
    let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
    let request = api
        .http
        .get(url)
        .basic_auth(format!("{email}/token"), Some(token))
        .header(http::header::ACCEPT, "application/json")
        .query(query);
    let response = wire::send(request).await?;
    meter.read(response.headers());
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    wire::check_status(response).map(Some)
}
