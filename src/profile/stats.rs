//! Workspace-wide statistics that traits are scored against: the main
//! currency and the RFM quintile boundaries.
//!
//! Computed from the stored views of the workspace's profiles with orders:
//! recency is days since the last order, frequency the order count,
//! monetary the total spent in the main currency. Each dimension keeps four
//! cut points, the values at the 20th, 40th, 60th and 80th percentiles
//! (nearest rank). They are recomputed by the periodic refresh
//! (`shophub profiles refresh`, or every `profile_refresh_interval_seconds`)
//! and computed on the spot when a workspace has none; between refreshes
//! profiles are scored against the last boundaries.

use std::collections::BTreeMap;

use chrono::DateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::settings::ProfileSettings;
use super::ProfileView;
use crate::store::{StoreError, StoreResult, WriteTx};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraitStats {
    /// The configured main currency, else the one most buyers spent in.
    pub main_currency: Option<String>,
    /// Profiles with orders the boundaries were computed from.
    pub buyers: usize,
    pub recency_days: Vec<i64>,
    pub frequency: Vec<i64>,
    pub monetary: Vec<Decimal>,
}

/// Whole days from `from` to `now` (epoch ms), never negative.
pub fn days_between(from: i64, now: i64) -> i64 {
    (now - from).max(0).div_euclid(DAY_MS)
}

/// The four nearest-rank cut points of sorted values (empty for none).
fn quintile_cuts<T: Clone + Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    (1..=4)
        .map(|k| values[(n * k).div_ceil(5) - 1].clone())
        .collect()
}

/// Score 1-5 where more is better: one plus the cuts the value is above.
pub fn score_higher<T: PartialOrd>(value: &T, cuts: &[T]) -> u8 {
    1 + cuts.iter().filter(|cut| *cut < value).count() as u8
}

/// Score 1-5 where less is better (recency in days).
pub fn score_lower<T: PartialOrd>(value: &T, cuts: &[T]) -> u8 {
    5 - cuts.iter().filter(|cut| *cut < value).count() as u8
}

/// Recomputes the workspace's statistics from its profiles' views.
pub async fn recompute(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    settings: &ProfileSettings,
    now: i64,
) -> StoreResult<TraitStats> {
    // (days since last order, order count, spent per currency)
    let mut buyers: Vec<(i64, i64, BTreeMap<String, String>)> = Vec::new();
    let mut after = String::new();
    loop {
        let page = tx.profile_views(workspace_id, &after, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (_, json) in &page {
            let Ok(view) = serde_json::from_str::<ProfileView>(json) else {
                continue;
            };
            let Some(last) = view
                .traits
                .last_order_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            else {
                continue;
            };
            buyers.push((
                days_between(last.timestamp_millis(), now),
                view.traits.order_count,
                view.traits.total_spent,
            ));
        }
    }
    let main_currency = settings.traits.main_currency.clone().or_else(|| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, spent) in &buyers {
            for currency in spent.keys() {
                *counts.entry(currency).or_default() += 1;
            }
        }
        // Most buyers first; the alphabetically first on a tie.
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(currency, _)| currency.to_string())
    });
    let monetary = buyers
        .iter()
        .map(|(_, _, spent)| {
            main_currency
                .as_ref()
                .and_then(|c| spent.get(c))
                .and_then(|s| s.parse::<Decimal>().ok())
                .unwrap_or_default()
        })
        .collect();
    let stats = TraitStats {
        main_currency,
        buyers: buyers.len(),
        recency_days: quintile_cuts(buyers.iter().map(|b| b.0).collect()),
        frequency: quintile_cuts(buyers.iter().map(|b| b.1).collect()),
        monetary: quintile_cuts(monetary),
    };
    let json = serde_json::to_string(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.save_trait_stats(workspace_id, &json, now).await?;
    Ok(stats)
}

/// The stored statistics, computed first if the workspace has none.
pub async fn load(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    settings: &ProfileSettings,
    now: i64,
) -> StoreResult<TraitStats> {
    match tx.trait_stats(workspace_id).await? {
        Some((json, _)) => {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        None => recompute(tx, workspace_id, settings, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_by_nearest_rank() {
        // Ten values: cut k is the value at rank ceil(10k/5) = 2k.
        let cuts = quintile_cuts((1..=10).rev().collect::<Vec<i64>>());
        assert_eq!(cuts, [2, 4, 6, 8]);
        assert_eq!(score_higher(&1, &cuts), 1);
        assert_eq!(score_higher(&3, &cuts), 2);
        assert_eq!(score_higher(&8, &cuts), 4);
        assert_eq!(score_higher(&9, &cuts), 5);
        assert_eq!(score_lower(&1, &cuts), 5, "recent is good");
        assert_eq!(score_lower(&10, &cuts), 1);
        assert!(quintile_cuts(Vec::<i64>::new()).is_empty());
        assert_eq!(score_higher(&7, &[] as &[i64]), 1);
    }
}
