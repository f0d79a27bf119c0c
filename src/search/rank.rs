//! Scores what a query's lookups found: per profile, the best weight in
//! each part of the query, summed; ties go to the most recently active.

use std::collections::{BTreeMap, BTreeSet};

use super::query::{self, Field, Probe};
use crate::store::{Store, StoreResult};

/// Profiles each lookup may return: a common name token is capped to its
/// most recently active holders, which is what ties are broken by anyway.
const PER_LOOKUP: i64 = 200;

/// What one profile matched: per part of the query, the best (weight,
/// field); and the profile's recency.
type Matches = (BTreeMap<usize, (u32, Field)>, i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub profile_id: String,
    pub score: u32,
    /// The fields that matched, in a stable order.
    pub matched: Vec<Field>,
    pub recency: i64,
}

/// Finds and ranks a workspace's profiles for `q`, best first, at most
/// `limit`. `regions` are tried for phones written without a country code.
pub async fn search(
    store: &dyn Store,
    workspace_id: &str,
    q: &str,
    regions: &[String],
    limit: usize,
) -> StoreResult<Vec<Found>> {
    let plan = query::plan(q, regions);
    if plan.probes.is_empty() {
        return Ok(Vec::new());
    }
    // Exact lookups first. The one-typo variants are many lookups of common
    // fragments, so they run only when too few profiles matched every part
    // of the query exactly: a typo query, or a rare name.
    let (fuzzy, exact): (Vec<&Probe>, Vec<&Probe>) = plan
        .probes
        .iter()
        .partition(|probe| probe.field == Field::NameFuzzy);
    let mut best: BTreeMap<String, Matches> = BTreeMap::new();
    collect(store, workspace_id, &exact, &mut best).await?;
    let parts: BTreeSet<usize> = exact.iter().map(|probe| probe.part).collect();
    let complete = best
        .values()
        .filter(|(matched, _)| matched.len() == parts.len())
        .count();
    if complete < limit {
        collect(store, workspace_id, &fuzzy, &mut best).await?;
    }
    let mut found: Vec<Found> = best
        .into_iter()
        .map(|(profile_id, (parts, recency))| Found {
            profile_id,
            score: parts.values().map(|(weight, _)| weight).sum(),
            matched: parts
                .values()
                .map(|(_, field)| *field)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            recency,
        })
        .collect();
    found.sort_by(|a, b| {
        (b.score, b.recency, &a.profile_id).cmp(&(a.score, a.recency, &b.profile_id))
    });
    found.truncate(limit);
    Ok(found)
}

/// Looks `probes` up and folds their hits into `best`.
async fn collect(
    store: &dyn Store,
    workspace_id: &str,
    probes: &[&Probe],
    best: &mut BTreeMap<String, Matches>,
) -> StoreResult<()> {
    if probes.is_empty() {
        return Ok(());
    }
    let lookups: Vec<_> = probes.iter().map(|probe| probe.lookup.clone()).collect();
    let hits = store
        .search_terms(workspace_id, &lookups, PER_LOOKUP)
        .await?;
    for hit in hits {
        let Some(probe) = usize::try_from(hit.lookup).ok().and_then(|i| probes.get(i)) else {
            continue;
        };
        let (parts, recency) = best.entry(hit.profile_id).or_default();
        *recency = (*recency).max(hit.recency);
        let slot = parts.entry(probe.part).or_insert((0, probe.field));
        if probe.weight > slot.0 {
            *slot = (probe.weight, probe.field);
        }
    }
    Ok(())
}
