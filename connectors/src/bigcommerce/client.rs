//! Calls to the BigCommerce REST API: one page of a sweep per `poll`, and
//! single-resource fetches for thin webhooks.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mapping::{self, BcCustomer, BcOrder, BcOrderProduct};
use super::sweep::Sweep;
use super::BigCommerce;
use crate::http::{check_status, json, retry_after, send};
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};

/// Orders per page. Each order also costs one products call, so a page is
/// kept well below the API's 250 to stay inside a rate-limit window.
pub(super) const ORDERS_LIMIT: usize = 50;
pub(super) const CUSTOMERS_LIMIT: usize = 100;
/// Products per call (the v2 maximum); an order with more lines needs more pages.
pub(super) const PRODUCTS_LIMIT: usize = 250;
/// Upper bound on products pages per order, so one poll stays bounded.
const MAX_PRODUCT_PAGES: u32 = 8;

const REQUESTS_LEFT: &str = "X-Rate-Limit-Requests-Left";
const RESET_MS: &str = "X-Rate-Limit-Time-Reset-Ms";

#[async_trait::async_trait]
impl PollingSource for BigCommerce {
    fn platform(&self) -> &'static str {
        "bigcommerce"
    }

    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String> {
        let hash = settings.get("store_hash")?.as_str()?.trim();
        let valid = !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric());
        valid.then(|| format!("https://api.bigcommerce.com/stores/{hash}"))
    }

    async fn ensure_webhooks(
        &self,
        api: &Api<'_>,
        delivery_url: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let changes = super::ensure_webhooks(api, delivery_url, super::DEFAULT_SCOPES).await?;
        Ok(changes
            .into_iter()
            .filter_map(|change| match change {
                super::WebhookChange::Created { scope, .. } => Some(format!("created {scope}")),
                super::WebhookChange::Updated { scope, .. } => Some(format!("re-enabled {scope}")),
                super::WebhookChange::Existing { .. } => None,
            })
            .collect())
    }

    fn resources(&self) -> &'static [Resource] {
        &[Resource::Orders, Resource::Customers]
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        Sweep::start(since).to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        let sweep = Sweep::from_cursor(cursor)?;
        match resource {
            Resource::Orders => poll_orders(api, &sweep).await,
            Resource::Customers => poll_customers(api, &sweep).await,
            Resource::Reviews | Resource::Messages => Err(ConnectorError::Permanent(format!(
                "bigcommerce does not sync {}",
                resource.as_str()
            ))),
        }
    }

    /// The current state of one resource a thin webhook named
    /// ([`WebhookSource::references`](crate::WebhookSource::references));
    /// nothing when it no longer exists.
    async fn fetch(
        &self,
        api: &Api<'_>,
        resource: Resource,
        id: &str,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConnectorError::Permanent(format!(
                "a {} id must be numeric",
                resource.as_str()
            )));
        }
        let mut meter = Meter::default();
        match resource {
            Resource::Orders => {
                let path = format!("/v2/orders/{id}");
                let Some(response) = get(api, &mut meter, &path, &[], Missing::IsEmpty).await?
                else {
                    return Ok(Vec::new());
                };
                let order: BcOrder = json(response).await?;
                let products = order_products(api, &mut meter, id).await?;
                mapping::order_record(&order, &products, api.default_region)
                    .map(|record| vec![record])
                    .map_err(ConnectorError::Malformed)
            }
            Resource::Customers => {
                let query = [
                    ("id:in", id.to_owned()),
                    ("include", "addresses".to_owned()),
                ];
                let Some(response) =
                    get(api, &mut meter, "/v3/customers", &query, Missing::IsEmpty).await?
                else {
                    return Ok(Vec::new());
                };
                let list: CustomerList = json(response).await?;
                list.data
                    .iter()
                    .take(1)
                    .map(|c| mapping::customer_record(c, api.default_region))
                    .collect::<Result<_, _>>()
                    .map_err(ConnectorError::Malformed)
            }
            Resource::Reviews | Resource::Messages => Err(ConnectorError::Permanent(format!(
                "bigcommerce does not sync {}",
                resource.as_str()
            ))),
        }
    }
}

async fn poll_orders(api: &Api<'_>, sweep: &Sweep) -> Result<Page, ConnectorError> {
    let mut meter = Meter::default();
    let query = [
        ("min_date_modified", rfc2822(sweep.since)),
        ("sort", "date_modified:asc".to_owned()),
        ("page", sweep.page.to_string()),
        ("limit", ORDERS_LIMIT.to_string()),
    ];
    // 204 No Content is how v2 says "no (more) orders".
    let orders: Vec<BcOrder> =
        match get(api, &mut meter, "/v2/orders", &query, Missing::IsError).await? {
            Some(response) => json(response).await?,
            None => Vec::new(),
        };
    let more = orders.len() >= ORDERS_LIMIT;
    let mut records = Vec::with_capacity(orders.len());
    let mut entries = Vec::with_capacity(orders.len());
    for order in &orders {
        let version = mapping::order_version(order).map_err(ConnectorError::Malformed)?;
        let id = order
            .id
            .ok_or_else(|| ConnectorError::Malformed("order without id".to_owned()))?
            .to_string();
        if !sweep.already_emitted(&id, version) {
            let products = order_products(api, &mut meter, &id).await?;
            records.push(
                mapping::order_record(order, &products, api.default_region)
                    .map_err(ConnectorError::Malformed)?,
            );
        }
        entries.push((id, version));
    }
    let (next, caught_up) = sweep.advance(&entries, more);
    Ok(Page {
        records,
        cursor: next.to_value(),
        caught_up,
        watermark: next.watermark,
        pace: meter.pace(ORDERS_LIMIT as u64 + 1),
    })
}

#[derive(Debug, Deserialize)]
struct CustomerList {
    #[serde(default)]
    data: Vec<BcCustomer>,
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    current_page: Option<u32>,
    total_pages: Option<u32>,
}

async fn poll_customers(api: &Api<'_>, sweep: &Sweep) -> Result<Page, ConnectorError> {
    let mut meter = Meter::default();
    let query = [
        (
            "date_modified:min",
            sweep.since.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("sort", "date_modified:asc".to_owned()),
        ("page", sweep.page.to_string()),
        ("limit", CUSTOMERS_LIMIT.to_string()),
        ("include", "addresses".to_owned()),
    ];
    let list: CustomerList =
        match get(api, &mut meter, "/v3/customers", &query, Missing::IsError).await? {
            Some(response) => json(response).await?,
            None => CustomerList {
                data: Vec::new(),
                meta: None,
            },
        };
    let pagination = list.meta.as_ref().and_then(|m| m.pagination.as_ref());
    let current = pagination
        .and_then(|p| p.current_page)
        .unwrap_or(sweep.page);
    let total_pages = pagination.and_then(|p| p.total_pages).unwrap_or(0);
    let more = !list.data.is_empty() && current < total_pages;

    let mut records = Vec::with_capacity(list.data.len());
    let mut entries = Vec::with_capacity(list.data.len());
    for customer in &list.data {
        let record = mapping::customer_record(customer, api.default_region)
            .map_err(ConnectorError::Malformed)?;
        let entry = (record.external_id.clone(), record.version);
        if !sweep.already_emitted(&entry.0, entry.1) {
            records.push(record);
        }
        entries.push(entry);
    }
    let (next, caught_up) = sweep.advance(&entries, more);
    Ok(Page {
        records,
        cursor: next.to_value(),
        caught_up,
        watermark: next.watermark,
        pace: meter.pace(1),
    })
}

/// All line items of one order (usually one call).
async fn order_products(
    api: &Api<'_>,
    meter: &mut Meter,
    order_id: &str,
) -> Result<Vec<BcOrderProduct>, ConnectorError> {
    let path = format!("/v2/orders/{order_id}/products");
    let mut all = Vec::new();
    for page in 1..=MAX_PRODUCT_PAGES {
        let query = [
            ("page", page.to_string()),
            ("limit", PRODUCTS_LIMIT.to_string()),
        ];
        let batch: Vec<BcOrderProduct> =
            match get(api, meter, &path, &query, Missing::IsEmpty).await? {
                Some(response) => json(response).await?,
                None => Vec::new(),
            };
        let full = batch.len() >= PRODUCTS_LIMIT;
        all.extend(batch);
        if !full {
            break;
        }
    }
    Ok(all)
}

/// What a 404 means for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// A single resource that was deleted: nothing to read.
    IsEmpty,
    /// A collection: the store or path is wrong.
    IsError,
}

/// One authenticated GET. `None` for 204 No Content (and for 404 when
/// `missing` says so); every failure classified.
async fn get(
    api: &Api<'_>,
    meter: &mut Meter,
    path: &str,
    query: &[(&str, String)],
    missing: Missing,
) -> Result<Option<Response>, ConnectorError> {
    let token = api.require_secret("access_token")?;
    let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
    let response = send(
        api.http
            .get(url)
            .query(query)
            .header("X-Auth-Token", token)
            .header(http::header::ACCEPT, "application/json"),
    )
    .await?;
    meter.observe(response.headers());
    match response.status() {
        StatusCode::NO_CONTENT => Ok(None),
        StatusCode::NOT_FOUND if missing == Missing::IsEmpty => Ok(None),
        StatusCode::TOO_MANY_REQUESTS => Err(ConnectorError::RateLimited {
            retry_after: reset_after(response.headers())
                .or_else(|| retry_after(response.headers())),
        }),
        _ => check_status(response).map(Some),
    }
}

/// `X-Rate-Limit-Time-Reset-Ms`: how long until the window refills.
fn reset_after(headers: &http::HeaderMap) -> Option<Duration> {
    let ms = headers
        .get(RESET_MS)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_millis(ms))
}

/// The tightest rate-limit window seen during one poll.
#[derive(Debug, Default)]
struct Meter {
    requests_left: Option<u64>,
    reset: Option<Duration>,
}

impl Meter {
    fn observe(&mut self, headers: &http::HeaderMap) {
        let left = headers
            .get(REQUESTS_LEFT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(left) = left {
            if self.requests_left.map_or(true, |seen| left <= seen) {
                self.requests_left = Some(left);
                self.reset = reset_after(headers);
            }
        }
    }

    /// Wait for the window to refill when it cannot pay for the next page
    /// (`needed` calls).
    fn pace(&self, needed: u64) -> Option<Duration> {
        match self.requests_left {
            Some(left) if left < needed => self.reset,
            _ => None,
        }
    }
}

/// `min_date_modified` in RFC 2822, one of the two forms v2 documents.
fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}
