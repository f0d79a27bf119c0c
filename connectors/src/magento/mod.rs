//! Magento 2 / Adobe Commerce: the REST API polled by `updated_at` (the
//! platform sends no webhooks of its own; Adobe's webhook module and I/O
//! Events are separate products and not used here).
//!
//! # Connection
//! - settings: `store_url` (required, such as `https://shop.example.com`;
//!   the API is `{store_url}/rest/V1`), `default_region` (optional, for
//!   phones without a country code), `api_base_url` (optional, replaces the
//!   default address: use it for a store-code path such as
//!   `https://shop.example.com/rest/default/V1` or `/rest/all/V1`, or for
//!   `index.php/rest/V1` on hosts without URL rewrites).
//! - secrets: `access_token` (required), sent as `Authorization: Bearer`:
//!   an admin token, or an integration's access token where the store
//!   allows integration tokens as bearer tokens (Stores > Configuration >
//!   Services > OAuth > Consumer Settings, off by default since 2.4.4).
//!
//! # Resources and endpoints
//! - orders: `GET /V1/orders?searchCriteria[…]`
//! - customers: `GET /V1/customers/search?searchCriteria[…]`
//!
//! both searched with `searchCriteria[filter_groups][…]` on `updated_at`
//! (`YYYY-MM-DD HH:MM:SS`, UTC as Magento stores it), sorted by
//! `updated_at` then `entity_id` ascending, `pageSize` 100, always
//! `currentPage` 1 (a keyset sweep, see `sweep`), and read as
//! `{items, search_criteria, total_count}`; `total_count` says whether more
//! rows matched. (Magento answers a `currentPage` past the end with the
//! last page again; a keyset sweep never asks for one.)
//!
//! - `client`: API calls, pagination and the sweep over `updated_at`.
//! - `sweep`: the cursor (a keyset sweep over `updated_at`, `entity_id`).
//! - `mapping`: typed REST resources and their translation into the model.

mod client;
mod mapping;
mod sweep;

#[cfg(test)]
mod tests;

use crate::poll::PollingSource;
use crate::webhook::Connector;

/// The Magento 2 / Adobe Commerce connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Magento;

impl Connector for Magento {
    fn platform(&self) -> &'static str {
        "magento"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["store_url"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["access_token"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}
