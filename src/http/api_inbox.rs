//! `/v1/inbox`: deliveries by status (the dead-letter list) and replay.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppQuery;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};

const STATUSES: [&str; 4] = ["pending", "processing", "done", "dead"];

#[derive(Deserialize)]
pub struct InboxQuery {
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<InboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query.status.as_deref().unwrap_or("dead");
    if !STATUSES.contains(&status) {
        return Err(ApiError::validation(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.store.list_inbox(&workspace_id, status, limit).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "connection_id": row.connection_id,
                "platform": row.platform,
                "topic": row.topic,
                "status": row.status,
                "attempts": row.attempts,
                "received_at": to_rfc3339(row.received_at),
                "processed_at": row.processed_at.map(to_rfc3339),
                "error": row.last_error,
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn replay(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    match state
        .store
        .replay_delivery(&workspace_id, id, now_ms())
        .await?
    {
        true => Ok(Json(json!({ "id": id, "status": "pending" }))),
        false => Err(ApiError::not_found("dead delivery")),
    }
}
