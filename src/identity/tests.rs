//! Behaviour of the whole engine on small hand-made record sets.

use serde_json::{json, Value};
use shophub_connectors::custom::canonical::decode_value;
use shophub_connectors::webhook::DecodeContext;

use super::*;

fn subject(connection: &str, record: Value) -> Subject {
    let ctx = DecodeContext {
        default_region: Some("CN".to_owned()),
    };
    let mut record = record;
    record["updated_at"] = json!("2025-01-01T00:00:00Z");
    subject_of(&decode_value(&record, &ctx).unwrap(), connection)
}

fn customer(id: &str, name: &str, email: &str, phone: &str) -> Value {
    json!({"kind": "customer", "external_id": id, "name": name,
           "emails": [email], "phones": [phone]})
}

fn partition(r: &Resolution) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, c) in r.component.iter().enumerate() {
        groups.entry(*c).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    groups
}

fn resolve_default(subjects: &[Subject]) -> Resolution {
    resolve(
        subjects,
        &Params::prior(),
        &Constraints::default(),
        &Settings::default(),
    )
}

#[test]
fn subject_carries_scoped_keys_and_evidence() {
    let s = subject(
        "shop-1",
        customer("42", "王伟", "Wei@Example.com", "138****5678"),
    );
    let keys: Vec<(&str, &str)> = s.keys.iter().map(|k| (k.kind, k.scope)).collect();
    assert_eq!(keys, vec![("customer_id", "shop-1"), ("email", "")]);
    assert_eq!(s.evidence.name.as_deref(), Some("wang wei"));
    assert_eq!(s.evidence.masked_phones.len(), 1);
    assert!(s.evidence.phones.is_empty());
}

#[test]
fn shared_email_links_across_connections_but_customer_id_does_not() {
    let subjects = vec![
        subject("a", customer("1", "Ada Lovelace", "ada@example.com", "")),
        subject("b", customer("9", "Ada Lovelace", "ada@example.com", "")),
        subject("c", customer("1", "Zhang San", "zs@example.com", "")),
    ];
    let r = resolve_default(&subjects);
    assert_eq!(partition(&r), vec![vec![0, 1], vec![2]]);
    assert_eq!(r.links.len(), 1);
    assert_eq!(r.links[0].rule, "key:email");
}

#[test]
fn placeholder_values_never_link() {
    let subjects = vec![
        subject(
            "a",
            customer("1", "Ada Lovelace", "test@test.com", "13800138000"),
        ),
        subject("a", customer("2", "Li Na", "test@test.com", "13800138000")),
        subject(
            "a",
            customer("3", "Bo Yang", "x@example.com", "13888888888"),
        ),
        subject("a", customer("4", "Qi Lu", "y@example.com", "13888888888")),
    ];
    let r = resolve_default(&subjects);
    assert_eq!(partition(&r), vec![vec![0], vec![1], vec![2], vec![3]]);
    let reasons: Vec<(&str, &str)> = r
        .protected
        .iter()
        .map(|p| (p.kind.as_str(), p.reason.as_str()))
        .collect();
    assert!(reasons.contains(&("email", "placeholder value")));
    assert!(reasons.contains(&("phone", "placeholder value")));
}

#[test]
fn key_seen_with_many_people_is_protected() {
    let names = ["Ada Lovelace", "Zhang San", "Maria Garcia", "Kofi Mensah"];
    let mut subjects: Vec<Subject> = names
        .iter()
        .enumerate()
        .map(|(i, n)| subject("a", customer(&format!("{i}"), n, "shop@example.com", "")))
        .collect();
    // Two people on one family phone are still joined.
    subjects.push(subject("a", customer("10", "Li Lei", "", "13912345678")));
    subjects.push(subject(
        "a",
        customer("11", "Han Meimei", "", "13912345678"),
    ));
    let r = resolve_default(&subjects);
    assert_eq!(
        partition(&r),
        vec![vec![0], vec![1], vec![2], vec![3], vec![4, 5]]
    );
    assert_eq!(r.protected.len(), 1);
    assert_eq!(r.protected[0].value, "shop@example.com");
    assert_eq!(r.protected[0].records, 4);
}

#[test]
fn component_value_limit_refuses_a_union() {
    // A chain of six emails through shared phones: the sixth would exceed 5.
    let mut subjects = Vec::new();
    for i in 0..6 {
        let mut record = customer(
            &format!("{i}"),
            "Ada Lovelace",
            &format!("ada{i}@example.com"),
            "",
        );
        record["phones"] = json!([format!("1391234{:04}", i), format!("1391234{:04}", i + 1)]);
        subjects.push(subject("a", record));
    }
    let settings = Settings {
        keys_only: true,
        ..Settings::default()
    };
    let r = resolve(
        &subjects,
        &Params::prior(),
        &Constraints::default(),
        &settings,
    );
    assert_eq!(partition(&r).len(), 2);
    assert!(r.protected.iter().any(|p| p.reason.contains("more than 5")));
}

#[test]
fn cannot_link_is_respected_and_must_link_joins() {
    let subjects = vec![
        subject("a", customer("1", "Ada Lovelace", "ada@example.com", "")),
        subject("b", customer("2", "Ada Lovelace", "ada@example.com", "")),
        subject("c", customer("3", "Zhang San", "zs@example.com", "")),
        subject("d", customer("4", "Li Na", "ln@example.com", "")),
    ];
    let constraints = Constraints {
        must_link: vec![(2, 3), (0, 2)],
        cannot_link: vec![(1, 3)],
    };
    let r = resolve(
        &subjects,
        &Params::prior(),
        &constraints,
        &Settings::default(),
    );
    assert_ne!(r.component[1], r.component[3]);
    assert_eq!(r.component[0], r.component[1]);
    // One of the two manual links holds; the other would break the cannot-link.
    let joined = [(2, 3), (0, 2)].map(|(a, b)| r.component[a] == r.component[b]);
    assert_eq!(joined.iter().filter(|j| **j).count(), 1);
    assert_eq!(r.links.iter().filter(|l| l.rule == "manual").count(), 1);
    assert_eq!(r.protected.len(), 1);
}

fn messy_people() -> Vec<Subject> {
    let rows = [
        (
            "1",
            "王伟",
            "wangwei@qq.com",
            "13812345678",
            "100080",
            "1990-05-17",
        ),
        ("2", "Wang Wei", "", "138****5678", "100080", "1990-05-17"),
        (
            "3",
            "WANG wei",
            "wangwei@qq.con",
            "",
            "100080",
            "1990-05-17",
        ),
        (
            "4",
            "Li Na",
            "lina@163.com",
            "13912340000",
            "200000",
            "1985-01-02",
        ),
        ("5", "li na", "lina@163.com", "", "200001", ""),
        ("6", "Zhang San", "", "13700001111", "300000", "1979-12-30"),
        ("7", "Zhang Sun", "", "13700001111", "300000", "1979-12-30"),
        (
            "8",
            "Chen Jie",
            "cj@example.com",
            "",
            "400000",
            "2000-02-02",
        ),
        (
            "9",
            "Chen Jie",
            "other@example.com",
            "",
            "518000",
            "1960-03-03",
        ),
    ];
    rows.iter()
        .map(|(id, name, email, phone, postcode, birth)| {
            let mut r = customer(id, name, email, phone);
            r["address"] = json!({"postal_code": postcode, "city": "Beijing"});
            if !birth.is_empty() {
                r["birth_date"] = json!(birth);
            }
            subject("shop", r)
        })
        .collect()
}

#[test]
fn model_links_typos_and_masks_but_not_namesakes() {
    let subjects = messy_people();
    let r = resolve_default(&subjects);
    let groups = partition(&r);
    assert!(groups.contains(&vec![0, 1, 2]), "{groups:?}");
    assert!(groups.contains(&vec![3, 4]), "{groups:?}");
    assert!(groups.contains(&vec![5, 6]), "{groups:?}");
    assert!(
        groups.contains(&vec![7]) && groups.contains(&vec![8]),
        "{groups:?}"
    );
    // A spanning forest: one link fewer than records, per component.
    assert_eq!(r.links.len(), subjects.len() - groups.len());
}

#[test]
fn shuffled_input_gives_the_same_partition_and_numbers() {
    let subjects = messy_people();
    let r = resolve_default(&subjects);
    let order = [4, 8, 0, 6, 2, 7, 1, 5, 3];
    let shuffled: Vec<Subject> = order.iter().map(|&i| subjects[i].clone()).collect();
    let s = resolve_default(&shuffled);
    for (pos, &i) in order.iter().enumerate() {
        assert_eq!(s.component[pos], r.component[i]);
    }
}

#[test]
fn keys_only_ignores_the_model() {
    let subjects = messy_people();
    let settings = Settings {
        keys_only: true,
        ..Settings::default()
    };
    let r = resolve(
        &subjects,
        &Params::prior(),
        &Constraints::default(),
        &settings,
    );
    assert!(r.links.iter().all(|l| l.rule.starts_with("key:")));
    assert_ne!(r.component[0], r.component[1]);
}

#[test]
fn score_pair_explains_itself() {
    let subjects = messy_people();
    let (p, evidence) = score_pair(&subjects[0], &subjects[1], &Params::prior());
    assert!(p > 0.99, "{p}");
    let phone = evidence.iter().find(|c| c.field == "phone").unwrap();
    assert_eq!(phone.level, "masked");
    assert!(phone.weight > 0.0);
    let (q, _) = score_pair(&subjects[7], &subjects[8], &Params::prior());
    assert!(q < 0.5, "{q}");
    assert!(blocking_keys(&subjects[0])
        .iter()
        .any(|k| k == "n:wang wei"));
}
