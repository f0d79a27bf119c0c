//! Profiles as connected components of the identity graph.
//!
//! A profile's records are joined by the keys they share (unless a key value
//! is protected) and by explicit links (a person's merge, a model match);
//! a cannot-link between two records keeps their sides apart whatever joins
//! them. When something is taken away (a split, an unlinked identity, a
//! protected value) the profile is recomputed: if it fell apart, the largest
//! part keeps the id and the others become new profiles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;

use super::matching::BLOCK;
use super::{new_profile_id, refresh_profile};
use crate::identity;
use crate::store::{
    CannotLinkRow, LinkRow, NewChange, NewLink, RecordId, RecordKeyRow, StoreResult, WriteTx,
};

/// Key values of a workspace that must not link: the defaults plus what
/// was configured, unlinked or detected.
pub struct Protection {
    settings: identity::Settings,
}

impl Protection {
    pub async fn load(tx: &mut dyn WriteTx, workspace_id: &str) -> StoreResult<Protection> {
        let mut settings = identity::Settings::default();
        settings
            .blocked
            .extend(tx.protected_keys(workspace_id).await?);
        Ok(Protection { settings })
    }

    pub fn blocks(&self, kind: &str, value: &str) -> bool {
        identity::is_blocked(kind, value, &self.settings)
    }

    pub fn insert(&mut self, kind: &str, value: &str) {
        self.settings
            .blocked
            .push((kind.to_string(), value.to_string()));
    }

    pub fn settings(&self) -> &identity::Settings {
        &self.settings
    }
}

/// Union-find whose unions refuse to join records a person kept apart.
struct Components {
    parent: Vec<usize>,
    /// Per root: the records its set must never be joined with.
    apart: Vec<BTreeSet<usize>>,
}

impl Components {
    fn new(n: usize, cannot: &[(usize, usize)]) -> Components {
        let mut apart = vec![BTreeSet::new(); n];
        for &(a, b) in cannot {
            apart[a].insert(b);
            apart[b].insert(a);
        }
        Components {
            parent: (0..n).collect(),
            apart,
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the sets of `a` and `b` unless a cannot-link spans them.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let blocked = self.apart[ra]
            .clone()
            .into_iter()
            .any(|other| self.find(other) == rb);
        if blocked {
            return;
        }
        let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[gone] = keep;
        let moved = std::mem::take(&mut self.apart[gone]);
        self.apart[keep].extend(moved);
    }

    /// Sets in order of their smallest member.
    fn sets(mut self) -> Vec<Vec<usize>> {
        let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.parent.len() {
            let root = self.find(i);
            by_root.entry(root).or_default().push(i);
        }
        let mut sets: Vec<Vec<usize>> = by_root.into_values().collect();
        sets.sort_by_key(|s| s[0]);
        sets
    }
}

/// Records and the parts they fall into: indexes into `records`, each part
/// in order of its oldest record.
pub struct Partition {
    pub records: Vec<RecordId>,
    /// The profile each record is in now.
    pub profiles: Vec<String>,
    pub sets: Vec<Vec<usize>>,
}

/// Connected components over shared unprotected keys and explicit links,
/// never joining across a cannot-link. Rows come in order of arrival, so
/// the partition does not depend on the order records were resolved in.
pub fn partition(
    rows: Vec<RecordKeyRow>,
    links: &[LinkRow],
    cannot: &[CannotLinkRow],
    protection: &Protection,
) -> Partition {
    let mut records: Vec<RecordId> = Vec::new();
    let mut profiles: Vec<String> = Vec::new();
    let mut index: HashMap<RecordId, usize> = HashMap::new();
    let mut holders: BTreeMap<(String, String, String), Vec<usize>> = BTreeMap::new();
    for row in rows {
        let id = row.record_id();
        let i = match index.get(&id) {
            Some(&i) => i,
            None => {
                index.insert(id.clone(), records.len());
                records.push(id);
                profiles.push(row.profile_id);
                records.len() - 1
            }
        };
        if let (Some(kind), Some(scope), Some(value)) = (row.key_kind, row.key_scope, row.key_value)
        {
            // Blocking values find candidates; they never join anything.
            if kind != BLOCK && !protection.blocks(&kind, &value) {
                holders.entry((kind, scope, value)).or_default().push(i);
            }
        }
    }
    let pair = |(a, b): (RecordId, RecordId)| Some((*index.get(&a)?, *index.get(&b)?));
    let apart: Vec<(usize, usize)> = cannot.iter().filter_map(|c| pair(c.records())).collect();
    let mut components = Components::new(records.len(), &apart);
    // A person's decisions and model matches first, then keys, so that a
    // merge a person made is not blocked by the order keys are visited in.
    for link in links.iter().filter(|l| !l.rule.starts_with("key:")) {
        if let Some((a, b)) = pair(link.records()) {
            components.union(a, b);
        }
    }
    for members in holders.values() {
        for pair in members.windows(2) {
            components.union(pair[0], pair[1]);
        }
    }
    Partition {
        records,
        profiles,
        sets: components.sets(),
    }
}

/// Recomputes a live profile's components and splits it if it fell apart.
/// Returns the ids of the profiles split off (empty if it held together).
pub async fn recompute(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<Vec<String>> {
    let protection = Protection::load(tx, workspace_id).await?;
    let rows = tx.profile_keys(profile_id).await?;
    let links = tx.profile_links(profile_id).await?;
    let cannot = tx.profile_cannot_links(profile_id).await?;
    let Partition { records, sets, .. } = partition(rows, &links, &cannot, &protection);
    let mut sets = sets;
    if sets.len() <= 1 {
        return Ok(Vec::new());
    }
    // The largest part keeps the id; among equals, the one with the oldest record.
    let keep = (0..sets.len())
        .max_by_key(|&i| (sets[i].len(), std::cmp::Reverse(sets[i][0])))
        .expect("at least two sets");
    sets.remove(keep);
    let mut split_off = Vec::new();
    for set in sets {
        let id = new_profile_id();
        tx.create_profile(workspace_id, &id, now).await?;
        for &i in &set {
            tx.move_record(records[i].as_ref(), &id).await?;
        }
        split_off.push(id);
    }
    tx.remove_crossing_links(profile_id, reason, now).await?;
    let data = json!({ "profile": profile_id, "into": split_off, "reason": reason }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind: "profile.split",
        profile_id,
        data: &data,
        now,
    })
    .await?;
    refresh_profile(tx, workspace_id, profile_id, false, now).await?;
    for id in &split_off {
        refresh_profile(tx, workspace_id, id, true, now).await?;
    }
    Ok(split_off)
}

/// Moves the chosen records out of a profile, as a person decided: they
/// stay together, and no rule joins them with the rest again.
pub async fn split(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    moving: &[RecordId],
    now: i64,
) -> StoreResult<Vec<String>> {
    let staying: Vec<RecordId> = tx
        .profile_keys(profile_id)
        .await?
        .into_iter()
        .map(|row| row.record_id())
        .filter(|id| !moving.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for out in moving {
        for stay in &staying {
            tx.add_cannot_link(workspace_id, out.as_ref(), stay.as_ref(), "split", now)
                .await?;
        }
    }
    let evidence = json!({ "split_from": profile_id }).to_string();
    for pair in moving.windows(2) {
        tx.add_link(&NewLink {
            workspace_id,
            a: pair[0].as_ref(),
            b: pair[1].as_ref(),
            rule: "manual",
            score: None,
            evidence: &evidence,
            now,
        })
        .await?;
    }
    recompute(tx, workspace_id, profile_id, "split by a person", now).await
}

/// Cannot-links between two profiles' records, so that the pair is never
/// joined again by a rule (a rejected suggestion). Bounded: a handful of
/// records per side carry the decision.
pub async fn keep_apart(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_a: &str,
    profile_b: &str,
    reason: &str,
    now: i64,
) -> StoreResult<()> {
    const PER_SIDE: usize = 25;
    let side = |rows: Vec<crate::store::RecordKeyRow>| -> Vec<RecordId> {
        rows.into_iter()
            .map(|row| row.record_id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(PER_SIDE)
            .collect()
    };
    let a = side(tx.profile_keys(profile_a).await?);
    let b = side(tx.profile_keys(profile_b).await?);
    for x in &a {
        for y in &b {
            tx.add_cannot_link(workspace_id, x.as_ref(), y.as_ref(), reason, now)
                .await?;
        }
    }
    Ok(())
}

/// Stops a key value from linking anywhere in the workspace and recomputes
/// the profiles it held together.
pub async fn protect_value(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    key: (&str, &str),
    source: &str,
    reason: &str,
    now: i64,
) -> StoreResult<Vec<String>> {
    let (kind, value) = key;
    tx.protect(workspace_id, kind, value, source, reason, now)
        .await?;
    let profiles = tx.profiles_with_value(workspace_id, kind, value).await?;
    let mut affected = Vec::new();
    for profile in profiles {
        affected.push(profile.clone());
        affected.extend(recompute(tx, workspace_id, &profile, reason, now).await?);
    }
    Ok(affected)
}

/// Erases a record (a person's request to be forgotten on one platform):
/// its data, keys, links and complaint go, and the profile it was in is
/// recomputed, splitting where the record was the only bridge. Returns the
/// profile, or `None` if there was no such record.
pub async fn erase(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    record: &RecordId,
    now: i64,
) -> StoreResult<Option<String>> {
    let Some(profile_id) = tx.erase_record(workspace_id, record.as_ref()).await? else {
        return Ok(None);
    };
    let split_off = recompute(tx, workspace_id, &profile_id, "a record was erased", now).await?;
    if split_off.is_empty() {
        refresh_profile(tx, workspace_id, &profile_id, false, now).await?;
    }
    Ok(Some(profile_id))
}
