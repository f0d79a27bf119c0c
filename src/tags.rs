//! Tags on profiles: manual ones people add through the API, and the tags
//! platforms keep on their customers. A profile shows both, merged.

use std::collections::BTreeSet;

use shophub_connectors::model::{RecordBody, SourceRecord};

/// Longest tag accepted, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// The form tags are stored and compared in: trimmed, inner whitespace
/// collapsed, lower case (`" VIP  Gold"` → `"vip gold"`).
pub fn normalise(tag: &str) -> String {
    tag.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Normalised, deduplicated tags from a request; the error names the problem.
pub fn validate(tags: &[String]) -> Result<Vec<String>, String> {
    let mut out = BTreeSet::new();
    for tag in tags {
        let tag = normalise(tag);
        if tag.is_empty() {
            return Err("a tag is empty".into());
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(format!("a tag is longer than {MAX_TAG_CHARS} characters"));
        }
        out.insert(tag);
    }
    Ok(out.into_iter().collect())
}

/// Tags the platforms keep on the profile's customer records.
pub fn platform_tags(customers: &[SourceRecord]) -> BTreeSet<String> {
    customers
        .iter()
        .filter_map(|record| match &record.body {
            RecordBody::Customer(customer) => Some(&customer.tags),
            _ => None,
        })
        .flatten()
        .map(|tag| normalise(tag))
        .filter(|tag| !tag.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised_and_checked() {
        assert_eq!(normalise("  VIP   Gold "), "vip gold");
        assert_eq!(
            validate(&["b".into(), " A ".into(), "a".into()]).unwrap(),
            ["a", "b"]
        );
        assert!(validate(&["  ".into()]).is_err());
        assert!(validate(&["x".repeat(65)]).is_err());
    }
}
