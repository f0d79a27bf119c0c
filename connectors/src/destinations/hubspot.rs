//! HubSpot contacts through the CRM v3 objects API, with a private-app
//! access token (`secrets.access_token`, sent as a Bearer token).
//!
//! - Upsert: `POST /crm/v3/objects/contacts/batch/upsert`, keyed by
//!   `idProperty` `email` (or by a unique custom property holding the hub's
//!   profile id, `settings.id_property`, e.g. `shophub_id`). In email mode a
//!   contact without an email gets a per-change permanent error: HubSpot
//!   would create an unkeyed duplicate on every sync.
//! - Merge: the survivor is upserted, both contacts' ids are read with
//!   `POST .../batch/read`, and `POST .../merge` folds the absorbed contact
//!   into the survivor; an absorbed contact HubSpot never had needs nothing.
//! - Delete: `POST .../gdpr-delete` (permanent, the default) or
//!   `POST .../batch/archive` (`settings.delete_mode = "archive"`).
//! - A 207 multi-status answer is mapped back to the changes it names.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::setup::{self, DeleteMode};
use super::{Change, Contact, Destination, DestinationError, PushResult, Rate, Setup};
use crate::http as wire;

const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
const CONTACTS: &str = "/crm/v3/objects/contacts";
/// HubSpot's batch endpoints take at most 100 inputs.
const MAX_INPUTS: usize = 100;

pub struct HubSpot {
    http: reqwest::Client,
    base_url: String,
    token: String,
    /// `email`, or a unique property holding the hub's profile id.
    id_property: String,
    delete_mode: DeleteMode,
}

impl HubSpot {
    pub(super) fn new(setup: Setup<'_>) -> Result<Self, DestinationError> {
        let token = setup::secret(&setup, "HubSpot", "access_token")?;
        let base_url = setup::base_url(setup.settings, || Ok(DEFAULT_BASE_URL.to_owned()))?;
        let id_property =
            setup::text(setup.settings, "id_property").unwrap_or_else(|| "email".to_owned());
        let internal_name = id_property
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !internal_name {
            return Err(DestinationError::Permanent(
                "settings.id_property must be a HubSpot property's internal name".into(),
            ));
        }
        Ok(HubSpot {
            http: setup.http,
            base_url,
            token,
            id_property,
            delete_mode: DeleteMode::from_settings(setup.settings)?,
        })
    }

    fn by_email(&self) -> bool {
        self.id_property == "email"
    }

    /// The value a person's contact is keyed by in HubSpot.
    fn key(&self, profile_id: &str, email: Option<&str>) -> Option<String> {
        if self.by_email() {
            email.map(setup::email_key).filter(|e| !e.is_empty())
        } else {
            Some(profile_id.to_owned())
        }
    }

    fn properties(&self, contact: &Contact) -> Map<String, Value> {
        let mut properties: Map<String, Value> = contact
            .properties
            .iter()
            .map(|(name, value)| (name.clone(), property_value(value)))
            .collect();
        let standard = [
            ("email", contact.email.as_deref().map(str::trim)),
            ("firstname", contact.first_name.as_deref()),
            ("lastname", contact.last_name.as_deref()),
            ("phone", contact.phone.as_deref()),
        ];
        for (name, value) in standard {
            if let Some(value) = value {
                properties.insert(name.to_owned(), Value::from(value));
            }
        }
        if !self.by_email() {
            properties.insert(
                self.id_property.clone(),
                Value::from(contact.profile_id.as_str()),
            );
        }
        properties
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Response, DestinationError> {
        let request = self
            .http
            .post(format!("{}{CONTACTS}{path}", self.base_url))
            .bearer_auth(&self.token)
            .json(body);
        let response = wire::send(request).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error(response).await)
        }
    }

    /// Upserts up to 100 contacts; the outcome per key.
    async fn upsert(
        &self,
        inputs: &[(String, Map<String, Value>)],
    ) -> Result<HashMap<String, Result<(), DestinationError>>, DestinationError> {
        let body = json!({
            "inputs": inputs.iter().map(|(key, properties)| json!({
                "idProperty": self.id_property,
                "id": key,
                "properties": properties,
            })).collect::<Vec<_>>(),
        });
        let response = self.post("/batch/upsert", &body).await?;
        let answer = if response.status() == StatusCode::MULTI_STATUS {
            wire::json::<BatchAnswer>(response).await?
        } else {
            BatchAnswer::default()
        };
        let written: Vec<String> = answer
            .results
            .iter()
            .filter_map(|r| r.properties.get(&self.id_property)?.as_str())
            .map(|k| self.normalise(k))
            .collect();
        let unattributed = answer.errors.iter().find(|e| e.keys().next().is_none());
        Ok(inputs
            .iter()
            .map(|(key, _)| {
                let named = answer
                    .errors
                    .iter()
                    .find(|e| e.keys().any(|k| self.normalise(k) == *key));
                let outcome = match (named, unattributed) {
                    (Some(e), _) => Err(e.refusal()),
                    (None, _) if written.contains(key) => Ok(()),
                    (None, Some(e)) => Err(e.refusal()),
                    (None, None) => Ok(()),
                };
                (key.clone(), outcome)
            })
            .collect())
    }

    /// HubSpot's record ids for the contacts keyed by `keys`; absent keys
    /// have no contact.
    async fn ids(&self, keys: &[String]) -> Result<HashMap<String, String>, DestinationError> {
        let mut unique = keys.to_vec();
        unique.sort();
        unique.dedup();
        let mut ids = HashMap::new();
        for chunk in unique.chunks(MAX_INPUTS) {
            let body = json!({
                "idProperty": self.id_property,
                "properties": [self.id_property],
                "inputs": chunk.iter().map(|k| json!({"id": k})).collect::<Vec<_>>(),
            });
            let answer: BatchAnswer = wire::json(self.post("/batch/read", &body).await?).await?;
            for record in answer.results {
                if let Some(key) = record
                    .properties
                    .get(&self.id_property)
                    .and_then(Value::as_str)
                {
                    ids.insert(self.normalise(key), record.id);
                }
            }
        }
        Ok(ids)
    }

    fn normalise(&self, key: &str) -> String {
        if self.by_email() {
            setup::email_key(key)
        } else {
            key.to_owned()
        }
    }

    async fn merge(&self, primary: &str, absorbed: &str) -> Result<(), DestinationError> {
        let body = json!({"primaryObjectId": primary, "objectIdToMerge": absorbed});
        self.post("/merge", &body).await.map(drop)
    }

    async fn gdpr_delete(
        &self,
        key: &str,
        ids: &HashMap<String, String>,
    ) -> Result<(), DestinationError> {
        let body = if self.by_email() {
            json!({"objectId": key, "idProperty": "email"})
        } else {
            match ids.get(key) {
                Some(id) => json!({"objectId": id}),
                None => return Ok(()),
            }
        };
        self.post("/gdpr-delete", &body).await.map(drop)
    }

    async fn archive(&self, ids: &[&String]) -> Result<(), DestinationError> {
        for chunk in ids.chunks(MAX_INPUTS) {
            let body =
                json!({"inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
            self.post("/batch/archive", &body).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Destination for HubSpot {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn max_batch(&self) -> usize {
        MAX_INPUTS
    }

    /// Private apps on the Free and Starter tiers get 100 requests per 10
    /// seconds (higher tiers more): the floor every account has.
    fn max_rate(&self) -> Rate {
        Rate {
            requests: 100,
            per: Duration::from_secs(10),
        }
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        let mut outcomes: Vec<Result<(), DestinationError>> = vec![Ok(()); changes.len()];
        // Upserts, one input per key (HubSpot refuses duplicate ids in a
        // batch): the latest change for a key wins.
        let mut upsert_keys: Vec<Option<String>> = vec![None; changes.len()];
        let mut inputs: Vec<(String, Map<String, Value>)> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let contact = match change {
                Change::Upsert { contact } | Change::Merge { into: contact, .. } => contact,
                Change::Delete { .. } => continue,
                Change::Event { .. } => {
                    outcomes[i] = Err(setup::not_an_event("HubSpot"));
                    continue;
                }
            };
            let Some(key) = self.key(&contact.profile_id, contact.email.as_deref()) else {
                outcomes[i] = Err(DestinationError::Permanent(
                    "no email: HubSpot contacts are keyed by email (settings.id_property keys them by profile id)".into(),
                ));
                continue;
            };
            let properties = self.properties(contact);
            match inputs.iter_mut().find(|(k, _)| *k == key) {
                Some(input) => input.1 = properties,
                None => inputs.push((key.clone(), properties)),
            }
            upsert_keys[i] = Some(key);
        }
        let mut upserted = HashMap::new();
        for chunk in inputs.chunks(MAX_INPUTS) {
            upserted.extend(self.upsert(chunk).await?);
        }
        for (i, key) in upsert_keys.iter().enumerate() {
            if let Some(outcome) = key.as_ref().and_then(|k| upserted.get(k)) {
                outcomes[i] = outcome.clone();
            }
        }

        // Merges and deletes address contacts by HubSpot id.
        let mut lookups = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::Merge {
                    into,
                    absorbed_profile_id,
                    absorbed_email,
                } if outcomes[i].is_ok() => {
                    let survivor = self.key(&into.profile_id, into.email.as_deref());
                    let absorbed = self.key(absorbed_profile_id, absorbed_email.as_deref());
                    if let (Some(survivor), Some(absorbed)) = (survivor, absorbed) {
                        if survivor != absorbed {
                            lookups.extend([survivor, absorbed]);
                        }
                    }
                }
                Change::Delete { profile_id, email }
                    if self.delete_mode == DeleteMode::Archive || !self.by_email() =>
                {
                    lookups.extend(self.key(profile_id, email.as_deref()));
                }
                _ => {}
            }
        }
        let ids = if lookups.is_empty() {
            HashMap::new()
        } else {
            self.ids(&lookups).await?
        };

        let mut archived: Vec<(usize, &String)> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::Merge {
                    into,
                    absorbed_profile_id,
                    absorbed_email,
                } if outcomes[i].is_ok() => {
                    let survivor = self.key(&into.profile_id, into.email.as_deref());
                    let absorbed = self.key(absorbed_profile_id, absorbed_email.as_deref());
                    let survivor_id = survivor.and_then(|k| ids.get(&k));
                    let absorbed_id = absorbed.and_then(|k| ids.get(&k));
                    outcomes[i] = match (survivor_id, absorbed_id) {
                        (Some(primary), Some(other)) if primary != other => {
                            self.merge(primary, other).await
                        }
                        // The survivor was just written; not reading it back
                        // means HubSpot has not caught up yet.
                        (None, Some(_)) => Err(DestinationError::Transient(
                            "the surviving contact is not readable yet".into(),
                        )),
                        _ => Ok(()),
                    };
                }
                Change::Delete { profile_id, email } => {
                    let Some(key) = self.key(profile_id, email.as_deref()) else {
                        continue;
                    };
                    match self.delete_mode {
                        DeleteMode::Permanent => outcomes[i] = self.gdpr_delete(&key, &ids).await,
                        DeleteMode::Archive => archived.extend(ids.get(&key).map(|id| (i, id))),
                    }
                }
                _ => {}
            }
            if matches!(
                outcomes[i],
                Err(DestinationError::Unauthorized(_) | DestinationError::RateLimited { .. })
            ) {
                return setup::settle(outcomes);
            }
        }
        if !archived.is_empty() {
            let ids: Vec<&String> = archived.iter().map(|(_, id)| *id).collect();
            if let Err(e) = self.archive(&ids).await {
                for (i, _) in &archived {
                    outcomes[*i] = Err(e.clone());
                }
            }
        }
        setup::settle(outcomes)
    }
}

/// HubSpot stores property values as strings: numbers and booleans pass,
/// lists become multi-select values (`a;b`), null clears.
fn property_value(value: &Value) -> Value {
    match value {
        Value::Null => Value::from(""),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => value.clone(),
        Value::Array(items) => Value::from(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Value::Object(_) => Value::from(value.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    results: Vec<Record>,
    #[serde(default)]
    errors: Vec<ItemError>,
}

#[derive(Debug, Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// One entry of a multi-status answer's `errors`.
#[derive(Debug, Deserialize)]
struct ItemError {
    #[serde(default)]
    category: String,
    #[serde(default)]
    context: Map<String, Value>,
}

impl ItemError {
    /// The input ids the error names (`context.ids`, or any list in it).
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.context
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
    }

    /// The category only: HubSpot's messages quote the values refused,
    /// which may be personal data.
    fn refusal(&self) -> DestinationError {
        DestinationError::Permanent(format!("HubSpot refused the contact: {}", self.category))
    }
}

/// HubSpot's error body: `{"status":"error","message","category",...}`, and
/// for 429s `policyName` (`TEN_SECONDLY_ROLLING`, `DAILY`, ...).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    category: String,
    #[serde(default)]
    policy_name: String,
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
    match status {
        StatusCode::TOO_MANY_REQUESTS => DestinationError::RateLimited {
            retry_after: rate_limit_wait(&headers, &body.policy_name),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DestinationError::Unauthorized(
            format!("HubSpot answered {}: {}", status.as_u16(), body.category),
        ),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            DestinationError::Transient(format!("HubSpot answered {}", s.as_u16()))
        }
        s => DestinationError::Permanent(format!(
            "HubSpot answered {}: {}",
            s.as_u16(),
            body.category
        )),
    }
}

/// HubSpot's 429s carry no `Retry-After` for the rolling limits; the
/// window's length comes in `X-HubSpot-RateLimit-Interval-Milliseconds`. The
/// daily limit resets at the account's midnight, which only HubSpot knows:
/// the engine's backoff decides.
fn rate_limit_wait(headers: &http::HeaderMap, policy: &str) -> Option<Duration> {
    if let Some(wait) = wire::retry_after(headers) {
        return Some(wait);
    }
    if policy.contains("DAILY") {
        return None;
    }
    headers
        .get("x-hubspot-ratelimit-interval-milliseconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}
