//! `/v1/profiles`: find a buyer by any identity, read the unified profile
//! and its timeline.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shophub_connectors::identity::{normalise_email, normalise_phone};
use shophub_connectors::model::RecordBody;

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery};
use super::AppState;
use crate::clock::{now_ms, to_rfc3339};
use crate::profile::consent;
use crate::profile::{decode_record, rfc3339, ProfileView};
use crate::resolve::refresh_profile;
use crate::store::{
    NewConsent, ProfileQuery, ProfileRow, ProfileStub, StoredRecord, TimelineFilter, WriteTx,
};

#[derive(Deserialize)]
pub struct FindQuery {
    email: Option<String>,
    phone: Option<String>,
    /// Region for reading a phone written without a country code.
    region: Option<String>,
    platform: Option<String>,
    external_id: Option<String>,
}

pub async fn find(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    AppQuery(query): AppQuery<FindQuery>,
) -> Result<Json<Value>, ApiError> {
    let lookup = match (
        &query.email,
        &query.phone,
        &query.platform,
        &query.external_id,
    ) {
        (Some(email), None, None, None) => ProfileQuery::Email(
            normalise_email(email)
                .ok_or_else(|| ApiError::validation("email", "not a valid email address"))?,
        ),
        (None, Some(phone), None, None) => ProfileQuery::Phone(
            normalise_phone(phone, query.region.as_deref()).ok_or_else(|| {
                ApiError::validation(
                    "phone",
                    "not a valid phone number (give +country code, or region=XX)",
                )
            })?,
        ),
        (None, None, Some(platform), Some(external_id)) => ProfileQuery::External {
            platform: platform.clone(),
            external_id: external_id.clone(),
        },
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of: email, phone, or platform with external_id",
            ))
        }
    };
    let mut data = Vec::new();
    for id in state.store.find_profiles(&workspace_id, &lookup).await? {
        if let Some(row) = state.store.get_profile(&workspace_id, &id).await? {
            data.push(render(&row)?);
        }
    }
    Ok(Json(json!({ "data": data })))
}

pub async fn show(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    Ok(Json(render(&row)?))
}

#[derive(Deserialize)]
pub struct TimelineQuery {
    limit: Option<i64>,
    /// order, message or review.
    kind: Option<String>,
    /// A message's channel (`whatsapp`, `email`...), or a record's platform.
    channel: Option<String>,
    conversation: Option<String>,
}

pub async fn timeline(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppQuery(query): AppQuery<TimelineQuery>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    if let Some(kind) = query.kind.as_deref() {
        if !["order", "message", "review"].contains(&kind) {
            return Err(ApiError::validation(
                "kind",
                "must be order, message or review",
            ));
        }
    }
    let filter = TimelineFilter {
        kind: query.kind,
        channel: query.channel,
        conversation_id: query.conversation,
    };
    let records = state.store.timeline(&row.id, &filter, limit).await?;
    let complaints = state.store.profile_complaints(&row.id).await?;
    let mut data = Vec::with_capacity(records.len());
    for record in &records {
        let mut entry = timeline_entry(record)?;
        let complaint = complaints.iter().find(|c| {
            c.connection_id == record.connection_id
                && c.record_kind == record.kind
                && c.external_id == record.external_id
        });
        if let Some(complaint) = complaint {
            entry["complaint"] = json!({ "id": complaint.id, "severity": complaint.severity, "status": complaint.status });
        }
        data.push(entry);
    }
    Ok(Json(json!({ "profile_id": row.id, "data": data })))
}

/// `GET /v1/profiles/{id}/conversations`: chats and mail threads, most
/// recent first; `timeline?conversation=ID` shows one.
pub async fn conversations(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_profile(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let data: Vec<Value> = state
        .store
        .conversations(&row.id)
        .await?
        .iter()
        .map(|c| {
            json!({
                "conversation_id": c.conversation_id,
                "channel": c.channel,
                "messages": c.messages,
                "first_at": to_rfc3339(c.first_at),
                "last_at": to_rfc3339(c.last_at),
            })
        })
        .collect();
    Ok(Json(json!({ "profile_id": row.id, "data": data })))
}

fn render(row: &ProfileRow) -> Result<Value, ApiError> {
    let view: ProfileView = serde_json::from_str(&row.view).map_err(ApiError::internal)?;
    Ok(json!({
        "id": row.id,
        "name": view.name,
        "emails": view.emails,
        "phones": view.phones,
        "identities": view.identities,
        "traits": view.traits,
        "tags": view.tags,
        "segments": view.segments,
        "golden": view.golden,
        "consent": view.consent,
        "created_at": to_rfc3339(row.created_at),
        "updated_at": to_rfc3339(row.updated_at),
    }))
}

fn timeline_entry(stored: &StoredRecord) -> Result<Value, ApiError> {
    let record = decode_record(stored).map_err(ApiError::internal)?;
    let mut entry = json!({
        "type": stored.kind,
        "platform": stored.platform,
        "connection_id": stored.connection_id,
        "external_id": stored.external_id,
        "occurred_at": rfc3339(record.occurred_at),
        "updated_at": rfc3339(record.version),
    });
    if let RecordBody::Order(order) = &record.body {
        entry["order"] = json!({
            "number": order.number,
            "status": order.status,
            "currency": order.currency,
            "total": order.total.to_string(),
            "line_items": order.line_items,
        });
    }
    if let RecordBody::Review(review) = &record.body {
        entry["review"] = json!({
            "product": review.product,
            "rating": review.rating.to_string(),
            "rating_scale": review.rating_scale.to_string(),
            "score": review.score,
            "text": review.text,
        });
    }
    if let RecordBody::Message(message) = &record.body {
        entry["message"] = json!({
            "conversation_id": message.conversation_id,
            "channel": message.channel,
            "direction": message.direction,
            "sender": message.sender_name,
            "subject": message.subject,
            "text": message.text,
            "attachments": message.attachments,
        });
    }
    Ok(entry)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChoice {
    identifier: String,
    channel: String,
    granted: bool,
    source: String,
    /// When the person chose (RFC 3339); now if absent.
    at: Option<String>,
}

/// `POST /v1/profiles/{id}/consent`: records a person's choice for one of
/// the profile's emails or phones. A choice older than the one stored for
/// that identifier and channel is not applied (`"applied": false`).
pub async fn set_consent(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
    AppJson(choice): AppJson<ConsentChoice>,
) -> Result<Json<Value>, ApiError> {
    let identifier = consent::parse_identifier(&choice.identifier).ok_or_else(|| {
        ApiError::validation(
            "identifier",
            "must be email:<address> or phone:<+country number>",
        )
    })?;
    if !consent::CHANNELS.contains(&choice.channel.as_str()) {
        return Err(ApiError::validation(
            "channel",
            "must be email_marketing, sms or chat",
        ));
    }
    let source = choice.source.trim();
    if source.is_empty() || source.len() > 200 {
        return Err(ApiError::validation(
            "source",
            "must be 1 to 200 characters",
        ));
    }
    let now = now_ms();
    let chosen_at = match choice.at.as_deref() {
        None => now,
        Some(at) => chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|_| ApiError::validation("at", "must be an RFC 3339 time"))?
            .timestamp_millis(),
    };
    let (mut tx, live) = write_on_live_profile(&state, &workspace_id, &id).await?;
    let held = tx.profile_values(&live.id).await?;
    if !held
        .iter()
        .any(|(kind, value)| format!("{kind}:{value}") == identifier)
    {
        return Err(ApiError::validation(
            "identifier",
            "is not an email or phone of this profile",
        ));
    }
    let applied = tx
        .record_consent(&NewConsent {
            workspace_id: &workspace_id,
            identifier: &identifier,
            channel: &choice.channel,
            granted: choice.granted,
            source,
            chosen_at,
            now,
        })
        .await?;
    refresh_profile(tx.as_mut(), &workspace_id, &live.id, false, now).await?;
    let view: ProfileView =
        serde_json::from_str(&tx.profile_view(&live.id).await?).map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(json!({
        "profile_id": live.id,
        "applied": applied,
        "consent": view.consent,
    })))
}

/// `DELETE /v1/profiles/{id}`: erases the person (see `profile::erase`).
pub async fn erase(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (mut tx, live) = write_on_live_profile(&state, &workspace_id, &id).await?;
    let records =
        crate::profile::erase::erase(tx.as_mut(), &workspace_id, &live.id, now_ms()).await?;
    tx.commit().await?;
    Ok(Json(json!({ "erased": live.id, "records": records })))
}

/// Opens a write transaction on the live profile `id` (or the one an alias
/// of it was merged into), checked again inside the transaction.
async fn write_on_live_profile(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<(Box<dyn WriteTx>, ProfileStub), ApiError> {
    let row = state
        .store
        .get_profile(workspace_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let mut tx = state.store.begin_write(workspace_id).await?;
    let live = tx
        .live_profile(&row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    Ok((tx, live))
}
