//! Workspaces: the unit of tenancy. Every row belongs to one, and an API key
//! sees only its own.

use crate::clock::now_ms;
use crate::crypto::{hash_api_key, new_api_key};
use crate::store::{NewWorkspace, Store, StoreResult};

pub struct CreatedWorkspace {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

pub async fn create(store: &dyn Store, name: &str) -> StoreResult<CreatedWorkspace> {
    let id = format!("ws_{}", uuid::Uuid::now_v7().simple());
    let api_key = new_api_key();
    store
        .create_workspace(&NewWorkspace {
            id: id.clone(),
            name: name.to_string(),
            api_key_id: format!("key_{}", uuid::Uuid::now_v7().simple()),
            api_key_hash: hash_api_key(&api_key),
            now: now_ms(),
        })
        .await?;
    Ok(CreatedWorkspace { id, api_key })
}
