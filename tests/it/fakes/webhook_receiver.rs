//! A webhook receiver that verifies Standard Webhooks signatures the way
//! the official libraries do (any listed `v1,` signature matching any of its
//! keys, a fresh timestamp), keeps the contacts it was told about, and can
//! be told to fail or throttle.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Answers this status (500, 404, 410, ...).
    Fail(u16),
    /// 429 with `Retry-After` in seconds.
    Throttle(u64),
}

#[derive(Default)]
pub struct Inner {
    pub keys: Vec<Vec<u8>>,
    pub mode: Option<Mode>,
    /// Accepted messages in order of arrival: (webhook-id, body).
    pub accepted: Vec<(String, Value)>,
    /// Every attempt per webhook-id, accepted or not.
    pub attempts: HashMap<String, usize>,
    pub refused_signatures: usize,
    /// The receiver's copy: profile id -> contact.
    pub contacts: BTreeMap<String, Value>,
}

#[derive(Clone, Default)]
pub struct WebhookReceiver(pub Arc<Mutex<Inner>>);

pub fn whsec(byte: u8) -> String {
    format!("whsec_{}", STANDARD.encode([byte; 32]))
}

impl WebhookReceiver {
    /// A receiver trusting the given `whsec_` secrets; its URL.
    pub async fn start(secrets: &[&str]) -> (WebhookReceiver, String) {
        let receiver = WebhookReceiver::default();
        receiver.trust(secrets);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    pub fn trust(&self, secrets: &[&str]) {
        self.0.lock().unwrap().keys = secrets
            .iter()
            .map(|s| STANDARD.decode(s.trim_start_matches("whsec_")).unwrap())
            .collect();
    }

    pub fn set_mode(&self, mode: Mode) {
        self.0.lock().unwrap().mode = Some(mode);
    }

    pub fn accepted(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().accepted.clone()
    }

    pub fn contacts(&self) -> BTreeMap<String, Value> {
        self.0.lock().unwrap().contacts.clone()
    }

    pub fn attempts(&self, id: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .attempts
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_attempts(&self) -> usize {
        self.0.lock().unwrap().attempts.values().sum()
    }

    pub fn refused_signatures(&self) -> usize {
        self.0.lock().unwrap().refused_signatures
    }
}

fn verified(keys: &[Vec<u8>], headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let header = |name: &str| headers.get(name)?.to_str().ok().map(str::to_string);
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let sent: i64 = timestamp.parse().ok()?;
    // The libraries' tolerance: five minutes either way.
    if (chrono::Utc::now().timestamp() - sent).abs() > 300 {
        return None;
    }
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let matches = signatures.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            return false;
        };
        keys.iter().any(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(&signed);
            mac.verify_slice(&given).is_ok()
        })
    });
    matches.then_some(id)
}

async fn receive(
    State(receiver): State<WebhookReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = receiver.0.lock().unwrap();
    let Some(id) = verified(&inner.keys, &headers, &body) else {
        inner.refused_signatures += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    };
    *inner.attempts.entry(id.clone()).or_default() += 1;
    match inner.mode.unwrap_or(Mode::Accept) {
        Mode::Accept => {}
        Mode::Fail(status) => return StatusCode::from_u16(status).unwrap().into_response(),
        Mode::Throttle(seconds) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", seconds.to_string())],
            )
                .into_response()
        }
    }
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        message["type"].is_string() && message["timestamp"].is_string(),
        "{message}"
    );
    let data = &message["data"];
    match data["op"].as_str() {
        Some("upsert") => {
            let contact = data["contact"].clone();
            let id = contact["profile_id"].as_str().unwrap().to_string();
            inner.contacts.insert(id, contact);
        }
        Some("merge") => {
            let absorbed = data["absorbed_profile_id"].as_str().unwrap().to_string();
            inner.contacts.remove(&absorbed);
            let into = data["into"].clone();
            let id = into["profile_id"].as_str().unwrap().to_string();
            inner.contacts.insert(id, into);
        }
        Some("delete") => {
            let id = data["profile_id"].as_str().unwrap().to_string();
            inner.contacts.remove(&id);
        }
        _ => {}
    }
    inner.accepted.push((id, message));
    StatusCode::NO_CONTENT.into_response()
}
