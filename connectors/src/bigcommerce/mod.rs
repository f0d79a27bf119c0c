//! BigCommerce: thin webhooks that name a changed order or customer, and the
//! REST API (v2 orders, v3 customers) polled by modification time.
//!
//! # Connection
//! - settings: `store_hash` (required; the `{store_hash}` of
//!   `https://api.bigcommerce.com/stores/{store_hash}`), `default_region`
//!   (optional, for phones without a country code), `api_base_url` (optional,
//!   replaces the default address, for tests and proxies).
//! - secrets: `access_token` (required; an API account token, sent as
//!   `X-Auth-Token`), `webhook_secret` (required to receive webhooks: the
//!   hub registers its hooks with a custom header [`WEBHOOK_SECRET_HEADER`]
//!   carrying this value, because BigCommerce does not sign callbacks),
//!   `previous_webhook_secret` (optional, during a rotation).
//!
//! # Resources and endpoints
//! - orders: `GET /v2/orders?min_date_modified=…&sort=date_modified:asc&page=N&limit=50`
//!   (204 or an empty page ends a sweep), each with
//!   `GET /v2/orders/{id}/products` for its line items.
//! - customers: `GET /v3/customers?date_modified:min=…&sort=date_modified:asc&page=N&limit=100&include=addresses`
//!   (`meta.pagination.total_pages` ends a sweep).
//! - webhooks (`store/order/*`, `store/customer/*`, `store/cart/converted`)
//!   carry only ids: [`WebhookSource::decode`]
//!   yields nothing and `references` names what to fetch with
//!   [`PollingSource::fetch`] (`GET /v2/orders/{id}` plus products,
//!   `GET /v3/customers?id:in={id}`).
//!
//! - hooks: `GET/POST /v3/hooks`, `PUT /v3/hooks/{id}` ([`ensure_webhooks`]
//!   creates them with the secret header, and re-keys them after a rotation).
//!
//! Rate limits: `X-Rate-Limit-Requests-Left` / `X-Rate-Limit-Time-Reset-Ms`
//! on every answer; a 429 becomes `RateLimited` with the reset time, and a
//! nearly spent window becomes `Page::pace`.
//!
//! - `webhook`: custom-header check, dedupe key, references.
//! - `hooks`: registering the hooks with that header ([`ensure_webhooks`]).
//! - `client`: API calls, pagination, rate-limit signals, `fetch`.
//! - `sweep`: the cursor (a modification-time sweep with page numbers).
//! - `mapping`: typed v2/v3 resources and their translation into the model.

mod client;
mod hooks;
mod mapping;
mod sweep;
mod webhook;

#[cfg(test)]
mod tests;

use crate::poll::PollingSource;
use crate::webhook::{Connector, WebhookSource};

pub use hooks::{ensure_webhooks, WebhookChange, DEFAULT_SCOPES};
pub use webhook::WEBHOOK_SECRET_HEADER;

/// The BigCommerce connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct BigCommerce;

impl Connector for BigCommerce {
    fn platform(&self) -> &'static str {
        "bigcommerce"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["store_hash"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["access_token"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}
