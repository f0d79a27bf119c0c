//! A fake Klaviyo: the bulk profile import, subscription and data-privacy
//! deletion job endpoints, behind `Authorization: Klaviyo-API-Key`, a
//! required dated `revision` header and JSON:API bodies, answering with
//! Klaviyo's `{"errors":[...]}` documents and 429s with `Retry-After`.
//! Jobs run as soon as they are accepted, so the profiles kept for
//! assertions show their effect at once.

// The hub-level tests use what they need of it; refusals are whole responses.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::quota::{Admission, Quota};

/// Profiles per bulk import job.
pub const MAX_IMPORT: usize = 10_000;
/// Profiles per subscription job.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub id: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub properties: Map<String, Value>,
    /// `SUBSCRIBED` or `UNSUBSCRIBED`; `None` is never subscribed.
    pub email_marketing: Option<String>,
    pub sms_marketing: Option<String>,
    pub lists: BTreeSet<String>,
}

#[derive(Default)]
pub struct Account {
    next_id: u64,
    pub profiles: Vec<Profile>,
    /// The `type` of every job accepted, in order.
    pub jobs: Vec<String>,
    /// The identifiers of deletion requests.
    pub deletions: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeKlaviyo {
    pub api_key: String,
    pub account: Arc<Mutex<Account>>,
    pub quota: Quota,
}

impl FakeKlaviyo {
    pub fn new(api_key: &str) -> FakeKlaviyo {
        FakeKlaviyo {
            api_key: api_key.to_owned(),
            account: Arc::default(),
            quota: Quota::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/profile-bulk-import-jobs/", post(import))
            .route(
                "/api/profile-subscription-bulk-create-jobs/",
                post(subscribe),
            )
            .route(
                "/api/profile-subscription-bulk-delete-jobs/",
                post(unsubscribe),
            )
            .route("/api/data-privacy-deletion-jobs/", post(delete))
            .with_state(self.clone())
    }

    /// Serves on 127.0.0.1; returns the base URL (`settings.api_base_url`).
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    pub fn profiles(&self) -> Vec<Profile> {
        self.account.lock().unwrap().profiles.clone()
    }

    pub fn by_email(&self, email: &str) -> Option<Profile> {
        let account = self.account.lock().unwrap();
        account
            .profiles
            .iter()
            .find(|p| {
                p.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned()
    }
}

fn errors(status: StatusCode, code: &str, title: &str, detail: &str, pointer: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{
            "id": "1a2b3c4d-0000-4000-8000-000000000000",
            "status": status.as_u16(),
            "code": code,
            "title": title,
            "detail": detail,
            "source": {"pointer": pointer},
        }]})),
    )
        .into_response()
}

fn invalid(detail: &str, pointer: &str) -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        "invalid",
        "Invalid input.",
        detail,
        pointer,
    )
}

/// Authenticates, checks the JSON:API headers, rate-limits and parses the
/// body; checks `data.type`.
fn admit(
    fake: &FakeKlaviyo,
    headers: &HeaderMap,
    body: &Bytes,
    job_type: &str,
) -> Result<Value, Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(format!("Klaviyo-API-Key {}", fake.api_key).as_str()) {
        return Err(errors(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
            "/data/",
        ));
    }
    let dated = header("revision").is_some_and(|r| {
        r.len() >= 10
            && r.as_bytes()[4] == b'-'
            && r.as_bytes()[7] == b'-'
            && r[..4].bytes().all(|b| b.is_ascii_digit())
    });
    if !dated {
        return Err(invalid(
            "The revision header is missing or invalid.",
            "/data/",
        ));
    }
    if header("content-type").map(|c| c.starts_with("application/vnd.api+json")) != Some(true) {
        return Err(errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type.",
            "Content-Type must be application/vnd.api+json.",
            "/data/",
        ));
    }
    match fake.quota.admit() {
        Admission::Serve { .. } => {}
        Admission::Throttled { reset, .. } => {
            return Err(throttled((reset.as_millis() as u64).div_ceil(1000).max(1)))
        }
        Admission::Fail(StatusCode::TOO_MANY_REQUESTS) => return Err(throttled(1)),
        Admission::Fail(status) => {
            return Err(errors(
                status,
                "server_error",
                "A server error occurred.",
                "",
                "/data/",
            ))
        }
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("The request body is not valid JSON.", "/data/"))?;
    if body["data"]["type"] != job_type {
        return Err(errors(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict.",
            &format!("The type must be {job_type}."),
            "/data/type",
        ));
    }
    Ok(body)
}

fn throttled(seconds: u64) -> Response {
    let mut response = errors(
        StatusCode::TOO_MANY_REQUESTS,
        "throttled",
        "Request was throttled.",
        &format!("Request was throttled. Expected available in {seconds} second."),
        "/data/",
    );
    let headers = response.headers_mut();
    headers.insert("retry-after", HeaderValue::from(seconds));
    headers.insert("ratelimit-limit", HeaderValue::from_static("150"));
    headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
    headers.insert("ratelimit-reset", HeaderValue::from(seconds));
    response
}

fn accepted(body: Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// `data.attributes.profiles.data` with 1 to `max` profile objects.
fn profiles(body: &Value, max: usize) -> Result<&Vec<Value>, Response> {
    let pointer = "/data/attributes/profiles/data";
    match body["data"]["attributes"]["profiles"]["data"].as_array() {
        Some(p) if p.is_empty() => Err(invalid("At least one profile is required.", pointer)),
        Some(p) if p.len() > max => Err(invalid(
            &format!("At most {max} profiles are allowed."),
            pointer,
        )),
        Some(p) => match p
            .iter()
            .position(|p| p["type"] != "profile" || !p["attributes"].is_object())
        {
            Some(i) => Err(invalid(
                "Each item must be a profile resource object.",
                &format!("{pointer}/{i}"),
            )),
            None => Ok(p),
        },
        None => Err(invalid("profiles is required.", pointer)),
    }
}

fn valid_email(email: &str) -> bool {
    matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.ends_with('.'))
}

fn valid_phone(phone: &str) -> bool {
    phone
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a profile's identifiers; `Err` names the offending field.
fn identifiers(attributes: &Value, i: usize) -> Result<(), Response> {
    let pointer = |field: &str| format!("/data/attributes/profiles/data/{i}/attributes/{field}");
    let email = attributes["email"].as_str();
    let phone = attributes["phone_number"].as_str();
    if email.is_none() && phone.is_none() && attributes["external_id"].as_str().is_none() {
        return Err(invalid(
            "A profile needs an email, phone_number or external_id.",
            &pointer(""),
        ));
    }
    if email.is_some_and(|e| !valid_email(e)) {
        return Err(invalid("Invalid email address.", &pointer("email")));
    }
    if phone.is_some_and(|p| !valid_phone(p)) {
        return Err(invalid(
            "Invalid phone number format (Example of a valid format: +12345678901).",
            &pointer("phone_number"),
        ));
    }
    Ok(())
}

/// The profile matching any identifier in `attributes`, created if none.
fn profile_for<'a>(account: &'a mut Account, attributes: &Value) -> &'a mut Profile {
    let email = attributes["email"].as_str();
    let phone = attributes["phone_number"].as_str();
    let external = attributes["external_id"].as_str();
    let found = account.profiles.iter().position(|p| {
        (email.is_some()
            && p.email.as_deref().map(str::to_lowercase) == email.map(str::to_lowercase))
            || (phone.is_some() && p.phone_number.as_deref() == phone)
            || (external.is_some() && p.external_id.as_deref() == external)
    });
    let index = match found {
        Some(i) => i,
        None => {
            account.next_id += 1;
            account.profiles.push(Profile {
                id: format!("01JKLV{:020}", account.next_id),
                ..Profile::default()
            });
            account.profiles.len() - 1
        }
    };
    &mut account.profiles[index]
}

async fn import(State(fake): State<FakeKlaviyo>, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > 5 * 1024 * 1024 {
        return errors(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large.",
            "At most 5 MB.",
            "/data/",
        );
    }
    let body = match admit(&fake, &headers, &body, "profile-bulk-import-job") {
        Ok(body) => body,
        Err(response) => return response,
    };
    let profiles = match profiles(&body, MAX_IMPORT) {
        Ok(profiles) => profiles,
        Err(response) => return response,
    };
    for (i, p) in profiles.iter().enumerate() {
        if let Err(response) = identifiers(&p["attributes"], i) {
            return response;
        }
    }
    let lists: Vec<String> = body["data"]["relationships"]["lists"]["data"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|l| l["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut account = fake.account.lock().unwrap();
    for p in profiles {
        let a = &p["attributes"];
        let profile = profile_for(&mut account, a);
        let text = |field: &str| a[field].as_str().map(str::to_owned);
        profile.email = text("email").or(profile.email.take());
        profile.phone_number = text("phone_number").or(profile.phone_number.take());
        profile.external_id = text("external_id").or(profile.external_id.take());
        profile.first_name = text("first_name").or(profile.first_name.take());
        profile.last_name = text("last_name").or(profile.last_name.take());
        if let Some(properties) = a["properties"].as_object() {
            profile.properties.extend(properties.clone());
        }
        profile.lists.extend(lists.iter().cloned());
    }
    account.jobs.push("profile-bulk-import-job".into());
    let job_id = format!("job-{}", account.jobs.len());
    accepted(json!({"data": {
        "type": "profile-bulk-import-job",
        "id": job_id,
        "attributes": {"status": "queued", "total_count": profiles.len(), "completed_count": 0, "failed_count": 0},
    }}))
}

async fn subscription(
    fake: FakeKlaviyo,
    headers: HeaderMap,
    body: Bytes,
    job_type: &str,
    consent: &str,
) -> Response {
    let body = match admit(&fake, &headers, &body, job_type) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let profiles = match profiles(&body, MAX_SUBSCRIPTIONS) {
        Ok(profiles) => profiles,
        Err(response) => return response,
    };
    for (i, p) in profiles.iter().enumerate() {
        let a = &p["attributes"];
        if let Err(response) = identifiers(a, i) {
            return response;
        }
        let pointer = format!("/data/attributes/profiles/data/{i}/attributes/subscriptions");
        let subscriptions = &a["subscriptions"];
        let email = &subscriptions["email"]["marketing"]["consent"];
        let sms = &subscriptions["sms"]["marketing"]["consent"];
        if email.is_null() && sms.is_null() {
            return invalid("At least one subscription is required.", &pointer);
        }
        if (!email.is_null() && (email != consent || a["email"].is_null()))
            || (!sms.is_null() && (sms != consent || a["phone_number"].is_null()))
        {
            return invalid(
                &format!("consent must be {consent}, with the channel's identifier."),
                &pointer,
            );
        }
    }
    let list = body["data"]["relationships"]["list"]["data"]["id"]
        .as_str()
        .map(str::to_owned);
    let mut account = fake.account.lock().unwrap();
    for p in profiles {
        let a = &p["attributes"];
        let profile = profile_for(&mut account, a);
        if profile.email.is_none() {
            profile.email = a["email"].as_str().map(str::to_owned);
        }
        if profile.phone_number.is_none() {
            profile.phone_number = a["phone_number"].as_str().map(str::to_owned);
        }
        if !a["subscriptions"]["email"].is_null() {
            profile.email_marketing = Some(consent.to_owned());
        }
        if !a["subscriptions"]["sms"].is_null() {
            profile.sms_marketing = Some(consent.to_owned());
        }
        if let Some(list) = &list {
            if consent == "SUBSCRIBED" {
                profile.lists.insert(list.clone());
            } else {
                profile.lists.remove(list);
            }
        }
    }
    account.jobs.push(job_type.to_owned());
    StatusCode::ACCEPTED.into_response()
}

async fn subscribe(State(fake): State<FakeKlaviyo>, headers: HeaderMap, body: Bytes) -> Response {
    subscription(
        fake,
        headers,
        body,
        "profile-subscription-bulk-create-job",
        "SUBSCRIBED",
    )
    .await
}

async fn unsubscribe(State(fake): State<FakeKlaviyo>, headers: HeaderMap, body: Bytes) -> Response {
    subscription(
        fake,
        headers,
        body,
        "profile-subscription-bulk-delete-job",
        "UNSUBSCRIBED",
    )
    .await
}

async fn delete(State(fake): State<FakeKlaviyo>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match admit(&fake, &headers, &body, "data-privacy-deletion-job") {
        Ok(body) => body,
        Err(response) => return response,
    };
    let profile = &body["data"]["attributes"]["profile"]["data"];
    let pointer = "/data/attributes/profile/data/attributes";
    let Some(identifier) = profile["attributes"]
        .as_object()
        .filter(|_| profile["type"] == "profile")
    else {
        return invalid("profile is required.", pointer);
    };
    let given: Vec<(&String, &Value)> = identifier
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "email" | "phone_number" | "id"))
        .collect();
    let [(field, value)] = given.as_slice() else {
        return invalid(
            "Exactly one of email, phone_number or id is required.",
            pointer,
        );
    };
    let value = value.as_str().unwrap_or_default().to_owned();
    let mut account = fake.account.lock().unwrap();
    account.profiles.retain(|p| {
        let held = match field.as_str() {
            "email" => p.email.as_deref().map(str::to_lowercase) == Some(value.to_lowercase()),
            "phone_number" => p.phone_number.as_deref() == Some(value.as_str()),
            _ => p.id == value,
        };
        !held
    });
    account.deletions.push(Value::Object(identifier.clone()));
    account.jobs.push("data-privacy-deletion-job".into());
    StatusCode::ACCEPTED.into_response()
}
