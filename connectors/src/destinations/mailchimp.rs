//! Mailchimp audience members through the Marketing API 3.0: HTTP Basic
//! with the API key as password (`secrets.api_key`), the data centre taken
//! from the key's suffix (`...-us6` is `https://us6.api.mailchimp.com/3.0`),
//! the audience in `settings.list_id`.
//!
//! - Upsert: `PUT /lists/{list_id}/members/{subscriber_hash}` (the MD5 of the
//!   lower-cased email), then `POST .../tags` for the contact's tags (added
//!   only: tags the merchant set in Mailchimp are left alone).
//! - Consent: `email_marketing` granted is `subscribed`, withdrawn is
//!   `unsubscribed` (both for new and existing members); never asked creates
//!   the member as `transactional` and leaves an existing member's status as
//!   it is, so the hub never subscribes anyone who did not say yes.
//! - Merge: the survivor is upserted and the absorbed email's member, when it
//!   differs, archived.
//! - Delete: `POST .../actions/delete-permanent` (the default), or archive
//!   (`DELETE .../members/{hash}`) with `settings.delete_mode = "archive"`.
//!
//! Mailchimp allows 10 simultaneous connections per account, so a batch's
//! requests run at most 10 at a time.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use md5::{Digest, Md5};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::setup::{self, DeleteMode};
use super::{Change, Contact, Destination, DestinationError, PushResult, Rate, Setup};
use crate::http as wire;

/// Mailchimp's limit on simultaneous connections per account.
const CONNECTIONS: usize = 10;
/// Changes per push: each costs one to three requests.
const MAX_BATCH: usize = 50;

pub struct Mailchimp {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    list_id: String,
    delete_mode: DeleteMode,
}

/// The subscriber hash Mailchimp addresses members by.
pub(super) fn subscriber_hash(email: &str) -> String {
    hex::encode(Md5::digest(setup::email_key(email).as_bytes()))
}

/// The API address for a key: its data centre is the part after the last `-`.
pub(super) fn data_centre_url(api_key: &str) -> Result<String, DestinationError> {
    let dc = api_key
        .rsplit_once('-')
        .map(|(_, dc)| dc)
        .filter(|dc| !dc.is_empty() && dc.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            DestinationError::Permanent(
                "secrets.api_key has no data centre suffix (like -us6); set settings.api_base_url"
                    .into(),
            )
        })?;
    Ok(format!("https://{dc}.api.mailchimp.com/3.0"))
}

impl Mailchimp {
    pub(super) fn new(setup: Setup<'_>) -> Result<Self, DestinationError> {
        let api_key = setup::secret(&setup, "Mailchimp", "api_key")?;
        let list_id = setup::required(&setup, "Mailchimp", "list_id")?;
        if !list_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DestinationError::Permanent(
                "settings.list_id must be the audience id (letters and digits)".into(),
            ));
        }
        let base_url = setup::base_url(setup.settings, || data_centre_url(&api_key))?;
        Ok(Mailchimp {
            http: setup.http,
            base_url,
            api_key,
            list_id,
            delete_mode: DeleteMode::from_settings(setup.settings)?,
        })
    }

    fn member_path(&self, email: &str) -> String {
        format!("/lists/{}/members/{}", self.list_id, subscriber_hash(email))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, DestinationError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth("shophub", Some(&self.api_key));
        if let Some(body) = body {
            request = request.json(body);
        }
        wire::send(request).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, DestinationError> {
        let response = self.send(method, path, body).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error(response).await)
        }
    }

    async fn upsert(&self, contact: &Contact) -> Result<(), DestinationError> {
        let Some(email) = contact.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            return Err(DestinationError::Permanent(
                "no email: Mailchimp audience members are keyed by email".into(),
            ));
        };
        let mut merge_fields: Map<String, Value> = contact.properties.clone();
        for (tag, value) in [
            ("FNAME", &contact.first_name),
            ("LNAME", &contact.last_name),
            ("PHONE", &contact.phone),
        ] {
            if let Some(value) = value {
                merge_fields.insert(tag.to_owned(), Value::from(value.as_str()));
            }
        }
        let mut body = json!({
            "email_address": email.trim(),
            "merge_fields": merge_fields,
        });
        match contact.consent.email_marketing {
            Some(granted) => {
                let status = if granted {
                    "subscribed"
                } else {
                    "unsubscribed"
                };
                body["status"] = json!(status);
                body["status_if_new"] = json!(status);
            }
            None => body["status_if_new"] = json!("transactional"),
        }
        let path = self.member_path(email);
        self.call(Method::PUT, &path, Some(&body)).await?;
        if !contact.tags.is_empty() {
            let tags: Vec<Value> = contact
                .tags
                .iter()
                .map(|name| json!({"name": name, "status": "active"}))
                .collect();
            self.call(
                Method::POST,
                &format!("{path}/tags"),
                Some(&json!({"tags": tags})),
            )
            .await?;
        }
        Ok(())
    }

    /// Archives or permanently deletes a member; one Mailchimp never had, or
    /// already removed, needs nothing.
    async fn remove(&self, email: &str, mode: DeleteMode) -> Result<(), DestinationError> {
        let path = self.member_path(email);
        let response = match mode {
            DeleteMode::Archive => self.send(Method::DELETE, &path, None).await?,
            DeleteMode::Permanent => {
                self.send(
                    Method::POST,
                    &format!("{path}/actions/delete-permanent"),
                    None,
                )
                .await?
            }
        };
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(error(response).await)
        }
    }

    async fn apply(&self, change: &Change) -> Result<(), DestinationError> {
        match change {
            Change::Upsert { contact } => self.upsert(contact).await,
            Change::Merge {
                into,
                absorbed_email,
                ..
            } => {
                self.upsert(into).await?;
                match absorbed_email {
                    Some(absorbed)
                        if into.email.as_deref().map(setup::email_key)
                            != Some(setup::email_key(absorbed)) =>
                    {
                        self.remove(absorbed, DeleteMode::Archive).await
                    }
                    _ => Ok(()),
                }
            }
            Change::Delete {
                email: Some(email), ..
            } => self.remove(email, self.delete_mode).await,
            // Mailchimp only holds people by email: nothing of them is there.
            Change::Delete { email: None, .. } => Ok(()),
            Change::Event { .. } => Err(setup::not_an_event("Mailchimp")),
        }
    }
}

#[async_trait::async_trait]
impl Destination for Mailchimp {
    fn kind(&self) -> &'static str {
        "mailchimp"
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// Mailchimp documents no request rate, only 10 simultaneous
    /// connections; ten a second keeps one push's requests from piling up.
    fn max_rate(&self) -> Rate {
        Rate {
            requests: 10,
            per: Duration::from_secs(1),
        }
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        let requests: Vec<_> = changes.iter().map(|change| self.apply(change)).collect();
        let outcomes: Vec<Result<(), DestinationError>> =
            stream::iter(requests).buffered(CONNECTIONS).collect().await;
        setup::settle(outcomes)
    }
}

/// Mailchimp's problem-details body: `{"type","title","status","detail","instance"}`.
/// Only the title is kept: the detail quotes the email.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(default)]
    title: String,
}

async fn error(response: Response) -> DestinationError {
    let status = response.status();
    let headers = response.headers().clone();
    let problem: Problem = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    match status {
        StatusCode::TOO_MANY_REQUESTS => DestinationError::RateLimited {
            retry_after: wire::retry_after(&headers),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DestinationError::Unauthorized(
            format!("Mailchimp answered {}: {}", status.as_u16(), problem.title),
        ),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            DestinationError::Transient(format!(
                "Mailchimp answered {}: {}",
                s.as_u16(),
                problem.title
            ))
        }
        s => DestinationError::Permanent(format!(
            "Mailchimp answered {}: {}",
            s.as_u16(),
            problem.title
        )),
    }
}
