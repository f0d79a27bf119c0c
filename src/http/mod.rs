//! The HTTP surface: webhook intake, the `/v1` API and operations endpoints.

mod api_complaints;
mod api_connections;
mod api_destinations;
mod api_feed;
mod api_identity;
mod api_inbox;
mod api_profiles;
mod api_segments;
mod api_settings;
mod api_search;
mod api_suggestions;
mod api_tags;
mod auth;
pub mod error;
mod extract;
mod oauth;
mod ops;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::crypto::MasterKey;
use crate::intake::Intake;
use crate::store::Store;
use crate::sync::Syncer;
use error::LoggedCause;

/// API request bodies (connection settings and the like) stay small.
const API_BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub master_key: MasterKey,
    pub intake: Intake,
    pub syncer: Syncer,
}

pub fn router(state: AppState, webhook_body_limit: usize) -> Router {
    let api = Router::new()
        .route(
            "/connections",
            get(api_connections::list).post(api_connections::create),
        )
        .route(
            "/connections/{id}",
            get(api_connections::show)
                .patch(api_connections::update)
                .delete(api_connections::delete),
        )
        .route(
            "/connections/{id}/backfill",
            post(api_connections::backfill),
        )
        .route("/connections/{id}/sync", post(api_connections::sync_now))
        .route(
            "/connections/{id}/webhooks",
            post(api_connections::ensure_webhooks),
        )
        .route("/connections/{id}/install", post(oauth::start))
        .route("/profiles", get(api_profiles::find))
        .route("/profiles/search", get(api_search::search))
        .route("/profiles/{id}", get(api_profiles::show))
        .route("/profiles/{id}/timeline", get(api_profiles::timeline))
        .route("/profiles/{id}/consent", post(api_profiles::set_consent))
        .route("/profiles/{id}", delete(api_profiles::erase))
        .route(
            "/settings",
            get(api_settings::show).patch(api_settings::update),
        )
        .route(
            "/profiles/{id}/conversations",
            get(api_profiles::conversations),
        )
        .route("/profiles/{id}/merge", post(api_suggestions::merge))
        .route("/profiles/{id}/explain", get(api_identity::explain))
        .route("/profiles/{id}/split", post(api_identity::split))
        .route("/profiles/{id}/unlink", post(api_identity::unlink))
        .route(
            "/records/{connection_id}/{kind}/{external_id}",
            delete(api_identity::erase_record),
        )
        .route(
            "/identity/protected",
            get(api_identity::list_protected).post(api_identity::protect),
        )
        .route(
            "/identity/protected/{kind}/{value}",
            delete(api_identity::unprotect),
        )
        .route("/suggestions", get(api_suggestions::list))
        .route("/suggestions/{id}/accept", post(api_suggestions::accept))
        .route("/suggestions/{id}/reject", post(api_suggestions::reject))
        .route("/changes", get(api_feed::changes))
        .route("/complaints", get(api_complaints::list))
        .route("/complaints/{id}/resolve", post(api_complaints::resolve))
        .route("/inbox", get(api_inbox::list))
        .route("/inbox/{id}/replay", post(api_inbox::replay))
        .route("/profiles/{id}/tags", post(api_tags::change))
        .route("/profiles/{id}/timezone", put(api_tags::set_timezone))
        .route("/segments", get(api_segments::list).post(api_segments::create))
        .route("/segments/{id}", get(api_segments::show).patch(api_segments::update).delete(api_segments::delete))
        .route("/segments/{id}/members", get(api_segments::members))
        .route(
            "/destinations",
            get(api_destinations::list).post(api_destinations::create),
        )
        .route(
            "/destinations/{id}",
            get(api_destinations::show)
                .patch(api_destinations::update)
                .delete(api_destinations::delete),
        )
        .route("/destinations/{id}/log", get(api_destinations::log))
        .route(
            "/destinations/{id}/dead-letters",
            get(api_destinations::dead_letters),
        )
        .route("/destinations/{id}/replay", post(api_destinations::replay))
        .route("/destinations/{id}/dry-run", post(api_destinations::dry_run))
        .route("/destinations/{id}/snapshot", post(api_destinations::snapshot))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));

    let webhooks = Router::new()
        .route(
            "/webhooks/{platform}/{id}",
            post(webhooks::receive).get(webhooks::handshake),
        )
        .layer(DefaultBodyLimit::max(webhook_body_limit));

    Router::new()
        .nest("/v1", api)
        .merge(webhooks)
        .route("/oauth/shopify/callback", get(oauth::shopify_callback))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { error::ApiError::not_found("route") })
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

/// One log line per request: method, route template, status and latency.
/// Query strings and bodies are never logged: they carry personal data.
async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    match response.extensions().get::<LoggedCause>() {
        Some(LoggedCause(cause)) => {
            tracing::error!(%method, %route, status, millis, error = format!("{cause:#}"), "request failed")
        }
        None if status >= 400 => tracing::info!(%method, %route, status, millis, "request refused"),
        None => tracing::debug!(%method, %route, status, millis, "request"),
    }
    response
}
