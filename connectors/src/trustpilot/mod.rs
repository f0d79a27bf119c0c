//! Trustpilot: polling of a business unit's service reviews.
//!
//! - `client`: the listing call (public or private) and error classification.
//! - `sweep`: the newest-first sweep cursor (recent and full sweeps).
//! - `mapping`: the typed review and its translation into the model.
//!
//! # Connection
//! - settings: `business_unit_id` (required: the business unit's id, as
//!   `…/business-units/{id}` URLs show it), `default_region` (optional).
//!   The API lives at `https://api.trustpilot.com` unless the connection
//!   sets `api_base_url`.
//! - secrets: `api_key` (required: the application's API key, sent as the
//!   `apikey` header on every call); `access_token` (optional: a business
//!   user OAuth token, sent as `Authorization: Bearer`).
//!
//! # Resource and endpoint (`reviews`)
//! Without `access_token`: the public listing
//! `GET /v1/business-units/{id}/reviews?page={n}&perPage=100&orderBy=createdat.desc`,
//! which names reviewers by display name and Trustpilot consumer id only.
//! With it: the private listing `GET /v1/private/business-units/{id}/reviews`
//! (same parameters), which the docs describe as adding the customer's
//! email and order reference; the email is read from `referralEmail` or
//! `consumer.email` (the field name was not confirmed from a real answer).
//! Refreshing the OAuth token (it expires) is the hub's job; a refused one
//! is `Unauthorized`.
//!
//! A page is followed by another while its `links` hold `rel: "next-page"`.
//! The listing is ordered by creation and has no modified-since filter, so
//! sweeps follow `sweep`: recent sweeps stop at the first review created
//! before `LOOKBACK` ahead of the watermark, and a full sweep every 24
//! hours finds revisions of older reviews.
//!
//! Mapping: `external_id` = review `id`; version = `updatedAt` (null until
//! revised; then `createdAt`), so a revision keeps the id with a newer
//! version; occurrence = `createdAt`; rating = `stars` on a scale of 5;
//! text = title and text; verified = `isVerified` (Trustpilot's verified
//! experience); product none (service reviews). Keys: the email (private
//! listing) and `consumer.id` as `customer_id`. `companyReply` is ignored.
//!
//! # Cursor
//! `{"page", "full", "emit_from", "began", "seen", "watermark", "full_at"}`
//! (absent fields are omitted); see `crate::newest_first::Cursor`.
//!
//! # Errors
//! Trustpilot recommends at most 833 calls per 5 minutes and sends no pace
//! signal; 429 is `RateLimited` (with `Retry-After` when sent), 401/403
//! `Unauthorized`, 5xx `Transient`, other 4xx `Permanent`. Webhooks are not
//! used: their signature scheme is not documented in what was found.

mod client;
mod mapping;
use crate::newest_first as sweep;

#[cfg(test)]
mod tests;

/// The Trustpilot service reviews connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trustpilot;
