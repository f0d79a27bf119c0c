//! Judge.me: polling of a shop's product reviews through the Judge.me
//! REST API v1.
//!
//! - `client`: the listing call and error classification.
//! - `sweep`: the newest-first sweep cursor (recent and full sweeps).
//! - `mapping`: the typed review and its translation into the model.
//!
//! # Connection
//! - settings: `shop_domain` (required: the shop's platform domain, such
//!   as `example-store.myshopify.com`), `default_region` (optional, for
//!   reviewer phones without a country code). The API lives at
//!   `https://judge.me/api/v1` unless the connection sets `api_base_url`.
//! - secrets: `api_token` (required: the shop's private API token, from
//!   Judge.me's Settings > Integrations; a public token does not list
//!   reviewer emails). Sent with `shop_domain` as query parameters, as the
//!   API expects.
//!
//! # Resource and endpoint (`reviews`)
//! `GET /reviews?shop_domain=…&api_token=…&page={n}&per_page=100`; the
//! answer is `{current_page, per_page, reviews}` and a page shorter than
//! 100 is the last. The listing has no updated-since filter and no sort
//! parameter; it lists the newest reviews first (assumed from how it is
//! used, not documented), so sweeps follow `sweep`: recent sweeps stop at
//! the first review created before `LOOKBACK` ahead of the watermark, and a
//! full sweep every 24 hours finds edits of older reviews.
//!
//! Mapping: `external_id` = review `id`; version = `updated_at`
//! (an edit keeps the id with a newer version); occurrence = `created_at`;
//! rating = `rating` on a scale of 5 (0 or null: no record); text = title
//! and body; product = `product_title`, else `product_handle`, else
//! `product_external_id`; verified = `verified` is `buyer`. Keys:
//! `reviewer.email`, `reviewer.phone`, and `reviewer.external_id` (the shop
//! platform's customer id) as `customer_id`. Hidden and unpublished reviews
//! are emitted too; what they mean is decided by the hub.
//!
//! # Cursor
//! `{"page", "full", "emit_from", "began", "seen", "watermark", "full_at"}`
//! (absent fields are omitted); see `crate::newest_first::Cursor`.
//!
//! # Errors
//! Judge.me publishes no rate limits; 429 is `RateLimited` (with
//! `Retry-After` when sent). Its "Failed to authenticate" answer is
//! `Unauthorized` whatever its status; 5xx `Transient`, other 4xx
//! `Permanent`. Webhooks (`review/created`, `review/updated`) are not used:
//! how Judge.me signs them is not documented.

mod client;
mod mapping;
use crate::newest_first as sweep;

#[cfg(test)]
mod tests;

/// The Judge.me reviews connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Judgeme;
