//! A fake HubSpot CRM: the contacts batch upsert, read and archive
//! endpoints, merge and GDPR delete, behind a private-app Bearer token, with
//! HubSpot's error bodies, 207 multi-status answers and ten-second rolling
//! rate limit headers. Its contacts are kept for assertions.

// The hub-level tests use what they need of it; refusals are whole responses.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::quota::{Admission, Quota};

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: u64,
    pub properties: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct Crm {
    next_id: u64,
    pub contacts: BTreeMap<u64, Contact>,
    pub archived: BTreeMap<u64, Contact>,
    /// (primary, merged) ids of each merge.
    pub merges: Vec<(u64, u64)>,
    /// Emails deleted or blocklisted by GDPR deletes.
    pub gdpr_deleted: Vec<String>,
}

#[derive(Clone)]
pub struct FakeHubSpot {
    pub token: String,
    pub crm: Arc<Mutex<Crm>>,
    pub quota: Quota,
    /// Properties besides `email` that are unique, so usable as `idProperty`.
    pub unique_properties: Arc<Mutex<HashSet<String>>>,
}

impl FakeHubSpot {
    pub fn new(token: &str) -> FakeHubSpot {
        FakeHubSpot {
            token: token.to_owned(),
            crm: Arc::default(),
            quota: Quota::default(),
            unique_properties: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/crm/v3/objects/contacts/batch/upsert", post(upsert))
            .route("/crm/v3/objects/contacts/batch/read", post(read))
            .route("/crm/v3/objects/contacts/batch/archive", post(archive))
            .route("/crm/v3/objects/contacts/merge", post(merge))
            .route("/crm/v3/objects/contacts/gdpr-delete", post(gdpr_delete))
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

    /// The live (not archived) contacts.
    pub fn contacts(&self) -> Vec<Contact> {
        self.crm
            .lock()
            .unwrap()
            .contacts
            .values()
            .cloned()
            .collect()
    }

    pub fn by_email(&self, email: &str) -> Option<Contact> {
        let crm = self.crm.lock().unwrap();
        find(&crm.contacts, "email", email).and_then(|id| crm.contacts.get(&id).cloned())
    }
}

fn find(contacts: &BTreeMap<u64, Contact>, property: &str, value: &str) -> Option<u64> {
    contacts
        .values()
        .find(|c| {
            c.properties.get(property).is_some_and(|v| {
                if property == "email" {
                    v.eq_ignore_ascii_case(value)
                } else {
                    v == value
                }
            })
        })
        .map(|c| c.id)
}

fn object(contact: &Contact, only: Option<&[String]>) -> Value {
    let properties: Map<String, Value> = contact
        .properties
        .iter()
        .filter(|(k, _)| only.map_or(true, |only| only.contains(k) || *k == "hs_object_id"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "id": contact.id.to_string(),
        "properties": properties,
        "createdAt": "2026-11-23T00:00:00Z",
        "updatedAt": "2026-11-23T00:00:00Z",
        "archived": false,
    })
}

fn problem(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "status": "error",
            "message": message,
            "correlationId": "3f8e2a4c-0000-4000-8000-000000000000",
            "category": category,
        })),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// Authenticates and rate-limits a request and parses its JSON body;
/// `Err` is the answer to give instead.
fn admit(
    fake: &FakeHubSpot,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, usize), Response> {
    let expected = format!("Bearer {}", fake.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        ));
    }
    let remaining = match fake.quota.admit() {
        Admission::Serve { remaining } => remaining.min(100),
        Admission::Throttled { max, window, .. } => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": "3f8e2a4c-0000-4000-8000-000000000001",
                    "policyName": "TEN_SECONDLY_ROLLING",
                })),
            )
                .into_response();
            rate_headers(response.headers_mut(), max, 0, window);
            return Err(response);
        }
        Admission::Fail(StatusCode::TOO_MANY_REQUESTS) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                })),
            )
                .into_response();
            rate_headers(response.headers_mut(), 100, 0, Duration::from_secs(10));
            return Err(response);
        }
        Admission::Fail(status) => return Err(problem(status, "INTERNAL_ERROR", "internal error")),
    };
    let content_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !content_json {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION_ERROR",
            "Content type must be application/json",
        ));
    }
    let body: Value = serde_json::from_slice(body).map_err(|_| invalid("Invalid input JSON"))?;
    Ok((body, remaining))
}

fn rate_headers(headers: &mut HeaderMap, max: usize, remaining: usize, window: Duration) {
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    set(
        "x-hubspot-ratelimit-interval-milliseconds",
        window.as_millis().to_string(),
    );
    set("x-hubspot-ratelimit-max", max.to_string());
    set("x-hubspot-ratelimit-remaining", remaining.to_string());
}

fn served(status: StatusCode, body: Value, remaining: usize) -> Response {
    let mut response = (status, Json(body)).into_response();
    rate_headers(
        response.headers_mut(),
        100,
        remaining,
        Duration::from_secs(10),
    );
    response
}

/// `inputs` as an array of 1 to 100 objects.
fn inputs(body: &Value) -> Result<&Vec<Value>, Response> {
    match body["inputs"].as_array() {
        Some(inputs) if !inputs.is_empty() && inputs.len() <= 100 => Ok(inputs),
        Some(inputs) if inputs.len() > 100 => Err(invalid("Batch input limit is 100")),
        _ => Err(invalid("inputs is required and may not be empty")),
    }
}

fn valid_email(email: &str) -> bool {
    matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.ends_with('.'))
}

async fn upsert(State(fake): State<FakeHubSpot>, headers: HeaderMap, body: Bytes) -> Response {
    let (body, remaining) = match admit(&fake, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(response) => return response,
    };
    let unique = fake.unique_properties.lock().unwrap().clone();
    let mut seen = BTreeSet::new();
    for input in inputs {
        let Some(id_property) = input["idProperty"].as_str() else {
            return invalid("idProperty is required for upsert");
        };
        if id_property != "email" && !unique.contains(id_property) {
            return invalid(&format!(
                "Unable to perform update/upsert by non-unique 0-1 property {id_property}"
            ));
        }
        let Some(id) = input["id"].as_str().filter(|s| !s.is_empty()) else {
            return invalid("id is required");
        };
        let Some(properties) = input["properties"].as_object() else {
            return invalid("properties must be an object");
        };
        if properties
            .values()
            .any(|v| v.is_object() || v.is_array() || v.is_null())
        {
            return invalid("property values must be strings, numbers or booleans");
        }
        if !seen.insert(id.to_lowercase()) {
            return invalid("Duplicate IDs found in batch input");
        }
    }
    let mut crm = fake.crm.lock().unwrap();
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let id_property = input["idProperty"].as_str().unwrap();
        let id = input["id"].as_str().unwrap();
        let properties: BTreeMap<String, String> = input["properties"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        let email = properties
            .get("email")
            .map(String::as_str)
            .or((id_property == "email").then_some(id));
        if email.is_some_and(|e| !valid_email(e)) {
            errors.push(json!({
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: [{\"isValid\":false,\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]",
                "context": {"ids": [id]},
            }));
            continue;
        }
        let existing = find(&crm.contacts, id_property, id);
        let contact_id = match existing {
            Some(contact_id) => contact_id,
            None => {
                crm.next_id += 1;
                let contact_id = 1000 + crm.next_id;
                let mut initial = BTreeMap::new();
                initial.insert("hs_object_id".to_owned(), contact_id.to_string());
                let stored = if id_property == "email" {
                    id.to_lowercase()
                } else {
                    id.to_owned()
                };
                initial.insert(id_property.to_owned(), stored);
                crm.contacts.insert(
                    contact_id,
                    Contact {
                        id: contact_id,
                        properties: initial,
                    },
                );
                contact_id
            }
        };
        let contact = crm.contacts.get_mut(&contact_id).unwrap();
        for (k, v) in properties {
            let v = if k == "email" { v.to_lowercase() } else { v };
            contact.properties.insert(k, v);
        }
        let mut result = object(contact, None);
        result["new"] = json!(existing.is_none());
        results.push(result);
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2026-11-23T00:00:00Z",
        "completedAt": "2026-11-23T00:00:01Z",
    });
    if errors.is_empty() {
        served(StatusCode::OK, answer, remaining)
    } else {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = json!(errors);
        served(StatusCode::MULTI_STATUS, answer, remaining)
    }
}

async fn read(State(fake): State<FakeHubSpot>, headers: HeaderMap, body: Bytes) -> Response {
    let (body, remaining) = match admit(&fake, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(response) => return response,
    };
    let id_property = body["idProperty"].as_str();
    let only: Option<Vec<String>> = body["properties"].as_array().map(|p| {
        p.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let crm = fake.crm.lock().unwrap();
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for input in inputs {
        let Some(id) = input["id"].as_str() else {
            return invalid("id is required");
        };
        let found = match id_property {
            Some(property) => find(&crm.contacts, property, id),
            None => id.parse().ok().filter(|n| crm.contacts.contains_key(n)),
        };
        match found {
            Some(n) => results.push(object(&crm.contacts[&n], only.as_deref())),
            None => missing.push(id.to_owned()),
        }
    }
    let mut answer = json!({"status": "COMPLETE", "results": results});
    if missing.is_empty() {
        return served(StatusCode::OK, answer, remaining);
    }
    answer["numErrors"] = json!(1);
    answer["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
        "context": {"ids": missing},
    }]);
    served(StatusCode::MULTI_STATUS, answer, remaining)
}

async fn archive(State(fake): State<FakeHubSpot>, headers: HeaderMap, body: Bytes) -> Response {
    let (body, _) = match admit(&fake, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(response) => return response,
    };
    let mut crm = fake.crm.lock().unwrap();
    for input in inputs {
        let Some(id) = input["id"].as_str().and_then(|s| s.parse::<u64>().ok()) else {
            return invalid("id must be a contact id");
        };
        if let Some(contact) = crm.contacts.remove(&id) {
            crm.archived.insert(id, contact);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn merge(State(fake): State<FakeHubSpot>, headers: HeaderMap, body: Bytes) -> Response {
    let (body, remaining) = match admit(&fake, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let id = |field: &str| body[field].as_str().and_then(|s| s.parse::<u64>().ok());
    let (Some(primary), Some(merged)) = (id("primaryObjectId"), id("objectIdToMerge")) else {
        return invalid("primaryObjectId and objectIdToMerge are required");
    };
    let mut crm = fake.crm.lock().unwrap();
    if primary == merged
        || !crm.contacts.contains_key(&primary)
        || !crm.contacts.contains_key(&merged)
    {
        return invalid("Unable to merge these objects");
    }
    let absorbed = crm.contacts.remove(&merged).unwrap();
    let survivor = crm.contacts.get_mut(&primary).unwrap();
    for (k, v) in absorbed.properties {
        if k == "email" {
            survivor.properties.insert("hs_additional_emails".into(), v);
        } else if k != "hs_object_id" {
            survivor.properties.entry(k).or_insert(v);
        }
    }
    let answer = object(survivor, None);
    crm.merges.push((primary, merged));
    served(StatusCode::OK, answer, remaining)
}

async fn gdpr_delete(State(fake): State<FakeHubSpot>, headers: HeaderMap, body: Bytes) -> Response {
    let (body, _) = match admit(&fake, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(object_id) = body["objectId"].as_str() else {
        return invalid("objectId is required");
    };
    let mut crm = fake.crm.lock().unwrap();
    let found = match body["idProperty"].as_str() {
        Some("email") => find(&crm.contacts, "email", object_id),
        Some(_) => return invalid("idProperty must be email"),
        None => object_id
            .parse()
            .ok()
            .filter(|n| crm.contacts.contains_key(n)),
    };
    let email = match found {
        Some(n) => crm
            .contacts
            .remove(&n)
            .and_then(|c| c.properties.get("email").cloned()),
        // HubSpot blocklists an email it does not know.
        None => body["idProperty"]
            .as_str()
            .map(|_| object_id.to_lowercase()),
    };
    crm.gdpr_deleted.extend(email);
    StatusCode::NO_CONTENT.into_response()
}
