//! `/v1/destinations`: the tools the hub keeps equal to its profiles:
//! manage them, see how far each is, what was sent per profile, what would
//! be sent next, and replay what was given up on.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shophub_connectors::destinations::DestinationError;

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::destinations::engine::{breaker_state, take_batch};
use crate::destinations::input::{merge, validate, DestinationInput, DestinationPatch};
use crate::destinations::plan::Planner;
use crate::destinations::{file, mapping, op_name, secrets};
use crate::store::{DestinationRow, DestinationUpdate, NewDestination};

/// How long a replaced webhook secret keeps signing, unless
/// `settings.rotation_grace_seconds` says otherwise.
const DEFAULT_ROTATION_GRACE_SECONDS: i64 = 24 * 3600;

fn invalid(e: crate::connections::Invalid) -> ApiError {
    ApiError::validation(e.field, e.message)
}

/// Builds the client once, so a third-party kind's own checks run and a
/// kind nobody serves is refused.
fn check_client(input: &DestinationInput) -> Result<(), ApiError> {
    match crate::destinations::open(
        &input.kind,
        &input.settings,
        &input.secrets,
        reqwest::Client::new(),
        now_ms(),
    ) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::bad_request("kind not supported")),
        Err(DestinationError::Permanent(message)) => Err(ApiError::validation("settings", message)),
        Err(other) => Err(ApiError::validation("settings", other.to_string())),
    }
}

pub async fn create(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppJson(input): AppJson<DestinationInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    validate(&input).map_err(invalid)?;
    check_client(&input)?;
    let id = format!("dst_{}", uuid::Uuid::now_v7().simple());
    let sealed = state.master_key.seal(
        &serde_json::to_vec(&input.secrets).map_err(ApiError::internal)?,
        &id,
    );
    let destination = NewDestination {
        id: id.clone(),
        workspace_id: workspace_id.clone(),
        kind: input.kind,
        name: input.name.trim().to_string(),
        settings: Value::Object(input.settings).to_string(),
        secrets: sealed,
        segment_id: input.segment_id,
        mapping: input.mapping.map(|m| Value::Object(m).to_string()),
        now: now_ms(),
    };
    state.store.create_destination(&destination).await?;
    let row = find(&state, &workspace_id, &id).await?;
    Ok((StatusCode::CREATED, Json(render(&row, None))))
}

pub async fn list(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<Value>, ApiError> {
    let rows = state.store.list_destinations(&workspace_id).await?;
    Ok(Json(
        json!({ "data": rows.iter().map(|r| render(r, None)).collect::<Vec<_>>() }),
    ))
}

/// The destination with its sync status.
pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let head = state.store.feed_head(&workspace_id).await?;
    let dead = state.store.dead_letter_count(&id).await?;
    let now = now_ms();
    let status = json!({
        "cursor": row.cursor,
        "feed_head": head,
        "lag": (head - row.cursor).max(0),
        "last_success_at": row.last_success_at.map(to_rfc3339),
        "last_error": row.last_error,
        "last_error_at": row.last_error_at.map(to_rfc3339),
        "consecutive_failures": row.consecutive_failures,
        "attempts": row.attempts,
        "breaker": breaker_state(&row, now),
        "next_attempt_at": (row.next_run_at > now).then(|| to_rfc3339(row.next_run_at)),
        "dead_letters": dead,
    });
    Ok(Json(render(&row, Some(status))))
}

pub async fn update(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(patch): AppJson<DestinationPatch>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let sealed = state
        .store
        .destination_secrets(&id)
        .await?
        .unwrap_or_default();
    let old_secrets: Map<String, Value> = state
        .master_key
        .open(&sealed, &id)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let old_settings: Map<String, Value> = serde_json::from_str(&row.settings).unwrap_or_default();
    let status = patch.status.clone().unwrap_or_else(|| row.status.clone());
    if !matches!(status.as_str(), "active" | "disabled") {
        return Err(ApiError::validation("status", "must be active or disabled"));
    }
    let mut input = DestinationInput {
        kind: row.kind.clone(),
        name: patch.name.unwrap_or_else(|| row.name.clone()),
        settings: merge(old_settings, patch.settings),
        secrets: merge(old_secrets.clone(), patch.secrets),
        segment_id: match patch.segment_id {
            Some(value) => value,
            None => row.segment_id.clone(),
        },
        mapping: match patch.mapping {
            Some(value) => value,
            None => row
                .mapping
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
        },
    };
    validate(&input).map_err(invalid)?;
    if input.kind == "webhook" {
        let grace = input
            .settings
            .get("rotation_grace_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
        secrets::retire_replaced(&old_secrets, &mut input.secrets, grace * 1000, now_ms());
    }
    check_client(&input)?;
    let sealed = state.master_key.seal(
        &serde_json::to_vec(&input.secrets).map_err(ApiError::internal)?,
        &id,
    );
    let settings = Value::Object(input.settings).to_string();
    let mapping = input.mapping.map(|m| Value::Object(m).to_string());
    let update = DestinationUpdate {
        name: input.name.trim(),
        settings: &settings,
        secrets: &sealed,
        segment_id: input.segment_id.as_deref(),
        mapping: mapping.as_deref(),
        status: &status,
        now: now_ms(),
    };
    if !state
        .store
        .update_destination(&workspace_id, &id, &update)
        .await?
    {
        return Err(ApiError::not_found("destination"));
    }
    let row = find(&state, &workspace_id, &id).await?;
    Ok(Json(render(&row, None)))
}

pub async fn delete(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state
        .store
        .delete_destination(&workspace_id, &id, now_ms())
        .await?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("destination")),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    profile_id: Option<String>,
    limit: Option<i64>,
}

/// What was sent for a profile (or for everyone), newest first.
pub async fn log(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    find(&state, &workspace_id, &id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .destination_log(&id, query.profile_id.as_deref(), limit)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "profile_id": r.profile_id, "seq": r.seq, "message_id": r.message_id,
                "op": r.op, "result": r.result, "error": r.error, "at": to_rfc3339(r.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
}

pub async fn dead_letters(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    find(&state, &workspace_id, &id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.store.dead_letters(&id, "dead", limit).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "profile_id": r.profile_id, "seq": r.seq, "error": r.error,
                "status": r.status, "created_at": to_rfc3339(r.created_at),
                "change": serde_json::from_str::<Value>(&r.change).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    ids: Vec<i64>,
    /// Dead letters created in `[from, to]` (RFC 3339).
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Queues dead letters to be sent again (by id, or created in a time range).
pub async fn replay(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(request): AppJson<ReplayRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    find(&state, &workspace_id, &id).await?;
    let range = match (request.from, request.to) {
        (None, None) => None,
        (from, to) => Some((
            from.map_or(0, |t| t.timestamp_millis()),
            to.map_or(i64::MAX, |t| t.timestamp_millis()),
        )),
    };
    if request.ids.is_empty() && range.is_none() {
        return Err(ApiError::validation(
            "ids",
            "name dead-letter ids, or a from/to time range",
        ));
    }
    let queued = state.store.queue_replay(&id, &request.ids, range).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": queued }))))
}

#[derive(Debug, Deserialize)]
pub struct DryRunQuery {
    limit: Option<usize>,
}

/// The changes the next runs would send, without sending or advancing.
pub async fn dry_run(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    Query(query): Query<DryRunQuery>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let rows = state.store.changes(&workspace_id, row.cursor, 200).await?;
    let planned = Planner::new(state.store.as_ref(), &row).plan(&rows).await?;
    let (batch, cursor) = take_batch(planned, limit);
    let changes: Vec<Value> = batch
        .iter()
        .map(|p| {
            json!({
                "seq": p.seq, "profile_id": p.profile_id, "message_id": p.message_id,
                "op": op_name(&p.change), "change": p.change,
            })
        })
        .collect();
    Ok(Json(json!({
        "cursor": row.cursor,
        "cursor_after": if rows.is_empty() { row.cursor } else { cursor },
        "changes": changes,
    })))
}

/// Writes every current contact of a file destination to a snapshot file.
pub async fn snapshot(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = find(&state, &workspace_id, &id).await?;
    if row.kind != "file" {
        return Err(ApiError::validation(
            "kind",
            "snapshots are for file destinations",
        ));
    }
    let settings: Map<String, Value> = serde_json::from_str(&row.settings).unwrap_or_default();
    let mapping_of: Option<Map<String, Value>> = row
        .mapping
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok());
    let mut contacts = Vec::new();
    let mut after = String::new();
    loop {
        let ids = state.store.profile_ids(&workspace_id, &after, 500).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        for profile_id in ids {
            let Some(profile) = state.store.get_profile(&workspace_id, &profile_id).await? else {
                continue;
            };
            let view: Value = serde_json::from_str(&profile.view).unwrap_or(Value::Null);
            if row
                .segment_id
                .as_deref()
                .is_some_and(|s| !mapping::in_segment(&view, s))
            {
                continue;
            }
            contacts.push(mapping::contact(&profile.id, &view, mapping_of.as_ref()));
        }
        after = last;
    }
    let now = now_ms();
    let path = tokio::task::spawn_blocking(move || {
        file::write_snapshot(&settings, &contacts, now).map(|p| (p, contacts.len()))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "path": path.0.display().to_string(), "contacts": path.1 })),
    ))
}

async fn find(state: &AppState, workspace_id: &str, id: &str) -> Result<DestinationRow, ApiError> {
    state
        .store
        .get_destination(workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))
}

/// The public shape of a destination. Secrets are never part of it.
fn render(row: &DestinationRow, status: Option<Value>) -> Value {
    let mut body = json!({
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "settings": serde_json::from_str::<Value>(&row.settings).unwrap_or_else(|_| json!({})),
        "segment_id": row.segment_id,
        "mapping": row.mapping.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "status": row.status,
        "created_at": to_rfc3339(row.created_at),
    });
    if let Some(status) = status {
        body["sync"] = status;
    }
    body
}
