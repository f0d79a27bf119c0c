//! Identity keys: the normalised emails, phones and platform customer ids
//! that let records from different deliveries and platforms be joined.
//!
//! A key must be exact or absent: a wrong key merges two people, a missing
//! one only leaves two profiles apart. So anything doubtful yields `None`.

use std::collections::BTreeSet;

use email_address::{EmailAddress, Options};
use phonenumber::country;

use crate::model::{IdentityKey, KeyKind};

/// Trimmed, lower-cased address, or `None` if it is not a plain valid address.
///
/// Stricter than `EmailAddress::is_valid`: display forms
/// (`Ada <ada@example.com>`) and domain literals are refused, being valid
/// RFC 5322 but never what a shop stores as a customer email.
pub fn normalise_email(raw: &str) -> Option<String> {
    let lowered = raw.trim().to_lowercase();
    // `*` is legal in a local part, but in shop data it means a masked
    // address (`ab***@qq.com`), which identifies nobody.
    if lowered.contains('*') {
        return None;
    }
    let strict = Options::default()
        .without_display_text()
        .without_domain_literal();
    EmailAddress::parse_with_options(&lowered, strict).ok()?;
    Some(lowered)
}

/// E.164 form of a phone number, or `None` unless it is a valid number.
///
/// `default_region` (ISO 3166-1 alpha-2, such as `CN`) is used for numbers
/// written without a country code. Only digits and the usual separators are
/// accepted, so masked values (`138****5678`) and numbers with extensions or
/// letters never become keys.
pub fn normalise_phone(raw: &str, default_region: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    let plain = raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | '/' | ' '));
    if raw.is_empty() || !plain {
        return None;
    }
    let region =
        default_region.and_then(|r| r.trim().to_ascii_uppercase().parse::<country::Id>().ok());
    let number = phonenumber::parse(region, raw).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Collects the identity keys of one record: values that do not normalise
/// are skipped, duplicates collapse, and the result has a stable order
/// (by kind, then value).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    region: Option<String>,
    keys: BTreeSet<IdentityKey>,
}

impl KeySet {
    /// `default_region` is the connection's region for reading local phone numbers.
    pub fn new(default_region: Option<&str>) -> Self {
        Self {
            region: default_region.map(str::to_owned),
            keys: BTreeSet::new(),
        }
    }

    pub fn email(&mut self, raw: Option<&str>) -> &mut Self {
        if let Some(value) = raw.and_then(normalise_email) {
            self.keys.insert(IdentityKey {
                kind: KeyKind::Email,
                value,
            });
        }
        self
    }

    pub fn phone(&mut self, raw: Option<&str>) -> &mut Self {
        if let Some(value) = raw.and_then(|r| normalise_phone(r, self.region.as_deref())) {
            self.keys.insert(IdentityKey {
                kind: KeyKind::Phone,
                value,
            });
        }
        self
    }

    /// The platform's own customer id, kept verbatim (trimmed); blank ids are skipped.
    pub fn customer_id(&mut self, raw: Option<&str>) -> &mut Self {
        if let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) {
            self.keys.insert(IdentityKey {
                kind: KeyKind::CustomerId,
                value: value.to_owned(),
            });
        }
        self
    }

    /// A WeChat unionid, kept verbatim (trimmed); blank ids are skipped.
    pub fn wechat_unionid(&mut self, raw: Option<&str>) -> &mut Self {
        if let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) {
            self.keys.insert(IdentityKey {
                kind: KeyKind::WechatUnionid,
                value: value.to_owned(),
            });
        }
        self
    }

    pub fn into_keys(self) -> Vec<IdentityKey> {
        self.keys.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            normalise_email("  Buyer@Example.COM ").as_deref(),
            Some("buyer@example.com")
        );
    }

    #[test]
    fn junk_emails_are_not_keys() {
        for raw in [
            "",
            "   ",
            "buyer",
            "buyer@",
            "@example.com",
            "a b@example.com",
            "Ada <ada@example.com>",
        ] {
            assert_eq!(normalise_email(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn local_mobile_number_uses_default_region() {
        assert_eq!(
            normalise_phone("138 1234 5678", Some("CN")).as_deref(),
            Some("+8613812345678")
        );
    }

    #[test]
    fn international_number_needs_no_region() {
        assert_eq!(
            normalise_phone("+86 138-1234-5678", None).as_deref(),
            Some("+8613812345678")
        );
        // A country code in the number wins over the connection's region.
        assert_eq!(
            normalise_phone("+86 138-1234-5678", Some("DE")).as_deref(),
            Some("+8613812345678")
        );
    }

    #[test]
    fn german_landline_with_region() {
        assert_eq!(
            normalise_phone("030 901820", Some("DE")).as_deref(),
            Some("+4930901820")
        );
        assert_eq!(
            normalise_phone("030 901820", Some("de")).as_deref(),
            Some("+4930901820")
        );
    }

    #[test]
    fn local_number_without_region_is_not_a_key() {
        assert_eq!(normalise_phone("138 1234 5678", None), None);
        assert_eq!(normalise_phone("138 1234 5678", Some("not-a-region")), None);
    }

    #[test]
    fn masked_emails_are_not_keys() {
        assert_eq!(normalise_email("ab***@qq.com"), None);
        assert_eq!(normalise_email("a*b@example.com"), None);
    }

    #[test]
    fn masked_and_junk_phones_are_not_keys() {
        for raw in [
            "138****5678",
            "+86 138****5678",
            "",
            "  ",
            "n/a",
            "12",
            "+86 123",
            "0000000000",
        ] {
            assert_eq!(normalise_phone(raw, Some("CN")), None, "{raw:?}");
        }
    }

    #[test]
    fn key_set_dedupes_and_sorts() {
        let mut set = KeySet::new(Some("CN"));
        set.customer_id(Some("42"))
            .phone(Some("138 1234 5678"))
            .email(Some("B@example.com"))
            .email(Some("a@example.com"))
            .email(Some(" b@EXAMPLE.com"))
            .phone(Some("+86 138-1234-5678"))
            .phone(Some("138****5678"))
            .email(None)
            .customer_id(Some("  "));
        let keys: Vec<(KeyKind, String)> = set
            .into_keys()
            .into_iter()
            .map(|k| (k.kind, k.value))
            .collect();
        assert_eq!(
            keys,
            vec![
                (KeyKind::Email, "a@example.com".to_owned()),
                (KeyKind::Email, "b@example.com".to_owned()),
                (KeyKind::Phone, "+8613812345678".to_owned()),
                (KeyKind::CustomerId, "42".to_owned()),
            ]
        );
    }
}
