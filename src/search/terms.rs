//! What a profile is findable by: its identifiers and names turned into
//! index terms, each a namespaced normal form so that one query string can
//! be looked up as exact terms and prefix ranges.

use std::collections::BTreeSet;

use pinyin::ToPinyin;
use shophub_connectors::model::{Direction, RecordBody};

use crate::identity::normalise::{alnum_upper, email_canonical, fold, name_key};
use crate::profile::{decode_record, ProfileView};
use crate::store::StoredRecord;

/// Term namespaces. A term is `namespace` + value.
pub const EMAIL: &str = "e:";
pub const PHONE: &str = "p:";
pub const PHONE_LAST4: &str = "l4:";
pub const CUSTOMER_ID: &str = "c:";
pub const ORDER: &str = "o:";
/// One name token (a Latin word or a pinyin reading, whole or per syllable).
pub const NAME_TOKEN: &str = "n:";
/// The whole name as sorted tokens (`wang wei`).
pub const NAME_KEY: &str = "nk:";
/// The Han characters of a name as written (`王伟`).
pub const HAN: &str = "h:";
/// A name token and its one-deletion variants.
pub const TOKEN_VARIANT: &str = "f:";
/// The whole name key and its variants with one deletion in one token.
pub const KEY_VARIANT: &str = "nf:";

/// Tokens shorter than this are matched exactly only: one edit on a
/// three-letter word is a different word.
pub const FUZZY_MIN_CHARS: usize = 4;
/// Names indexed per profile (distinct name keys): enough for the names a
/// person goes by across platforms, bounded for a noisy chat profile.
const MAX_NAMES: usize = 8;
/// Longer identifiers are not real ones; they are not indexed.
const MAX_VALUE_CHARS: usize = 128;

/// The searchable facts of one profile.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub names: Vec<String>,
    /// Normalised (lower-cased) addresses.
    pub emails: Vec<String>,
    /// E.164 numbers.
    pub phones: Vec<String>,
    pub customer_ids: Vec<String>,
    pub order_numbers: Vec<String>,
    /// The profile's latest activity (ms): newer profiles rank first among equals.
    pub recency: i64,
}

impl Document {
    /// Reads the document from what `refresh_profile` has at hand: the
    /// profile's records and the view computed from them.
    pub fn of(records: &[StoredRecord], view: &ProfileView) -> Document {
        let mut doc = Document {
            names: view.name.iter().cloned().collect(),
            emails: view.emails.clone(),
            phones: view.phones.clone(),
            customer_ids: view
                .identities
                .iter()
                .filter(|i| matches!(i.kind.as_str(), "customer_id" | "wechat_unionid"))
                .map(|i| i.value.clone())
                .collect(),
            order_numbers: Vec::new(),
            recency: records.iter().map(|r| r.occurred_at).max().unwrap_or(0),
        };
        for stored in records {
            let Ok(record) = decode_record(stored) else {
                continue;
            };
            let parts = match &record.body {
                RecordBody::Customer(c) => [c.first_name.clone(), c.last_name.clone()],
                RecordBody::Order(o) => {
                    doc.order_numbers.push(o.number.clone());
                    [o.buyer_first_name.clone(), o.buyer_last_name.clone()]
                }
                RecordBody::Review(r) => [r.reviewer_name.clone(), None],
                // An outbound message's sender is the shop, not the customer.
                RecordBody::Message(m) if m.direction == Direction::Inbound => {
                    [m.sender_name.clone(), None]
                }
                RecordBody::Message(_) => [None, None],
            };
            let name = parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
            if !name.trim().is_empty() {
                doc.names.push(name);
            }
        }
        doc
    }
}

/// Every term the document is found by.
pub fn of(doc: &Document) -> BTreeSet<String> {
    let mut terms = BTreeSet::new();
    let mut add = |namespace: &str, value: &str| {
        if !value.is_empty() && value.chars().count() <= MAX_VALUE_CHARS {
            terms.insert(format!("{namespace}{value}"));
        }
    };
    for email in &doc.emails {
        add(EMAIL, email);
        if let Some(canonical) = email_canonical(email) {
            add(EMAIL, &canonical);
        }
    }
    for phone in &doc.phones {
        add(PHONE, phone);
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 4 {
            add(PHONE_LAST4, &digits[digits.len() - 4..]);
        }
    }
    for id in &doc.customer_ids {
        add(CUSTOMER_ID, &customer_id_form(id));
    }
    for number in &doc.order_numbers {
        if let Some(number) = alnum_upper(number) {
            add(ORDER, &number);
        }
    }
    let mut keys = BTreeSet::new();
    for name in &doc.names {
        let Some(name) = Name::read(name) else {
            continue;
        };
        if !keys.insert(name.key.clone()) && name.han.is_none() {
            continue;
        }
        if keys.len() > MAX_NAMES {
            break;
        }
        for token in name.tokens.iter().chain(&name.syllables) {
            add(NAME_TOKEN, token);
        }
        add(NAME_KEY, &name.key);
        if let Some(han) = &name.han {
            add(HAN, han);
        }
        for token in &name.tokens {
            for variant in token_variants(token) {
                add(TOKEN_VARIANT, &variant);
            }
        }
        for variant in key_variants(&name.tokens) {
            add(KEY_VARIANT, &variant);
        }
    }
    terms
}

/// Platform ids compare without case or surrounding space.
pub fn customer_id_form(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A name read for search: its sorted romanised tokens (as the identity
/// engine compares names), the pinyin syllables of its Han characters, and
/// the Han characters themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub tokens: Vec<String>,
    pub key: String,
    pub syllables: Vec<String>,
    pub han: Option<String>,
}

impl Name {
    pub fn read(raw: &str) -> Option<Name> {
        let key = name_key(&[Some(raw)])?;
        let tokens: Vec<String> = key
            .split(' ')
            .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned)
            .collect();
        if tokens.is_empty() {
            return None;
        }
        let folded = fold(raw);
        let han: String = folded.chars().filter(|c| is_han(*c)).collect();
        let syllables = han
            .chars()
            .filter_map(|c| c.to_pinyin().map(|p| p.plain().to_owned()))
            .filter(|s| !tokens.contains(s))
            .collect();
        Some(Name {
            key: tokens.join(" "),
            tokens,
            syllables,
            han: (!han.is_empty()).then_some(han),
        })
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// The token and every form of it with one character deleted: two tokens
/// within one edit (an insertion, deletion, substitution or swap of
/// neighbours) share at least one variant.
pub fn token_variants(token: &str) -> BTreeSet<String> {
    let chars: Vec<char> = token.chars().collect();
    let mut out = BTreeSet::new();
    if chars.len() < FUZZY_MIN_CHARS {
        return out;
    }
    out.insert(token.to_owned());
    out.extend(deletions(&chars));
    out
}

/// The whole key and its forms with one deletion in one token, each with
/// its tokens sorted again (a typo can change where a token sorts).
pub fn key_variants(tokens: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if tokens.len() < 2 {
        return out;
    }
    out.insert(tokens.join(" "));
    for (i, token) in tokens.iter().enumerate() {
        let chars: Vec<char> = token.chars().collect();
        if chars.len() < FUZZY_MIN_CHARS {
            continue;
        }
        for deleted in deletions(&chars) {
            let mut variant = tokens.to_vec();
            variant[i] = deleted;
            variant.sort_unstable();
            out.insert(variant.join(" "));
        }
    }
    out
}

fn deletions(chars: &[char]) -> impl Iterator<Item = String> + '_ {
    (0..chars.len()).map(move |skip| {
        chars
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, c)| c)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> Document {
        Document {
            names: vec![name.to_owned()],
            ..Document::default()
        }
    }

    #[test]
    fn han_and_pinyin_names_share_terms() {
        let han = of(&doc("王小明"));
        let latin = of(&doc("Xiaoming WANG"));
        for term in ["n:wang", "n:xiaoming", "nk:wang xiaoming"] {
            assert!(han.contains(term) && latin.contains(term), "{term}");
        }
        assert!(han.contains("n:xiao") && han.contains("n:ming"));
        assert!(han.contains("h:王小明") && !latin.iter().any(|t| t.starts_with(HAN)));
    }

    #[test]
    fn one_typo_shares_a_variant() {
        for (right, typo) in [
            ("jonathan", "jonathon"),
            ("smith", "smtih"),
            ("smith", "smith"),
            ("smith", "smiths"),
            ("smith", "smth"),
        ] {
            let a = token_variants(right);
            let b = token_variants(typo);
            let c = if typo.chars().count() < FUZZY_MIN_CHARS {
                BTreeSet::from([typo.to_owned()])
            } else {
                b
            };
            assert!(a.intersection(&c).next().is_some(), "{right} / {typo}");
        }
        assert!(token_variants("smith")
            .intersection(&token_variants("jones"))
            .next()
            .is_none());
        let wang_wei = key_variants(&["wang".into(), "wei".into()]);
        let typo = key_variants(&["wei".into(), "wong".into()]);
        assert!(wang_wei.intersection(&typo).next().is_some());
    }

    #[test]
    fn identifiers_are_indexed_in_normal_form() {
        let terms = of(&Document {
            emails: vec!["j.doe+shop@gmail.com".into()],
            phones: vec!["+8613812345678".into()],
            customer_ids: vec![" CRM-1001 ".into()],
            order_numbers: vec!["#SO-5001".into()],
            ..Document::default()
        });
        for term in [
            "e:j.doe+shop@gmail.com",
            "e:jdoe@gmail.com",
            "p:+8613812345678",
            "l4:5678",
            "c:crm-1001",
            "o:SO5001",
        ] {
            assert!(terms.contains(term), "{term} in {terms:?}");
        }
    }
}
