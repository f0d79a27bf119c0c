//! `shophub resolve rebuild`: recomputes a workspace's profiles from its
//! records, links, cannot-links and protected values, in one transaction.
//!
//! Profile ids are kept where they still mean the same person: each new
//! component takes the id of the old profile most of its records were in
//! (largest components choose first). Old profiles left empty become
//! aliases (`profile.merged`); ones that lost records announce
//! `profile.split`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::graph::{partition, Protection};
use super::{new_profile_id, refresh_profile};
use crate::store::{NewChange, Store, StoreResult};

#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    pub records: usize,
    pub profiles_before: usize,
    pub profiles_after: usize,
    pub records_moved: usize,
    pub merged: usize,
    pub split: usize,
}

pub async fn rebuild(
    store: &dyn Store,
    workspace_id: &str,
    now: i64,
) -> StoreResult<RebuildReport> {
    let mut tx = store.begin_write(workspace_id).await?;
    let protection = Protection::load(tx.as_mut(), workspace_id).await?;
    let rows = tx.workspace_keys(workspace_id).await?;
    let links = tx.workspace_links(workspace_id).await?;
    let cannot = tx.workspace_cannot_links(workspace_id).await?;
    let parts = partition(rows, &links, &cannot, &protection);

    let mut report = RebuildReport {
        records: parts.records.len(),
        profiles_before: parts.profiles.iter().collect::<BTreeSet<_>>().len(),
        profiles_after: parts.sets.len(),
        ..RebuildReport::default()
    };

    // Largest components choose their id first.
    let mut order: Vec<usize> = (0..parts.sets.len()).collect();
    order.sort_by_key(|&s| (std::cmp::Reverse(parts.sets[s].len()), parts.sets[s][0]));
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut target: Vec<String> = vec![String::new(); parts.sets.len()];
    let mut created: BTreeSet<String> = BTreeSet::new();
    for &s in &order {
        let mut counts: BTreeMap<&str, (usize, std::cmp::Reverse<usize>)> = BTreeMap::new();
        for &i in &parts.sets[s] {
            let entry = counts
                .entry(parts.profiles[i].as_str())
                .or_insert((0, std::cmp::Reverse(i)));
            entry.0 += 1;
        }
        let best = counts
            .iter()
            .filter(|(id, _)| !taken.contains(*id))
            .max_by_key(|(_, rank)| **rank)
            .map(|(id, _)| *id);
        target[s] = match best {
            Some(id) => {
                taken.insert(id);
                id.to_string()
            }
            None => {
                let id = new_profile_id();
                tx.create_profile(workspace_id, &id, now).await?;
                created.insert(id.clone());
                id
            }
        };
    }

    // Where each old profile's records went.
    let mut went: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for (s, set) in parts.sets.iter().enumerate() {
        for &i in set {
            went.entry(parts.profiles[i].as_str())
                .or_default()
                .insert(s);
            if parts.profiles[i] != target[s] {
                tx.move_record(parts.records[i].as_ref(), &target[s])
                    .await?;
                report.records_moved += 1;
                touched.insert(target[s].clone());
                touched.insert(parts.profiles[i].clone());
            }
        }
    }
    for (old, sets) in &went {
        let kept = sets.iter().find(|&&s| target[s] == *old);
        match kept {
            // The id survives on one part; any others were split off.
            Some(&keep) if sets.len() > 1 => {
                let into: Vec<&str> = sets
                    .iter()
                    .filter(|&&s| s != keep)
                    .map(|&s| target[s].as_str())
                    .collect();
                let data = json!({ "profile": old, "into": into, "reason": "rebuild" }).to_string();
                tx.append_change(&NewChange {
                    workspace_id,
                    kind: "profile.split",
                    profile_id: old,
                    data: &data,
                    now,
                })
                .await?;
                report.split += 1;
            }
            Some(_) => {}
            // Every record left: the id becomes an alias of the first part
            // that received them.
            None => {
                let survivor =
                    target[*sets.iter().next().expect("a record went somewhere")].clone();
                tx.absorb_profile(&survivor, old, now).await?;
                touched.remove(*old);
                let data = json!({ "survivor": survivor, "absorbed": [old] }).to_string();
                tx.append_change(&NewChange {
                    workspace_id,
                    kind: "profile.merged",
                    profile_id: &survivor,
                    data: &data,
                    now,
                })
                .await?;
                report.merged += 1;
            }
        }
    }
    for id in touched.union(&created) {
        refresh_profile(tx.as_mut(), workspace_id, id, created.contains(id), now).await?;
    }
    tx.commit().await?;
    Ok(report)
}
