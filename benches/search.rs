//! Profile search latency at scale. Prints figures, asserts nothing.
//!
//!   cargo bench --bench search                # 1,000,000 profiles, SQLite in a temp dir
//!   SHOPHUB_BENCH_PROFILES=100000 cargo bench --bench search
//!   SHOPHUB_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo bench --bench search
//!
//! Generates profiles the way shops see them (60% written in Han, 15% in
//! pinyin, 25% Western names; Chinese mobiles; 1-3 orders each), indexes
//! them with the hub's own term builder (`search::terms`) straight through
//! the store in bulk, then times `search::search` for each kind of query on
//! profiles drawn at random, and says how often the profile searched for was
//! among the first 20.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shophub::search::terms::{self, Document, Name};
use shophub::store;

const WORKSPACE: &str = "ws_bench";
const PER_TX: usize = 20_000;
const QUERIES_PER_KIND: usize = 300;
const LIMIT: usize = 20;

const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 72),
    ("张", 68),
    ("刘", 53),
    ("陈", 45),
    ("杨", 31),
    ("黄", 22),
    ("赵", 20),
    ("吴", 19),
    ("周", 18),
    ("徐", 14),
    ("孙", 13),
    ("马", 12),
    ("朱", 11),
    ("胡", 10),
    ("郭", 10),
    ("何", 9),
    ("高", 9),
    ("林", 9),
    ("罗", 8),
    ("郑", 8),
    ("梁", 7),
    ("谢", 6),
    ("宋", 6),
    ("唐", 6),
    ("许", 5),
    ("韩", 5),
    ("冯", 5),
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "英", "华", "玉", "兰", "小", "红", "建", "国", "文", "辉", "鹏",
    "宇", "浩", "晨", "欣", "婷", "雪", "琳", "俊", "峰", "波", "斌", "亮", "慧",
];
const FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Emma",
    "Olivia",
    "Noah",
    "Liam",
    "Sophia",
    "Lucas",
    "Mia",
    "Hannah",
    "Jonathan",
    "Charlotte",
    "Matthias",
    "Lena",
    "Felix",
    "Clara",
    "Jakob",
    "Marie",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
];
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "180", "181", "182", "185", "186", "187", "188", "189",
];

#[derive(Clone, Copy, PartialEq)]
enum Script {
    Han,
    Pinyin,
    Western,
}

struct Person {
    doc: Document,
    script: Script,
    /// National form of the first phone (`138 1234 5678`).
    national: String,
}

fn person(i: usize, rng: &mut StdRng) -> Person {
    let roll: f64 = rng.gen();
    let script = if roll < 0.60 {
        Script::Han
    } else if roll < 0.75 {
        Script::Pinyin
    } else {
        Script::Western
    };
    let (name, local) = match script {
        Script::Western => {
            let first = FIRST.choose(rng).unwrap();
            let last = LAST.choose(rng).unwrap();
            (
                format!("{first} {last}"),
                format!("{first}.{last}").to_lowercase(),
            )
        }
        _ => {
            let surname = SURNAMES
                .choose_weighted(rng, |(_, w)| *w)
                .map(|(s, _)| *s)
                .unwrap();
            let given: String = (0..rng.gen_range(1..=2))
                .map(|_| *GIVEN.choose(rng).unwrap())
                .collect();
            let han = format!("{surname}{given}");
            let key = Name::read(&han).unwrap().key;
            if script == Script::Han {
                (han, key.replace(' ', ""))
            } else {
                // Written the Western way round, capitalised: `Wei Wang`.
                let mut parts: Vec<String> = key.split(' ').map(capitalise).collect();
                parts.reverse();
                (parts.join(" "), key.replace(' ', ""))
            }
        }
    };
    let domain = ["qq.com", "163.com", "gmail.com", "126.com", "outlook.com"]
        .choose(rng)
        .unwrap();
    let prefix = MOBILE_PREFIXES.choose(rng).unwrap();
    let rest: u32 = rng.gen_range(0..100_000_000);
    let national = format!("{prefix} {:04} {:04}", rest / 10_000, rest % 10_000);
    let orders = rng.gen_range(1..=3);
    Person {
        doc: Document {
            names: vec![name],
            emails: vec![format!("{local}{i}@{domain}")],
            phones: vec![format!("+86{prefix}{rest:08}")],
            customer_ids: vec![(7_000_000_000u64 + i as u64).to_string()],
            order_numbers: (0..orders)
                .map(|k| format!("#{}", 1001 + i * 3 + k))
                .collect(),
            recency: 1_700_000_000_000 + rng.gen_range(0..94_000_000_000i64),
        },
        script,
        national,
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn profile_id(i: usize) -> String {
    format!("prof_{i:012}")
}

/// A one-letter typo: two neighbouring letters of the last token swapped.
fn typo(name: &str, rng: &mut StdRng) -> String {
    let mut tokens: Vec<Vec<char>> = name.split(' ').map(|t| t.chars().collect()).collect();
    let last = tokens.last_mut().unwrap();
    if last.len() >= 4 {
        let at = rng.gen_range(1..last.len() - 1);
        last.swap(at, at + 1);
    }
    tokens
        .iter()
        .map(|t| t.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let profiles: usize = std::env::var("SHOPHUB_BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("SHOPHUB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite:{}", dir.path().join("search.db").display()));
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    println!(
        "backend: {}, profiles: {profiles}, cores: {}",
        store.backend(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut rng = StdRng::seed_from_u64(6);
    let started = Instant::now();
    let mut rows = 0usize;
    let mut sample: Vec<(usize, Person)> = Vec::new();
    let sample_every = (profiles / (QUERIES_PER_KIND * 4)).max(1);
    let mut tx = store.begin_write(WORKSPACE).await.unwrap();
    for i in 0..profiles {
        let person = person(i, &mut rng);
        let terms = terms::of(&person.doc);
        let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
        tx.insert_search_terms(WORKSPACE, &profile_id(i), person.doc.recency, &refs)
            .await
            .unwrap();
        rows += refs.len();
        if i % sample_every == 0 {
            sample.push((i, person));
        }
        if (i + 1) % PER_TX == 0 {
            tx.commit().await.unwrap();
            tx = store.begin_write(WORKSPACE).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    let loaded = started.elapsed().as_secs_f64();
    println!(
        "indexed {profiles} profiles as {rows} terms ({:.1} per profile) in {loaded:.1} s ({:.0} profiles/s)",
        rows as f64 / profiles as f64,
        profiles as f64 / loaded
    );
    if url.starts_with("sqlite:") {
        let bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!("database files: {:.0} MiB", bytes as f64 / 1048576.0);
    }

    let regions = vec!["CN".to_owned()];
    type Make = fn(&Person, &mut StdRng) -> Option<String>;
    let kinds: &[(&str, Make)] = &[
        ("email", |p, _| Some(p.doc.emails[0].to_uppercase())),
        ("phone (national format)", |p, _| Some(p.national.clone())),
        ("phone last four", |p, _| {
            Some(p.doc.phones[0][p.doc.phones[0].len() - 4..].to_owned())
        }),
        ("platform customer id", |p, _| {
            Some(p.doc.customer_ids[0].clone())
        }),
        ("order number", |p, _| {
            Some(p.doc.order_numbers[0].trim_start_matches('#').to_owned())
        }),
        ("name, Han", |p, _| {
            (p.script == Script::Han).then(|| p.doc.names[0].clone())
        }),
        ("name, pinyin for Han", |p, _| {
            (p.script == Script::Han).then(|| Name::read(&p.doc.names[0]).unwrap().key)
        }),
        ("name, Western", |p, _| {
            (p.script == Script::Western).then(|| p.doc.names[0].clone())
        }),
        ("name, one typo", |p, rng| {
            (p.script == Script::Western).then(|| typo(&p.doc.names[0], rng))
        }),
        ("name, unfinished", |p, _| {
            (p.script == Script::Western).then(|| {
                let name = &p.doc.names[0];
                name[..name.len() - 2].to_owned()
            })
        }),
    ];
    println!(
        "{:<26} {:>7} {:>9} {:>9} {:>9}  searched-for profile in top 20",
        "query", "n", "p50 ms", "p99 ms", "max ms"
    );
    for (kind, make) in kinds {
        let mut times = Vec::new();
        let mut found = 0;
        for (i, person) in &sample {
            if times.len() == QUERIES_PER_KIND {
                break;
            }
            let Some(q) = make(person, &mut rng) else {
                continue;
            };
            let started = Instant::now();
            let results = shophub::search::search(store.as_ref(), WORKSPACE, &q, &regions, LIMIT)
                .await
                .unwrap();
            times.push(started.elapsed());
            if results.iter().any(|r| r.profile_id == profile_id(*i)) {
                found += 1;
            }
        }
        times.sort();
        println!(
            "{kind:<26} {:>7} {:>9.2} {:>9.2} {:>9.2}  {:.0}%",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            100.0 * found as f64 / times.len().max(1) as f64
        );
    }
}
