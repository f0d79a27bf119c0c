//! Shopify: HMAC-signed webhooks whose bodies are REST Admin resources
//! (Order, Customer), polling through the GraphQL Admin API, the OAuth
//! install flow, and webhook registration.
//!
//! # Connection
//! - settings: `shop_domain` (required; `<name>.myshopify.com`, the only
//!   kind of host the hub sends credentials to), `default_region`
//!   (optional, for phones without a country code), `api_base_url`
//!   (optional, replaces `https://{shop_domain}`, for tests and proxies).
//! - secrets: `webhook_secret` (required: the app's client secret, which
//!   signs webhooks; several during a rotation), `access_token` (required to
//!   poll and to register webhooks; sent as [`ACCESS_TOKEN_HEADER`]).
//!
//! # Resources and endpoints
//! All polling goes to `POST {base}/admin/api/{API_VERSION}/graphql.json`:
//! - orders: `orders(first: 10, after: $after, query: "updated_at:>='…'",
//!   sortKey: UPDATED_AT)` with customer, addresses and the first 25 line
//!   items; an order with more is completed by `order(id:) { lineItems }`.
//! - customers: `customers(first: 100, …, sortKey: UPDATED_AT)`.
//! - webhooks: `webhookSubscriptions` and `webhookSubscriptionCreate`
//!   ([`ensure_webhooks`]).
//! - OAuth: `/admin/oauth/authorize` and `/admin/oauth/access_token`
//!   ([`oauth`]).
//!
//! Global ids (`gid://shopify/Customer/207119551`) become the numeric REST
//! id, so a webhook and a poll of one customer share `external_id` and
//! `CustomerId` key. Rate limits: `extensions.cost` paces the next call
//! (`Page::pace`); a `THROTTLED` error, HTTP 429, 401 and 403 are
//! classified like every other platform's.
//!
//! - `webhook`: signature check and dedupe key (`X-Shopify-*` headers).
//! - `client`: GraphQL calls, the sweep cursor, pacing, webhook registration.
//! - `graphql`: typed GraphQL answers and their translation into the model.
//! - `mapping`: typed REST resources and their translation into the model.
//! - `oauth`: install URL, callback HMAC, token exchange and refresh.

mod client;
mod graphql;
mod mapping;
pub mod oauth;
mod webhook;

#[cfg(test)]
mod tests;

pub use client::{
    ensure_webhooks, graphql_url, topic_enum, WebhookChange, ACCESS_TOKEN_HEADER, API_VERSION,
};

/// The Shopify connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shopify;
