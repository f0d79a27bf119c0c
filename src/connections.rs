//! Connections: a workspace's link to one store account or channel.
//!
//! Settings are a JSON object per platform (`shop_domain`, `store_url`, and
//! for every platform `api_base_url` and `default_region`); secrets are a JSON
//! object sealed with the master key and never shown again.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    pub platform: String,
    pub name: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secrets: Map<String, Value>,
}

/// A partial change: `settings` and `secrets` keys replace the stored ones,
/// and a `null` value removes a key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    pub name: Option<String>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secrets: Map<String, Value>,
}

impl ConnectionPatch {
    /// The connection as it will be after the patch, to validate whole.
    pub fn apply(
        self,
        platform: &str,
        name: &str,
        settings: Map<String, Value>,
        secrets: Map<String, Value>,
    ) -> ConnectionInput {
        ConnectionInput {
            platform: platform.to_string(),
            name: self.name.unwrap_or_else(|| name.to_string()),
            settings: merge(settings, self.settings),
            secrets: merge(secrets, self.secrets),
        }
    }
}

fn merge(mut base: Map<String, Value>, patch: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in patch {
        match value {
            Value::Null => base.remove(&key),
            value => base.insert(key, value),
        };
    }
    base
}

/// Why an input was refused, naming the field.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub fn validate(input: &ConnectionInput) -> Result<(), Invalid> {
    let Some(connector) = shophub_connectors::connector(&input.platform) else {
        let known: Vec<&str> = shophub_connectors::registry()
            .iter()
            .map(|c| c.platform())
            .collect();
        return Err(invalid(
            "platform",
            format!("unknown platform; expected one of {}", known.join(", ")),
        ));
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    for key in connector.required_settings() {
        require_text(&input.settings, key).map_err(|m| invalid(format!("settings.{key}"), m))?;
    }
    for key in connector.required_secrets() {
        require_text(&input.secrets, key).map_err(|m| invalid(format!("secrets.{key}"), m))?;
    }
    if let Some(value) = input.settings.get("default_region") {
        let ok = value
            .as_str()
            .is_some_and(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()));
        if !ok {
            return Err(invalid(
                "settings.default_region",
                "must be an ISO 3166-1 alpha-2 code such as CN or DE",
            ));
        }
    }
    if let Some(value) = input.settings.get("api_base_url") {
        let ok = value
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(invalid(
                "settings.api_base_url",
                "must be an http or https URL",
            ));
        }
    }
    for (key, value) in &input.secrets {
        if !value.is_string() {
            return Err(invalid(format!("secrets.{key}"), "must be a string"));
        }
    }
    Ok(())
}

/// A required value: a non-empty string, or a non-empty list of them (such
/// as a mail connection's `own_addresses`).
fn require_text(object: &Map<String, Value>, key: &str) -> Result<(), &'static str> {
    let filled = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    match object.get(key) {
        None => Err("is required"),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(filled) => Ok(()),
        Some(_) => Err("must be a non-empty string or list of strings"),
    }
}

/// The region used to read phone numbers without a country code.
pub fn default_region(settings: &str) -> Option<String> {
    let settings: Map<String, Value> = serde_json::from_str(settings).ok()?;
    settings
        .get("default_region")?
        .as_str()
        .map(str::to_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: Value) -> ConnectionInput {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn names_the_missing_field() {
        let missing =
            input(json!({"platform": "shopify", "name": "s", "secrets": {"webhook_secret": "x"}}));
        assert_eq!(
            validate(&missing).unwrap_err().field,
            "settings.shop_domain"
        );
        let unknown = input(json!({"platform": "ebay", "name": "s"}));
        assert_eq!(validate(&unknown).unwrap_err().field, "platform");
        let region = input(json!({"platform": "woocommerce", "name": "w",
            "settings": {"store_url": "https://x", "default_region": "Germany"},
            "secrets": {"webhook_secret": "x"}}));
        assert_eq!(
            validate(&region).unwrap_err().field,
            "settings.default_region"
        );
    }

    #[test]
    fn reads_the_default_region() {
        assert_eq!(
            default_region(r#"{"default_region":"cn"}"#).as_deref(),
            Some("CN")
        );
        assert_eq!(default_region("{}"), None);
    }
}
