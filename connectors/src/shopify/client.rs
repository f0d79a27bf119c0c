//! Polling the GraphQL Admin API, one page per call, and registering the
//! hub's webhook subscriptions.
//!
//! A sweep is one `orders` (or `customers`) connection read in `UPDATED_AT`
//! order with a fixed filter `updated_at:>='<from>'`, page after page through
//! `pageInfo.endCursor`. Shopify's cursor encodes the last sort value and id,
//! so records sharing one `updatedAt` are never skipped, and a record updated
//! mid-sweep moves behind the cursor and is read again later in the sweep.
//! Only when the last page is read does the watermark advance, to the
//! highest `updatedAt` seen; the next sweep starts `LOOKBACK` before it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::graphql::{
    self, Connection, Cost, CustomersData, Envelope, GqlLineItem, OrderLinesData, OrdersData,
    ADDRESS_FIELDS,
};
use super::oauth::valid_shop_domain;
use super::Shopify;
use crate::http::{check_status, send};
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::webhook::DecodeContext;

/// The pinned Admin API version: the newest stable one when this was written
/// (Shopify supports each stable version for at least twelve months).
pub const API_VERSION: &str = "2026-10";

/// The header carrying the connection's `access_token` secret.
pub const ACCESS_TOKEN_HEADER: &str = "X-Shopify-Access-Token";

/// Orders per page. An order with its customer, two addresses and a first
/// page of line items costs about 85 points, so a page stays under
/// Shopify's limit of 1,000 points for one query.
pub(super) const ORDERS_PER_PAGE: u32 = 10;
/// Line items fetched with each order; the rest come from `order(id:)`.
pub(super) const LINE_ITEMS_PER_ORDER: u32 = 25;
/// Line items per follow-up page for orders with more than the first page.
pub(super) const LINE_ITEMS_PER_PAGE: u32 = 100;
/// Customers per page (about 4 points each).
pub(super) const CUSTOMERS_PER_PAGE: u32 = 100;
/// A bound on follow-up line item pages of one order (25,000 lines).
const MAX_LINE_ITEM_PAGES: usize = 250;
/// A bound on webhook subscription pages read by `ensure_webhooks`.
const MAX_WEBHOOK_PAGES: usize = 50;

/// The GraphQL endpoint under a connection's base URL.
pub fn graphql_url(base_url: &str) -> String {
    format!(
        "{}/admin/api/{API_VERSION}/graphql.json",
        base_url.trim_end_matches('/')
    )
}

fn orders_query() -> String {
    format!(
        "query ShophubOrders($first: Int!, $after: String, $query: String) {{ \
orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{ \
pageInfo {{ hasNextPage endCursor }} \
nodes {{ id name email phone createdAt updatedAt cancelledAt closedAt \
displayFinancialStatus displayFulfillmentStatus \
totalPriceSet {{ shopMoney {{ amount currencyCode }} }} \
customer {{ id firstName lastName defaultEmailAddress {{ emailAddress }} defaultPhoneNumber {{ phoneNumber }} }} \
billingAddress {{ {ADDRESS_FIELDS} }} \
shippingAddress {{ {ADDRESS_FIELDS} }} \
lineItems(first: {LINE_ITEMS_PER_ORDER}) {{ pageInfo {{ hasNextPage endCursor }} \
nodes {{ title sku quantity originalUnitPriceSet {{ shopMoney {{ amount }} }} }} }} }} }} }}"
    )
}

fn order_lines_query() -> String {
    format!(
        "query ShophubOrderLines($id: ID!, $after: String) {{ \
order(id: $id) {{ lineItems(first: {LINE_ITEMS_PER_PAGE}, after: $after) {{ \
pageInfo {{ hasNextPage endCursor }} \
nodes {{ title sku quantity originalUnitPriceSet {{ shopMoney {{ amount }} }} }} }} }} }}"
    )
}

fn customers_query() -> String {
    format!(
        "query ShophubCustomers($first: Int!, $after: String, $query: String) {{ \
customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{ \
pageInfo {{ hasNextPage endCursor }} \
nodes {{ id firstName lastName createdAt updatedAt tags \
defaultEmailAddress {{ emailAddress marketingState }} \
defaultPhoneNumber {{ phoneNumber }} \
defaultAddress {{ {ADDRESS_FIELDS} }} }} }} }}"
    )
}

const WEBHOOKS_QUERY: &str = "query ShophubWebhooks($after: String) { \
webhookSubscriptions(first: 100, after: $after) { \
pageInfo { hasNextPage endCursor } nodes { id topic uri } } }";

const WEBHOOK_CREATE: &str = "mutation ShophubWebhookCreate($topic: WebhookSubscriptionTopic!, \
$webhookSubscription: WebhookSubscriptionInput!) { \
webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { \
webhookSubscription { id topic uri } userErrors { field message } } }";

// --- transport ------------------------------------------------------------

/// One GraphQL call: the decoded `data` and the cost Shopify reported.
pub(super) async fn call<T: DeserializeOwned>(
    api: &Api<'_>,
    query: &str,
    variables: Value,
) -> Result<(T, Option<Cost>), ConnectorError> {
    let token = api.require_secret("access_token")?;
    let request = api
        .http
        .post(graphql_url(&api.base_url))
        .header(ACCESS_TOKEN_HEADER, token)
        .header(http::header::ACCEPT, "application/json")
        .json(&json!({ "query": query, "variables": variables }));
    let response = check_status(send(request).await?)?;
    let envelope: Envelope = crate::http::json(response).await?;
    if let Some(failure) = envelope.failure() {
        return Err(failure);
    }
    let cost = envelope.cost();
    Ok((envelope.data()?, cost))
}

// --- the sweep cursor -----------------------------------------------------

/// The cursor of one resource, as JSON in the hub's store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SweepCursor {
    /// The fixed query start of the current sweep; `None` reads the whole
    /// history (orders older than 60 days need the `read_all_orders` scope).
    pub(super) from: Option<DateTime<Utc>>,
    /// Shopify's `endCursor` of the last page read in this sweep.
    pub(super) after: Option<String>,
    /// The highest `updatedAt` seen so far in this sweep.
    pub(super) high: Option<DateTime<Utc>>,
    /// Everything updated up to this instant was seen by a finished sweep.
    pub(super) watermark: Option<DateTime<Utc>>,
}

impl SweepCursor {
    fn parse(value: &Value) -> Result<SweepCursor, ConnectorError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent("the cursor is not a Shopify sweep cursor".to_owned())
        })
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a cursor serialises")
    }

    /// The search filter of this sweep.
    fn filter(&self) -> Option<String> {
        self.from.map(|from| {
            format!(
                "updated_at:>='{}'",
                from.to_rfc3339_opts(SecondsFormat::Secs, true)
            )
        })
    }

    /// The cursor after a page of `records` whose connection continues at
    /// `next` (`None` when this was the last page), and whether the sweep
    /// is complete.
    fn advance(&self, records: &[SourceRecord], next: Option<String>) -> (SweepCursor, bool) {
        let high = records.iter().map(|r| r.version).chain(self.high).max();
        match next {
            Some(after) => (
                SweepCursor {
                    from: self.from,
                    after: Some(after),
                    high,
                    watermark: self.watermark,
                },
                false,
            ),
            None => {
                let watermark = high.max(self.watermark);
                let lookback =
                    chrono::Duration::from_std(LOOKBACK).expect("LOOKBACK fits a chrono duration");
                (
                    SweepCursor {
                        // With nothing ever seen, the next sweep re-runs this one.
                        from: watermark.map(|w| w - lookback).or(self.from),
                        after: None,
                        high: None,
                        watermark,
                    },
                    true,
                )
            }
        }
    }
}

// --- polling --------------------------------------------------------------

#[async_trait::async_trait]
impl PollingSource for Shopify {
    fn platform(&self) -> &'static str {
        "shopify"
    }

    /// `https://{shop_domain}`, only for a `<name>.myshopify.com` domain:
    /// the access token must never be sent to any other host.
    fn default_base_url(&self, settings: &Map<String, Value>) -> Option<String> {
        let domain = settings.get("shop_domain")?.as_str()?.trim();
        valid_shop_domain(domain).then(|| format!("https://{}", domain.to_ascii_lowercase()))
    }

    fn resources(&self) -> &'static [Resource] {
        &[Resource::Orders, Resource::Customers]
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["access_token"]
    }

    async fn ensure_webhooks(
        &self,
        api: &Api<'_>,
        delivery_url: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let changes = ensure_webhooks(api, delivery_url, WEBHOOK_TOPICS).await?;
        Ok(changes
            .into_iter()
            .filter_map(|change| match change {
                WebhookChange::Created { topic, .. } => Some(format!("created {topic}")),
                WebhookChange::Existing { .. } => None,
            })
            .collect())
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        SweepCursor {
            from: since,
            ..SweepCursor::default()
        }
        .to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        let cursor = SweepCursor::parse(cursor)?;
        let ctx = DecodeContext {
            default_region: api.default_region.map(str::to_owned),
        };
        let (records, next, cost) = match resource {
            Resource::Orders => orders_page(api, &cursor, &ctx).await?,
            Resource::Customers => customers_page(api, &cursor, &ctx).await?,
            other => {
                return Err(ConnectorError::Permanent(format!(
                    "shopify has no {} resource",
                    other.as_str()
                )))
            }
        };
        let (cursor, caught_up) = cursor.advance(&records, next);
        Ok(Page {
            records,
            watermark: cursor.watermark,
            cursor: cursor.to_value(),
            caught_up,
            pace: cost.and_then(|c| c.wait()),
        })
    }
}

fn list_variables(cursor: &SweepCursor, first: u32) -> Value {
    json!({
        "first": first,
        "after": cursor.after,
        "query": cursor.filter(),
    })
}

type PageParts = (Vec<SourceRecord>, Option<String>, Option<Cost>);

async fn orders_page(
    api: &Api<'_>,
    cursor: &SweepCursor,
    ctx: &DecodeContext,
) -> Result<PageParts, ConnectorError> {
    let (data, list_cost): (OrdersData, _) = call(
        api,
        &orders_query(),
        list_variables(cursor, ORDERS_PER_PAGE),
    )
    .await?;
    let mut latest = list_cost;
    let next = data.orders.page_info.next()?;
    let mut records = Vec::with_capacity(data.orders.nodes.len());
    for mut node in data.orders.nodes {
        let (mut lines, mut after) = match node.line_items.take() {
            Some(first) => (first.nodes, first.page_info.next()?),
            None => (Vec::new(), None),
        };
        let mut pages = 0;
        while let Some(page_after) = after {
            pages += 1;
            if pages > MAX_LINE_ITEM_PAGES {
                return Err(ConnectorError::Permanent(
                    "an order has more line items than this client reads".to_owned(),
                ));
            }
            let (more, more_cost) = order_lines(api, &node.id, &page_after).await?;
            // The latest bucket state is the one the next call meets.
            latest = more_cost.or(latest);
            after = more.page_info.next()?;
            lines.extend(more.nodes);
        }
        records.push(graphql::order(node, lines, ctx)?);
    }
    // The next call is the list query again: pace by its requested cost
    // against the latest bucket state.
    let cost = latest.map(|mut c| {
        c.requested_query_cost = list_cost
            .and_then(|l| l.requested_query_cost)
            .or(c.requested_query_cost);
        c
    });
    Ok((records, next, cost))
}

async fn order_lines(
    api: &Api<'_>,
    order_id: &str,
    after: &str,
) -> Result<(Connection<GqlLineItem>, Option<Cost>), ConnectorError> {
    let (data, cost): (OrderLinesData, _) = call(
        api,
        &order_lines_query(),
        json!({ "id": order_id, "after": after }),
    )
    .await?;
    let order = data.order.ok_or_else(|| {
        // Deleted between the list and this call: the next sweep settles it.
        ConnectorError::Transient("an order vanished while its line items were read".to_owned())
    })?;
    Ok((order.line_items, cost))
}

async fn customers_page(
    api: &Api<'_>,
    cursor: &SweepCursor,
    ctx: &DecodeContext,
) -> Result<PageParts, ConnectorError> {
    let (data, cost): (CustomersData, _) = call(
        api,
        &customers_query(),
        list_variables(cursor, CUSTOMERS_PER_PAGE),
    )
    .await?;
    let next = data.customers.page_info.next()?;
    let records = data
        .customers
        .nodes
        .into_iter()
        .map(|node| graphql::customer(node, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((records, next, cost))
}

// --- webhook registration -------------------------------------------------

/// The topics the hub subscribes a shop to.
pub const WEBHOOK_TOPICS: &[&str] = &[
    "customers/create",
    "customers/update",
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
];

/// What `ensure_webhooks` found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    /// A subscription of this topic to the callback URL was created.
    Created { topic: String, id: String },
    /// One already existed and was left alone.
    Existing { topic: String, id: String },
}

/// The GraphQL `WebhookSubscriptionTopic` of a REST-style topic:
/// `orders/create` -> `ORDERS_CREATE`. `None` unless the topic is made of
/// lower-case words joined by `/` and `_`.
pub fn topic_enum(topic: &str) -> Option<String> {
    let valid = !topic.is_empty()
        && topic.split('/').count() >= 2
        && topic.split('/').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        });
    valid.then(|| topic.replace('/', "_").to_ascii_uppercase())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhooksData {
    webhook_subscriptions: Connection<Subscription>,
}

#[derive(Debug, Deserialize)]
struct Subscription {
    id: String,
    topic: String,
    uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateData {
    webhook_subscription_create: CreatePayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePayload {
    webhook_subscription: Option<Subscription>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Debug, Deserialize)]
struct UserError {
    message: Option<String>,
}

/// Makes sure the shop sends each of `topics` (`orders/create`, ...) to
/// `callback_url` as JSON: lists the app's subscriptions, creates the
/// missing ones with `webhookSubscriptionCreate`, and reports each topic in
/// the order given. Subscriptions to other addresses are left alone.
///
/// The hub registers this way only for shop-specific subscriptions; apps
/// configured with `shopify.app.toml` get app-wide subscriptions instead.
pub async fn ensure_webhooks(
    api: &Api<'_>,
    callback_url: &str,
    topics: &[&str],
) -> Result<Vec<WebhookChange>, ConnectorError> {
    let mut wanted: Vec<(&str, String)> = Vec::new();
    for topic in topics {
        let name = topic_enum(topic).ok_or_else(|| {
            ConnectorError::Permanent(format!("{topic:?} is not a Shopify webhook topic"))
        })?;
        if !wanted.iter().any(|(_, n)| *n == name) {
            wanted.push((topic, name));
        }
    }

    let mut existing: Vec<Subscription> = Vec::new();
    let mut after: Option<String> = None;
    for page in 0.. {
        if page == MAX_WEBHOOK_PAGES {
            return Err(ConnectorError::Permanent(
                "the shop lists more webhook subscriptions than this client reads".to_owned(),
            ));
        }
        let (data, _): (WebhooksData, _) =
            call(api, WEBHOOKS_QUERY, json!({ "after": after })).await?;
        let next = data.webhook_subscriptions.page_info.next()?;
        existing.extend(
            data.webhook_subscriptions
                .nodes
                .into_iter()
                .filter(|s| s.uri.as_deref() == Some(callback_url)),
        );
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }

    let mut changes = Vec::with_capacity(wanted.len());
    for (topic, name) in wanted {
        if let Some(found) = existing.iter().find(|s| s.topic == name) {
            changes.push(WebhookChange::Existing {
                topic: topic.to_owned(),
                id: found.id.clone(),
            });
            continue;
        }
        let variables = json!({
            "topic": name,
            "webhookSubscription": { "uri": callback_url, "format": "JSON" },
        });
        let (data, _): (CreateData, _) = call(api, WEBHOOK_CREATE, variables).await?;
        let payload = data.webhook_subscription_create;
        if let Some(error) = payload.user_errors.first() {
            return Err(ConnectorError::Permanent(format!(
                "Shopify refused the {topic} subscription: {}",
                error.message.as_deref().unwrap_or("no reason given")
            )));
        }
        let created = payload.webhook_subscription.ok_or_else(|| {
            ConnectorError::Malformed(
                "webhookSubscriptionCreate returned no subscription".to_owned(),
            )
        })?;
        changes.push(WebhookChange::Created {
            topic: topic.to_owned(),
            id: created.id,
        });
    }
    Ok(changes)
}
