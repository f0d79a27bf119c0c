//! Identity resolution: which source records are the same person.
//!
//! Pure computation (no I/O): the hub turns records into [`Subject`]s,
//! estimates [`Params`] once in a while, and calls [`resolve`] for a full
//! rebuild, or [`blocking_keys`] and [`score_pair`] for one new record.
//!
//! Two kinds of evidence join records:
//! - keys (see [`registry`]): the same email, E.164 phone, customer id in
//!   one connection… join outright, unless the value is a placeholder, is
//!   seen with too many different people, or would give one person more
//!   distinct values than [`Settings::max_values_per_kind`] allows;
//! - a Fellegi–Sunter model over names, birth dates, addresses, masked
//!   phones… whose parameters are learnt without labels ([`estimate`]).
//!
//! Every output is deterministic and, as a partition, independent of input
//! order: decisions are ordered by content, never by position or hash-map
//! iteration.

mod blocking;
mod cluster;
mod compare;
mod evidence;
mod model;
pub mod normalise;
pub mod registry;
mod resolution;
#[cfg(test)]
mod tests;

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde::Serialize;
use shophub_connectors::model::SourceRecord;

pub use blocking::blocking_keys;
pub use compare::{Field, Level};
pub use evidence::Evidence;
pub use model::{estimate, FieldParams, Params};
pub use resolution::resolve;

/// What resolution knows of one record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub keys: Vec<Key>,
    pub evidence: Evidence,
}

/// A key value: `scope` is `""` for global keys, a platform name for
/// platform-wide ones (`wechat`), else the connection id. Kind and scope
/// are interned (a million records hold a handful of distinct ones), so a
/// key costs one allocation, its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub kind: &'static str,
    pub scope: &'static str,
    pub value: Box<str>,
}

/// The subject of one record found in `connection_id`.
pub fn subject_of(record: &SourceRecord, connection_id: &str) -> Subject {
    let mut keys: Vec<Key> = record
        .keys
        .iter()
        .filter_map(|k| {
            let (kind, scope) = registry::interned_kind_scope(k.kind.as_str(), connection_id)?;
            Some(Key {
                kind,
                scope,
                value: k.value.as_str().into(),
            })
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.shrink_to_fit();
    let mut evidence = Evidence::of(record);
    // Placeholders are kept as keys (so resolution reports them) but must
    // not count as evidence when a pair is scored.
    let default = default_settings();
    let placeholder = |kind: &str| -> Vec<&str> {
        keys.iter()
            .filter(|k| k.kind == kind && is_blocked(kind, &k.value, default))
            .map(|k| &*k.value)
            .collect()
    };
    let (emails, phones) = (placeholder("email"), placeholder("phone"));
    if !emails.is_empty() || !phones.is_empty() {
        evidence = evidence.without(&emails, &phones);
    }
    evidence.shrink_to_fit();
    Subject { keys, evidence }
}

fn default_settings() -> &'static Settings {
    static DEFAULT: OnceLock<Settings> = OnceLock::new();
    DEFAULT.get_or_init(Settings::default)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Match probability at or above which the model links two records.
    pub link_threshold: f64,
    /// Match probability at or above which an unlinked pair is suggested.
    pub suggest_threshold: f64,
    /// `(kind, value)` pairs that never link (placeholders).
    pub blocked: Vec<(String, String)>,
    /// Most distinct values of a key kind one person may hold.
    pub max_values_per_kind: BTreeMap<String, usize>,
    /// A shareable key value seen with more distinct people than this stops linking.
    pub max_people_per_key: usize,
    /// Link by keys only (no model), to measure what exact keys reach.
    pub keys_only: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            link_threshold: 0.99,
            suggest_threshold: 0.80,
            blocked: default_blocked(),
            max_values_per_kind: [("email".to_owned(), 5), ("phone".to_owned(), 5)]
                .into_iter()
                .collect(),
            max_people_per_key: 2,
            keys_only: false,
        }
    }
}

/// Values people type when a form insists: they identify nobody.
pub fn default_blocked() -> Vec<(String, String)> {
    let emails = [
        "test@test.com",
        "test@example.com",
        "example@example.com",
        "noemail@noemail.com",
        "noemail@gmail.com",
        "noemail@email.com",
        "none@none.com",
        "no@no.com",
        "no@email.com",
        "na@na.com",
        "null@null.com",
        "nobody@nowhere.com",
        "a@a.com",
        "abc@abc.com",
        "asdf@asdf.com",
        "123@qq.com",
        "123456@qq.com",
    ];
    let mut phones: Vec<String> = [
        "+8613800138000",
        "+10000000000",
        "+12345678900",
        "+11234567890",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for digit in '0'..='9' {
        let run = |n: usize| std::iter::repeat(digit).take(n).collect::<String>();
        phones.push(format!("+86{}", run(11)));
        phones.push(format!("+861{}", run(10)));
        phones.push(format!("+1{}", run(10)));
    }
    emails
        .iter()
        .map(|e| ("email".to_owned(), e.to_string()))
        .chain(phones.into_iter().map(|p| ("phone".to_owned(), p)))
        .collect()
}

/// Whether a key value must never link: listed in `settings.blocked`, or a
/// phone whose last eight digits are all one digit.
pub(crate) fn is_blocked(kind: &str, value: &str, settings: &Settings) -> bool {
    if kind == "phone" {
        let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
        let tail = &digits[digits.len().saturating_sub(8)..];
        if tail.len() == 8 && tail.iter().all(|d| *d == tail[0]) {
            return true;
        }
    }
    settings
        .blocked
        .iter()
        .any(|(k, v)| k == kind && v.eq_ignore_ascii_case(value))
}

/// Pairs the caller knows are (`must_link`) or are not (`cannot_link`) the
/// same person, as indexes into the subjects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    pub must_link: Vec<(u32, u32)>,
    pub cannot_link: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// A spanning forest of every component, strongest reasons first.
    pub links: Vec<Link>,
    /// Likely matches left apart, for a person to confirm.
    pub suggestions: Vec<Link>,
    /// The component of each subject, numbered by content.
    pub component: Vec<u32>,
    /// Key values that were not allowed to link, and why.
    pub protected: Vec<Protected>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub a: u32,
    pub b: u32,
    /// `key:<kind>`, `model` or `manual`.
    pub rule: String,
    /// The model's match probability, for model links and suggestions.
    pub score: Option<f64>,
    pub evidence: Vec<Compared>,
}

/// One field of a pair as compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compared {
    pub field: String,
    /// `exact`, `close`, `masked`, `different` or `missing`.
    pub level: String,
    pub a: Option<String>,
    pub b: Option<String>,
    /// Log2 Bayes factor this field contributed.
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Protected {
    pub kind: String,
    pub value: String,
    pub reason: String,
    pub records: usize,
}

/// Match probability of two subjects and the comparison behind it.
pub fn score_pair(a: &Subject, b: &Subject, params: &Params) -> (f64, Vec<Compared>) {
    let scorer = model::Scorer::new(params);
    let pattern = compare::compare(&a.evidence, &b.evidence);
    let probability = model::probability(scorer.weight(&pattern, &a.evidence));
    (
        probability,
        explain(&scorer, &pattern, &a.evidence, &b.evidence),
    )
}

/// The non-missing fields of a comparison.
pub(crate) fn explain(
    scorer: &model::Scorer,
    pattern: &compare::Pattern,
    a: &Evidence,
    b: &Evidence,
) -> Vec<Compared> {
    let weights = scorer.field_weights(pattern, a);
    compare::FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| pattern[*i] != Level::Missing)
        .map(|(i, field)| Compared {
            field: field.as_str().to_owned(),
            level: pattern[i].as_str().to_owned(),
            a: field.shown(a),
            b: field.shown(b),
            weight: weights[i],
        })
        .collect()
}

/// A stable hash: SipHash with fixed zero keys.
pub(crate) fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}
