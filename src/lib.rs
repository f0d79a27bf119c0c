//! shophub: a self-hosted hub that turns store webhooks into unified
//! customer profiles.
//!
//! # Layout
//! Data flows one way: receive -> durable inbox -> normalise (connector) ->
//! source records -> resolve identities -> profiles -> change feed.
//! - [`http`]: webhook intake, the `/v1` API, health and metrics.
//! - [`intake`]: group-committed writes of deliveries into the inbox.
//! - [`worker`]: leases deliveries and applies them exactly once in effect.
//! - [`resolve`]: deterministic identity resolution and merges.
//! - [`profile`]: the unified profile view and its traits.
//! - [`sync`]: polling: incremental sweeps, reconciliation and backfills.
//! - [`store`]: the storage interface and its SQLite and PostgreSQL backends.
//! - [`import`], [`backfill`]: loading history from files and from platform APIs.
//! - [`connections`], [`workspaces`]: tenancy and connected accounts.
//! - [`config`], [`cli`], [`app`], [`telemetry`], [`crypto`], [`clock`]: the rest.
//!
//! Platforms live in the `shophub-connectors` crate.

pub mod app;
pub mod backfill;
pub mod cli;
pub mod clock;
pub mod complaints;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod demo;
pub mod destinations;
pub mod export;
pub mod http;
pub mod identity;
pub mod import;
pub mod intake;
pub mod mentions;
pub mod profile;
pub mod resolve;
pub mod segments;
pub mod search;
pub mod store;
pub mod sync;
pub mod tags;
pub mod telemetry;
pub mod triggers;
pub mod traits;
pub mod worker;
pub mod workspaces;
