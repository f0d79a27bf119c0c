//! `/v1/segments`: saved filters over profiles, their members, and the
//! re-evaluation that runs when one is created, changed or deleted.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery};
use super::AppState;
use crate::clock::to_rfc3339;
use crate::profile::ProfileView;
use crate::segments::{filter, reevaluate};
use crate::store::{SegmentRow, WriteTx};

const MAX_NAME_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    name: Option<String>,
    filter: Option<Value>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "name: expected 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_string())
}

fn check_filter(value: &Value) -> Result<filter::Filter, ApiError> {
    filter::parse(value).map_err(ApiError::bad_request)
}

fn render(row: &SegmentRow, members_changed: Option<usize>) -> Value {
    let mut out = json!({
        "id": row.id,
        "name": row.name,
        "filter": serde_json::from_str::<Value>(&row.filter).unwrap_or(Value::Null),
        "created_at": to_rfc3339(row.created_at),
        "updated_at": to_rfc3339(row.updated_at),
    });
    if let Some(changed) = members_changed {
        out["members_changed"] = json!(changed);
    }
    out
}

/// A change time later than every earlier change of the workspace's
/// segments, so the membership cache's stamp always moves.
async fn change_time(tx: &mut dyn WriteTx, workspace_id: &str) -> Result<i64, ApiError> {
    let stamp = tx.segments_stamp(workspace_id).await?;
    let latest: i64 = stamp
        .split(':')
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Ok(crate::clock::now_ms().max(latest + 1))
}

pub async fn create(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppJson(body): AppJson<SegmentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = check_name(body.name.as_deref().unwrap_or_default())?;
    let value = body
        .filter
        .ok_or_else(|| ApiError::bad_request("filter: missing"))?;
    let compiled = check_filter(&value)?;
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let now = change_time(tx.as_mut(), &workspace_id).await?;
    let row = SegmentRow {
        id: format!("seg_{}", uuid::Uuid::now_v7().simple()),
        workspace_id: workspace_id.clone(),
        name,
        filter: value.to_string(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    tx.save_segment(&row).await?;
    tx.commit().await?;
    let changed = reevaluate(
        state.store.as_ref(),
        &workspace_id,
        &row.id,
        Some(&compiled),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(render(&row, Some(changed)))))
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state
        .store
        .segments(&workspace_id)
        .await?
        .iter()
        .map(|row| render(row, None))
        .collect();
    Ok(Json(json!({ "data": data })))
}

async fn find(state: &AppState, workspace_id: &str, id: &str) -> Result<SegmentRow, ApiError> {
    state
        .store
        .segment(workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("segment"))
}

pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(&find(&state, &workspace_id, &id).await?, None)))
}

pub async fn update(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(body): AppJson<SegmentBody>,
) -> Result<Json<Value>, ApiError> {
    let mut row = find(&state, &workspace_id, &id).await?;
    if let Some(name) = &body.name {
        row.name = check_name(name)?;
    }
    if let Some(value) = &body.filter {
        check_filter(value)?;
        row.filter = value.to_string();
    }
    let compiled = check_filter(&serde_json::from_str(&row.filter).map_err(ApiError::internal)?)?;
    let mut tx = state.store.begin_write(&workspace_id).await?;
    row.updated_at = change_time(tx.as_mut(), &workspace_id).await?;
    tx.save_segment(&row).await?;
    tx.commit().await?;
    let changed = reevaluate(
        state.store.as_ref(),
        &workspace_id,
        &row.id,
        Some(&compiled),
    )
    .await?;
    Ok(Json(render(&row, Some(changed))))
}

/// Deletes the segment; its members leave it (`segment.exited`) before the
/// answer.
pub async fn delete(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut row = find(&state, &workspace_id, &id).await?;
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let now = change_time(tx.as_mut(), &workspace_id).await?;
    row.updated_at = now;
    row.deleted_at = Some(now);
    tx.save_segment(&row).await?;
    tx.commit().await?;
    reevaluate(state.store.as_ref(), &workspace_id, &row.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct MembersQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Members in profile id order, `limit` (default 100, at most 1000) a page.
pub async fn members(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppQuery(query): AppQuery<MembersQuery>,
) -> Result<Json<Value>, ApiError> {
    let segment = find(&state, &workspace_id, &id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let ids = state
        .store
        .segment_members(
            &segment.id,
            query.cursor.as_deref().unwrap_or_default(),
            limit,
        )
        .await?;
    let mut data = Vec::with_capacity(ids.len());
    for profile_id in &ids {
        let Some(row) = state.store.get_profile(&workspace_id, profile_id).await? else {
            continue;
        };
        let view: ProfileView = serde_json::from_str(&row.view).map_err(ApiError::internal)?;
        data.push(json!({
            "id": row.id, "name": view.name, "emails": view.emails, "phones": view.phones,
            "tags": view.tags, "traits": view.traits,
        }));
    }
    let next = (ids.len() as i64 == limit)
        .then(|| ids.last().cloned())
        .flatten();
    Ok(Json(json!({ "data": data, "next_cursor": next })))
}
