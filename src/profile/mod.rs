//! The unified profile: what a profile's source records add up to.
//!
//! The view is recomputed from the records whenever one of them changes and
//! stored whole, so reading a profile is one indexed row. Submodules: the
//! golden record (`golden`), traits (`traits`, scored against workspace
//! `stats`), `consent`, per-workspace `settings`, and `erase`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use shophub_connectors::model::{KeyKind, SourceRecord};

use crate::store::StoredRecord;

pub mod consent;
pub mod erase;
pub mod golden;
pub mod settings;
pub mod stats;
pub mod traits;

/// A stored record with its decoded body.
pub type Decoded<'a> = (&'a StoredRecord, SourceRecord);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileView {
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub identities: Vec<Identity>,
    pub traits: Traits,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    /// Per field, the most trusted source's value and where it came from.
    #[serde(default)]
    pub golden: golden::Golden,
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
    /// Per currency, over the orders that count as spent, rounded to cents.
    #[serde(default)]
    pub average_order_value: BTreeMap<String, String>,
    #[serde(default)]
    pub days_since_last_order: Option<i64>,
    /// Quintile scores within the workspace; null without orders.
    #[serde(default)]
    pub rfm: Option<traits::Rfm>,
    #[serde(default)]
    pub clv: Option<traits::Clv>,
    /// prospect, new, active, at_risk or churned.
    #[serde(default)]
    pub lifecycle_stage: String,
    #[serde(default)]
    pub value_tier: Option<String>,
    #[serde(default)]
    pub review_count: i64,
    /// Mean review score on a 5-point scale, two decimals.
    #[serde(default)]
    pub review_average: Option<f64>,
    /// Platforms and message channels the person appears on.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The latest message, either direction.
    #[serde(default)]
    pub last_contact_at: Option<String>,
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

/// What the view is computed with besides the records.
pub struct Context {
    pub settings: settings::ProfileSettings,
    pub stats: stats::TraitStats,
    pub now: i64,
}

pub fn compute(
    records: &[StoredRecord],
    context: &Context,
) -> Result<ProfileView, serde_json::Error> {
    let decoded = records
        .iter()
        .map(|stored| Ok((stored, decode_record(stored)?)))
        .collect::<Result<Vec<Decoded>, serde_json::Error>>()?;

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
    let golden = golden::compute(&decoded, &context.settings);

    Ok(ProfileView {
        name: golden.name.as_ref().map(|f| f.value.clone()),
        emails: values_of(KeyKind::Email),
        phones: values_of(KeyKind::Phone),
        traits: traits::compute(
            &decoded,
            &context.settings.traits,
            &context.stats,
            context.now,
        ),
        identities: identities
            .iter()
            .map(|((kind, value, platform), sources)| Identity {
                kind: kind.as_str().to_string(),
                value: value.clone(),
                platform: platform.clone(),
                sources: sources.iter().cloned().collect(),
            })
            .collect(),
        tags: Vec::new(),
        segments: Vec::new(),
        golden,
        consent: Vec::new(),
    })
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
