//! `/v1/settings`: the workspace's profile settings (source priority for
//! the golden record, trait thresholds). `PATCH` takes a JSON merge patch;
//! profiles pick changes up when next refreshed (a new record, or
//! `shophub profiles refresh`).

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::clock::now_ms;
use crate::profile::settings::{self, ProfileSettings};

pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
) -> Result<Json<ProfileSettings>, ApiError> {
    let stored = state.store.profile_settings(&workspace_id).await?;
    Ok(Json(settings::parse(stored.as_deref())?))
}

pub async fn update(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppJson(patch): AppJson<Value>,
) -> Result<Json<ProfileSettings>, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let mut tx = state.store.begin_write(&workspace_id).await?;
    let current = settings::load(tx.as_mut(), &workspace_id).await?;
    let updated = current
        .patched(&patch)
        .map_err(|(field, detail)| ApiError::validation(field, detail))?;
    let json = serde_json::to_string(&updated).map_err(ApiError::internal)?;
    tx.save_profile_settings(&workspace_id, &json, now_ms())
        .await?;
    tx.commit().await?;
    Ok(Json(updated))
}
