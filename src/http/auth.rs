//! API keys: `Authorization: Bearer <key>` names exactly one workspace.
//!
//! Only the key's SHA-256 is stored and looked up. Comparing digests by an
//! index lookup reveals nothing useful about the key: an attacker who could
//! time it would learn about the digest of their guess, not of a real key.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::crypto::hash_api_key;

/// The workspace the request's API key belongs to.
pub struct WorkspaceId(pub String);

impl FromRequestParts<AppState> for WorkspaceId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("an API key is required: Authorization: Bearer <key>")
            })?;
        match state.store.workspace_for_key(&hash_api_key(key)).await? {
            Some(workspace) => Ok(WorkspaceId(workspace)),
            None => Err(ApiError::unauthorized("the API key is not valid")),
        }
    }
}
