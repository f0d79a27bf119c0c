//! Union–find that refuses unions breaking a cannot-link constraint or a
//! per-kind limit on the distinct key values one person may hold.

use std::collections::BTreeMap;

use super::{Constraints, Settings, Subject};

/// Why a union was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CannotLink,
    /// The merged component would hold too many values of this limited kind.
    Limit(usize),
}

pub struct Clusters {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// Per root: sorted distinct `(limited kind, value hash)`.
    values: Vec<Vec<(u8, u64)>>,
    /// Per root: records it must never join.
    forbidden: Vec<Vec<u32>>,
    /// `(kind, limit)` of the limited kinds, indexed by the `u8` above.
    pub limits: Vec<(String, usize)>,
}

impl Clusters {
    pub fn new(subjects: &[Subject], settings: &Settings, constraints: &Constraints) -> Clusters {
        let n = subjects.len();
        let limits: Vec<(String, usize)> = settings
            .max_values_per_kind
            .iter()
            .take(u8::MAX as usize)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let values = subjects
            .iter()
            .map(|s| {
                let mut v: Vec<(u8, u64)> = s
                    .keys
                    .iter()
                    .filter(|k| !super::is_blocked(k.kind, &k.value, settings))
                    .filter_map(|k| {
                        let kind = limits.iter().position(|(name, _)| *name == k.kind)?;
                        Some((kind as u8, super::hash_of(&(&k.scope, &k.value))))
                    })
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let mut forbidden = vec![Vec::new(); n];
        for &(a, b) in &constraints.cannot_link {
            if (a as usize) < n && (b as usize) < n && a != b {
                forbidden[a as usize].push(b);
                forbidden[b as usize].push(a);
            }
        }
        Clusters {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            values,
            forbidden,
            limits,
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Joins the components of `a` and `b`: `Ok(true)` when joined,
    /// `Ok(false)` when already one. `enforce_limits` is off for manual links.
    pub fn union(&mut self, a: u32, b: u32, enforce_limits: bool) -> Result<bool, Refusal> {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Ok(false);
        }
        if self.forbidden[ra as usize].len() > self.forbidden[rb as usize].len() {
            std::mem::swap(&mut ra, &mut rb);
        }
        let forbidden = std::mem::take(&mut self.forbidden[ra as usize]);
        let conflict = forbidden.iter().any(|&x| self.find(x) == rb);
        self.forbidden[ra as usize] = forbidden;
        if conflict {
            return Err(Refusal::CannotLink);
        }
        let merged = merge_sorted(&self.values[ra as usize], &self.values[rb as usize]);
        if enforce_limits {
            if let Some(kind) = self.over_limit(&merged) {
                return Err(Refusal::Limit(kind));
            }
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        self.values[big as usize] = merged;
        self.values[small as usize] = Vec::new();
        let moved = std::mem::take(&mut self.forbidden[small as usize]);
        self.forbidden[big as usize].extend(moved);
        Ok(true)
    }

    fn over_limit(&self, values: &[(u8, u64)]) -> Option<usize> {
        let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
        for (kind, _) in values {
            *counts.entry(*kind).or_default() += 1;
        }
        counts
            .into_iter()
            .find(|(kind, c)| *c > self.limits[*kind as usize].1)
            .map(|(kind, _)| kind as usize)
    }
}

fn merge_sorted(a: &[(u8, u64)], b: &[(u8, u64)]) -> Vec<(u8, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out.dedup();
    out
}
