//! A full rebuild: keys first, then manual links, then model links by
//! score, each union checked against the constraints and limits.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::blocking::map_candidate_pairs;
use super::cluster::{Clusters, Refusal};
use super::compare::{compare, Field, Level};
use super::evidence::Evidence;
use super::model::{probability, Scorer};
use super::{
    explain, hash_of, is_blocked, registry, Compared, Constraints, Link, Params, Protected,
    Resolution, Settings, Subject,
};

/// Groups records into people. See the module docs of `identity`.
pub fn resolve(
    subjects: &[Subject],
    params: &Params,
    constraints: &Constraints,
    settings: &Settings,
) -> Resolution {
    // Content fingerprints order every decision, so shuffled input gives
    // the same partition.
    let fingerprint: Vec<u64> = subjects.par_iter().map(hash_of).collect();
    let mut run = Run {
        subjects,
        fingerprint: &fingerprint,
        clusters: Clusters::new(subjects, settings, constraints),
        links: Vec::new(),
        suggestions: Vec::new(),
        protected: BTreeSet::new(),
        suppressed: HashMap::new(),
    };
    run.link_keys(settings);
    run.link_manual(constraints);
    if !settings.keys_only {
        run.link_model(params, settings);
    }
    let component = run.components();
    Resolution {
        links: run.links,
        suggestions: run.suggestions,
        component,
        protected: run.protected.into_iter().collect(),
    }
}

struct Run<'a> {
    subjects: &'a [Subject],
    fingerprint: &'a [u64],
    clusters: Clusters,
    links: Vec<Link>,
    suggestions: Vec<Link>,
    protected: BTreeSet<Protected>,
    /// Evidence of subjects holding a protected email or phone, without it:
    /// a value that identifies nobody must not count as agreement either.
    suppressed: HashMap<u32, Evidence>,
}

impl Run<'_> {
    fn evidence(&self, i: u32) -> &Evidence {
        self.suppressed
            .get(&i)
            .unwrap_or(&self.subjects[i as usize].evidence)
    }

    /// Drops a protected key value from its holders' evidence.
    fn suppress(&mut self, kind: &str, value: &str, members: &[u32]) {
        let (emails, phones): (&[&str], &[&str]) = match kind {
            "email" => (&[value], &[]),
            "phone" => (&[], &[value]),
            _ => return,
        };
        for &i in members {
            let stripped = self.evidence(i).without(emails, phones);
            self.suppressed.insert(i, stripped);
        }
    }

    fn by_content(&self, a: u32, b: u32) -> Ordering {
        (self.fingerprint[a as usize], a).cmp(&(self.fingerprint[b as usize], b))
    }

    fn link_keys(&mut self, settings: &Settings) {
        let mut entries: Vec<(&str, &str, &str, u32)> = self
            .subjects
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.keys
                    .iter()
                    .filter(|k| registry::is_key(k.kind))
                    .map(move |k| (k.kind, k.scope, &*k.value, i as u32))
            })
            .collect();
        entries.par_sort_unstable_by(|x, y| {
            (x.0, x.1, x.2)
                .cmp(&(y.0, y.1, y.2))
                .then_with(|| self.by_content(x.3, y.3))
        });
        for group in entries.chunk_by(|x, y| (x.0, x.1, x.2) == (y.0, y.1, y.2)) {
            if group.len() < 2 {
                continue;
            }
            let (kind, value) = (group[0].0, group[0].2);
            let members: Vec<u32> = group.iter().map(|e| e.3).collect();
            let protect = |reason: String| Protected {
                kind: kind.to_owned(),
                value: value.to_owned(),
                reason,
                records: members.len(),
            };
            if is_blocked(kind, value, settings) {
                self.protected
                    .insert(protect("placeholder value".to_owned()));
                self.suppress(kind, value, &members);
                continue;
            }
            if registry::is_shareable(kind) {
                let people = distinct_people(self.subjects, &members, settings.max_people_per_key);
                if people > settings.max_people_per_key {
                    self.protected.insert(protect(format!(
                        "seen with more than {} different people",
                        settings.max_people_per_key
                    )));
                    self.suppress(kind, value, &members);
                    continue;
                }
            }
            for &other in &members[1..] {
                match self.clusters.union(members[0], other, true) {
                    Ok(true) => self.links.push(Link {
                        a: members[0],
                        b: other,
                        rule: format!("key:{kind}"),
                        score: None,
                        evidence: vec![Compared {
                            field: kind.to_owned(),
                            level: Level::Exact.as_str().to_owned(),
                            a: Some(value.to_owned()),
                            b: Some(value.to_owned()),
                            weight: 0.0,
                        }],
                    }),
                    Ok(false) | Err(Refusal::CannotLink) => {}
                    Err(Refusal::Limit(limited)) => {
                        let (name, limit) = &self.clusters.limits[limited];
                        self.protected.insert(protect(format!(
                            "would give one person more than {limit} {name} values"
                        )));
                    }
                }
            }
        }
    }

    fn link_manual(&mut self, constraints: &Constraints) {
        let n = self.subjects.len() as u32;
        let mut pairs: Vec<(u32, u32)> = constraints
            .must_link
            .iter()
            .filter(|(a, b)| *a < n && *b < n && a != b)
            .copied()
            .collect();
        pairs.sort_unstable_by(|x, y| {
            self.by_content(x.0, y.0)
                .then_with(|| self.by_content(x.1, y.1))
        });
        for (a, b) in pairs {
            match self.clusters.union(a, b, false) {
                Ok(true) => self.links.push(Link {
                    a,
                    b,
                    rule: "manual".to_owned(),
                    score: None,
                    evidence: Vec::new(),
                }),
                Ok(false) => {}
                Err(_) => {
                    self.protected.insert(Protected {
                        kind: "manual".to_owned(),
                        value: format!("{a}-{b}"),
                        reason: "must-link conflicts with a cannot-link".to_owned(),
                        records: 2,
                    });
                }
            }
        }
    }

    fn link_model(&mut self, params: &Params, settings: &Settings) {
        let scorer = Scorer::new(params);
        let this = &*self;
        // Scored as generated: only pairs worth keeping are ever held.
        let mut scored: Vec<(f64, u32, u32)> = map_candidate_pairs(self.subjects, |a, b| {
            let (x, y) = (this.evidence(a), this.evidence(b));
            let p = probability(scorer.weight(&compare(x, y), x));
            (p >= settings.suggest_threshold).then_some((p, a, b))
        });
        let fp = self.fingerprint;
        let content = |a: u32, b: u32| {
            let (x, y) = (fp[a as usize], fp[b as usize]);
            (x.min(y), x.max(y))
        };
        scored.sort_unstable_by(|x, y| {
            y.0.total_cmp(&x.0)
                .then_with(|| content(x.1, x.2).cmp(&content(y.1, y.2)))
                .then_with(|| (x.1, x.2).cmp(&(y.1, y.2)))
        });
        let mut pending = Vec::new();
        for (p, a, b) in scored {
            if p >= settings.link_threshold {
                match self.clusters.union(a, b, true) {
                    Ok(true) => {
                        let link = self.model_link(&scorer, p, a, b);
                        self.links.push(link);
                    }
                    Ok(false) => {}
                    Err(_) => pending.push((p, a, b)),
                }
            } else {
                pending.push((p, a, b));
            }
        }
        // The best pair between two components stands for them.
        let mut seen = BTreeSet::new();
        for (p, a, b) in pending {
            let (ra, rb) = (self.clusters.find(a), self.clusters.find(b));
            if ra != rb && seen.insert((ra.min(rb), ra.max(rb))) {
                let link = self.model_link(&scorer, p, a, b);
                self.suggestions.push(link);
            }
        }
    }

    fn model_link(&self, scorer: &Scorer, p: f64, a: u32, b: u32) -> Link {
        let (x, y) = (self.evidence(a), self.evidence(b));
        Link {
            a,
            b,
            rule: "model".to_owned(),
            score: Some(p),
            evidence: explain(scorer, &compare(x, y), x, y),
        }
    }

    /// Components numbered in the order of their smallest member fingerprint.
    fn components(&mut self) -> Vec<u32> {
        let n = self.subjects.len();
        let roots: Vec<u32> = (0..n as u32).map(|i| self.clusters.find(i)).collect();
        let mut first: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
        for (i, root) in roots.iter().enumerate() {
            let key = (self.fingerprint[i], i as u32);
            first
                .entry(*root)
                .and_modify(|k| *k = (*k).min(key))
                .or_insert(key);
        }
        let mut order: Vec<((u64, u32), u32)> = first.into_iter().map(|(r, k)| (k, r)).collect();
        order.sort_unstable();
        let mut number = vec![0u32; n];
        for (rank, (_, root)) in order.iter().enumerate() {
            number[*root as usize] = rank as u32;
        }
        roots.iter().map(|r| number[*r as usize]).collect()
    }
}

/// How many clearly different people the records sharing one key value
/// show, counting up to `limit + 1`: different names (neither exact nor
/// close), different document ids, different birth dates.
fn distinct_people(subjects: &[Subject], members: &[u32], limit: usize) -> usize {
    let mut names: Vec<&Subject> = Vec::new();
    let mut documents: BTreeSet<&str> = BTreeSet::new();
    let mut births: BTreeSet<u32> = BTreeSet::new();
    for &i in members {
        let s = &subjects[i as usize];
        if s.evidence.name.is_some()
            && names.len() <= limit
            && !names.iter().any(|r| {
                matches!(
                    Field::Name.compare(&r.evidence, &s.evidence),
                    Level::Exact | Level::Close
                )
            })
        {
            names.push(s);
        }
        documents.extend(s.evidence.document.as_deref());
        births.extend(s.evidence.birth);
        if names.len().max(documents.len()).max(births.len()) > limit {
            break;
        }
    }
    names.len().max(documents.len()).max(births.len())
}
