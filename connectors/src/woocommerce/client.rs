//! The REST API v3 client: one collection page per `poll`, the sweep cursor,
//! error classification, and webhook administration.
//!
//! See the module docs of [`super`] for the sweep design; the short form:
//! every resource is read as one query per sweep whose filter stays fixed,
//! by `offset`, each request re-reading the last [`OVERLAP`] rows of the page
//! before. If none of those rows comes back, rows have left the result set
//! ahead of the offset and the cursor steps back instead of skipping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use reqwest::{Method, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::mapping::{self, Row};
use super::WooCommerce;
use crate::http as wire;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::webhook::DecodeContext;

/// Rows per request: the API's maximum.
pub(super) const PER_PAGE: u64 = 100;

/// Rows of the previous page each request reads again, so that up to this
/// many rows leaving the result set between two requests skip nothing.
pub(super) const OVERLAP: usize = 10;

/// Extra look-back for reviews: they are filtered by creation time, and a
/// review held for moderation only appears once approved.
pub(super) const APPROVAL_LAG: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// How the REST API reads a bare date under `dates_are_gmt=true`.
const GMT_QUERY_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Pages of `/webhooks` read before giving up on a listing that never ends.
const MAX_WEBHOOK_PAGES: u64 = 50;

const RESOURCES: &[Resource] = &[Resource::Orders, Resource::Customers, Resource::Reviews];

#[async_trait::async_trait]
impl PollingSource for WooCommerce {
    fn platform(&self) -> &'static str {
        "woocommerce"
    }

    fn default_base_url(&self, settings: &serde_json::Map<String, Value>) -> Option<String> {
        let store = settings
            .get("store_url")?
            .as_str()?
            .trim()
            .trim_end_matches('/');
        (!store.is_empty()).then(|| format!("{store}/wp-json/wc/v3"))
    }

    fn resources(&self) -> &'static [Resource] {
        RESOURCES
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["consumer_key", "consumer_secret"]
    }

    async fn ensure_webhooks(
        &self,
        api: &Api<'_>,
        delivery_url: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let changes = ensure_webhooks(api, delivery_url, WEBHOOK_TOPICS).await?;
        Ok(changes
            .into_iter()
            .filter_map(|change| match change.action {
                WebhookAction::Created => Some(format!("created {}", change.topic)),
                WebhookAction::Reactivated => Some(format!("reactivated {}", change.topic)),
                WebhookAction::Ok => None,
            })
            .collect())
    }

    fn start_cursor(&self, resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        let cursor = match resource {
            // Messages are refused by `poll`; the cursor shape does not matter.
            Resource::Orders | Resource::Reviews | Resource::Messages => Cursor {
                after: since,
                watermark: since,
                ..Cursor::default()
            },
            Resource::Customers => Cursor {
                emit_from: since,
                watermark: since,
                ..Cursor::default()
            },
        };
        cursor.to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if !RESOURCES.contains(&resource) {
            return Err(ConnectorError::Permanent(format!(
                "woocommerce does not sync {}",
                resource.as_str()
            )));
        }
        let cursor = Cursor::read(cursor)?;
        let response = call(
            api,
            Method::GET,
            path(resource),
            &list_query(api, resource, &cursor),
            None,
        )
        .await?;
        let listing = Listing::read(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| ConnectorError::Transient(format!("reading body: {}", e.without_url())))?;
        let ctx = DecodeContext {
            default_region: api.default_region.map(str::to_owned),
        };
        let rows = mapping::decode_collection(resource, &body, &ctx)
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        Ok(advance(resource, cursor, &rows, listing))
    }
}

fn path(resource: Resource) -> &'static str {
    match resource {
        Resource::Orders => "orders",
        Resource::Customers => "customers",
        Resource::Reviews => "products/reviews",
        Resource::Messages => unreachable!("poll refuses resources WooCommerce does not have"),
    }
}

// --- cursor -------------------------------------------------------------------

/// Where a sweep stands. Every field but the bounds is reset when a sweep
/// completes, so the JSON stays small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// The sweep's fixed lower bound: `modified_after` for orders, `after`
    /// (creation) for reviews. `None` reads the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<DateTime<Utc>>,
    /// Customers (no server-side date filter): only records whose version
    /// is at or after this are emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emit_from: Option<DateTime<Utc>>,
    /// Rows of the sweep's result set before the next request's first row.
    #[serde(default)]
    offset: u64,
    /// The last rows of the previous page, which the next page must repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tail: Vec<TailRow>,
    /// Pages accepted in this sweep.
    #[serde(default)]
    pages: u64,
    /// Highest version seen in this sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<DateTime<Utc>>,
    /// Customers: the shop's clock (`Date` header) when the sweep began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    began: Option<DateTime<Utc>>,
    /// What the last completed sweep established (or the starting `since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<DateTime<Utc>>,
}

/// A row of the previous page: its id, and the version emitted for it so an
/// unchanged repeat is not emitted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TailRow {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<DateTime<Utc>>,
}

impl Cursor {
    fn read(value: &Value) -> Result<Cursor, ConnectorError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent("cursor is not a WooCommerce sweep cursor".to_owned())
        })
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("cursor serialises")
    }

    /// The cursor that starts the sweep after one that established `watermark`.
    fn next_sweep(resource: Resource, previous: &Cursor) -> (Cursor, Option<DateTime<Utc>>) {
        let lookback = chrono::Duration::from_std(LOOKBACK).expect("lookback fits");
        match resource {
            Resource::Orders | Resource::Reviews | Resource::Messages => {
                let watermark = previous.watermark.max(previous.seen);
                let overlap = match resource {
                    Resource::Reviews => {
                        lookback + chrono::Duration::from_std(APPROVAL_LAG).expect("lag fits")
                    }
                    _ => lookback,
                };
                let after = watermark.map(|w| w - overlap).or(previous.after);
                let next = Cursor {
                    after,
                    watermark,
                    ..Cursor::default()
                };
                (next, watermark)
            }
            Resource::Customers => {
                // Without the shop's clock there is no safe filter: the next
                // sweep emits everything again.
                let next = Cursor {
                    emit_from: previous.began.map(|b| b - lookback),
                    watermark: previous.began.or(previous.watermark),
                    ..Cursor::default()
                };
                let watermark = next.watermark;
                (next, watermark)
            }
        }
    }
}

/// The collection query of one request.
fn list_query(api: &Api<'_>, resource: Resource, cursor: &Cursor) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("per_page", PER_PAGE.to_string()),
        ("order", "asc".to_owned()),
    ];
    match resource {
        Resource::Orders => {
            query.push(("orderby", "modified".to_owned()));
            query.push(("status", "any".to_owned()));
            query.push(("dates_are_gmt", "true".to_owned()));
            if let Some(after) = cursor.after {
                // A bare time is compared with `date_modified_gmt` as is; a
                // zone suffix would make WordPress convert it to site time.
                query.push(("modified_after", after.format(GMT_QUERY_FORMAT).to_string()));
            }
        }
        Resource::Customers => {
            // The only `orderby` values are id, include, name and
            // registered_date; `modified_after` does not exist here.
            query.push(("orderby", "id".to_owned()));
            let role = api.setting("customer_role").unwrap_or("all");
            query.push(("role", role.to_owned()));
        }
        Resource::Reviews => {
            query.push(("orderby", "date_gmt".to_owned()));
            query.push(("status", "approved".to_owned()));
            if let Some(after) = cursor.after {
                // Reviews filter on the site-time `date_created`: with the
                // `Z`, WordPress converts the bound to site time itself.
                query.push(("after", after.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            }
        }
        Resource::Messages => unreachable!("poll refuses resources WooCommerce does not have"),
    }
    if cursor.offset == 0 {
        query.push(("page", "1".to_owned()));
    } else {
        query.push(("offset", cursor.offset.to_string()));
    }
    query
}

/// What the response headers say about the result set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Listing {
    /// `X-WP-Total`: rows in the whole result set at query time.
    total: Option<u64>,
    /// `Date`: the shop's clock.
    shop_time: Option<DateTime<Utc>>,
}

impl Listing {
    fn read(headers: &HeaderMap) -> Listing {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        Listing {
            total: text("x-wp-total").and_then(|v| v.parse().ok()),
            shop_time: text("date")
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// Applies one page to the cursor: the pure heart of `poll`.
fn advance(resource: Resource, mut cursor: Cursor, rows: &[Row], listing: Listing) -> Page {
    let repeats_tail = rows
        .iter()
        .any(|row| cursor.tail.iter().any(|t| t.id == row.id));
    if cursor.offset > 0 && !cursor.tail.is_empty() && !repeats_tail {
        // More than OVERLAP rows left the result set ahead of the offset
        // (modified to the end, trashed, deleted): step back and read the
        // stretch again rather than skip what slid past.
        cursor.offset = cursor.offset.saturating_sub(PER_PAGE - OVERLAP as u64);
        let watermark = cursor.watermark;
        return Page {
            records: Vec::new(),
            cursor: cursor.to_value(),
            caught_up: false,
            watermark,
            pace: None,
        };
    }
    if cursor.pages == 0 && resource == Resource::Customers {
        cursor.began = listing.shop_time;
    }

    let mut records = Vec::new();
    for row in rows {
        let Some(record) = &row.record else { continue };
        cursor.seen = cursor.seen.max(Some(record.version));
        let repeated = cursor
            .tail
            .iter()
            .any(|t| t.id == row.id && t.version == Some(record.version));
        let wanted = cursor.emit_from.map_or(true, |from| record.version >= from);
        if wanted && !repeated {
            records.push(record.clone());
        }
    }
    cursor.pages += 1;

    let count = rows.len() as u64;
    let done = match listing.total {
        // The request's window reached the end of the result set.
        Some(total) => cursor.offset + PER_PAGE >= total,
        None => count < PER_PAGE,
    };
    if done {
        let (next, watermark) = Cursor::next_sweep(resource, &cursor);
        return Page {
            records,
            cursor: next.to_value(),
            caught_up: true,
            watermark,
            pace: None,
        };
    }

    let keep = rows.len().min(OVERLAP);
    cursor.tail = rows[rows.len() - keep..]
        .iter()
        .map(|row| TailRow {
            id: row.id,
            version: row.record.as_ref().map(|r| r.version),
        })
        .collect();
    cursor.offset += count.saturating_sub(OVERLAP as u64).max(1);
    let watermark = cursor.watermark;
    Page {
        records,
        cursor: cursor.to_value(),
        caught_up: false,
        watermark,
        pace: None,
    }
}

// --- HTTP ---------------------------------------------------------------------

/// One authenticated call to `{base_url}/{path}`, classified.
async fn call(
    api: &Api<'_>,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Response, ConnectorError> {
    let key = api.require_secret("consumer_key")?;
    let secret = api.require_secret("consumer_secret")?;
    let url = format!("{}/{path}", api.base_url.trim_end_matches('/'));
    let mut request = api
        .http
        .request(method, url)
        .header(http::header::ACCEPT, "application/json")
        .query(query);
    request = if query_string_auth(api) {
        // For servers that drop the Authorization header (some CGI setups);
        // HTTPS only, as WooCommerce requires.
        request.query(&[("consumer_key", key), ("consumer_secret", secret)])
    } else {
        request.basic_auth(key, Some(secret))
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    check(wire::send(request).await?).await
}

fn query_string_auth(api: &Api<'_>) -> bool {
    match api.settings.get("query_string_auth") {
        Some(Value::Bool(on)) => *on,
        Some(Value::String(on)) => on.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The WordPress REST error body: `{"code", "message", "data": {"status"}}`.
#[derive(Deserialize)]
struct WpError {
    code: Option<String>,
}

/// Classifies a failed answer, naming the WordPress error code (an
/// identifier such as `woocommerce_rest_authentication_error`; the message
/// is left out as it may echo request values). A 503 with `Retry-After` is
/// a host or firewall throttle.
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
        .and_then(|bytes| serde_json::from_slice::<WpError>(&bytes).ok())
        .and_then(|e| e.code)
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 80
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        });
    let retry_after = wire::retry_after(&headers);
    let error = if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some() {
        ConnectorError::RateLimited { retry_after }
    } else {
        wire::classify(status, &headers)
    };
    let Some(code) = code else { return Err(error) };
    Err(match error {
        ConnectorError::Unauthorized(m) => ConnectorError::Unauthorized(format!("{m} ({code})")),
        ConnectorError::Transient(m) => ConnectorError::Transient(format!("{m} ({code})")),
        ConnectorError::Permanent(m) => ConnectorError::Permanent(format!("{m} ({code})")),
        other => other,
    })
}

// --- webhook administration ---------------------------------------------------

/// The topics the hub subscribes a store to.
pub const WEBHOOK_TOPICS: &[&str] = &[
    "customer.created",
    "customer.updated",
    "order.created",
    "order.updated",
    "order.restored",
];

/// What [`ensure_webhooks`] found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookChange {
    pub topic: String,
    /// The WooCommerce webhook id.
    pub webhook_id: u64,
    pub action: WebhookAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAction {
    /// No webhook for the topic pointed at `delivery_url`: one was created.
    Created,
    /// It existed but was `disabled` (by delivery failures) or `paused`
    /// (by an admin): its status was set back to `active`.
    Reactivated,
    /// It existed and was active.
    Ok,
}

/// A webhook as `GET /webhooks` lists it (the secret is edit-context only).
#[derive(Debug, Clone, Deserialize)]
struct WcWebhook {
    id: u64,
    topic: Option<String>,
    status: Option<String>,
    delivery_url: Option<String>,
}

/// Makes sure the store delivers every topic in `topics` to `delivery_url`,
/// signed with `secrets.webhook_secret`.
///
/// Lists all webhooks (every page), then per topic: keeps an active webhook
/// to `delivery_url`, re-activates one in any other status (`disabled` after
/// repeated delivery failures, `paused` by an admin), or creates one.
/// Webhooks to other URLs are never touched. Creating or re-activating makes
/// WooCommerce send its unsigned ping to `delivery_url`, which must answer
/// 200 (the hub's intake does). Needs a read/write API key.
pub async fn ensure_webhooks(
    api: &Api<'_>,
    delivery_url: &str,
    topics: &[&str],
) -> Result<Vec<WebhookChange>, ConnectorError> {
    let secret = api.require_secret("webhook_secret")?.to_owned();
    let mut existing = list_webhooks(api).await?;
    let mut changes = Vec::new();
    for &topic in topics {
        let ours = |w: &&WcWebhook| {
            w.topic.as_deref() == Some(topic) && w.delivery_url.as_deref() == Some(delivery_url)
        };
        let active = existing
            .iter()
            .filter(ours)
            .find(|w| w.status.as_deref() == Some("active"));
        let change = if let Some(hook) = active {
            WebhookChange {
                topic: topic.to_owned(),
                webhook_id: hook.id,
                action: WebhookAction::Ok,
            }
        } else if let Some(hook) = existing.iter().find(ours) {
            let id = hook.id;
            let path = format!("webhooks/{id}");
            call(
                api,
                Method::PUT,
                &path,
                &[],
                Some(&json!({ "status": "active" })),
            )
            .await?;
            if let Some(hook) = existing.iter_mut().find(|w| w.id == id) {
                hook.status = Some("active".to_owned());
            }
            WebhookChange {
                topic: topic.to_owned(),
                webhook_id: id,
                action: WebhookAction::Reactivated,
            }
        } else {
            let body = json!({
                "name": format!("shophub {topic}"),
                "topic": topic,
                "delivery_url": delivery_url,
                "secret": secret,
                "status": "active",
            });
            let response = call(api, Method::POST, "webhooks", &[], Some(&body)).await?;
            let created: WcWebhook = wire::json(response).await?;
            existing.push(WcWebhook {
                topic: Some(topic.to_owned()),
                status: Some("active".to_owned()),
                delivery_url: Some(delivery_url.to_owned()),
                ..created
            });
            WebhookChange {
                topic: topic.to_owned(),
                webhook_id: created.id,
                action: WebhookAction::Created,
            }
        };
        changes.push(change);
    }
    Ok(changes)
}

/// Every webhook of the store, page by page until `X-WP-TotalPages`.
async fn list_webhooks(api: &Api<'_>) -> Result<Vec<WcWebhook>, ConnectorError> {
    let mut all = Vec::new();
    for page in 1..=MAX_WEBHOOK_PAGES {
        let query = [
            ("per_page", PER_PAGE.to_string()),
            ("page", page.to_string()),
            ("orderby", "id".to_owned()),
            ("order", "asc".to_owned()),
            ("status", "all".to_owned()),
        ];
        let response = call(api, Method::GET, "webhooks", &query, None).await?;
        let total_pages = response
            .headers()
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let hooks: Vec<WcWebhook> = wire::json(response).await?;
        let count = hooks.len() as u64;
        all.extend(hooks);
        let last = match total_pages {
            Some(pages) => page >= pages,
            None => count < PER_PAGE,
        };
        if last {
            return Ok(all);
        }
    }
    Err(ConnectorError::Permanent(format!(
        "webhook listing did not end after {MAX_WEBHOOK_PAGES} pages"
    )))
}
