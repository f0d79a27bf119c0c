//! What the request path stores for the worker: the facts `decode` cannot
//! see (the request's `Content-Type`, the connection's own addresses) as one
//! JSON line, then the exact request body.

use serde::{Deserialize, Serialize};

use crate::payload::invalid;
use crate::webhook::DecodeError;

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Envelope {
    /// Format version of this envelope.
    pub v: u8,
    /// The request's `Content-Type` header (form bodies need its boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The merchant's addresses when the mail arrived, normalised
    /// (`*@domain` for whole domains).
    #[serde(default)]
    pub own_addresses: Vec<String>,
}

impl Envelope {
    pub fn new(content_type: Option<&str>, own_addresses: Vec<String>) -> Self {
        Self {
            v: VERSION,
            content_type: content_type.map(str::to_owned),
            own_addresses,
        }
    }

    /// The envelope line followed by `body`.
    pub fn wrap(&self, body: &[u8]) -> Vec<u8> {
        // serde_json escapes control characters, so the line has no newline.
        let mut out = serde_json::to_vec(self).expect("envelope serialises");
        out.push(b'\n');
        out.extend_from_slice(body);
        out
    }

    /// Splits a stored delivery into its envelope and the request body.
    pub fn unwrap<'a>(topic: &str, stored: &'a [u8]) -> Result<(Envelope, &'a [u8]), DecodeError> {
        let split = stored
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| invalid(topic, "stored delivery has no envelope line"))?;
        let envelope: Envelope = serde_json::from_slice(&stored[..split])
            .map_err(|_| invalid(topic, "stored delivery envelope is not valid JSON"))?;
        if envelope.v != VERSION {
            return Err(invalid(
                topic,
                "stored delivery envelope has an unknown version",
            ));
        }
        Ok((envelope, &stored[split + 1..]))
    }
}
