//! The identity graph through the API: why a profile holds its records
//! (`/explain`), taking records out (`/split`), detaching an identity
//! (`/unlink`), the key values that do not link (`/identity/protected`),
//! and erasing a record (`DELETE /records/...`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::identity::default_blocked;
use crate::resolve::graph;
use crate::store::{LinkRow, RecordId};

/// The kinds of identifier a person may protect or unlink.
const KEY_KINDS: &[&str] = &["email", "phone", "customer_id", "wechat_unionid"];

pub async fn explain(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let profile = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let links = state.store.explain(&profile.id).await?;
    let records = state.store.profile_sources(&profile.id).await?;
    Ok(Json(json!({
        "profile_id": profile.id,
        "records": records,
        "links": links.iter().map(render_link).collect::<Vec<_>>(),
    })))
}

fn render_link(link: &LinkRow) -> Value {
    let evidence: Value = serde_json::from_str(&link.evidence).unwrap_or(Value::Null);
    json!({
        "id": link.id,
        "rule": link.rule,
        "score": link.score,
        "records": [
            {"connection_id": link.a_connection, "platform": link.a_platform, "kind": link.a_kind, "external_id": link.a_external},
            {"connection_id": link.b_connection, "platform": link.b_platform, "kind": link.b_kind, "external_id": link.b_external},
        ],
        "evidence": evidence,
        "created_at": to_rfc3339(link.created_at),
        "explanation": sentence(link, &evidence),
    })
}

/// One line a person can read: "same phone +8613812345678 on taobao order
/// 123 and whatsapp message wamid.1, 2026-06-01".
fn sentence(link: &LinkRow, evidence: &Value) -> String {
    let date = to_rfc3339(link.created_at)
        .get(..10)
        .unwrap_or_default()
        .to_string();
    let a = format!("{} {} {}", link.a_platform, link.a_kind, link.a_external);
    let b = format!("{} {} {}", link.b_platform, link.b_kind, link.b_external);
    match link.rule.strip_prefix("key:") {
        Some(kind) => {
            let value = evidence["value"].as_str().unwrap_or_default();
            format!(
                "same {} {value} on {a} and {b}, {date}",
                kind.replace('_', " ")
            )
        }
        None if link.rule == "manual" => format!("merged by a person: {a} and {b}, {date}"),
        None => format!(
            "{} match (score {:.3}) between {a} and {b}, {date}",
            link.rule,
            link.score.unwrap_or_default()
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    records: Vec<RecordId>,
}

/// Moves chosen records out of a profile into a new one. The larger part
/// keeps the id; the parts are never joined again by a rule.
pub async fn split(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(request): AppJson<SplitRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let profile = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let held = state.store.profile_sources(&profile.id).await?;
    let mut moving = request.records;
    moving.sort();
    moving.dedup();
    if moving.is_empty() {
        return Err(ApiError::validation("records", "name at least one record"));
    }
    if let Some(stranger) = moving.iter().find(|r| !held.contains(r)) {
        return Err(ApiError::validation(
            "records",
            format!(
                "{} {} of connection {} is not in this profile",
                stranger.kind, stranger.external_id, stranger.connection_id
            ),
        ));
    }
    if moving.len() == held.len() {
        return Err(ApiError::validation(
            "records",
            "leave at least one record in the profile",
        ));
    }
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let into = graph::split(tx.as_mut(), &workspace_id, &profile.id, &moving, now).await?;
    tx.commit().await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "profile_id": profile.id, "into": into })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    kind: String,
    value: String,
    #[serde(default)]
    reason: Option<String>,
}

impl KeyValue {
    fn validate(&self) -> Result<(), ApiError> {
        if !KEY_KINDS.contains(&self.kind.as_str()) {
            return Err(ApiError::validation(
                "kind",
                "must be email, phone, customer_id or wechat_unionid",
            ));
        }
        if self.value.trim().is_empty() || self.value.len() > 320 {
            return Err(ApiError::validation(
                "value",
                "must be a non-empty identifier",
            ));
        }
        Ok(())
    }
}

/// Detaches an identity: its value stops linking records in the workspace,
/// and the profile splits where only that value held it together.
pub async fn unlink(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(request): AppJson<KeyValue>,
) -> Result<Json<Value>, ApiError> {
    request.validate()?;
    let profile = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let reason = request
        .reason
        .clone()
        .unwrap_or_else(|| format!("unlinked from profile {} by a person", profile.id));
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let affected = graph::protect_value(
        tx.as_mut(),
        &workspace_id,
        (&request.kind, &request.value),
        "unlinked",
        &reason,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({ "profile_id": profile.id, "profiles": affected }),
    ))
}

pub async fn list_protected(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<Value>, ApiError> {
    let mut values: Vec<Value> = default_blocked()
        .iter()
        .map(|(kind, value)| {
            json!({"kind": kind, "value": value, "source": "default",
                   "reason": "a placeholder value, never a person's"})
        })
        .collect();
    for row in state.store.protected_values(&workspace_id).await? {
        values.push(json!({
            "kind": row.key_kind, "value": row.key_value, "source": row.source,
            "reason": row.reason, "created_at": to_rfc3339(row.created_at),
        }));
    }
    Ok(Json(json!({ "data": values })))
}

/// Blocks a value from linking (a shop's own phone, a shared company
/// address); profiles it held together are recomputed.
pub async fn protect(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppJson(request): AppJson<KeyValue>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    request.validate()?;
    let reason = request
        .reason
        .clone()
        .unwrap_or_else(|| "configured by the operator".to_string());
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let affected = graph::protect_value(
        tx.as_mut(),
        &workspace_id,
        (&request.kind, &request.value),
        "configured",
        &reason,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "kind": request.kind, "value": request.value, "profiles": affected })),
    ))
}

/// Lets a value link again from now on; profiles already apart stay apart
/// until a record carrying it arrives or `shophub resolve rebuild` runs.
pub async fn unprotect(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path((kind, value)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let removed = tx.unprotect(&workspace_id, &kind, &value).await?;
    tx.commit().await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("protected value"))
    }
}

/// Erases one source record; the profile is recomputed without it.
pub async fn erase_record(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path((connection_id, kind, external_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = RecordId {
        connection_id,
        kind,
        external_id,
    };
    let now = now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let profile = graph::erase(tx.as_mut(), &workspace_id, &record, now)
        .await?
        .ok_or_else(|| ApiError::not_found("record"))?;
    tx.commit().await?;
    Ok(Json(json!({ "erased": record, "profile_id": profile })))
}
