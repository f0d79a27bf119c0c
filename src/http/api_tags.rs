//! `/v1/profiles/{id}/tags` and `/v1/profiles/{id}/timezone`: what people
//! set on a profile by hand. Both follow the profile through merges.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;
use crate::profile::ProfileView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// Adds and removes manual tags; the profile is recomputed in the same
/// transaction, so segments and `profile.updated` follow at once.
pub async fn change(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(body): AppJson<TagChange>,
) -> Result<Json<Value>, ApiError> {
    let add = crate::tags::validate(&body.add).map_err(|e| ApiError::validation("add", e))?;
    let remove =
        crate::tags::validate(&body.remove).map_err(|e| ApiError::validation("remove", e))?;
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::bad_request("give tags to add or remove"));
    }
    let profile_id = live_profile(&state, &workspace_id, &id).await?;
    let now = crate::clock::now_ms();
    let mut tx = state.store.begin_write(&workspace_id).await?;
    tx.change_tags(&profile_id, &add, &remove, now).await?;
    crate::resolve::refresh_profile(tx.as_mut(), &workspace_id, &profile_id, false, now).await?;
    let view: ProfileView =
        serde_json::from_str(&tx.profile_view(&profile_id).await?).map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(
        json!({ "id": profile_id, "tags": view.tags, "segments": view.segments }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimezoneBody {
    /// `+08:00`; `null` goes back to the workspace default.
    utc_offset: Option<String>,
}

/// The person's own time zone, for quiet hours and birthdays.
pub async fn set_timezone(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(body): AppJson<TimezoneBody>,
) -> Result<Json<Value>, ApiError> {
    let offset = match &body.utc_offset {
        Some(text) => {
            let offset = crate::triggers::parse_offset(text).ok_or_else(|| {
                ApiError::validation("utc_offset", "expected a UTC offset like +08:00")
            })?;
            Some(offset.to_string())
        }
        None => None,
    };
    let profile_id = live_profile(&state, &workspace_id, &id).await?;
    let mut tx = state.store.begin_write(&workspace_id).await?;
    tx.set_profile_timezone(&profile_id, offset.as_deref())
        .await?;
    tx.commit().await?;
    Ok(Json(json!({ "id": profile_id, "utc_offset": offset })))
}

/// The live profile an id stands for in the workspace (following merges).
async fn live_profile(state: &AppState, workspace_id: &str, id: &str) -> Result<String, ApiError> {
    Ok(state
        .store
        .get_profile(workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?
        .id)
}
