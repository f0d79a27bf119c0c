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
        // Catches a changed name and postcode (a marriage, a move in town).
        if let Some(city) = &e.city {
            keys.push(format!("bc:{birth}:{city}"));
        }
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

/// Subjects grouped by shared blocking key, indexed both ways so that each
/// subject's neighbours can be gathered on their own: this avoids holding
/// every pair (with duplicates) at once and sorting them globally, which
/// dominated memory at a million records.
struct Blocks {
    /// Members of each usable block, block after block.
    members: Vec<u32>,
    /// Where each block starts in `members` (one extra end entry).
    starts: Vec<u32>,
    /// Where each subject's block list starts in `of_subject`.
    offsets: Vec<u32>,
    /// Block ids, subject after subject.
    of_subject: Vec<u32>,
}

impl Blocks {
    fn new(subjects: &[Subject]) -> Blocks {
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
        let mut members = Vec::new();
        let mut starts = vec![0u32];
        for block in entries
            .chunk_by(|x, y| x.0 == y.0)
            .filter(|b| b.len() >= 2 && b.len() <= MAX_BLOCK)
        {
            members.extend(block.iter().map(|e| e.1));
            starts.push(members.len() as u32);
        }
        drop(entries);
        let mut offsets = vec![0u32; subjects.len() + 1];
        for &m in &members {
            offsets[m as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut fill = offsets.clone();
        let mut of_subject = vec![0u32; members.len()];
        for (block, range) in starts.windows(2).enumerate() {
            for &m in &members[range[0] as usize..range[1] as usize] {
                of_subject[fill[m as usize] as usize] = block as u32;
                fill[m as usize] += 1;
            }
        }
        Blocks {
            members,
            starts,
            offsets,
            of_subject,
        }
    }

    /// Subjects after `i` sharing a block with it, sorted and distinct.
    fn neighbours_after(&self, i: u32) -> Vec<u32> {
        let own = &self.of_subject
            [self.offsets[i as usize] as usize..self.offsets[i as usize + 1] as usize];
        let mut near: Vec<u32> = own
            .iter()
            .flat_map(|&b| {
                &self.members
                    [self.starts[b as usize] as usize..self.starts[b as usize + 1] as usize]
            })
            .copied()
            .filter(|&j| j > i)
            .collect();
        near.sort_unstable();
        near.dedup();
        near
    }
}

/// `keep(a, b)` over every candidate pair `(a, b)`, `a < b`, each once,
/// results in pair order.
pub fn map_candidate_pairs<T: Send>(
    subjects: &[Subject],
    keep: impl Fn(u32, u32) -> Option<T> + Sync,
) -> Vec<T> {
    map_candidate_pairs_from(subjects, |_| true, keep)
}

/// As [`map_candidate_pairs`], over the pairs whose first record `a` is
/// `chosen`: an even sample of pairs that costs only what it samples.
pub fn map_candidate_pairs_from<T: Send>(
    subjects: &[Subject],
    chosen: impl Fn(u32) -> bool + Sync,
    keep: impl Fn(u32, u32) -> Option<T> + Sync,
) -> Vec<T> {
    let blocks = Blocks::new(subjects);
    let (blocks, keep, chosen) = (&blocks, &keep, &chosen);
    (0..subjects.len() as u32)
        .into_par_iter()
        .filter(|a| chosen(*a))
        .flat_map_iter(|a| {
            blocks
                .neighbours_after(a)
                .into_iter()
                .filter_map(move |b| keep(a, b))
        })
        .collect()
}
