//! Shopify's OAuth install flow.
//!
//! `POST /v1/connections/{id}/install` (with an API key) answers the URL to
//! send the merchant to, and remembers a one-time `state` for the
//! connection. Shopify then redirects the merchant to
//! `GET /oauth/shopify/callback`, which is trusted only if its `state` was
//! issued here within the last ten minutes and its HMAC verifies with the
//! app's client secret. The code is exchanged for an access token, stored
//! sealed with the connection's other secrets, and webhooks are registered.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use rand::RngCore;
use serde_json::{json, Map, Value};
use shophub_connectors::poll::Api;
use shophub_connectors::shopify::oauth;

use super::auth::WorkspaceId;
use super::error::ApiError;
use super::AppState;
use crate::clock::now_ms;

const STATE_TTL_MS: i64 = 10 * 60 * 1000;
const DEFAULT_SCOPES: &str = "read_orders,read_customers";

pub async fn start(
    State(state): State<AppState>,
    WorkspaceId(workspace_id): WorkspaceId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_connection(&workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    if row.platform != "shopify" {
        return Err(ApiError::validation(
            "platform",
            "only shopify connections install through OAuth",
        ));
    }
    let public_url = state.syncer.public_url().ok_or_else(|| {
        ApiError::validation(
            "public_url",
            "set the hub's public_url so Shopify can redirect back",
        )
    })?;
    let settings: Map<String, Value> = serde_json::from_str(&row.settings).unwrap_or_default();
    let text = |key: &str| {
        settings
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let client_id = text("client_id")
        .ok_or_else(|| ApiError::validation("settings.client_id", "is required for OAuth"))?;
    let shop = text("shop_domain").unwrap_or_default();
    let scopes: Vec<&str> = text("scopes")
        .unwrap_or(DEFAULT_SCOPES)
        .split(',')
        .map(str::trim)
        .collect();

    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let redirect = format!("{public_url}/oauth/shopify/callback");
    let url = oauth::install_url(shop, client_id, &scopes, &redirect, &nonce)
        .map_err(|e| ApiError::validation("settings.shop_domain", e.to_string()))?;
    state.store.save_oauth_state(&nonce, &id, now_ms()).await?;
    Ok(Json(json!({ "install_url": url })))
}

pub async fn shopify_callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = query.ok_or_else(|| ApiError::bad_request("the callback has no query"))?;
    let nonce = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "state")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ApiError::bad_request("the callback has no state"))?;
    let id = state
        .store
        .take_oauth_state(&nonce, now_ms() - STATE_TTL_MS)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request("unknown or expired state; start the install again")
        })?;
    let connection = state
        .store
        .connection_secrets(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    let mut secrets: Map<String, Value> = state
        .master_key
        .open(&connection.secrets, &id)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let settings: Map<String, Value> =
        serde_json::from_str(&connection.settings).unwrap_or_default();
    let text = |map: &Map<String, Value>, key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // Shopify signs webhooks and OAuth callbacks with the app's client secret.
    let client_secret = match text(&secrets, "client_secret") {
        secret if !secret.is_empty() => secret,
        _ => text(&secrets, "webhook_secret"),
    };
    let callback = oauth::verify_callback(&query, &client_secret, &nonce, Utc::now())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
    if !callback
        .shop
        .eq_ignore_ascii_case(&text(&settings, "shop_domain"))
    {
        return Err(ApiError::bad_request("the callback is for another shop"));
    }

    let base_url = match text(&settings, "api_base_url") {
        url if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => format!("https://{}", callback.shop),
    };
    let api = Api {
        http: state.syncer.client(),
        base_url,
        settings: &settings,
        secrets: &secrets,
        default_region: None,
        now: Utc::now(),
    };
    let token = oauth::exchange_code(
        &api,
        &text(&settings, "client_id"),
        &client_secret,
        &callback.code,
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "exchange_failed", e.to_string()))?;
    secrets.insert("access_token".into(), json!(token.access_token));
    if let Some(refresh) = &token.refresh_token {
        secrets.insert("refresh_token".into(), json!(refresh));
    }
    let sealed = state.master_key.seal(
        &serde_json::to_vec(&secrets).map_err(ApiError::internal)?,
        &id,
    );
    state
        .store
        .update_connection_secrets(&id, &sealed, now_ms())
        .await?;

    let webhooks = match state.syncer.ensure_webhooks(&id).await {
        Ok(changes) => json!(changes),
        Err(error) => json!([format!("webhook registration failed: {error}")]),
    };
    Ok(Json(
        json!({ "status": "connected", "connection_id": id, "scope": token.scope, "webhooks": webhooks }),
    ))
}
