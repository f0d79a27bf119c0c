//! Klaviyo profiles through its JSON:API endpoints: a private key sent as
//! `Authorization: Klaviyo-API-Key <secrets.api_key>`, a dated `revision`
//! header (`settings.revision`, default [`REVISION`]), bodies as
//! `application/vnd.api+json`.
//!
//! - Upsert: one bulk import job per push,
//!   `POST /api/profile-bulk-import-jobs/` (the hub's profile id is the
//!   profile's `external_id`; `settings.list_id` adds them to a list).
//! - Consent: email (and SMS) marketing granted goes to
//!   `POST /api/profile-subscription-bulk-create-jobs/`, withdrawn to
//!   `POST /api/profile-subscription-bulk-delete-jobs/`; never asked sends
//!   nothing, so Klaviyo's own state stands.
//! - Merge: the survivor is imported; an absorbed profile under a different
//!   email is deleted (Klaviyo's merge needs its own profile ids).
//! - Delete: `POST /api/data-privacy-deletion-jobs/`, one profile per
//!   request, by email.
//!
//! Jobs run asynchronously on Klaviyo's side: an accepted job (202) is the
//! success a push can see.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::setup;
use super::{Change, Contact, Destination, DestinationError, PushResult, Rate, Setup};
use crate::http as wire;

pub const REVISION: &str = "2024-10-15";
const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";
const JSON_API: &str = "application/vnd.api+json";
/// Subscription jobs take at most 1,000 profiles (imports 10,000).
const MAX_BATCH: usize = 1000;

pub struct Klaviyo {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    revision: String,
    list_id: Option<String>,
}

impl Klaviyo {
    pub(super) fn new(setup: Setup<'_>) -> Result<Self, DestinationError> {
        let api_key = setup::secret(&setup, "Klaviyo", "api_key")?;
        let base_url = setup::base_url(setup.settings, || Ok(DEFAULT_BASE_URL.to_owned()))?;
        let revision =
            setup::text(setup.settings, "revision").unwrap_or_else(|| REVISION.to_owned());
        let dated = revision.len() >= 10
            && chrono::NaiveDate::parse_from_str(&revision[..10], "%Y-%m-%d").is_ok();
        if !dated {
            return Err(DestinationError::Permanent(
                "settings.revision must be a dated API revision like 2024-10-15".into(),
            ));
        }
        Ok(Klaviyo {
            http: setup.http,
            base_url,
            api_key,
            revision,
            list_id: setup::text(setup.settings, "list_id"),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(), DestinationError> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialise");
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("authorization", format!("Klaviyo-API-Key {}", self.api_key))
            .header("revision", &self.revision)
            .header("content-type", JSON_API)
            .header("accept", JSON_API)
            .body(bytes);
        let response = wire::send(request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(error(response).await)
        }
    }

    async fn import(&self, contacts: &[&Contact]) -> Result<(), DestinationError> {
        let profiles: Vec<Value> = contacts
            .iter()
            .map(|c| json!({"type": "profile", "attributes": profile_attributes(c)}))
            .collect();
        let mut job = json!({
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": profiles}},
        });
        if let Some(list) = &self.list_id {
            job["relationships"] = json!({"lists": {"data": [{"type": "list", "id": list}]}});
        }
        self.post("/api/profile-bulk-import-jobs/", &json!({"data": job}))
            .await
    }

    /// Subscribes (`granted`) or unsubscribes people from marketing.
    async fn subscriptions(
        &self,
        people: &[Subscription<'_>],
        granted: bool,
    ) -> Result<(), DestinationError> {
        let consent = if granted {
            "SUBSCRIBED"
        } else {
            "UNSUBSCRIBED"
        };
        let profiles: Vec<Value> = people
            .iter()
            .map(|p| {
                let mut attributes = Map::new();
                let mut subscriptions = Map::new();
                if let Some(email) = p.email {
                    attributes.insert("email".into(), json!(email));
                    subscriptions
                        .insert("email".into(), json!({"marketing": {"consent": consent}}));
                }
                if let Some(phone) = p.phone {
                    attributes.insert("phone_number".into(), json!(phone));
                    subscriptions.insert("sms".into(), json!({"marketing": {"consent": consent}}));
                }
                attributes.insert("subscriptions".into(), Value::Object(subscriptions));
                json!({"type": "profile", "attributes": attributes})
            })
            .collect();
        let (kind, path) = if granted {
            (
                "profile-subscription-bulk-create-job",
                "/api/profile-subscription-bulk-create-jobs/",
            )
        } else {
            (
                "profile-subscription-bulk-delete-job",
                "/api/profile-subscription-bulk-delete-jobs/",
            )
        };
        let mut job = json!({"type": kind, "attributes": {"profiles": {"data": profiles}}});
        if let Some(list) = &self.list_id {
            job["relationships"] = json!({"list": {"data": {"type": "list", "id": list}}});
        }
        self.post(path, &json!({"data": job})).await
    }

    async fn delete(&self, email: Option<&str>) -> Result<(), DestinationError> {
        // Klaviyo deletes by email, phone number or its own id; a `Delete`
        // carries the email only, and a profile without one is left.
        let Some(email) = email else {
            return Ok(());
        };
        let identifier = json!({"email": email.trim()});
        let body = json!({"data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": {"type": "profile", "attributes": identifier}}},
        }});
        self.post("/api/data-privacy-deletion-jobs/", &body).await
    }
}

/// One person's marketing consent for one subscription job.
struct Subscription<'a> {
    change: usize,
    email: Option<&'a str>,
    phone: Option<&'a str>,
}

fn profile_attributes(contact: &Contact) -> Map<String, Value> {
    let mut attributes = Map::new();
    attributes.insert("external_id".into(), json!(contact.profile_id));
    for (name, value) in [
        ("email", contact.email.as_deref().map(str::trim)),
        ("phone_number", contact.phone.as_deref()),
        ("first_name", contact.first_name.as_deref()),
        ("last_name", contact.last_name.as_deref()),
    ] {
        if let Some(value) = value {
            attributes.insert(name.into(), json!(value));
        }
    }
    if !contact.properties.is_empty() || !contact.tags.is_empty() {
        let mut properties = contact.properties.clone();
        if !contact.tags.is_empty() {
            properties.insert("shophub_tags".into(), json!(contact.tags));
        }
        attributes.insert("properties".into(), Value::Object(properties));
    }
    attributes
}

#[async_trait::async_trait]
impl Destination for Klaviyo {
    fn kind(&self) -> &'static str {
        "klaviyo"
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// The bulk import and subscription job endpoints' steady limit is 150
    /// a minute (burst 10 a second).
    fn max_rate(&self) -> Rate {
        Rate {
            requests: 150,
            per: Duration::from_secs(60),
        }
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        let mut outcomes: Vec<Result<(), DestinationError>> = vec![Ok(()); changes.len()];
        let mut imported: Vec<(usize, &Contact)> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::Upsert { contact } | Change::Merge { into: contact, .. } => {
                    // One profile per person: the latest change wins.
                    imported.retain(|(_, c)| c.profile_id != contact.profile_id);
                    imported.push((i, contact));
                }
                Change::Delete { .. } => {}
                Change::Event { .. } => outcomes[i] = Err(setup::not_an_event("Klaviyo")),
            }
        }
        if !imported.is_empty() {
            let contacts: Vec<&Contact> = imported.iter().map(|(_, c)| *c).collect();
            if let Err(e) = self.import(&contacts).await {
                // The job is all or nothing: every upsert and merge shares its fate.
                for (i, change) in changes.iter().enumerate() {
                    if matches!(change, Change::Upsert { .. } | Change::Merge { .. }) {
                        outcomes[i] = Err(e.clone());
                    }
                }
                return setup::settle(outcomes);
            }
        }

        for granted in [true, false] {
            let people: Vec<Subscription> = imported
                .iter()
                .filter_map(|&(change, c)| {
                    let email = c
                        .email
                        .as_deref()
                        .filter(|_| c.consent.email_marketing == Some(granted));
                    let phone = c
                        .phone
                        .as_deref()
                        .filter(|_| c.consent.sms == Some(granted));
                    (email.is_some() || phone.is_some()).then_some(Subscription {
                        change,
                        email,
                        phone,
                    })
                })
                .collect();
            if people.is_empty() {
                continue;
            }
            if let Err(e) = self.subscriptions(&people, granted).await {
                for p in &people {
                    outcomes[p.change] = Err(e.clone());
                }
            }
        }

        for (i, change) in changes.iter().enumerate() {
            let outcome = match change {
                Change::Delete { email, .. } => self.delete(email.as_deref()).await,
                Change::Merge {
                    into,
                    absorbed_email: Some(absorbed),
                    ..
                } if outcomes[i].is_ok() => {
                    let same = into.email.as_deref().map(setup::email_key)
                        == Some(setup::email_key(absorbed));
                    if same {
                        continue;
                    }
                    self.delete(Some(absorbed)).await
                }
                _ => continue,
            };
            outcomes[i] = outcome;
        }
        setup::settle(outcomes)
    }
}

/// Klaviyo's JSON:API errors: `{"errors":[{"status","code","title","detail"}]}`.
/// The codes are kept; details may quote the values refused.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorObject>,
}

#[derive(Debug, Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: String,
}

async fn error(response: Response) -> DestinationError {
    let status = response.status();
    let headers = response.headers().clone();
    let body: ErrorBody = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let codes = body
        .errors
        .iter()
        .map(|e| e.code.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match status {
        StatusCode::TOO_MANY_REQUESTS => DestinationError::RateLimited {
            retry_after: wire::retry_after(&headers),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            DestinationError::Unauthorized(format!("Klaviyo answered {}: {codes}", status.as_u16()))
        }
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            DestinationError::Transient(format!("Klaviyo answered {}: {codes}", s.as_u16()))
        }
        s => DestinationError::Permanent(format!("Klaviyo answered {}: {codes}", s.as_u16())),
    }
}
