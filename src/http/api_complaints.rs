//! `/v1/complaints`: every open complaint, to follow up and resolve.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppQuery;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::resolve::refresh_profile;
use crate::store::ComplaintRow;

#[derive(Deserialize)]
pub struct ComplaintQuery {
    status: Option<String>,
    severity: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<ComplaintQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query.status.as_deref().unwrap_or("open");
    if !["open", "resolved"].contains(&status) {
        return Err(ApiError::validation("status", "must be open or resolved"));
    }
    if let Some(severity) = query.severity.as_deref() {
        if !["low", "medium", "high"].contains(&severity) {
            return Err(ApiError::validation(
                "severity",
                "must be low, medium or high",
            ));
        }
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .complaints(&workspace_id, status, query.severity.as_deref(), limit)
        .await?;
    Ok(Json(
        json!({ "data": rows.iter().map(render).collect::<Vec<_>>() }),
    ))
}

/// Marks an open complaint resolved; the profile's complaint counts follow.
pub async fn resolve(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let profile_id = tx
        .resolve_complaint(&workspace_id, id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("open complaint"))?;
    refresh_profile(tx.as_mut(), &workspace_id, &profile_id, false, now).await?;
    tx.commit().await?;
    Ok(Json(
        json!({ "id": id, "status": "resolved", "profile_id": profile_id }),
    ))
}

pub fn render(row: &ComplaintRow) -> Value {
    json!({
        "id": row.id,
        "profile_id": row.profile_id,
        "severity": row.severity,
        "reason": row.reason,
        "status": row.status,
        "record": {
            "type": row.record_kind,
            "platform": row.platform,
            "connection_id": row.connection_id,
            "external_id": row.external_id,
            "occurred_at": to_rfc3339(row.occurred_at),
        },
        "created_at": to_rfc3339(row.created_at),
        "resolved_at": row.resolved_at.map(to_rfc3339),
    })
}
