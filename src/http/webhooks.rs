//! `POST /webhooks/{platform}/{connection_id}`: verify, store, acknowledge.
//!
//! The answer is 2xx only once the delivery is committed; parsing and
//! identity work happen later in a worker, from the stored bytes.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use shophub_connectors::{Intake as Verified, VerifyError, WebhookSource};

use super::error::ApiError;
use super::AppState;
use crate::clock::now_ms;
use crate::connections::webhook_secrets;
use crate::store::{InsertOutcome, NewDelivery};
use crate::telemetry::platform_label;

pub async fn receive(
    State(state): State<AppState>,
    Path((platform, connection_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let label = platform_label(&platform);
    let result = verify_and_store(&state, &platform, &connection_id, &headers, body).await;
    match &result {
        Ok(_) => metrics::counter!("shophub_webhooks_received_total", "platform" => label).increment(1),
        Err(error) => {
            metrics::counter!("shophub_webhooks_rejected_total", "platform" => label, "reason" => error.code)
                .increment(1)
        }
    }
    result
}

async fn verify_and_store(
    state: &AppState,
    platform: &str,
    connection_id: &str,
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
    let secrets = webhook_secrets(&secrets, connector.secret_keys());
    let candidates: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    let settings: Map<String, Value> =
        serde_json::from_str(&connection.settings).unwrap_or_default();

    match connector.verify_connection(&settings, &candidates, headers, &body) {
        Ok(Verified::Ping) => Ok(acknowledge(connector, json!({ "status": "ok" }))),
        Ok(Verified::Delivery { dedupe_key, topic }) => {
            let delivery = NewDelivery {
                workspace_id: connection.workspace_id,
                connection_id: connection.id,
                platform: platform.to_string(),
                topic,
                dedupe_key,
                body: body.to_vec(),
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
                InsertOutcome::Duplicate => {
                    Ok(acknowledge(connector, json!({ "status": "duplicate" })))
                }
            }
        }
        Err(error @ (VerifyError::MissingSignature(_) | VerifyError::BadSignature)) => Err(
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", error.to_string()),
        ),
        Err(VerifyError::Malformed(reason)) => Err(ApiError::bad_request(reason)),
    }
}

/// 200 with the body the platform expects, or the hub's own.
fn acknowledge(connector: &dyn WebhookSource, ours: Value) -> Response {
    match connector.acknowledgement() {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => Json(ours).into_response(),
    }
}
