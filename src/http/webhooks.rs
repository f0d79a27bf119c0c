//! `POST /webhooks/{platform}/{connection_id}`: verify, store, acknowledge.
//!
//! The answer is 2xx only once the delivery is committed; parsing and
//! identity work happen later in a worker, from the stored bytes.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use shophub_connectors::webhook::WebhookRequest;
use shophub_connectors::{Intake as Verified, VerifyError, WebhookSource};

use super::error::ApiError;
use super::AppState;
use crate::clock::now_ms;
use crate::store::{ConnectionSecrets, InsertOutcome, NewDelivery};
use crate::telemetry::platform_label;

pub async fn receive(
    State(state): State<AppState>,
    Path((platform, connection_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let label = platform_label(&platform);
    let query = query.unwrap_or_default();
    let result = verify_and_store(&state, &platform, &connection_id, &query, &headers, body).await;
    match &result {
        Ok(_) => metrics::counter!("shophub_webhooks_received_total", "platform" => label).increment(1),
        Err(error) => {
            metrics::counter!("shophub_webhooks_rejected_total", "platform" => label, "reason" => error.code)
                .increment(1)
        }
    }
    result
}

/// `GET /webhooks/{platform}/{connection_id}`: the verification handshake
/// some platforms make before they send anything (Meta's `hub.challenge`,
/// WeChat's `echostr`). A wrong token or signature gets 403.
pub async fn handshake(
    State(state): State<AppState>,
    Path((platform, connection_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (connector, connection, secrets) =
        connection_for(&state, &platform, &connection_id).await?;
    let settings: Map<String, Value> =
        serde_json::from_str(&connection.settings).unwrap_or_default();
    let query = query.unwrap_or_default();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query: &query,
        headers: &headers,
        body: &[],
    };
    match connector.handshake(&request) {
        None => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "no_handshake",
            "this platform has no GET handshake",
        )),
        Some(Ok(answer)) => Ok(([(header::CONTENT_TYPE, "text/plain")], answer).into_response()),
        Some(Err(error)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "handshake_refused",
            error.to_string(),
        )),
    }
}

/// The connection a webhook URL names, its platform's webhook source, and
/// its decrypted secrets; 404 unless all three exist and agree.
async fn connection_for(
    state: &AppState,
    platform: &str,
    connection_id: &str,
) -> Result<
    (
        &'static dyn WebhookSource,
        ConnectionSecrets,
        Map<String, Value>,
    ),
    ApiError,
> {
    let connection = state
        .store
        .connection_secrets(connection_id)
        .await?
        .filter(|c| c.deleted_at.is_none() && c.platform == platform)
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let connector = shophub_connectors::connector(platform)
        .and_then(|c| c.webhooks())
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let secrets = state
        .master_key
        .open(&connection.secrets, &connection.id)
        .map_err(ApiError::internal)?;
    let secrets: Map<String, Value> = serde_json::from_slice(&secrets).unwrap_or_default();
    Ok((connector, connection, secrets))
}

async fn verify_and_store(
    state: &AppState,
    platform: &str,
    connection_id: &str,
    query: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    })?;
    let (connector, connection, secrets) = connection_for(state, platform, connection_id).await?;
    let settings: Map<String, Value> =
        serde_json::from_str(&connection.settings).unwrap_or_default();
    let request = WebhookRequest {
        settings: &settings,
        secrets: &secrets,
        query,
        headers,
        body: &body,
    };

    let (dedupe_key, topic, stored) = match connector.verify_request(&request) {
        Ok(Verified::Ping) => return Ok(acknowledge(connector, json!({ "status": "ok" }))),
        Ok(Verified::Delivery { dedupe_key, topic }) => (dedupe_key, topic, body.to_vec()),
        Ok(Verified::Unwrapped {
            dedupe_key,
            topic,
            body,
        }) => (dedupe_key, topic, body),
        Err(error @ (VerifyError::MissingSignature(_) | VerifyError::BadSignature)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                error.to_string(),
            ))
        }
        Err(VerifyError::Malformed(reason)) => return Err(ApiError::bad_request(reason)),
    };
    let delivery = NewDelivery {
        workspace_id: connection.workspace_id,
        connection_id: connection.id,
        platform: platform.to_string(),
        topic,
        dedupe_key,
        body: stored,
        now: now_ms(),
    };
    match state
        .intake
        .store(delivery)
        .await
        .map_err(ApiError::unavailable)?
    {
        InsertOutcome::Stored(id) => Ok(acknowledge(
            connector,
            json!({ "status": "accepted", "delivery_id": id }),
        )),
        InsertOutcome::Duplicate => Ok(acknowledge(connector, json!({ "status": "duplicate" }))),
    }
}

/// 200 with the body the platform expects, or the hub's own.
fn acknowledge(connector: &dyn WebhookSource, ours: Value) -> Response {
    match connector.acknowledgement() {
        Some(body) => {
            let json = body.trim_start().starts_with('{');
            let content_type = if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => Json(ours).into_response(),
    }
}
