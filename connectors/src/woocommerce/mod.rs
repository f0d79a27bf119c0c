//! WooCommerce: HMAC-signed webhooks whose bodies are REST API v3 resources
//! (order, customer), plus the unsigned activation ping.
//!
//! - `webhook`: signature check, ping detection and dedupe key.
//! - `mapping`: typed REST v3 resources and their translation into the model.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The WooCommerce connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct WooCommerce;
