//! Taobao/Tmall through the Taobao Open Platform (TOP) REST gateway: signed
//! form POSTs to `https://eco.taobao.com/router/rest`, answers in JSON, and
//! errors as `error_response` bodies inside HTTP 200.
//!
//! Taobao pushes nothing over HTTP: its push channel, TMC, is pulled here
//! with `taobao.tmc.messages.consume` at the end of every orders sweep.
//!
//! - `client`: request signing (`md5`, `hmac`, `hmac-sha256`), error
//!   classification, the orders cursor (time windows, TMC drain with
//!   confirm-after-commit) and the `Connector`/`PollingSource` impls.
//! - `mapping`: typed TOP `Trade` and TMC message structs and their
//!   translation into the model.
//!
//! # Connection
//! - settings: `app_key` (required); `sign_method` (`md5` | `hmac` |
//!   `hmac-sha256`, default `hmac-sha256`); `tmc_group` (TMC user group,
//!   default: the app's default group); `tmc_enabled` (default true; `false`
//!   skips TMC when the app has no TMC subscription); `trade_types` (TOP
//!   `type` list; default: the API's own default types).
//! - secrets: `app_secret`, `session` (the seller's authorisation token).
//!
//! # Resources
//! Orders only. TOP has no general customer listing for sellers: buyers are
//! known only through their trades, by the shop-scoped ids `ouid` and
//! `buyer_open_uid` (the rotating `oaid` and masked receiver fields are never
//! identity keys).
//!
//! # Endpoints
//! - `taobao.trades.sold.increment.get`: trades by `modified` windows (at
//!   most one day each, last three months only); only `tid,modified` are read.
//! - `taobao.trade.fullinfo.get`: the full trade, one call per `tid`.
//! - `taobao.tmc.messages.consume` / `taobao.tmc.messages.confirm`: the TMC
//!   queue; consumed ids are confirmed at the start of the next poll, after
//!   the hub committed the page that carried them.

mod client;
mod mapping;

#[cfg(test)]
mod tests;

/// The Taobao/Tmall connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Taobao;
