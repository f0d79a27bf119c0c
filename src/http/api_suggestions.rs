//! `/v1/suggestions`: possible merges for a person to decide, and manual
//! merges (`POST /v1/profiles/{id}/merge`).
//!
//! Accepting merges the two profiles as the resolver would (the older id
//! survives, the other becomes an alias, `profile.merged` in the feed).
//! Rejecting closes the suggestion.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery};
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::resolve::merge_profiles;
use crate::store::{StoreError, SuggestionRow};

#[derive(Deserialize)]
pub struct SuggestionQuery {
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<SuggestionQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query.status.as_deref().unwrap_or("open");
    if !["open", "accepted", "rejected"].contains(&status) {
        return Err(ApiError::validation(
            "status",
            "must be open, accepted or rejected",
        ));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .suggestions(&workspace_id, status, limit)
        .await?;
    Ok(Json(
        json!({ "data": rows.iter().map(render).collect::<Vec<_>>() }),
    ))
}

pub async fn accept(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    decide(&state, &workspace_id, id, "accepted").await
}

pub async fn reject(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    decide(&state, &workspace_id, id, "rejected").await
}

async fn decide(
    state: &AppState,
    workspace_id: &str,
    id: i64,
    status: &str,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let mut tx = state.store.begin_write(workspace_id).await?;
    let row = tx
        .decide_suggestion(workspace_id, id, status, now)
        .await?
        .ok_or_else(|| ApiError::not_found("open suggestion"))?;
    let mut body = render(&row);
    if status == "accepted" {
        let survivor = merge_profiles(
            tx.as_mut(),
            workspace_id,
            &row.profile_a,
            &row.profile_b,
            now,
        )
        .await?;
        body["profile_id"] = json!(survivor);
    } else {
        // A rejection is a cannot-link no later rule overrides.
        crate::resolve::graph::keep_apart(
            tx.as_mut(),
            workspace_id,
            &row.profile_a,
            &row.profile_b,
            "suggestion rejected",
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    profile_id: String,
}

/// Merges another profile of the workspace into this one (or this into it,
/// whichever is older), because a person says they are one customer.
pub async fn merge(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(request): AppJson<MergeRequest>,
) -> Result<Json<Value>, ApiError> {
    for profile in [&id, &request.profile_id] {
        state
            .store
            .get_profile(&workspace_id, profile)
            .await?
            .ok_or_else(|| ApiError::not_found("profile"))?;
    }
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let survivor = merge_profiles(tx.as_mut(), &workspace_id, &id, &request.profile_id, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("profile"),
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(Json(json!({ "profile_id": survivor })))
}

fn render(row: &SuggestionRow) -> Value {
    json!({
        "id": row.id,
        "profiles": [row.profile_a, row.profile_b],
        "reason": row.reason,
        "evidence": serde_json::from_str::<Value>(&row.evidence).unwrap_or(Value::Null),
        "status": row.status,
        "created_at": to_rfc3339(row.created_at),
        "decided_at": row.decided_at.map(to_rfc3339),
    })
}
