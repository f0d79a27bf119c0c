//! From a profile view to the [`Contact`] a destination receives.
//!
//! The view is read as JSON by dotted paths, so the mapping keeps working
//! as the profile gains fields (golden record, consent, tags, segments).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shophub_connectors::destinations::{Consent, Contact};

/// Tool property -> view path, used when a destination names no mapping.
pub const DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("order_count", "traits.order_count"),
    ("total_spent", "traits.total_spent"),
    ("lifecycle_stage", "traits.lifecycle_stage"),
    ("value_tier", "traits.value_tier"),
];

/// The value at a dotted path (`golden.city.value`, `emails.0`).
pub fn lookup<'a>(view: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(view, |at, step| match at {
        Value::Object(map) => map.get(step),
        Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A golden field's value, else the first of the plain list.
fn best(view: &Value, golden: &str, list: &str) -> Option<String> {
    text(lookup(view, &format!("golden.{golden}.value")))
        .or_else(|| text(lookup(view, &format!("{list}.0"))))
}

/// Splits a full name: the first word is the first name, the rest the last
/// name; a name without spaces (often Chinese) is kept whole as first name.
fn split_name(name: &str) -> (Option<String>, Option<String>) {
    match name.trim().split_once(char::is_whitespace) {
        Some((first, last)) => (Some(first.to_string()), Some(last.trim().to_string())),
        None => (Some(name.trim().to_string()), None),
    }
}

/// The latest explicit choice for an identifier on a channel.
fn consent_for(view: &Value, identifier: Option<String>, channel: &str) -> Option<bool> {
    let identifier = identifier?;
    let entries = lookup(view, "consent")?.as_array()?;
    entries
        .iter()
        .filter(|e| {
            e.get("identifier").and_then(Value::as_str) == Some(identifier.as_str())
                && e.get("channel").and_then(Value::as_str) == Some(channel)
        })
        .max_by_key(|e| {
            e.get("at")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .and_then(|e| e.get("granted").and_then(Value::as_bool))
}

pub fn contact(profile_id: &str, view: &Value, mapping: Option<&Map<String, Value>>) -> Contact {
    let email = best(view, "email", "emails").map(|e| e.to_lowercase());
    let phone = best(view, "phone", "phones");
    let name = text(lookup(view, "golden.name.value")).or_else(|| text(lookup(view, "name")));
    let (first_name, last_name) = name.as_deref().map_or((None, None), split_name);
    let mut properties = Map::new();
    match mapping {
        Some(mapping) => {
            for (property, path) in mapping {
                let value = path.as_str().and_then(|p| lookup(view, p)).cloned();
                properties.insert(property.clone(), value.unwrap_or(Value::Null));
            }
        }
        None => {
            for (property, path) in DEFAULT_PROPERTIES {
                if let Some(value) = lookup(view, path) {
                    properties.insert(property.to_string(), value.clone());
                }
            }
        }
    }
    let consent = Consent {
        email_marketing: consent_for(
            view,
            email.as_ref().map(|e| format!("email:{e}")),
            "email_marketing",
        ),
        sms: consent_for(view, phone.as_ref().map(|p| format!("phone:{p}")), "sms"),
    };
    let tags = lookup(view, "tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Contact {
        profile_id: profile_id.to_string(),
        email,
        phone,
        first_name,
        last_name,
        properties,
        consent,
        tags,
    }
}

/// Whether the profile belongs to a segment (`view.segments`).
pub fn in_segment(view: &Value, segment_id: &str) -> bool {
    lookup(view, "segments")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(segment_id)))
}

/// What the destination last received, to skip unchanged contacts.
pub fn hash(contact: &Contact) -> String {
    let bytes = serde_json::to_vec(contact).expect("a contact serialises");
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_the_default_contact() {
        let view = json!({
            "name": "Ada Lovelace", "emails": ["ADA@example.com"], "phones": ["+8613812345678"],
            "golden": {"name": {"value": "Ada King Lovelace"}, "email": null},
            "traits": {"order_count": 3, "total_spent": {"EUR": "30.00"}, "lifecycle_stage": "active"},
            "tags": ["vip"],
            "consent": [
                {"identifier": "email:ada@example.com", "channel": "email_marketing", "granted": true, "at": "2026-01-01T00:00:00Z"},
                {"identifier": "email:ada@example.com", "channel": "email_marketing", "granted": false, "at": "2026-02-01T00:00:00Z"}
            ]
        });
        let c = contact("prf_1", &view, None);
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.first_name.as_deref(), Some("Ada"));
        assert_eq!(c.last_name.as_deref(), Some("King Lovelace"));
        assert_eq!(c.properties["order_count"], json!(3));
        assert!(!c.properties.contains_key("value_tier"));
        assert_eq!(c.consent.email_marketing, Some(false));
        assert_eq!(c.consent.sms, None);
        assert_eq!(c.tags, vec!["vip".to_string()]);
    }

    #[test]
    fn a_mapping_names_the_properties() {
        let view = json!({"traits": {"order_count": 2}});
        let mapping = json!({"orders": "traits.order_count", "city": "golden.city.value"});
        let c = contact("p", &view, mapping.as_object());
        assert_eq!(c.properties["orders"], json!(2));
        assert_eq!(c.properties["city"], Value::Null);
        assert_ne!(
            hash(&c),
            hash(&contact("p", &json!({}), mapping.as_object()))
        );
    }
}
