//! The Fellegi–Sunter model: per field and agreement level, the chance `m`
//! of seeing that level when two records are the same person and `u` when
//! they are not; a pair's weight is the sum of `log2(m/u)` over its fields.
//! `m`, `u` and the prior are estimated without labels by EM.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::blocking::map_candidate_pairs_from;
use super::compare::{compare, Field, Level, Pattern, FIELDS, SCORED_LEVELS};
use super::evidence::Evidence;
use super::{hash_of, Settings, Subject};

/// `m` and `u` of one field, indexed by level: exact, close, masked, different.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FieldParams {
    pub field: String,
    pub m: [f64; SCORED_LEVELS],
    pub u: [f64; SCORED_LEVELS],
}

/// Model parameters: storable as JSON and reusable between rebuilds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Params {
    /// Share of candidate pairs that are the same person.
    pub prior: f64,
    /// One entry per compared field.
    pub fields: Vec<FieldParams>,
    /// Share of records carrying each frequent exact name (bounded to the
    /// most frequent names): an exact match on a common name weighs less.
    pub name_frequency: BTreeMap<String, f64>,
    /// The name share an agreeing pair of strangers typically has; names
    /// more frequent than this are discounted.
    pub name_frequency_baseline: f64,
}

/// How many frequent names `Params` keeps.
const NAME_FREQUENCY_ENTRIES: usize = 2000;
/// EM runs on at most this many candidate pairs (an even sample beyond).
const MAX_EM_PAIRS: usize = 2_000_000;
/// EM looks at the candidate pairs of about this many records (chosen by
/// content, so the sample does not depend on input order): enough to fit a
/// few dozen parameters, and the pairs of the rest need not be made.
const EM_RECORDS: usize = 250_000;
const EM_ROUNDS: usize = 200;
const FLOOR: f64 = 1e-6;
/// Most log2 weight the location fields together may add (see `field_weights`).
const LOCATION_CAP: f64 = 8.0;
/// Highest log2-odds of a pair that only looks like one household (see
/// `Scorer::weight`): probability 0.75, below the default suggestion
/// threshold, since households are common enough to flood a review queue.
const CONFLICT_CAP: f64 = 1.584_962_500_721_156; // log2(3)
/// Levels a field cannot take get equal m and u: weight 0.
const NOT_APPLICABLE: f64 = 1e-9;

fn applicable(field: Field, level: usize) -> bool {
    match level {
        2 => field == Field::Phone,
        1 => field != Field::Region,
        _ => true,
    }
}

impl Params {
    /// Hand-set defaults, usable before any estimation.
    pub fn prior() -> Params {
        let table: [(Field, [f64; 4], [f64; 4]); 9] = [
            (
                Field::Name,
                [0.80, 0.15, 0.0, 0.05],
                [0.002, 0.01, 0.0, 0.988],
            ),
            (
                Field::BirthDate,
                [0.90, 0.06, 0.0, 0.04],
                [0.0003, 0.003, 0.0, 0.9967],
            ),
            (
                Field::DocumentId,
                [0.90, 0.06, 0.0, 0.04],
                [1e-6, 1e-5, 0.0, 0.99999],
            ),
            (
                Field::Email,
                [0.60, 0.10, 0.0, 0.30],
                [1e-6, 1e-6, 0.0, 0.999998],
            ),
            (
                Field::Phone,
                [0.60, 0.05, 0.10, 0.25],
                [1e-6, 1e-5, 1e-3, 0.999],
            ),
            (
                Field::Address,
                [0.70, 0.15, 0.0, 0.15],
                [1e-4, 1e-3, 0.0, 0.9989],
            ),
            (
                Field::City,
                [0.80, 0.10, 0.0, 0.10],
                [0.05, 0.02, 0.0, 0.93],
            ),
            (
                Field::Postcode,
                [0.80, 0.10, 0.0, 0.10],
                [0.005, 0.02, 0.0, 0.975],
            ),
            (Field::Region, [0.90, 0.0, 0.0, 0.10], [0.2, 0.0, 0.0, 0.8]),
        ];
        let fields = table
            .iter()
            .map(|(field, m, u)| {
                let fix = |p: &[f64; 4]| {
                    std::array::from_fn(|l| {
                        if applicable(*field, l) {
                            p[l]
                        } else {
                            NOT_APPLICABLE
                        }
                    })
                };
                FieldParams {
                    field: field.as_str().to_owned(),
                    m: fix(m),
                    u: fix(u),
                }
            })
            .collect();
        Params {
            prior: 0.1,
            fields,
            name_frequency: BTreeMap::new(),
            name_frequency_baseline: 1.0,
        }
    }
}

/// Precomputed log weights for scoring many pairs with one `Params`.
pub(crate) struct Scorer<'a> {
    weights: [[f64; SCORED_LEVELS]; FIELDS.len()],
    prior: f64,
    params: &'a Params,
}

impl<'a> Scorer<'a> {
    pub fn new(params: &'a Params) -> Scorer<'a> {
        let mut weights = [[0.0; SCORED_LEVELS]; FIELDS.len()];
        for (i, field) in FIELDS.iter().enumerate() {
            let Some(p) = params.fields.iter().find(|p| p.field == field.as_str()) else {
                continue;
            };
            for (w, (m, u)) in weights[i].iter_mut().zip(p.m.iter().zip(&p.u)) {
                *w = (m.max(NOT_APPLICABLE) / u.max(NOT_APPLICABLE)).log2();
            }
        }
        let prior = params.prior.clamp(FLOOR, 1.0 - FLOOR);
        Scorer {
            weights,
            prior: (prior / (1.0 - prior)).log2(),
            params,
        }
    }

    /// Log2 Bayes factor of one field at one level, with the name's
    /// frequency discount when `a` is the exact name both share.
    fn raw_weight(&self, i: usize, level: Level, a: &Evidence) -> f64 {
        if level == Level::Missing {
            return 0.0;
        }
        let mut w = self.weights[i][level as usize];
        if FIELDS[i] == Field::Name && level == Level::Exact {
            let share = a
                .name
                .as_deref()
                .and_then(|n| self.params.name_frequency.get(n));
            if let Some(share) = share {
                w -= (share / self.params.name_frequency_baseline)
                    .log2()
                    .max(0.0);
            }
        }
        w
    }

    /// Each field's contribution (log2 Bayes factor). The location fields
    /// say one thing (where the parcel goes, shared by a household), not
    /// four independent ones, so together they add at most `LOCATION_CAP`.
    pub fn field_weights(&self, pattern: &Pattern, a: &Evidence) -> [f64; FIELDS.len()] {
        let mut w: [f64; FIELDS.len()] = std::array::from_fn(|i| self.raw_weight(i, pattern[i], a));
        let location: f64 = (0..FIELDS.len())
            .filter(|i| FIELDS[*i].is_location())
            .map(|i| w[i].max(0.0))
            .sum();
        if location > LOCATION_CAP {
            let scale = LOCATION_CAP / location;
            for (i, x) in w.iter_mut().enumerate() {
                if FIELDS[i].is_location() && *x > 0.0 {
                    *x *= scale;
                }
            }
        }
        w
    }

    /// Posterior log2-odds of a match.
    ///
    /// A household shares its address, often a landline or a mailbox, and
    /// sometimes a name (Jr. and Sr.). So the odds rise above `CONFLICT_CAP`
    /// only when a personal field (birth date, document id, email, phone)
    /// agrees at least partly, or the full name and the exact address
    /// agree with no birth date against, and, when the names conflict,
    /// only when the birth date or document id does.
    pub fn weight(&self, pattern: &Pattern, a: &Evidence) -> f64 {
        let w = self.prior + self.field_weights(pattern, a).iter().sum::<f64>();
        let at = |f: Field| pattern[FIELDS.iter().position(|x| *x == f).unwrap_or(0)];
        let agrees = |f: Field| matches!(at(f), Level::Exact | Level::Close | Level::Masked);
        let personal = [
            Field::BirthDate,
            Field::DocumentId,
            Field::Email,
            Field::Phone,
        ]
        .into_iter()
        .any(agrees);
        let born = agrees(Field::BirthDate) || agrees(Field::DocumentId);
        // The same full name at the same street address and postcode is
        // one person re-typing their details, unless birth dates tell a
        // namesake parent and child apart.
        let same_name_and_place = at(Field::Name) == Level::Exact
            && a.name_tokens().nth(1).is_some()
            && at(Field::Address) == Level::Exact
            && at(Field::Postcode) == Level::Exact
            && at(Field::BirthDate) != Level::Different;
        if !(personal || same_name_and_place) || (at(Field::Name) == Level::Different && !born) {
            w.min(CONFLICT_CAP)
        } else {
            w
        }
    }
}

pub(crate) fn probability(log2_odds: f64) -> f64 {
    1.0 / (1.0 + (-log2_odds).exp2())
}

/// Frequent names and the baseline share, over all subjects.
fn name_frequencies(subjects: &[Subject]) -> (BTreeMap<String, f64>, f64) {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for s in subjects {
        if let Some(name) = s.evidence.name.as_deref() {
            *counts.entry(name).or_default() += 1;
        }
    }
    let n = counts.values().sum::<u64>().max(1) as f64;
    let (mut sq, mut cube) = (0.0, 0.0);
    for c in counts.values() {
        let f = *c as f64 / n;
        sq += f * f;
        cube += f * f * f;
    }
    let baseline = if sq > 0.0 { cube / sq } else { 1.0 };
    let mut frequent: Vec<(&str, u64)> = counts
        .into_iter()
        .filter(|(_, c)| *c >= 2 && *c as f64 / n > baseline)
        .collect();
    frequent.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    frequent.truncate(NAME_FREQUENCY_ENTRIES);
    let table = frequent
        .into_iter()
        .map(|(name, c)| (name.to_owned(), c as f64 / n))
        .collect();
    (table, baseline)
}

/// Distinct comparison patterns of the given pairs, with their counts, in a
/// stable order.
fn pattern_counts(subjects: &[Subject], pairs: &[(u32, u32)]) -> Vec<(Pattern, f64)> {
    let patterns: Vec<Pattern> = pairs
        .par_iter()
        .map(|(a, b)| {
            compare(
                &subjects[*a as usize].evidence,
                &subjects[*b as usize].evidence,
            )
        })
        .collect();
    count_patterns(&patterns)
}

/// Distinct patterns with their counts, in a stable order.
fn count_patterns(patterns: &[Pattern]) -> Vec<(Pattern, f64)> {
    let counts = patterns
        .par_iter()
        .fold(HashMap::<Pattern, u64>::new, |mut acc, p| {
            *acc.entry(*p).or_default() += 1;
            acc
        })
        .reduce(HashMap::new, |mut x, y| {
            for (k, v) in y {
                *x.entry(k).or_default() += v;
            }
            x
        });
    let mut counts: Vec<(Pattern, f64)> = counts.into_iter().map(|(k, v)| (k, v as f64)).collect();
    counts.sort_unstable_by_key(|x| x.0);
    counts
}

/// A deterministic sample of pairs of distinct records (splitmix64).
fn random_pairs(n: usize, count: usize) -> Vec<(u32, u32)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..count)
        .filter_map(|_| {
            let a = (next() % n as u64) as u32;
            let b = (next() % n as u64) as u32;
            (a != b).then_some((a, b))
        })
        .collect()
}

/// Level shares over the non-missing comparisons of each field.
fn level_shares(counts: &[(Pattern, f64)], weight: impl Fn(usize) -> f64) -> Vec<[f64; 4]> {
    let mut sums = vec![[0.0; SCORED_LEVELS]; FIELDS.len()];
    for (j, (pattern, c)) in counts.iter().enumerate() {
        let w = c * weight(j);
        for (i, level) in pattern.iter().enumerate() {
            if *level != Level::Missing {
                sums[i][*level as usize] += w;
            }
        }
    }
    sums.iter()
        .enumerate()
        .map(|(i, s)| {
            let total: f64 = s.iter().sum();
            std::array::from_fn(|l| {
                if !applicable(FIELDS[i], l) {
                    NOT_APPLICABLE
                } else if total > 0.0 {
                    (s[l] / total).max(FLOOR)
                } else {
                    f64::NAN
                }
            })
        })
        .collect()
}

/// Estimates `m`, `u` and the prior from the data alone.
///
/// `u` starts from random pairs (nearly all strangers), `m` from the hand
/// set prior; EM then fits both and the prior over the blocked candidate
/// pairs, where matches are frequent enough to be seen.
pub fn estimate(subjects: &[Subject], _settings: &Settings) -> Params {
    let mut params = Params::prior();
    let (names, baseline) = name_frequencies(subjects);
    params.name_frequency = names;
    params.name_frequency_baseline = baseline;
    if subjects.len() < 2 {
        return params;
    }
    let random = pattern_counts(subjects, &random_pairs(subjects.len(), 200_000));
    let random_u = level_shares(&random, |_| 1.0);
    for (p, u) in params.fields.iter_mut().zip(&random_u) {
        if u.iter().all(|x| x.is_finite()) {
            p.u = *u;
        }
    }
    let every = subjects.len().div_ceil(EM_RECORDS) as u64;
    let chosen = |a: u32| every <= 1 || hash_of(&subjects[a as usize].evidence) % every == 0;
    let mut patterns = map_candidate_pairs_from(subjects, chosen, |a, b| {
        Some(compare(
            &subjects[a as usize].evidence,
            &subjects[b as usize].evidence,
        ))
    });
    if patterns.len() > MAX_EM_PAIRS {
        let step = patterns.len().div_ceil(MAX_EM_PAIRS);
        patterns = patterns.into_iter().step_by(step).collect();
    }
    let counts = count_patterns(&patterns);
    drop(patterns);
    if !counts.is_empty() {
        expectation_maximisation(&mut params, &counts);
    }
    // EM's `u` describes strangers that blocking brought together, who
    // share a name or a street by construction; scoring wants strangers at
    // large, so `u` goes back to the random-pair estimate.
    for (p, u) in params.fields.iter_mut().zip(&random_u) {
        if u.iter().all(|x| x.is_finite()) {
            p.u = *u;
            p.m = plausible(p.m, &p.u);
        }
    }
    params
}

fn log_likelihoods(params: &Params, pattern: &Pattern) -> (f64, f64) {
    let mut lm = params.prior.ln();
    let mut lu = (1.0 - params.prior).ln();
    for (i, level) in pattern.iter().enumerate() {
        if *level != Level::Missing {
            lm += params.fields[i].m[*level as usize].ln();
            lu += params.fields[i].u[*level as usize].ln();
        }
    }
    (lm, lu)
}

/// Keeps `m` meaningful whatever EM found: a disagreement never counts for
/// a match, and a close agreement never counts more than an exact one.
/// (Unconstrained EM on shop data happily learns "same household" instead
/// of "same person".)
fn plausible(mut m: [f64; SCORED_LEVELS], u: &[f64; SCORED_LEVELS]) -> [f64; SCORED_LEVELS] {
    let ratio = |m: &[f64; SCORED_LEVELS], l: usize| m[l] / u[l].max(NOT_APPLICABLE);
    let different = Level::Different as usize;
    if m[different] > u[different] {
        m[different] = u[different];
    }
    for l in [Level::Close as usize, Level::Masked as usize] {
        if u[l] > NOT_APPLICABLE && ratio(&m, l) > ratio(&m, 0) {
            m[l] = ratio(&m, 0) * u[l];
        }
    }
    let total: f64 = (0..SCORED_LEVELS)
        .filter(|l| u[*l] > NOT_APPLICABLE)
        .map(|l| m[l])
        .sum();
    for (l, x) in m.iter_mut().enumerate() {
        if u[l] > NOT_APPLICABLE {
            *x /= total;
        }
    }
    m
}

fn expectation_maximisation(params: &mut Params, counts: &[(Pattern, f64)]) {
    let total: f64 = counts.iter().map(|(_, c)| c).sum();
    for _ in 0..EM_ROUNDS {
        let g: Vec<f64> = counts
            .iter()
            .map(|(pattern, _)| {
                let (lm, lu) = log_likelihoods(params, pattern);
                1.0 / (1.0 + (lu - lm).exp())
            })
            .collect();
        let matched: f64 = counts.iter().zip(&g).map(|((_, c), g)| c * g).sum();
        let prior = (matched / total).clamp(FLOOR, 1.0 - FLOOR);
        let m = level_shares(counts, |j| g[j]);
        let u = level_shares(counts, |j| 1.0 - g[j]);
        let mut change = (prior - params.prior).abs();
        params.prior = prior;
        for (i, p) in params.fields.iter_mut().enumerate() {
            if m[i].iter().chain(&u[i]).all(|x| x.is_finite()) {
                p.u = u[i];
                let m = plausible(m[i], &p.u);
                for (new, old) in m.iter().zip(&p.m) {
                    change = change.max((new - old).abs());
                }
                p.m = m;
            }
        }
        if change < 1e-7 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Key;

    fn subject(name: &str, birth: u32, document: &str, city: &str) -> Subject {
        Subject {
            keys: Vec::<Key>::new(),
            evidence: Evidence {
                name: Some(name.into()),
                birth: Some(birth),
                document: Some(document.into()),
                city: Some(city.into()),
                ..Evidence::default()
            },
        }
    }

    #[test]
    fn em_separates_obvious_matches_from_strangers() {
        let first = [
            "ada", "alan", "grace", "edsger", "barbara", "donald", "john", "frances",
        ];
        let last = [
            "lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "backus", "allen",
        ];
        let cities = ["london", "paris", "berlin", "rome", "oslo", "lima"];
        let spread = |i: usize| {
            // Far apart, so no two people are one typo from each other.
            let i = i as u32;
            let birth = (1930 + i * 7 % 70) * 10000 + (1 + i * 5 % 12) * 100 + 1 + i * 11 % 28;
            (
                birth,
                format!("D{}", 1_000_000 + (i as usize * 7_919_213) % 8_999_999),
            )
        };
        let names: Vec<String> = (0..64)
            .map(|i| format!("{} {}", first[i % 8], last[i / 8]))
            .collect();
        let mut subjects = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let (birth, doc) = spread(i);
            let city = cities[i % cities.len()];
            subjects.push(subject(name, birth, &doc, city));
            // A duplicate, every other one with a typo in the name.
            let typo = if i % 2 == 0 {
                name.clone()
            } else {
                format!("{name}e")
            };
            subjects.push(subject(&typo, birth, &doc, city));
            // A stranger sharing the name and city only.
            let (birth, doc) = spread(i + 500);
            subjects.push(subject(name, birth, &doc, city));
        }
        let params = estimate(&subjects, &Settings::default());
        let scorer = Scorer::new(&params);
        let p = |a: usize, b: usize| {
            let (x, y) = (&subjects[a].evidence, &subjects[b].evidence);
            probability(scorer.weight(&compare(x, y), x))
        };
        for i in 0..names.len() {
            assert!(
                p(3 * i, 3 * i + 1) > 0.99,
                "duplicate {i}: {}",
                p(3 * i, 3 * i + 1)
            );
            assert!(
                p(3 * i, 3 * i + 2) < 0.5,
                "stranger {i}: {}",
                p(3 * i, 3 * i + 2)
            );
        }
    }

    #[test]
    fn params_round_trip_as_json() {
        let params = Params::prior();
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(serde_json::from_str::<Params>(&json).unwrap(), params);
    }
}
