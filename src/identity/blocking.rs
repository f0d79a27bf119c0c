//! Blocking: which pairs are worth comparing. Records are compared only
//! when they share a blocking key; a key shared by too many records says
//! little and would make the work quadratic, so such blocks are skipped
//! (the other, more specific keys still bring their pairs together).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rayon::prelude::*;

use super::Subject;

/// Blocks larger than this are skipped.
pub const MAX_BLOCK: usize = 40;

/// The blocking keys of one subject, each prefixed with its rule.
pub fn blocking_keys(s: &Subject) -> Vec<String> {
    let e = &s.evidence;
    let mut keys = Vec::new();
    let tokens: Vec<&str> = e.name_tokens().collect();
    let mut initials: Vec<char> = tokens.iter().filter_map(|t| t.chars().next()).collect();
    initials.sort_unstable();
    let initials: String = initials.into_iter().collect();
    if let Some(name) = &e.name {
        keys.push(format!("n:{name}"));
    }
    if let Some(postcode) = &e.postcode {
        for t in &tokens {
            keys.push(format!("tp:{t}:{postcode}"));
        }
    }
    if let Some(birth) = e.birth {
        keys.push(format!("bi:{birth}:{initials}"));
        if let Some(postcode) = &e.postcode {
            keys.push(format!("bp:{birth}:{postcode}"));
        }
    }
    if let Some(document) = &e.document {
        keys.push(format!("d:{document}"));
    }
    for email in &e.email_canonical {
        keys.push(format!("e:{email}"));
    }
    if let (Some(address), Some(postcode)) = (&e.address, &e.postcode) {
        keys.push(format!("a:{address}:{postcode}"));
    }
    let last4 = |digits: &str| digits[digits.len().saturating_sub(4)..].to_owned();
    let mut phone_tails: Vec<String> = e.phones.iter().map(|p| last4(p)).collect();
    phone_tails.extend(e.masked_phones.iter().map(|m| last4(&m.suffix)));
    phone_tails.sort_unstable();
    phone_tails.dedup();
    for tail in phone_tails {
        keys.push(format!("p:{tail}:{initials}"));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn hashed(key: &str) -> u64 {
    // SipHash with fixed zero keys: the same on every run.
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// All candidate pairs `(a, b)` with `a < b`, sorted and distinct.
pub fn candidate_pairs(subjects: &[Subject]) -> Vec<(u32, u32)> {
    let mut entries: Vec<(u64, u32)> = subjects
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, s)| {
            blocking_keys(s)
                .into_iter()
                .map(move |k| (hashed(&k), i as u32))
        })
        .collect();
    entries.par_sort_unstable();
    let blocks: Vec<&[(u64, u32)]> = entries
        .chunk_by(|x, y| x.0 == y.0)
        .filter(|b| b.len() >= 2 && b.len() <= MAX_BLOCK)
        .collect();
    let mut pairs: Vec<(u32, u32)> = blocks
        .par_iter()
        .flat_map_iter(|block| {
            block.iter().enumerate().flat_map(move |(i, x)| {
                block[i + 1..]
                    .iter()
                    .map(move |y| (x.1.min(y.1), x.1.max(y.1)))
            })
        })
        .filter(|(a, b)| a != b)
        .collect();
    drop(entries);
    pairs.par_sort_unstable();
    pairs.dedup();
    pairs
}
