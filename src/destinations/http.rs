//! The generic HTTP JSON destination: each change is POSTed to
//! `settings.url` as `settings.template` filled in from the change.
//!
//! A template string that is exactly `{{path}}` becomes the JSON value at
//! that path (any type); `{{path}}` inside a longer string is replaced by the
//! value's text. Paths read `{"id", "type", "timestamp", "data"}`, where
//! `data` is the change (`data.op`, `data.contact.email`,
//! `data.into.properties.order_count`, ...). Without a template that object
//! itself is the body. `secrets.auth_header` is sent as
//! `settings.auth_header_name` (default `Authorization`).

use std::time::Duration;

use serde_json::{Map, Value};
use shophub_connectors::destinations::{Change, Destination, DestinationError, PushResult, Rate};

use super::mapping::lookup;
use super::{push_each, target_url, webhook};

pub struct HttpJson {
    url: url::Url,
    template: Option<Value>,
    auth: Option<(reqwest::header::HeaderName, String)>,
    http: reqwest::Client,
    rate: Rate,
    timeout: Duration,
}

impl HttpJson {
    pub fn new(
        settings: &Map<String, Value>,
        secrets: &Map<String, Value>,
        http: reqwest::Client,
    ) -> Result<HttpJson, DestinationError> {
        let auth = match secrets.get("auth_header").and_then(Value::as_str) {
            None => None,
            Some(value) => {
                let name = settings
                    .get("auth_header_name")
                    .and_then(Value::as_str)
                    .unwrap_or("Authorization");
                let name =
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        DestinationError::Permanent(
                            "settings.auth_header_name is not a header name".into(),
                        )
                    })?;
                Some((name, value.to_string()))
            }
        };
        Ok(HttpJson {
            url: target_url(settings)?,
            template: settings.get("template").cloned(),
            auth,
            http,
            rate: webhook::rate_of(settings),
            timeout: webhook::timeout_of(settings),
        })
    }
}

/// Fills a template from `context`.
pub fn render(template: &Value, context: &Value) -> Value {
    match template {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(path) = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
            {
                if !path.contains("{{") {
                    return lookup(context, path.trim()).cloned().unwrap_or(Value::Null);
                }
            }
            Value::String(interpolate(s, context))
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, context)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, context)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn interpolate(s: &str, context: &Value) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let path = rest[start + 2..start + end].trim();
        match lookup(context, path) {
            Some(Value::String(v)) => out.push_str(v),
            Some(Value::Null) | None => {}
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

#[async_trait::async_trait]
impl Destination for HttpJson {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn max_rate(&self) -> Rate {
        self.rate
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        push_each(changes, |change| {
            let (id, _, mut context) = webhook::message(change);
            context["id"] = Value::String(id.clone());
            let body = match &self.template {
                Some(template) => render(template, &context),
                None => context,
            };
            let request = self
                .http
                .post(self.url.clone())
                .timeout(self.timeout)
                .header("idempotency-key", &id)
                .json(&body);
            match &self.auth {
                Some((name, value)) => request.header(name.clone(), value),
                None => request,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_a_template() {
        let context = json!({"type": "profile.updated", "data": {"op": "upsert",
            "contact": {"email": "a@b.c", "properties": {"order_count": 3}}}});
        let template = json!({"email": "{{data.contact.email}}", "orders": "{{ data.contact.properties.order_count }}",
            "note": "{{type}} for {{data.contact.email}}", "missing": "{{data.nope}}", "fixed": 1});
        assert_eq!(
            render(&template, &context),
            json!({"email": "a@b.c", "orders": 3, "note": "profile.updated for a@b.c", "missing": null, "fixed": 1})
        );
    }
}
