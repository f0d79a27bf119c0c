//! Shopify: HMAC-signed webhooks whose bodies are REST Admin resources
//! (Order, Customer).
//!
//! - `webhook`: signature check and dedupe key (`X-Shopify-*` headers).
//! - `mapping`: typed REST resources and their translation into the model.

mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Shopify connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shopify;
