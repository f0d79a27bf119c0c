//! Wall-clock time as the database stores it: Unix epoch milliseconds.

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Epoch milliseconds as an RFC 3339 string for the API.
pub fn to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(crate::profile::rfc3339)
        .unwrap_or_default()
}
