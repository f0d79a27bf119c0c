//! `GET /v1/changes`: the ordered change feed, read from a cursor.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::AppQuery;
use super::AppState;
use crate::clock::to_rfc3339;

#[derive(Deserialize)]
pub struct FeedQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

pub async fn changes(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<FeedQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .changes(&workspace_id, query.after, limit)
        .await?;
    let next = rows.last().map_or(query.after, |row| row.seq);
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut change = json!({
                "seq": row.seq,
                "type": row.kind,
                "profile_id": row.profile_id,
                "created_at": to_rfc3339(row.created_at),
            });
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&row.data) {
                for (key, value) in fields {
                    change[key] = value;
                }
            }
            change
        })
        .collect();
    Ok(Json(
        json!({ "data": data, "next_after": next, "has_more": data.len() as i64 == limit }),
    ))
}
