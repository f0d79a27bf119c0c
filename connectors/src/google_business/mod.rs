//! Google Business Profile: polling of a location's reviews through the
//! My Business API v4 (`accounts.locations.reviews.list`).
//!
//! - `client`: the listing call, the sweep cursor, error classification.
//! - `mapping`: the typed `Review` resource and its translation into the model.
//!
//! # Connection
//! - settings: `account_id` and `location_id` (required; bare ids such as
//!   `123456789`, or the resource names `accounts/123456789` and
//!   `locations/222222222`). The API lives at
//!   `https://mybusiness.googleapis.com` unless the connection sets
//!   `api_base_url`.
//! - secrets: `access_token` (required): an OAuth 2.0 access token with the
//!   `https://www.googleapis.com/auth/business.manage` scope, sent as
//!   `Authorization: Bearer`. Google's tokens last an hour: refreshing it is
//!   the hub's job; a 401 (`UNAUTHENTICATED`) is `Unauthorized`.
//!
//! # Resource and endpoint (`reviews`)
//! `GET /v4/accounts/{a}/locations/{l}/reviews?pageSize=50&orderBy=updateTime desc`,
//! continued with `pageToken={nextPageToken}`. Only verified locations can
//! be read. A sweep reads newest update first and ends at the first review
//! updated before the sweep's bound (`LOOKBACK` before the last sweep's
//! highest `updateTime`), or when there is no `nextPageToken`; reviews
//! updated at or after the bound are emitted. An edited review comes back
//! with the same `reviewId` and a newer `updateTime`, its version.
//!
//! Mapping: `external_id` = `reviewId`, rating = `starRating` (`ONE`..`FIVE`)
//! on a scale of 5 (`STAR_RATING_UNSPECIFIED` is skipped), text =
//! `comment`, reviewer name = `reviewer.displayName` (none when
//! `isAnonymous`), occurrence = `createTime`. Google exposes no reviewer
//! email, phone or id, so these reviews carry no identity keys.
//! `reviewReply` (the merchant's answer) is ignored.
//!
//! # Cursor
//! `{"page_token", "emit_from", "seen", "watermark"}` (absent fields are
//! omitted): `page_token` and `seen` belong to the running sweep,
//! `emit_from` is its fixed bound, `watermark` what the last completed
//! sweep established. `start_cursor(_, None)` reads the whole listing.
//!
//! # Errors
//! Google's `error.status` is named in the message; `RESOURCE_EXHAUSTED`
//! (429) is `RateLimited` (with `Retry-After` when sent), 401/403
//! `Unauthorized`, 5xx `Transient`, other 4xx `Permanent`.

mod client;
mod mapping;

#[cfg(test)]
mod tests;

/// The Google Business Profile reviews connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoogleBusiness;
