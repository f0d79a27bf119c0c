//! A fake Mailchimp Marketing API 3.0 for one audience: members upserted by
//! subscriber hash, their tags, archive and permanent delete, behind HTTP
//! Basic auth with the API key as password, with Mailchimp's problem-detail
//! errors and its 10-simultaneous-connection limit. Members are kept for
//! assertions.

// The hub-level tests use what they need of it; refusals are whole responses.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use super::quota::{Admission, Quota};

const STATUSES: &[&str] = &[
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];
/// The merge fields a new audience has.
const MERGE_FIELDS: &[&str] = &["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"];
const CONNECTIONS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub email: String,
    pub status: String,
    pub merge_fields: Map<String, Value>,
    pub tags: BTreeSet<String>,
    pub archived: bool,
}

#[derive(Default)]
pub struct Audience {
    /// By subscriber hash.
    pub members: BTreeMap<String, Member>,
    /// Hashes permanently deleted: Mailchimp refuses to re-import them.
    pub deleted: BTreeSet<String>,
}

#[derive(Clone)]
pub struct FakeMailchimp {
    pub api_key: String,
    pub list_id: String,
    pub audience: Arc<Mutex<Audience>>,
    pub quota: Quota,
    in_flight: Arc<AtomicUsize>,
}

pub fn subscriber_hash(email: &str) -> String {
    hex(&Md5::digest(email.trim().to_lowercase().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FakeMailchimp {
    pub fn new(api_key: &str, list_id: &str) -> FakeMailchimp {
        FakeMailchimp {
            api_key: api_key.to_owned(),
            list_id: list_id.to_owned(),
            audience: Arc::default(),
            quota: Quota::default(),
            in_flight: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/3.0/lists/{list_id}/members/{hash}",
                put(upsert).delete(archive),
            )
            .route("/3.0/lists/{list_id}/members/{hash}/tags", post(tags))
            .route(
                "/3.0/lists/{list_id}/members/{hash}/actions/delete-permanent",
                post(delete_permanent),
            )
            .with_state(self.clone())
    }

    /// Serves on 127.0.0.1; returns the API root (`settings.api_base_url`),
    /// `http://127.0.0.1:port/3.0`.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/3.0")
    }

    /// The member for an email, archived or not.
    pub fn member(&self, email: &str) -> Option<Member> {
        self.audience
            .lock()
            .unwrap()
            .members
            .get(&subscriber_hash(email))
            .cloned()
    }

    /// Members not archived.
    pub fn members(&self) -> Vec<Member> {
        let audience = self.audience.lock().unwrap();
        audience
            .members
            .values()
            .filter(|m| !m.archived)
            .cloned()
            .collect()
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "instance": "7e1d7c8e-0000-4000-8000-000000000000",
        })),
    )
        .into_response()
}

fn invalid(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Invalid Resource", detail)
}

/// Holds one of the account's simultaneous connections while alive.
struct Connection(Arc<AtomicUsize>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(fake: &FakeMailchimp, headers: &HeaderMap, list_id: &str) -> Result<Connection, Response> {
    let connection = Connection(fake.in_flight.clone());
    if fake.in_flight.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS {
        return Err(problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        ));
    }
    let password = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(_, password)| password.to_owned()));
    if password.as_deref() != Some(fake.api_key.as_str()) {
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ));
    }
    match fake.quota.admit() {
        Admission::Serve { .. } => {}
        Admission::Throttled { .. } | Admission::Fail(StatusCode::TOO_MANY_REQUESTS) => {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "You have exceeded the limit of 10 simultaneous connections.",
            ))
        }
        Admission::Fail(status) => {
            return Err(problem(
                status,
                "Internal Server Error",
                "An unexpected internal error has occurred.",
            ))
        }
    }
    if list_id != fake.list_id {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        ));
    }
    Ok(connection)
}

fn member_json(hash: &str, list_id: &str, member: &Member) -> Value {
    json!({
        "id": hash,
        "email_address": member.email,
        "unique_email_id": &hash[..10],
        "status": member.status,
        "merge_fields": member.merge_fields,
        "tags": member.tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "list_id": list_id,
    })
}

async fn upsert(
    State(fake): State<FakeMailchimp>,
    Path((list_id, hash)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _connection = match admit(&fake, &headers, &list_id) {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "JSON Schema Validation Failed",
            "The request body is not valid JSON.",
        );
    };
    let Some(email) = body["email_address"].as_str() else {
        return invalid(
            "The resource submitted could not be validated: email_address is required.",
        );
    };
    if subscriber_hash(email) != hash {
        return invalid("The subscriber hash does not match the email address.");
    }
    let status_field = |name: &str| -> Result<Option<String>, Response> {
        match &body[name] {
            Value::Null => Ok(None),
            Value::String(s) if STATUSES.contains(&s.as_str()) => Ok(Some(s.clone())),
            _ => Err(invalid(&format!("{name} must be one of {STATUSES:?}"))),
        }
    };
    let (status, status_if_new) = match (status_field("status"), status_field("status_if_new")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let merge_fields = match &body["merge_fields"] {
        Value::Null => Map::new(),
        Value::Object(fields) => fields.clone(),
        _ => return invalid("merge_fields must be an object"),
    };
    if let Some(unknown) = merge_fields
        .keys()
        .find(|k| !MERGE_FIELDS.contains(&k.as_str()))
    {
        return invalid(&format!(
            "Your merge fields were invalid: {unknown} does not exist."
        ));
    }
    let mut audience = fake.audience.lock().unwrap();
    if audience.deleted.contains(&hash) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Forgotten Email Not Subscribed",
            "This contact was permanently deleted and cannot be re-imported.",
        );
    }
    let live = audience.members.get(&hash).is_some_and(|m| !m.archived);
    if live {
        if let Some(status) = status {
            audience.members.get_mut(&hash).unwrap().status = status;
        }
    } else {
        let Some(status) = status.or(status_if_new) else {
            return invalid("status_if_new is required when the member is new.");
        };
        // An archived member comes back with its tags.
        let tags = audience
            .members
            .remove(&hash)
            .map(|m| m.tags)
            .unwrap_or_default();
        let member = Member {
            email: email.to_owned(),
            status,
            merge_fields: Map::new(),
            tags,
            archived: false,
        };
        audience.members.insert(hash.clone(), member);
    }
    let member = audience.members.get_mut(&hash).unwrap();
    member.email = email.to_owned();
    member.merge_fields.extend(merge_fields);
    Json(member_json(&hash, &list_id, member)).into_response()
}

async fn tags(
    State(fake): State<FakeMailchimp>,
    Path((list_id, hash)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _connection = match admit(&fake, &headers, &list_id) {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "JSON Schema Validation Failed",
            "The request body is not valid JSON.",
        );
    };
    let Some(tags) = body["tags"].as_array() else {
        return invalid("tags is required.");
    };
    let mut audience = fake.audience.lock().unwrap();
    let Some(member) = audience.members.get_mut(&hash).filter(|m| !m.archived) else {
        return problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        );
    };
    for tag in tags {
        match (tag["name"].as_str(), tag["status"].as_str()) {
            (Some(name), Some("active")) => member.tags.insert(name.to_owned()),
            (Some(name), Some("inactive")) => member.tags.remove(name),
            _ => return invalid("each tag needs a name and a status of active or inactive."),
        };
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn archive(
    State(fake): State<FakeMailchimp>,
    Path((list_id, hash)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let _connection = match admit(&fake, &headers, &list_id) {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let mut audience = fake.audience.lock().unwrap();
    match audience.members.get_mut(&hash).filter(|m| !m.archived) {
        Some(member) => {
            member.archived = true;
            StatusCode::NO_CONTENT.into_response()
        }
        None => problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        ),
    }
}

async fn delete_permanent(
    State(fake): State<FakeMailchimp>,
    Path((list_id, hash)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let _connection = match admit(&fake, &headers, &list_id) {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let mut audience = fake.audience.lock().unwrap();
    match audience.members.remove(&hash) {
        Some(_) => {
            audience.deleted.insert(hash);
            StatusCode::NO_CONTENT.into_response()
        }
        None => problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        ),
    }
}
