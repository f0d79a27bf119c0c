//! Reading platform HTTP answers into classified results.

use std::time::Duration;

use http::HeaderMap;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::poll::ConnectorError;

/// Sends a request and classifies transport failures.
pub async fn send(request: reqwest::RequestBuilder) -> Result<Response, ConnectorError> {
    request.send().await.map_err(|e| {
        if e.is_timeout() || e.is_connect() || e.is_request() {
            ConnectorError::Transient(format!("request failed: {}", e.without_url()))
        } else {
            ConnectorError::Permanent(format!("request failed: {}", e.without_url()))
        }
    })
}

/// Classifies a non-success status; `Ok` passes a success through.
pub fn check_status(response: Response) -> Result<Response, ConnectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(classify(status, response.headers()))
}

pub fn classify(status: StatusCode, headers: &HeaderMap) -> ConnectorError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ConnectorError::Unauthorized(format!("the platform answered {}", status.as_u16()))
        }
        StatusCode::TOO_MANY_REQUESTS => ConnectorError::RateLimited {
            retry_after: retry_after(headers),
        },
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            ConnectorError::Transient(format!("the platform answered {}", s.as_u16()))
        }
        s => ConnectorError::Permanent(format!("the platform answered {}", s.as_u16())),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and is
/// treated as absent, which the runner answers with its own backoff).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Reads a success body as JSON of type `T`.
pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ConnectorError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ConnectorError::Transient(format!("reading body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ConnectorError::Malformed(format!(
            "unexpected JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_reactions() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "2.5".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers),
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_millis(2500))
            }
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &HeaderMap::new()),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &HeaderMap::new()),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &HeaderMap::new()),
            ConnectorError::Permanent(_)
        ));
    }
}
