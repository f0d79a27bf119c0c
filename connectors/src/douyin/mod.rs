//! Douyin shops (抖店 / Doudian, op.jinritemai.com): signed message pushes
//! that name orders, and the signed open API that reads them.
//!
//! This is the shop platform, not the Douyin Open Platform's local-life
//! pushes (`X-Douyin-Signature`), which concern vouchers rather than shops.
//!
//! - Settings: `app_key`, `shop_id`. Optional: `api_base_url` (defaults to
//!   `https://openapi-fxg.jinritemai.com`), `default_region`.
//! - Secrets: `app_secret` (signs API calls and pushes), `access_token`
//!   (from `/token/create`; the hub refreshes it, this connector only
//!   reports `Unauthorized`).
//! - Resources: orders.
//! - Endpoints: `POST /order/searchList` (`update_time_start`/`_end` in
//!   seconds, `page` from 0, `size` up to 100, ordered by `update_time`) and
//!   `POST /order/orderDetail` (`shop_order_id`), each with the query
//!   `app_key, method, access_token, timestamp, v=2, sign,
//!   sign_method=hmac-sha256` and `param_json` (sorted keys, compact) as the
//!   body; `sign` = hex HMAC-SHA256 keyed by `app_secret` of
//!   `app_secret + "app_key"…"method"…"param_json"…"timestamp"…"v2" + app_secret`.
//! - Pushes: a JSON array of `{tag, msg_id, data}` where `data` is a JSON
//!   string; `event-sign` = hex MD5(app_key + raw body + app_secret) (or
//!   HMAC-SHA256 when `sign-method: hmac-sha256`), `app-id` = the app key.
//!   Order messages (tags 1xx, refunds 2xx) carry only ids and statuses, so
//!   they decode to no records and name the orders to fetch instead.
//!   [U: the HMAC variant's input is assumed to mirror the MD5 one.]
//! - Errors (platform error table, 平台基础错误码): `code` 10000 is success;
//!   token and signature `sub_code`s and 30001 are `Unauthorized`, 60000
//!   is `RateLimited`, 20000/20001/90000 are `Transient`, the rest
//!   `Permanent`.
//!
//! Files: `webhook` (verification, dedupe, references), `mapping` (typed
//! Doudian JSON into the model), `client` (signing, calls, errors, cursor).

mod client;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Douyin shop (抖店) connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Douyin;
