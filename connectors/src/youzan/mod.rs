//! Youzan (有赞云): signed message pushes whose trade messages carry the
//! order (URL-encoded JSON in `msg`), and the open API for polling orders.
//!
//! - Settings: `client_id` (the app), `kdt_id` (the shop id, 店铺 ID).
//!   Optional: `api_base_url` (defaults to `https://open.youzanyun.com`),
//!   `default_region` (phones without a country code; `CN` when unset).
//! - Secrets: `client_secret` (signs pushes), `access_token` (API calls; the
//!   hub refreshes it, this connector only reports `Unauthorized`).
//! - Resources: orders. Youzan's customer search (`youzan.scrm.customer.search`)
//!   filters only by creation time, so it cannot see profile changes; buyers
//!   reach the hub through their orders' identity keys instead.
//! - Endpoints: `POST /api/youzan.trades.sold.get/4.0.0?access_token=…`
//!   (JSON body: `start_update`, `end_update` in Beijing time, `page_no`,
//!   `page_size`), and `POST /api/youzan.trade.get/4.0.0` to fetch one order
//!   named by a thin push.
//! - Pushes: `Event-Sign` = hex MD5(client_id + raw body + client_secret),
//!   `Client-Id`, `Event-Type`; the body's `msg_id` is the dedupe key; a
//!   body with `"test": true` is the console's test push. Trade messages
//!   whose `msg` holds `full_order_info` decode to an order; the others
//!   (`trade_TradeSuccess`, refunds) name the order, which the worker
//!   fetches through `youzan.trade.get`.
//! - Errors arrive in HTTP 200 bodies: gateway `gw_err_resp.err_code` 4201
//!   to 4204 (token) is `Unauthorized`; code 20001 or a "频率"/"限流" message
//!   is `RateLimited` [U: Youzan publishes no throttle code in its error
//!   table; 20001 comes from its FAQ].
//!
//! Files: `webhook` (verification, dedupe, thin references), `mapping`
//! (typed Youzan JSON into the model), `client` (API calls, errors, cursor).

mod client;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Youzan connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Youzan;
