//! `/v1/connections`: connect, list, inspect and remove store accounts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::connections::{validate, ConnectionInput};
use crate::store::{ConnectionRow, DeliveryStats, NewConnection};

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
        workspace_id,
        platform: input.platform,
        name: input.name.trim().to_string(),
        settings: Value::Object(input.settings).to_string(),
        secrets: state.master_key.seal(&secrets, &id),
        now: now_ms(),
    };
    state.store.create_connection(&connection).await?;
    let row = ConnectionRow {
        id: connection.id,
        workspace_id: connection.workspace_id,
        platform: connection.platform,
        name: connection.name,
        settings: connection.settings,
        created_at: connection.now,
    };
    Ok((StatusCode::CREATED, Json(render(&row, None))))
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<Value>, ApiError> {
    let rows = state.store.list_connections(&workspace_id).await?;
    Ok(Json(
        json!({ "data": rows.iter().map(|row| render(row, None)).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_connection(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let stats = state.store.delivery_stats(&row.id).await?;
    Ok(Json(render(&row, Some(&stats))))
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

/// The public shape of a connection. Secrets are never part of it.
fn render(row: &ConnectionRow, stats: Option<&DeliveryStats>) -> Value {
    let settings: Value = serde_json::from_str(&row.settings).unwrap_or_else(|_| json!({}));
    let mut body = json!({
        "id": row.id,
        "platform": row.platform,
        "name": row.name,
        "settings": settings,
        "webhook_url": format!("/webhooks/{}/{}", row.platform, row.id),
        "created_at": to_rfc3339(row.created_at),
    });
    if let Some(stats) = stats {
        body["deliveries"] = json!({
            "received": stats.received,
            "pending": stats.pending,
            "processed": stats.done,
            "dead": stats.dead,
            "last_delivery_at": stats.last_delivery_at.map(to_rfc3339),
        });
    }
    body
}
