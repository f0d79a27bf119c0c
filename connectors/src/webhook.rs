//! The contract between the hub's webhook intake and a platform.
//!
//! The hub hands a connector the raw request (headers and exact body bytes)
//! and the connection's secrets; the connector says whether it is genuine and
//! how to deduplicate it. Decoding happens later, in a worker, from the stored
//! bytes: the request path only verifies and stores.

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::model::SourceRecord;
use crate::poll::{PollingSource, Resource};

/// A platform: what a connection to it needs, and what it can do.
pub trait Connector: Send + Sync {
    /// The platform id used in URLs and the API, such as `shopify`.
    fn platform(&self) -> &'static str;

    /// Settings keys a connection of this platform must have.
    fn required_settings(&self) -> &'static [&'static str];

    /// Secret keys a connection of this platform must have.
    fn required_secrets(&self) -> &'static [&'static str];

    /// Present when the platform pushes webhooks.
    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        None
    }

    /// Present when the platform's API can be polled.
    fn polling(&self) -> Option<&dyn PollingSource> {
        None
    }
}

/// What a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// A real event to store and process.
    Delivery {
        /// Stable across the platform's retries of the same event.
        dedupe_key: String,
        /// The platform's topic, such as `orders/create` or `order.updated`.
        topic: String,
    },
    /// A real event whose verified content is not the raw body: the
    /// platform wrapped it (WeChat's safe mode encrypts it), and the hub
    /// stores this plaintext instead.
    Unwrapped {
        dedupe_key: String,
        topic: String,
        body: Vec<u8>,
    },
    /// A handshake that must be answered 200 and carries no data
    /// (WooCommerce's unsigned `webhook_id=N` ping).
    Ping,
}

/// One webhook request as received, with the connection it is for.
pub struct WebhookRequest<'a> {
    pub settings: &'a Map<String, Value>,
    /// The connection's decrypted secrets.
    pub secrets: &'a Map<String, Value>,
    /// The raw query string: some platforms sign there (WeChat) or
    /// handshake there (Meta's `hub.challenge`).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key)?.as_str().filter(|v| !v.is_empty())
    }

    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key)?.as_str().filter(|v| !v.is_empty())
    }

    /// The first value of a query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    #[error("signature does not match")]
    BadSignature,
    /// Genuine-looking but unusable request, such as a missing topic header.
    #[error("{0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not valid for topic {topic}: {reason}")]
    Invalid { topic: String, reason: String },
}

/// Per-connection facts a decoder needs.
#[derive(Debug, Clone, Default)]
pub struct DecodeContext {
    /// ISO 3166-1 alpha-2 region used to read phone numbers written without
    /// a country code (`default_region` in the connection settings).
    pub default_region: Option<String>,
}

pub trait WebhookSource: Send + Sync {
    /// Secret keys whose values sign this platform's webhooks, current
    /// first; the hub passes their values to `verify` as candidates.
    fn secret_keys(&self) -> &'static [&'static str] {
        &["webhook_secret", "previous_webhook_secret"]
    }

    /// `verify` with the connection's settings at hand. Platforms whose
    /// signed headers name an app or shop override it to check those
    /// against the connection too.
    fn verify_connection(
        &self,
        _settings: &Map<String, Value>,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError> {
        self.verify(secrets, headers, body)
    }

    /// Verifies a request with everything about it: the query string and
    /// the connection's named secrets. The default hands the values of
    /// `secret_keys` to `verify_connection`; platforms that sign in the query
    /// or need named secrets (WeChat's token and AES key) override it.
    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let secrets: Vec<&[u8]> = self
            .secret_keys()
            .iter()
            .filter_map(|key| request.secret(key))
            .map(str::as_bytes)
            .collect();
        self.verify_connection(request.settings, &secrets, request.headers, request.body)
    }

    /// A delivery that means "there is news, come and get it" (WeCom's
    /// customer-service callback): the resource whose stream the hub then
    /// syncs. `None` for deliveries that carry their data.
    fn triggers_sync(&self, _topic: &str, _body: &[u8]) -> Option<Resource> {
        None
    }

    /// Answers the platform's GET verification handshake with the body to
    /// send back (Meta's `hub.challenge`, WeChat's `echostr`). `None`: the
    /// platform has no such handshake. An error is answered 403.
    fn handshake(&self, _request: &WebhookRequest<'_>) -> Option<Result<String, VerifyError>> {
        None
    }

    /// The body a platform expects in a 200 answer, when it expects a
    /// particular one; otherwise the hub answers with its own JSON.
    fn acknowledgement(&self) -> Option<&'static str> {
        None
    }

    /// Checks the request against each candidate secret (several during a
    /// rotation) in constant time, before anything parses the body.
    fn verify(
        &self,
        secrets: &[&[u8]],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Intake, VerifyError>;

    /// Turns a stored delivery into records. Topics the hub does not use
    /// decode to an empty list.
    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError>;

    /// For thin webhooks that carry only ids (BigCommerce): the resources the
    /// worker must fetch through [`PollingSource::fetch`] to learn what changed.
    fn references(
        &self,
        _topic: &str,
        _body: &[u8],
    ) -> Result<Vec<(Resource, String)>, DecodeError> {
        Ok(Vec::new())
    }
}
