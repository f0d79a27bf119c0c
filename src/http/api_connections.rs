//! `/v1/connections`: connect, list, inspect, change and remove store
//! accounts, and start their syncs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shophub_connectors::poll::Resource;

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::connections::{validate, ConnectionInput, ConnectionPatch};
use crate::store::{ConnectionRow, ConnectionUpdate, DeliveryStats, NewConnection, StreamRow};
use crate::sync::{Mode, SyncError};

pub async fn create(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppJson(input): AppJson<ConnectionInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    validate(&input).map_err(|invalid| ApiError::validation(invalid.field, invalid.message))?;
    let id = format!("con_{}", uuid::Uuid::now_v7().simple());
    let secrets = serde_json::to_vec(&input.secrets).map_err(ApiError::internal)?;
    let connection = NewConnection {
        id: id.clone(),
        workspace_id: workspace_id.clone(),
        platform: input.platform,
        name: input.name.trim().to_string(),
        settings: Value::Object(input.settings).to_string(),
        secrets: state.master_key.seal(&secrets, &id),
        now: now_ms(),
    };
    state.store.create_connection(&connection).await?;
    let row = state
        .store
        .get_connection(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    Ok((StatusCode::CREATED, Json(render(&row, None, &[]))))
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<Value>, ApiError> {
    let rows = state.store.list_connections(&workspace_id).await?;
    Ok(Json(
        json!({ "data": rows.iter().map(|row| render(row, None, &[])).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let stats = state.store.delivery_stats(&row.id).await?;
    let streams = state.store.streams(&row.id).await?;
    Ok(Json(render(&row, Some(&stats), &streams)))
}

/// Changes the name, settings or secrets. New credentials clear a
/// `needs_reauth` status, so polling resumes.
pub async fn update(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(patch): AppJson<ConnectionPatch>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let stored = state
        .store
        .connection_secrets(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let secrets: Map<String, Value> = state
        .master_key
        .open(&stored.secrets, &id)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let settings: Map<String, Value> = serde_json::from_str(&row.settings).unwrap_or_default();
    let input = patch.apply(&row.platform, &row.name, settings, secrets);
    validate(&input).map_err(|invalid| ApiError::validation(invalid.field, invalid.message))?;
    let sealed = state.master_key.seal(
        &serde_json::to_vec(&input.secrets).map_err(ApiError::internal)?,
        &id,
    );
    let update = ConnectionUpdate {
        name: input.name.trim(),
        settings: &Value::Object(input.settings.clone()).to_string(),
        secrets: &sealed,
        now: now_ms(),
    };
    if !state
        .store
        .update_connection(&workspace_id, &id, &update)
        .await?
    {
        return Err(ApiError::not_found("connection"));
    }
    let row = find(&state, &workspace_id, &id).await?;
    Ok(Json(render(&row, None, &[])))
}

pub async fn delete(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state
        .store
        .delete_connection(&workspace_id, &id, now_ms())
        .await?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("connection")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// RFC 3339; the start of the shop's history when absent.
    since: Option<chrono::DateTime<chrono::Utc>>,
    resource: Option<String>,
}

/// Starts (or resumes) a backfill in the background: 202, then follow it
/// in `GET /v1/connections/{id}` under `sync.streams`.
pub async fn backfill(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    // The body is optional: no body means the whole history of every resource.
    let request: BackfillRequest = match body.iter().all(u8::is_ascii_whitespace) {
        true => BackfillRequest::default(),
        false => serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation("body", e.to_string()))?,
    };
    let only = match request.resource.as_deref() {
        None => None,
        Some(name) => Some(Resource::parse(name).ok_or_else(|| {
            ApiError::validation("resource", "must be orders, customers or reviews")
        })?),
    };
    let resources = pollable(&state, &row, only).await?;
    let mut streams = Vec::new();
    for resource in &resources {
        let prepared = state
            .syncer
            .prepare_backfill(&row.id, *resource, request.since)
            .await
            .map_err(sync_error)?;
        streams.push(prepared.stream);
    }
    let syncer = state.syncer.clone();
    tokio::spawn(async move {
        for resource in resources {
            if let Err(error) = syncer
                .run_stream(&row.id, resource, Mode::Backfill, None, |_| {})
                .await
            {
                tracing::warn!(connection = %row.id, resource = resource.as_str(), error = %error, "backfill stopped");
                break;
            }
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "started", "streams": streams })),
    ))
}

/// Sweeps every stream now instead of at the next scheduled time.
pub async fn sync_now(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let resources = pollable(&state, &row, None).await?;
    let syncer = state.syncer.clone();
    tokio::spawn(async move {
        for resource in resources {
            if let Err(error) = syncer
                .run_stream(&row.id, resource, Mode::Incremental, None, |_| {})
                .await
            {
                tracing::warn!(connection = %row.id, resource = resource.as_str(), error = %error, "sync stopped");
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "started" }))))
}

/// Re-creates or re-enables the platform's webhook subscriptions now.
pub async fn ensure_webhooks(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    if state.syncer.public_url().is_none() {
        return Err(ApiError::validation(
            "public_url",
            "set the hub's public_url so platforms can reach it",
        ));
    }
    pollable(&state, &row, None).await?;
    let changes = state
        .syncer
        .ensure_webhooks(&row.id)
        .await
        .map_err(sync_error)?;
    Ok(Json(json!({ "changes": changes })))
}

async fn find(state: &AppState, workspace_id: &str, id: &str) -> Result<ConnectionRow, ApiError> {
    state
        .store
        .get_connection(workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))
}

async fn pollable(
    state: &AppState,
    row: &ConnectionRow,
    only: Option<Resource>,
) -> Result<Vec<Resource>, ApiError> {
    if row.auth_status != "ok" {
        let reason = row.auth_error.clone().unwrap_or_default();
        return Err(sync_error(SyncError::NeedsReauth(reason)));
    }
    let available = state.syncer.resources(&row.id).await.map_err(sync_error)?;
    if available.is_empty() {
        return Err(ApiError::validation(
            "platform",
            "this connection cannot be polled: its platform has no API client or its API credentials are missing",
        ));
    }
    match only {
        Some(resource) if !available.contains(&resource) => Err(ApiError::validation(
            "resource",
            "the platform does not offer this resource",
        )),
        Some(resource) => Ok(vec![resource]),
        None => Ok(available),
    }
}

fn sync_error(error: SyncError) -> ApiError {
    match error {
        SyncError::Store(e) => e.into(),
        SyncError::NeedsReauth(reason) => ApiError::new(
            StatusCode::CONFLICT,
            "needs_reauth",
            format!("the connection needs new credentials: {reason}"),
        ),
        other => ApiError::validation("platform", other.to_string()),
    }
}

/// How far behind the platform a stream may be: for a caught-up stream,
/// the time since its last successful sweep (a quiet shop's watermark
/// stands still); otherwise how far its watermark trails now.
fn lag_seconds(stream: &StreamRow, now: i64) -> Option<i64> {
    let since = match stream.caught_up {
        1 => stream.last_success_at,
        _ => stream.watermark,
    };
    since.map(|t| (now - t).max(0) / 1000)
}

/// The public shape of a connection. Secrets are never part of it.
fn render(row: &ConnectionRow, stats: Option<&DeliveryStats>, streams: &[StreamRow]) -> Value {
    let settings: Value = serde_json::from_str(&row.settings).unwrap_or_else(|_| json!({}));
    let mut body = json!({
        "id": row.id,
        "platform": row.platform,
        "name": row.name,
        "settings": settings,
        "webhook_url": format!("/webhooks/{}/{}", row.platform, row.id),
        "created_at": to_rfc3339(row.created_at),
        "auth_status": row.auth_status,
        "auth_error": row.auth_error,
    });
    if let Some(stats) = stats {
        body["deliveries"] = json!({
            "received": stats.received,
            "pending": stats.pending,
            "processed": stats.done,
            "dead": stats.dead,
            "last_delivery_at": stats.last_delivery_at.map(to_rfc3339),
        });
        let now = now_ms();
        body["sync"] = json!({
            "streams": streams.iter().map(|s| json!({
                "stream": s.stream,
                "caught_up": s.caught_up == 1,
                "records": s.records,
                "pages": s.pages,
                "watermark": s.watermark.map(to_rfc3339),
                "lag_seconds": lag_seconds(s, now),
                "cursor": serde_json::from_str::<Value>(&s.cursor).unwrap_or(Value::Null),
                "started_at": to_rfc3339(s.started_at),
                "last_success_at": s.last_success_at.map(to_rfc3339),
                "last_error": s.last_error,
                "last_error_at": s.last_error_at.map(to_rfc3339),
            })).collect::<Vec<_>>(),
        });
    }
    body
}
