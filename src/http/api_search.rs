//! `GET /v1/profiles/search?q=...&limit=&region=`: one box that finds a
//! buyer by email, phone, last four digits, platform id, order number or
//! name, best match first.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppQuery;
use super::AppState;
use crate::profile::ProfileView;
use crate::search::query::MAX_QUERY_CHARS;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
    /// Region for a phone written without a country code; the workspace's
    /// connections' default regions are tried too.
    region: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Err(ApiError::bad_request("q is required"));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut regions: Vec<String> = query
        .region
        .iter()
        .map(|r| r.trim().to_ascii_uppercase())
        .collect();
    for connection in state.store.list_connections(&workspace_id).await? {
        if let Some(region) = crate::connections::default_region(&connection.settings) {
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
    }
    let found =
        crate::search::search(state.store.as_ref(), &workspace_id, q, &regions, limit).await?;
    let mut data = Vec::with_capacity(found.len());
    for hit in found {
        let Some(row) = state
            .store
            .get_profile(&workspace_id, &hit.profile_id)
            .await?
        else {
            continue;
        };
        // A profile absorbed since it was indexed is found as its survivor.
        if row.id != hit.profile_id {
            continue;
        }
        let view: ProfileView = serde_json::from_str(&row.view).map_err(ApiError::internal)?;
        let matched: Vec<&str> = hit.matched.iter().map(|f| f.as_str()).collect();
        data.push(json!({
            "profile_id": row.id,
            "score": hit.score,
            "matched": matched,
            "name": view.name,
            "emails": view.emails,
            "phones": view.phones,
        }));
    }
    Ok(Json(json!({ "data": data })))
}
