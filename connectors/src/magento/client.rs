//! Calls to the Magento 2 REST API: one search page of a sweep per `poll`.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mapping::{self, MgCustomer, MgOrder, TIME_FORMAT};
use super::sweep::{Query, Sweep};
use super::Magento;
use crate::http::{check_status, json, send};
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};

/// `searchCriteria[pageSize]` for both resources.
pub(super) const PAGE_SIZE: usize = 100;

#[async_trait::async_trait]
impl PollingSource for Magento {
    fn platform(&self) -> &'static str {
        "magento"
    }

    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String> {
        let url = settings
            .get("store_url")?
            .as_str()?
            .trim()
            .trim_end_matches('/');
        let valid = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(['?', '#', ' ']);
        valid.then(|| format!("{url}/rest/V1"))
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
            Resource::Orders => {
                let (items, more) = search::<MgOrder>(api, "/orders", &sweep).await?;
                page(&sweep, &items, more, |o| {
                    mapping::order_record(o, api.default_region)
                })
            }
            Resource::Customers => {
                let (items, more) = search::<MgCustomer>(api, "/customers/search", &sweep).await?;
                page(&sweep, &items, more, |c| {
                    mapping::customer_record(c, api.default_region)
                })
            }
            Resource::Reviews | Resource::Messages => Err(ConnectorError::Permanent(format!(
                "magento does not sync {}",
                resource.as_str()
            ))),
        }
    }
}

/// `{items, search_criteria, total_count}`.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct SearchResult<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    total_count: Option<u64>,
}

/// The first (and only) page of the sweep's current query: its items and
/// whether more rows matched than it holds.
async fn search<T: DeserializeOwned>(
    api: &Api<'_>,
    path: &str,
    sweep: &Sweep,
) -> Result<(Vec<T>, bool), ConnectorError> {
    let token = api.require_secret("access_token")?;
    let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
    let response = send(
        api.http
            .get(url)
            .query(&search_criteria(sweep.query()))
            .bearer_auth(token)
            .header(http::header::ACCEPT, "application/json"),
    )
    .await?;
    let result: SearchResult<T> = json(check_status(response)?).await?;
    let total = result
        .total_count
        .ok_or_else(|| ConnectorError::Malformed("search result without total_count".to_owned()))?;
    let more = total > result.items.len() as u64;
    Ok((result.items, more))
}

/// `searchCriteria[…]` query parameters for one query, always page 1.
pub(super) fn search_criteria(query: Query) -> Vec<(String, String)> {
    let filter = |group: usize, field: &str, value: String, condition: &str| {
        let prefix = format!("searchCriteria[filter_groups][{group}][filters][0]");
        [
            (format!("{prefix}[field]"), field.to_owned()),
            (format!("{prefix}[value]"), value),
            (format!("{prefix}[condition_type]"), condition.to_owned()),
        ]
    };
    let mut params: Vec<(String, String)> = match query {
        Query::Range { since } => filter(
            0,
            "updated_at",
            since.format(TIME_FORMAT).to_string(),
            "gteq",
        )
        .to_vec(),
        Query::Tie { at, after_id } => {
            let mut both =
                filter(0, "updated_at", at.format(TIME_FORMAT).to_string(), "eq").to_vec();
            both.extend(filter(1, "entity_id", after_id.to_string(), "gt"));
            both
        }
    };
    for (i, field) in ["updated_at", "entity_id"].into_iter().enumerate() {
        params.push((
            format!("searchCriteria[sortOrders][{i}][field]"),
            field.to_owned(),
        ));
        params.push((
            format!("searchCriteria[sortOrders][{i}][direction]"),
            "ASC".to_owned(),
        ));
    }
    params.push(("searchCriteria[pageSize]".to_owned(), PAGE_SIZE.to_string()));
    params.push(("searchCriteria[currentPage]".to_owned(), "1".to_owned()));
    params
}

/// Maps one page and moves the cursor on.
fn page<T>(
    sweep: &Sweep,
    items: &[T],
    more: bool,
    map: impl Fn(&T) -> Result<SourceRecord, String>,
) -> Result<Page, ConnectorError> {
    let mut records = Vec::with_capacity(items.len());
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let record = map(item).map_err(ConnectorError::Malformed)?;
        let id: u64 = record
            .external_id
            .parse()
            .expect("mapping writes numeric ids");
        entries.push((id, record.version));
        if !sweep.already_emitted(id, record.version) {
            records.push(record);
        }
    }
    let (next, caught_up) = sweep.advance(&entries, more);
    Ok(Page {
        records,
        cursor: next.to_value(),
        caught_up,
        watermark: next.watermark,
        pace: None,
    })
}
