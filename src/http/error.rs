//! One error type for the HTTP API, one JSON shape on the wire:
//! `{"code": "...", "detail": "..."}` (plus `field` for validation errors).
//! Internal causes are never sent to clients; the logging middleware reads
//! them from the response extensions and logs them once.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub cause: Option<Arc<anyhow::Error>>,
}

/// Attached to error responses for the logging middleware.
#[derive(Clone)]
pub struct LoggedCause(pub Arc<anyhow::Error>);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            field: None,
            cause: None,
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail);
        error.field = Some(field.into());
        error
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
        error.cause = Some(Arc::new(cause.into()));
        error
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "try again later",
        );
        error.cause = Some(Arc::new(cause.into()));
        error
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found("resource"),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "detail": self.detail });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(LoggedCause(cause));
        }
        response
    }
}
