//! The typed identifier registry: which identifiers may join records, over
//! what reach, and which only ever count as evidence.
//!
//! A key joins records outright, so only identifiers that name one person
//! (or one account) are keys; everything people share or mistype (names,
//! addresses, masked phones) only weighs in the probabilistic model.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// How far one value of an identifier reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The same value means the same person everywhere (email, E.164 phone).
    Global,
    /// The same value means the same person across one platform's accounts
    /// (WeChat's unionid).
    Platform(&'static str),
    /// Only within the connection that issued it (a shop's customer id).
    Connection,
}

/// What a match on the identifier proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Records sharing the value are joined without scoring.
    Key,
    /// Scored, and weighs heavily (document id, canonical email).
    StrongEvidence,
    /// Scored, and weighs little on its own (names, addresses, masked phones).
    WeakEvidence,
    /// Never looked at (advertising ids are reset and shared by devices).
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifierType {
    pub kind: &'static str,
    pub scope: Scope,
    pub strength: Strength,
    /// Whether several people plausibly use one value (a family phone), so
    /// a value seen with many different people is suspected, not trusted.
    pub shareable: bool,
}

const fn id(
    kind: &'static str,
    scope: Scope,
    strength: Strength,
    shareable: bool,
) -> IdentifierType {
    IdentifierType {
        kind,
        scope,
        strength,
        shareable,
    }
}

/// The defaults; kinds not listed are never used.
pub const REGISTRY: &[IdentifierType] = &[
    id("email", Scope::Global, Strength::Key, true),
    id("phone", Scope::Global, Strength::Key, true),
    id("customer_id", Scope::Connection, Strength::Key, false),
    id(
        "wechat_unionid",
        Scope::Platform("wechat"),
        Strength::Key,
        false,
    ),
    id(
        "document_id",
        Scope::Global,
        Strength::StrongEvidence,
        false,
    ),
    id(
        "email_canonical",
        Scope::Global,
        Strength::StrongEvidence,
        true,
    ),
    id("masked_phone", Scope::Global, Strength::WeakEvidence, true),
    id("name", Scope::Global, Strength::WeakEvidence, true),
    id("birth_date", Scope::Global, Strength::WeakEvidence, true),
    id("address", Scope::Global, Strength::WeakEvidence, true),
    id("city", Scope::Global, Strength::WeakEvidence, true),
    id("postcode", Scope::Global, Strength::WeakEvidence, true),
    id("oaid", Scope::Global, Strength::Never, true),
];

pub fn lookup(kind: &str) -> Option<&'static IdentifierType> {
    REGISTRY.iter().find(|t| t.kind == kind)
}

/// Whether records sharing a value of `kind` are joined outright.
pub fn is_key(kind: &str) -> bool {
    lookup(kind).is_some_and(|t| t.strength == Strength::Key)
}

/// Whether a key value seen with several people should be checked for fan-out.
pub fn is_shareable(kind: &str) -> bool {
    lookup(kind).is_some_and(|t| t.shareable)
}

/// The `Key::scope` string of a value of `kind` found in `connection_id`:
/// `""` for global, the platform's name for platform scope, else the
/// connection id. `None` for kinds that are not keys.
pub fn scope_of(kind: &str, connection_id: &str) -> Option<String> {
    let t = lookup(kind).filter(|t| t.strength == Strength::Key)?;
    Some(match t.scope {
        Scope::Global => String::new(),
        Scope::Platform(platform) => platform.to_owned(),
        Scope::Connection => connection_id.to_owned(),
    })
}

/// The registry's kind and the interned scope of a key of `kind` found in
/// `connection_id`, as [`scope_of`], without allocating per record. Scopes
/// are connection ids and platform names: few, and kept for the process.
pub fn interned_kind_scope(
    kind: &str,
    connection_id: &str,
) -> Option<(&'static str, &'static str)> {
    let t = lookup(kind).filter(|t| t.strength == Strength::Key)?;
    let scope = match t.scope {
        Scope::Global => "",
        Scope::Platform(platform) => platform,
        Scope::Connection => intern(connection_id),
    };
    Some((t.kind, scope))
}

fn intern(s: &str) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.get(s) {
        return known;
    }
    let leaked: &'static str = Box::leak(s.into());
    seen.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_policy() {
        assert!(is_key("email") && is_key("phone") && is_key("customer_id"));
        assert!(!is_key("masked_phone") && !is_key("name") && !is_key("city"));
        assert!(!is_key("oaid") && !is_key("unknown"));
        assert_eq!(scope_of("email", "c1").as_deref(), Some(""));
        assert_eq!(scope_of("customer_id", "c1").as_deref(), Some("c1"));
        assert_eq!(scope_of("wechat_unionid", "c1").as_deref(), Some("wechat"));
        assert_eq!(scope_of("name", "c1"), None);
        assert_eq!(
            interned_kind_scope("customer_id", "c1"),
            Some(("customer_id", "c1"))
        );
        assert_eq!(interned_kind_scope("email", "c1"), Some(("email", "")));
        assert_eq!(interned_kind_scope("oaid", "c1"), None);
    }
}
