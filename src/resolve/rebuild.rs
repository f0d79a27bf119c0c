//! `shophub resolve rebuild`: recomputes a workspace's profiles from its
//! records, links, cannot-links and protected values, in one transaction:
//! the match model re-learns its parameters from the records (EM, no
//! labels) and its links are replaced by what it finds now.
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
use crate::identity::{self, Constraints, Params, Subject};
use crate::store::{
    CannotLinkRow, LinkRow, NewChange, NewLink, NewSuggestion, RecordId, Store, StoreResult,
    WriteTx,
};

/// Below this many records the model keeps its prior parameters: learning
/// from a handful of records would only add noise.
const ESTIMATE_FROM: usize = 1_000;

/// A suggestion found by the model: two records, the score, the evidence.
type Likely = (RecordId, RecordId, f64, String);

/// Scores the whole workspace with the match model (re-learning its
/// parameters from the records) and replaces the model's links with what
/// it finds now. Returns the pairs it is not sure of.
async fn rescore(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    protection: &Protection,
    links: &[LinkRow],
    cannot: &[CannotLinkRow],
    now: i64,
) -> StoreResult<Vec<Likely>> {
    let records = tx.workspace_records(workspace_id).await?;
    let mut ids: Vec<RecordId> = Vec::with_capacity(records.len());
    let mut subjects: Vec<Subject> = Vec::with_capacity(records.len());
    for (id, data) in records {
        let Ok(record) = serde_json::from_str(&data) else {
            continue;
        };
        subjects.push(identity::subject_of(&record, &id.connection_id));
        ids.push(id);
    }
    let index: BTreeMap<&RecordId, u32> = ids.iter().zip(0u32..).collect();
    let pair = |(a, b): (RecordId, RecordId)| Some((*index.get(&a)?, *index.get(&b)?));
    let constraints = Constraints {
        must_link: links
            .iter()
            .filter(|l| l.rule == "manual")
            .filter_map(|l| pair(l.records()))
            .collect(),
        cannot_link: cannot.iter().filter_map(|c| pair(c.records())).collect(),
    };
    let settings = protection.settings();
    let params = if subjects.len() >= ESTIMATE_FROM {
        let params = identity::estimate(&subjects, settings);
        let json = serde_json::to_string(&params).expect("parameters serialise");
        tx.save_resolver_params(workspace_id, &json, now).await?;
        params
    } else {
        tx.resolver_params(workspace_id)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_else(Params::prior)
    };
    let resolution = identity::resolve(&subjects, &params, &constraints, settings);

    tx.remove_links_by_rule(workspace_id, "model", "rebuild", now)
        .await?;
    for link in resolution.links.iter().filter(|l| l.rule == "model") {
        let evidence = serde_json::json!({ "compared": link.evidence }).to_string();
        tx.add_link(&NewLink {
            workspace_id,
            a: ids[link.a as usize].as_ref(),
            b: ids[link.b as usize].as_ref(),
            rule: "model",
            score: link.score,
            evidence: &evidence,
            now,
        })
        .await?;
    }
    Ok(resolution
        .suggestions
        .iter()
        .map(|l| {
            let evidence = serde_json::json!({ "compared": l.evidence }).to_string();
            (
                ids[l.a as usize].clone(),
                ids[l.b as usize].clone(),
                l.score.unwrap_or_default(),
                evidence,
            )
        })
        .collect())
}

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
    let cannot = tx.workspace_cannot_links(workspace_id).await?;
    let mut links = tx.workspace_links(workspace_id).await?;
    let suggestions = rescore(tx.as_mut(), workspace_id, &protection, &links, &cannot, now).await?;
    links = tx.workspace_links(workspace_id).await?;
    let rows = tx.workspace_keys(workspace_id).await?;
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
                crate::segments::absorbed(tx.as_mut(), &survivor, old, now).await?;
                crate::search::forget(tx.as_mut(), old).await?;
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
    // Likely matches the model left apart, between the profiles as they are now.
    let profile_of: BTreeMap<&RecordId, &str> = parts
        .sets
        .iter()
        .enumerate()
        .flat_map(|(s, set)| set.iter().map(move |&i| (s, i)))
        .map(|(s, i)| (&parts.records[i], target[s].as_str()))
        .collect();
    for (a, b, score, evidence) in &suggestions {
        let (Some(pa), Some(pb)) = (profile_of.get(a), profile_of.get(b)) else {
            continue;
        };
        if pa == pb {
            continue;
        }
        let (pa, pb) = if pa < pb { (*pa, *pb) } else { (*pb, *pa) };
        tx.suggest(&NewSuggestion {
            workspace_id,
            profile_a: pa,
            profile_b: pb,
            reason: &format!("similar records (match probability {score:.3})"),
            evidence,
            now,
        })
        .await?;
    }
    for id in touched.union(&created) {
        refresh_profile(tx.as_mut(), workspace_id, id, created.contains(id), now).await?;
    }
    tx.commit().await?;
    Ok(report)
}
