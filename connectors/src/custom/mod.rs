//! Custom: the merchant's own systems push the hub's canonical records,
//! signed the Standard Webhooks way (the scheme Svix and many SaaS tools
//! send).
//!
//! # Connection
//! - settings: none required; `default_region` (optional, for phones
//!   without a country code).
//! - secrets: `webhook_secret` (required, a `whsec_…` secret: the HMAC key
//!   is the base64-decoded part after the prefix; a bare base64 secret is
//!   accepted too), `previous_webhook_secret` (optional, during a rotation;
//!   the hub passes both to `verify`).
//!
//! # Requests
//! `POST` with headers `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature` (space-separated `v1,<base64 HMAC-SHA256>` entries
//! over `{id}.{timestamp}.{body}`); Svix's `svix-*` names are accepted too.
//! Timestamps more than five minutes old or ahead are refused. The dedupe
//! key is `webhook-id`, which a sender keeps across retries. The body is one
//! canonical record, an array of them, `{"records": [...]}`, or a Standard
//! Webhooks envelope `{"type", "timestamp", "data"}` around any of those
//! (see [`canonical`] for the record shapes). Every delivery has the topic
//! [`TOPIC`].
//!
//! - `webhook`: signature, timestamp tolerance and dedupe key.
//! - [`canonical`]: one canonical record (also used by `shophub import`).

pub mod canonical;
mod webhook;

#[cfg(test)]
mod tests;

use crate::webhook::{Connector, WebhookSource};

pub use webhook::{verify_at, TIMESTAMP_TOLERANCE, TOPIC};

/// The custom (push your own records) connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Custom;

impl Connector for Custom {
    fn platform(&self) -> &'static str {
        "custom"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}
