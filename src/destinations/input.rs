//! What `POST` and `PATCH /v1/destinations` accept, and its validation.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{secrets, KINDS};
use crate::connections::Invalid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secrets: Map<String, Value>,
    #[serde(default)]
    pub segment_id: Option<String>,
    /// Tool property name -> dotted path in the profile view.
    #[serde(default)]
    pub mapping: Option<Map<String, Value>>,
}

/// A partial change; `settings`/`secrets` keys replace stored ones and a
/// `null` removes one. `segment_id`/`mapping` set to `null` clear them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    pub name: Option<String>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secrets: Map<String, Value>,
    #[serde(default, deserialize_with = "present")]
    pub segment_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub mapping: Option<Option<Map<String, Value>>>,
    /// `active` or `disabled`.
    pub status: Option<String>,
}

/// Tells an explicit `null` (Some(None)) from an absent key (None).
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub fn merge(mut base: Map<String, Value>, patch: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in patch {
        match value {
            Value::Null => base.remove(&key),
            value => base.insert(key, value),
        };
    }
    base
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn is_http_url(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Checks what every kind shares and what the hub's own kinds need; a
/// third-party client checks its own settings when it is built.
pub fn validate(input: &DestinationInput) -> Result<(), Invalid> {
    if !KINDS.contains(&input.kind.as_str()) {
        return Err(invalid(
            "kind",
            format!("unknown kind; expected one of {}", KINDS.join(", ")),
        ));
    }
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    if let Some(value) = input.settings.get("api_base_url") {
        if !is_http_url(value) {
            return Err(invalid(
                "settings.api_base_url",
                "must be an http or https URL",
            ));
        }
    }
    if let Some(segment) = &input.segment_id {
        if segment.trim().is_empty() {
            return Err(invalid("segment_id", "must not be empty"));
        }
    }
    if let Some(mapping) = &input.mapping {
        for (key, path) in mapping {
            if !path.as_str().is_some_and(|p| !p.trim().is_empty()) {
                return Err(invalid(
                    format!("mapping.{key}"),
                    "must be a dotted path in the profile, such as traits.order_count",
                ));
            }
        }
    }
    if let Some(max) = input.settings.get("max_batch") {
        if !max.as_u64().is_some_and(|n| (1..=1000).contains(&n)) {
            return Err(invalid("settings.max_batch", "must be 1 to 1000"));
        }
    }
    match input.kind.as_str() {
        "webhook" => validate_webhook(input),
        "http" => validate_http(input),
        "file" => validate_file(input),
        _ => Ok(()),
    }
}

fn validate_url(input: &DestinationInput) -> Result<(), Invalid> {
    super::target_url(&input.settings).map(|_| ()).map_err(|_| {
        invalid(
            "settings.url",
            "must be an http or https URL (relative to settings.api_base_url when set)",
        )
    })
}

fn validate_webhook(input: &DestinationInput) -> Result<(), Invalid> {
    validate_url(input)?;
    if let Some(value) = input.secrets.get("signing_secrets") {
        let ok = value
            .as_array()
            .is_some_and(|list| list.iter().all(Value::is_string));
        if !ok {
            return Err(invalid(
                "secrets.signing_secrets",
                "must be a list of whsec_ secrets",
            ));
        }
    }
    if let Some(value) = input.secrets.get("signing_secret") {
        if !value.is_string() {
            return Err(invalid("secrets.signing_secret", "must be a whsec_ secret"));
        }
    }
    let configured = secrets::configured(&input.secrets);
    if configured.is_empty() {
        return Err(invalid("secrets.signing_secret", "is required"));
    }
    for secret in configured {
        secrets::key_of(secret).map_err(|m| invalid("secrets.signing_secret", m))?;
    }
    Ok(())
}

fn validate_http(input: &DestinationInput) -> Result<(), Invalid> {
    validate_url(input)?;
    if let Some(template) = input.settings.get("template") {
        if !(template.is_object() || template.is_array()) {
            return Err(invalid(
                "settings.template",
                "must be a JSON object or array",
            ));
        }
    }
    if let Some(value) = input.secrets.get("auth_header") {
        if !value.as_str().is_some_and(|s| !s.trim().is_empty()) {
            return Err(invalid("secrets.auth_header", "must be a non-empty string"));
        }
    }
    if let Some(value) = input.settings.get("auth_header_name") {
        let ok = value
            .as_str()
            .is_some_and(|s| reqwest::header::HeaderName::from_bytes(s.as_bytes()).is_ok());
        if !ok {
            return Err(invalid(
                "settings.auth_header_name",
                "must be an HTTP header name",
            ));
        }
    }
    Ok(())
}

fn validate_file(input: &DestinationInput) -> Result<(), Invalid> {
    let directory = input
        .settings
        .get("directory")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| invalid("settings.directory", "is required"))?;
    if !std::path::Path::new(directory).is_absolute() {
        return Err(invalid("settings.directory", "must be an absolute path"));
    }
    match input.settings.get("format").and_then(Value::as_str) {
        None | Some("jsonl") | Some("csv") => {}
        Some(_) => return Err(invalid("settings.format", "must be jsonl or csv")),
    }
    for key in ["rotate_bytes", "rotate_seconds"] {
        if let Some(value) = input.settings.get(key) {
            if !value.as_u64().is_some_and(|n| n > 0) {
                return Err(invalid(
                    format!("settings.{key}"),
                    "must be a positive integer",
                ));
            }
        }
    }
    Ok(())
}
