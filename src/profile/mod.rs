//! The unified profile: what a profile's source records add up to.
//!
//! The view is recomputed from the records whenever one of them changes and
//! stored whole, so reading a profile is one indexed row.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shophub_connectors::model::{KeyKind, OrderStatus, RecordBody, SourceRecord};

use crate::store::StoredRecord;

pub mod consent;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileView {
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub identities: Vec<Identity>,
    pub traits: Traits,
    /// Consent of the profile's emails and phones, per channel.
    #[serde(default)]
    pub consent: Vec<consent::Consent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: String,
    pub value: String,
    /// For platform ids: the platform they belong to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub platform: String,
    pub connection_id: String,
    pub record: String,
    pub external_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traits {
    /// Orders placed and not cancelled.
    pub order_count: i64,
    /// Per currency, exact decimal strings; only paid, shipped or completed orders.
    pub total_spent: BTreeMap<String, String>,
    pub first_order_at: Option<String>,
    pub last_order_at: Option<String>,
    pub complaints: ComplaintCounts,
}

/// Open complaints, in all and by severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplaintCounts {
    pub open: i64,
    pub by_severity: BTreeMap<String, i64>,
}

impl ComplaintCounts {
    pub fn of(severities: &[String]) -> ComplaintCounts {
        let mut counts = ComplaintCounts::default();
        for severity in severities {
            counts.open += 1;
            *counts.by_severity.entry(severity.clone()).or_default() += 1;
        }
        counts
    }
}

/// A stored record decoded back into the common model.
pub fn decode_record(stored: &StoredRecord) -> Result<SourceRecord, serde_json::Error> {
    serde_json::from_str(&stored.data)
}

pub fn compute(records: &[StoredRecord]) -> Result<ProfileView, serde_json::Error> {
    let decoded = records
        .iter()
        .map(|stored| Ok((stored, decode_record(stored)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()?;

    let mut identities: BTreeMap<(KeyKind, String, Option<String>), BTreeSet<Source>> =
        BTreeMap::new();
    for (stored, record) in &decoded {
        for key in &record.keys {
            let platform = key
                .kind
                .is_connection_scoped()
                .then(|| stored.platform.clone());
            identities
                .entry((key.kind, key.value.clone(), platform))
                .or_default()
                .insert(Source {
                    platform: stored.platform.clone(),
                    connection_id: stored.connection_id.clone(),
                    record: stored.kind.clone(),
                    external_id: stored.external_id.clone(),
                });
        }
    }
    let values_of = |kind: KeyKind| -> Vec<String> {
        identities
            .keys()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, v, _)| v.clone())
            .collect()
    };

    Ok(ProfileView {
        name: best_name(&decoded),
        emails: values_of(KeyKind::Email),
        phones: values_of(KeyKind::Phone),
        traits: order_traits(decoded.iter().map(|(_, r)| r)),
        consent: Vec::new(),
        identities: identities
            .iter()
            .map(|((kind, value, platform), sources)| Identity {
                kind: kind.as_str().to_string(),
                value: value.clone(),
                platform: platform.clone(),
                sources: sources.iter().cloned().collect(),
            })
            .collect(),
    })
}

/// The newest name from the most authoritative kind of record wins: a
/// customer record, then an order's buyer, then a reviewer or chat sender.
fn best_name(records: &[(&StoredRecord, SourceRecord)]) -> Option<String> {
    let mut named: Vec<(u8, DateTime<Utc>, String)> = records
        .iter()
        .filter_map(|(_, r)| {
            let (rank, parts) = match &r.body {
                RecordBody::Customer(c) => (3, [c.first_name.as_deref(), c.last_name.as_deref()]),
                RecordBody::Order(o) => (
                    2,
                    [o.buyer_first_name.as_deref(), o.buyer_last_name.as_deref()],
                ),
                RecordBody::Review(v) => (1, [v.reviewer_name.as_deref(), None]),
                RecordBody::Message(m) => (0, [m.sender_name.as_deref(), None]),
            };
            let name = parts
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            (!name.is_empty()).then_some((rank, r.version, name))
        })
        .collect();
    named.sort();
    named.pop().map(|(_, _, name)| name)
}

fn order_traits<'a>(records: impl Iterator<Item = &'a SourceRecord>) -> Traits {
    let mut traits = Traits::default();
    let mut spent: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for record in records {
        let RecordBody::Order(order) = &record.body else {
            continue;
        };
        if order.status == OrderStatus::Cancelled {
            continue;
        }
        traits.order_count += 1;
        if order.status.counts_as_spent() {
            *spent.entry(order.currency.clone()).or_default() += order.total;
        }
        first = Some(first.map_or(record.occurred_at, |t| t.min(record.occurred_at)));
        last = Some(last.map_or(record.occurred_at, |t| t.max(record.occurred_at)));
    }
    traits.total_spent = spent
        .into_iter()
        .map(|(currency, sum)| (currency, sum.to_string()))
        .collect();
    traits.first_order_at = first.map(rfc3339);
    traits.last_order_at = last.map(rfc3339);
    traits
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
