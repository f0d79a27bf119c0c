//! WooCommerce: HMAC-signed webhooks whose bodies are REST API v3 resources
//! (order, customer), the unsigned activation ping, and polling of the REST
//! API v3 (orders, customers, product reviews).
//!
//! - `webhook`: signature check, ping detection and dedupe key.
//! - `mapping`: typed REST v3 resources and their translation into the model.
//! - `client`: collection paging, the sweep cursor, error classification,
//!   and [`ensure_webhooks`].
//!
//! # Connection
//! - settings: `store_url` (required; the API lives at
//!   `{store_url}/wp-json/wc/v3` unless the connection sets `api_base_url`),
//!   `customer_role` (optional, default `all`: which WordPress role
//!   `/customers` lists), `query_string_auth` (optional, default false: send
//!   the keys as `consumer_key`/`consumer_secret` query parameters for
//!   servers that drop the `Authorization` header).
//! - secrets: `webhook_secret` (required, signs deliveries); for polling and
//!   webhook administration also `consumer_key` and `consumer_secret` (a REST
//!   API key; read access polls, read/write is needed by [`ensure_webhooks`]).
//!   Missing keys make every call `Unauthorized` naming the key.
//! - Authentication is HTTP Basic `consumer_key:consumer_secret`, which
//!   WooCommerce accepts over HTTPS only.
//!
//! # Endpoints and sweeps
//! Each sweep is one query whose filter stays fixed until it ends, read 100
//! rows at a time by `offset` (`page=1` for the first request); the sweep
//! ends when the request's window reaches `X-WP-Total` (`X-WP-TotalPages`
//! and the `Link` header count page numbers, which the overlap below cannot
//! use; without `X-WP-Total` a short page ends it). A row that cannot be
//! read fails the page as `Malformed`, naming its id and field, so the sweep
//! stops there instead of skipping it.
//! - orders: `GET /orders?modified_after=…&dates_are_gmt=true&orderby=modified&order=asc&status=any`.
//!   `modified_after` is exclusive and sent without a zone (a zone would make
//!   WordPress convert it to site time before comparing it with the GMT
//!   column). Version: `date_modified_gmt`.
//! - customers: `GET /customers?orderby=id&order=asc&role=all`. The endpoint
//!   has no `modified_after` (WooCommerce issue #31482) and rejects
//!   `orderby=modified`, so every sweep walks all customers by id and emits
//!   only those whose `date_modified_gmt` is at or after the previous sweep's
//!   start (the shop's `Date` header) minus `LOOKBACK`; a shop that sends no
//!   `Date` header gets everything emitted each sweep.
//! - reviews: `GET /products/reviews?after=…Z&orderby=date_gmt&order=asc&status=approved`.
//!   Reviews have no modification time: version and occurrence are
//!   `date_created_gmt`, so an edited review keeps its version. `after`
//!   filters by creation, so a sweep starts `LOOKBACK` plus
//!   `APPROVAL_LAG` (3 days) before the watermark to catch reviews
//!   approved late; reviews approved later than that are only found by a
//!   resync. Reviews without a star rating (0) are skipped.
//!
//! # Page shifts
//! Page-number paging shifts when the result set changes under it: an order
//! modified during a sweep moves to the end (and is read there), and
//! everything after its old place slides one row back; trashing or deleting
//! does the same. So the sweep's filter is never moved forward mid-sweep,
//! each request re-reads the last 10 rows of the page before (`offset` =
//! rows read − 10), and if none of them comes back more rows left than the
//! overlap covers: the cursor steps back 90 rows and reads the stretch
//! again. Repeated unchanged rows are not emitted twice. A row changed after
//! the sweep's last request has a version newer than any this sweep saw, and
//! the next sweep starts `LOOKBACK` before the highest version seen (orders,
//! reviews) or before this sweep's start (customers), so it reads it.
//!
//! # Cursor
//! `{"after", "emit_from", "offset", "tail": [{"id", "version"}], "pages",
//! "seen", "began", "watermark"}` (absent fields are omitted). `after` and
//! `emit_from` are fixed for a sweep; `offset`, `tail`, `pages`, `seen` and
//! `began` belong to the running sweep; `watermark` is what the last
//! completed sweep established. `start_cursor(_, None)` applies no date
//! filter and reads the whole history.

mod client;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

pub use client::{ensure_webhooks, WebhookAction, WebhookChange};

/// The WooCommerce connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct WooCommerce;
