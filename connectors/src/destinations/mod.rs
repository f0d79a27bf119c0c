//! Destinations: the tools the hub keeps equal to its unified profiles.
//!
//! A client turns a batch of [`Change`]s into the tool's own requests and
//! classifies the answers. It decides nothing about timing: the hub's sync
//! engine (`src/destinations/`) reads the change feed, maps fields, skips
//! what the tool already has, batches, rate-limits, retries and dead-letters.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::poll::ConnectorError as DestinationError;

/// One person as a destination sees them, after its field mapping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The hub's profile id: the external id on tools that keep one.
    pub profile_id: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Mapped fields: the tool's property name and its value.
    pub properties: Map<String, Value>,
    pub consent: Consent,
    pub tags: Vec<String>,
}

/// Marketing consent as the hub last recorded it; `None` is "never asked".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub email_marketing: Option<bool>,
    pub sms: Option<bool>,
}

/// What a destination must make true on its side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create or update the contact.
    Upsert { contact: Contact },
    /// `absorbed` was merged into `into`: one contact remains on the tool's
    /// side (merged where the tool can merge, the absorbed one deleted or
    /// archived where it cannot).
    Merge {
        into: Contact,
        absorbed_profile_id: String,
        absorbed_email: Option<String>,
    },
    /// The person was erased or no longer belongs here (left a segment-scoped
    /// destination): delete or archive them on the tool's side.
    Delete {
        profile_id: String,
        email: Option<String>,
    },
    /// A feed event delivered as it is (webhook and HTTP destinations).
    Event {
        /// Stable across retries: the Standard Webhooks `webhook-id`.
        id: String,
        /// `profile.updated`, `segment.entered`, ...
        kind: String,
        /// Unix seconds when the event happened.
        timestamp: i64,
        payload: Value,
    },
}

/// The answer for a batch: per change, in order, or one error for all.
pub type PushResult = Result<Vec<Result<(), DestinationError>>, DestinationError>;

#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// The `kind` of `POST /v1/destinations` this client serves.
    fn kind(&self) -> &'static str;
    /// How many changes one call to [`Destination::push`] may carry.
    fn max_batch(&self) -> usize;
    /// The tool's documented request rate, for the engine's limiter.
    fn max_rate(&self) -> Rate;
    /// Sends one batch. An `Err` means nothing in it can be assumed done
    /// (rate limit, credentials, outage); per-change errors are for tools
    /// that answer item by item.
    async fn push(&self, changes: &[Change]) -> PushResult;
}

/// Requests allowed per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub per: Duration,
}

/// What the hub hands a client when it builds one: the destination's
/// `settings` and decrypted `secrets` exactly as given to
/// `POST /v1/destinations`, and the hub's shared HTTP client.
pub struct Setup<'a> {
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a Map<String, Value>,
    pub http: reqwest::Client,
}

/// Builds the client for a third-party tool's `kind`; `Ok(None)` when the
/// kind is not one this crate serves (the hub's own webhook, http and file
/// destinations live in the hub). `Err(Permanent)` names a missing or
/// invalid setting or secret.
pub fn build(
    kind: &str,
    setup: Setup<'_>,
) -> Result<Option<Box<dyn Destination>>, DestinationError> {
    Ok(Some(match kind {
        "hubspot" => Box::new(hubspot::HubSpot::new(setup)?),
        "mailchimp" => Box::new(mailchimp::Mailchimp::new(setup)?),
        "klaviyo" => Box::new(klaviyo::Klaviyo::new(setup)?),
        _ => return Ok(None),
    }))
}

mod hubspot;
mod klaviyo;
mod mailchimp;
mod setup;
#[cfg(test)]
mod tests;
