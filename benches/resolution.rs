//! Identity-resolution quality and speed on a labelled record set. Prints
//! figures, asserts nothing.
//!
//!   cargo bench --bench resolution -- RECORDS.jsonl TRUTH.csv [--keys-only]
//!
//! RECORDS.jsonl: one canonical record per line (as `shophub import` reads
//! them) plus `connection_id` and optional `default_region`. TRUTH.csv:
//! `connection_id,external_id,entity`. `scripts/febrl-to-jsonl.py` makes
//! both from the Febrl benchmark. `SHOPHUB_BENCH_INCREMENTAL` (default
//! 100000) caps how many records the one-at-a-time pass takes.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::time::Instant;

use shophub::identity::{
    blocking_keys, estimate, resolve, score_pair, subject_of, Constraints, Params, Resolution,
    Settings, Subject,
};
use shophub_connectors::custom::canonical::decode_value;
use shophub_connectors::webhook::DecodeContext;

/// Largest candidate list the incremental index looks at (as blocking does).
const MAX_CANDIDATES_PER_KEY: usize = 40;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let keys_only = args.iter().any(|a| a == "--keys-only");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [records_path, truth_path] = paths[..] else {
        eprintln!("usage: cargo bench --bench resolution -- RECORDS.jsonl TRUTH.csv [--keys-only]");
        std::process::exit(2);
    };
    let truth = read_truth(truth_path);
    let started = Instant::now();
    let (subjects, entities) = read_records(records_path, &truth);
    drop(truth);
    println!(
        "records: {} (read and normalised in {:.2} s, {} MiB resident)",
        subjects.len(),
        started.elapsed().as_secs_f64(),
        memory_kib("VmRSS:") / 1024
    );

    let settings = Settings {
        keys_only,
        ..Settings::default()
    };
    let started = Instant::now();
    let params = estimate(&subjects, &settings);
    let estimated = started.elapsed().as_secs_f64();
    let resolution = resolve(&subjects, &params, &Constraints::default(), &settings);
    let total = started.elapsed().as_secs_f64();
    println!(
        "bulk rebuild{}: {:.3} s (estimate {:.3} s, resolve {:.3} s), {:.0} records/s",
        if keys_only { " (keys only)" } else { "" },
        total,
        estimated,
        total - estimated,
        subjects.len() as f64 / total
    );
    println!("estimated prior among candidate pairs: {:.4}", params.prior);
    report_links(&resolution);
    report_wrong_links(&resolution, &entities);
    report_quality(&resolution.component, &entities);
    if let Some(n) = std::env::var("SHOPHUB_BENCH_MISSED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        report_missed(&subjects, &resolution, &entities, &params, n);
    }

    let limit = std::env::var("SHOPHUB_BENCH_INCREMENTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000usize)
        .min(subjects.len());
    if !keys_only && limit > 0 {
        let started = Instant::now();
        incremental(&subjects[..limit], &params, &settings);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "incremental: {limit} records one at a time in {secs:.2} s, {:.0} records/s",
            limit as f64 / secs
        );
    }
    println!("peak memory: {} MiB", memory_kib("VmHWM:") / 1024);
}

/// The truth file as entity numbers keyed by a hash of
/// `(connection_id, external_id)`: a million labels as owned strings would
/// take more memory than the engine under measurement.
fn read_truth(path: &str) -> HashMap<u64, u32> {
    let mut reader = csv::Reader::from_path(path).expect("truth file");
    let mut entity_ids: HashMap<String, u32> = HashMap::new();
    let mut truth = HashMap::new();
    for r in reader.records() {
        let r = r.expect("truth row");
        let next = entity_ids.len() as u32;
        let entity = *entity_ids.entry(r[2].to_owned()).or_insert(next);
        truth.insert(label_key(&r[0], &r[1]), entity);
    }
    truth
}

fn label_key(connection: &str, external_id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (connection, external_id).hash(&mut h);
    h.finish()
}

/// Subjects, and each one's true entity (records missing from the truth
/// file count as entities of their own). Records are decoded one line at a
/// time and only their subjects kept.
fn read_records(path: &str, truth: &HashMap<u64, u32>) -> (Vec<Subject>, Vec<u32>) {
    let file = std::fs::File::open(path).expect("records file");
    let labelled = truth.values().max().map_or(0, |m| m + 1);
    let mut subjects = Vec::new();
    let mut entities = Vec::new();
    let mut unlabelled = 0u32;
    for line in BufReader::new(file).lines() {
        let line = line.expect("readable line");
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        let connection = value["connection_id"].as_str().unwrap_or("");
        let ctx = DecodeContext {
            default_region: value["default_region"].as_str().map(str::to_owned),
        };
        let record = match decode_value(&value, &ctx) {
            Ok(r) => r,
            Err(e) => panic!("record {} does not decode: {e}", subjects.len()),
        };
        let entity = match truth.get(&label_key(connection, &record.external_id)) {
            Some(e) => *e,
            None => {
                unlabelled += 1;
                labelled + unlabelled
            }
        };
        subjects.push(subject_of(&record, connection));
        entities.push(entity);
    }
    if unlabelled > 0 {
        println!("records without truth (singletons): {unlabelled}");
    }
    subjects.shrink_to_fit();
    (subjects, entities)
}

fn report_links(r: &Resolution) {
    let mut rules: HashMap<&str, usize> = HashMap::new();
    for l in &r.links {
        *rules.entry(l.rule.as_str()).or_default() += 1;
    }
    let mut rules: Vec<_> = rules.into_iter().collect();
    rules.sort();
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for c in &r.component {
        *sizes.entry(*c).or_default() += 1;
    }
    println!(
        "links: {rules:?}; suggestions: {}; protected values: {}; components: {}; largest: {}",
        r.suggestions.len(),
        r.protected.len(),
        sizes.len(),
        sizes.values().max().copied().unwrap_or(0)
    );
}

/// Links joining two different true entities, by rule.
fn report_wrong_links(r: &Resolution, truth: &[u32]) {
    let mut wrong: HashMap<&str, usize> = HashMap::new();
    for l in &r.links {
        if truth[l.a as usize] != truth[l.b as usize] {
            *wrong.entry(l.rule.as_str()).or_default() += 1;
        }
    }
    let mut wrong: Vec<_> = wrong.into_iter().collect();
    wrong.sort();
    println!("links between different true entities: {wrong:?}");
}

/// Up to `limit` true pairs left in different profiles, with how the model
/// saw them and whether blocking brought them together at all.
fn report_missed(
    subjects: &[Subject],
    r: &Resolution,
    truth: &[u32],
    params: &Params,
    limit: usize,
) {
    let mut by_entity: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, t) in truth.iter().enumerate() {
        by_entity.entry(*t).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_entity.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    let mut shown = 0;
    for g in groups {
        for (x, &a) in g.iter().enumerate() {
            for &b in &g[x + 1..] {
                if r.component[a] == r.component[b] || shown >= limit {
                    continue;
                }
                shown += 1;
                let (ka, kb) = (blocking_keys(&subjects[a]), blocking_keys(&subjects[b]));
                let blocked = ka.iter().any(|k| kb.contains(k));
                let (p, compared) = score_pair(&subjects[a], &subjects[b], params);
                println!("missed {a}-{b}: p {p:.4}, shares a blocking key: {blocked}");
                for c in compared {
                    println!(
                        "  {:<12} {:<9} {:>7.2}  {:?} | {:?}",
                        c.field, c.level, c.weight, c.a, c.b
                    );
                }
            }
        }
    }
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Clustered pairwise precision and recall from the contingency table of
/// predicted component × true entity.
fn report_quality(predicted: &[u32], truth: &[u32]) {
    let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
    let mut by_predicted: HashMap<u32, u64> = HashMap::new();
    let mut by_truth: HashMap<u32, u64> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        *cells.entry((*p, *t)).or_default() += 1;
        *by_predicted.entry(*p).or_default() += 1;
        *by_truth.entry(*t).or_default() += 1;
    }
    let together: u64 = cells.values().map(|n| pairs(*n)).sum();
    let predicted_pairs: u64 = by_predicted.values().map(|n| pairs(*n)).sum();
    let true_pairs: u64 = by_truth.values().map(|n| pairs(*n)).sum();
    let precision = together as f64 / predicted_pairs.max(1) as f64;
    let recall = together as f64 / true_pairs.max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    println!(
        "pairwise: precision {precision:.4}, recall {recall:.4}, F1 {f1:.4} \
         (true pairs {true_pairs}, predicted {predicted_pairs}, correct {together})"
    );
}

/// Records arriving one at a time: key and blocking-key lookups in
/// in-memory indexes, `score_pair` against the candidates, then union.
/// (No fan-out or per-kind limits here: this measures the lookup path.)
fn incremental(subjects: &[Subject], params: &Params, settings: &Settings) {
    let mut parent: Vec<u32> = Vec::with_capacity(subjects.len());
    let mut keys: HashMap<(&str, &str, &str), u32> = HashMap::new();
    let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    for (i, s) in subjects.iter().enumerate() {
        let i = i as u32;
        parent.push(i);
        for k in &s.keys {
            let first = *keys.entry((k.kind, k.scope, &*k.value)).or_insert(i);
            let (a, b) = (find(&mut parent, first), find(&mut parent, i));
            parent[a as usize] = b;
        }
        let mut seen = HashSet::new();
        for key in blocking_keys(s) {
            let list = blocks.entry(key).or_default();
            if list.len() < MAX_CANDIDATES_PER_KEY {
                for &c in list.iter() {
                    if seen.insert(c) {
                        let (p, _) = score_pair(&subjects[c as usize], s, params);
                        if p >= settings.link_threshold {
                            let (a, b) = (find(&mut parent, c), find(&mut parent, i));
                            parent[a as usize] = b;
                        }
                    }
                }
            }
            list.push(i);
        }
    }
}

/// Resident memory of this process in KiB: `VmRSS:` now, `VmHWM:` peak.
fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
