//! Small helpers the platform modules share: header lookup, reading JSON
//! into typed structs with error reasons that never carry payload values,
//! exact money, and "empty counts as absent".

// Only platform modules use these; a build with no platform features has none.
#![cfg_attr(
    not(any(feature = "shopify", feature = "woocommerce")),
    allow(dead_code)
)]

use std::str::FromStr;

use http::HeaderMap;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

use crate::webhook::DecodeError;

pub(crate) fn invalid(topic: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        topic: topic.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a body into `T`. serde_json's messages can quote the offending
/// value (a name, an email), so only the error's category, a missing field's
/// name, or a position is reported.
pub(crate) fn parse_json<T: DeserializeOwned>(topic: &str, body: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let reason = match e.classify() {
            Category::Data => {
                let msg = e.to_string();
                match msg
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next())
                {
                    Some(field) => format!("missing field {field}"),
                    None => format!(
                        "a field has an unexpected type (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                }
            }
            Category::Syntax | Category::Eof | Category::Io => "body is not valid JSON".to_owned(),
        };
        invalid(topic, reason)
    })
}

/// A header's trimmed value; absent, blank or non-ASCII values count as missing.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    present(headers.get(name)?.to_str().ok())
}

/// The trimmed value, or `None` when absent, null or blank.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Owned form of [`present`].
pub(crate) fn present_owned(value: Option<&str>) -> Option<String> {
    present(value).map(str::to_owned)
}

/// An exact decimal amount from the platform's decimal string; `field` names
/// what was wrong without repeating it.
pub(crate) fn money(topic: &str, field: &str, value: Option<&str>) -> Result<Decimal, DecodeError> {
    let raw = present(value).ok_or_else(|| invalid(topic, format!("missing {field}")))?;
    Decimal::from_str(raw).map_err(|_| invalid(topic, format!("{field} is not a decimal amount")))
}

/// Appends the present values not already in `list` (as sent, only trimmed).
pub(crate) fn push_unique<'a>(
    list: &mut Vec<String>,
    values: impl IntoIterator<Item = Option<&'a str>>,
) {
    for value in values.into_iter().filter_map(present) {
        if !list.iter().any(|v| v == value) {
            list.push(value.to_owned());
        }
    }
}

/// Test access to the shared platform fixtures (`shared/` beside the repo).
#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    use serde_json::Value;

    pub(crate) fn load(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/platforms")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
    }

    /// A resource fixture without its `_note`, as the platform would send it.
    pub(crate) fn resource(name: &str) -> Value {
        let mut value = load(name);
        value
            .as_object_mut()
            .expect("object fixture")
            .remove("_note");
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        id: u64,
        email: Option<u64>,
    }

    #[test]
    fn parse_errors_never_quote_values() {
        let err =
            parse_json::<Probe>("t", br#"{"id": 1, "email": "secret@example.com"}"#).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("unexpected type"), "{text}");
    }

    #[test]
    fn parse_errors_name_missing_fields_and_bad_json() {
        let missing = parse_json::<Probe>("t", br#"{"email": null}"#).unwrap_err();
        assert_eq!(missing, invalid("t", "missing field id"));
        let broken = parse_json::<Probe>("t", b"{not json").unwrap_err();
        assert_eq!(broken, invalid("t", "body is not valid JSON"));
    }

    #[test]
    fn money_is_exact_and_names_the_field() {
        assert_eq!(
            money("t", "total", Some("0.10")).unwrap().to_string(),
            "0.10"
        );
        assert_eq!(
            money("t", "total", Some("abc")).unwrap_err(),
            invalid("t", "total is not a decimal amount")
        );
        assert_eq!(
            money("t", "total", Some(" ")).unwrap_err(),
            invalid("t", "missing total")
        );
    }

    #[test]
    fn push_unique_skips_blank_and_repeated() {
        let mut list = Vec::new();
        push_unique(
            &mut list,
            [Some(" a "), None, Some(""), Some("a"), Some("b")],
        );
        assert_eq!(list, vec!["a".to_owned(), "b".to_owned()]);
    }
}
