//! The match model in incremental resolution: a new record is compared
//! with the records that share a blocking key with it (a similar name, the
//! same birth date, a masked phone's digits…), and a pair the model is sure
//! of joins like a key would; a likely pair becomes a suggestion.
//!
//! Blocking keys are stored beside identity keys (`record_keys`, kind
//! `block`), so finding candidates is one indexed lookup in either backend.

use serde_json::json;
use shophub_connectors::model::SourceRecord;

use super::Joiner;
use crate::identity::{self, Params, Settings, Subject};
use crate::store::{
    KeyHolder, NewSuggestion, RecordId, RecordRef, ScopedKey, StoreResult, WriteTx,
};

/// The key kind blocking values are stored under. Never an identity.
pub const BLOCK: &str = "block";

/// A blocking value held by this many records says little (a common name
/// alone): it is skipped, as the bulk engine caps its blocks.
const COMMON_BLOCK: i64 = 32;
/// Records compared per arrival, at most.
const CANDIDATES: usize = 48;

pub struct Matcher {
    params: Params,
    settings: Settings,
}

impl Matcher {
    /// The workspace's estimated parameters, or the prior before any
    /// estimate was made.
    pub async fn load(tx: &mut dyn WriteTx, workspace_id: &str) -> StoreResult<Matcher> {
        let params = tx
            .resolver_params(workspace_id)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_else(Params::prior);
        Ok(Matcher {
            params,
            settings: Settings::default(),
        })
    }

    pub fn blocks(subject: &Subject) -> Vec<ScopedKey> {
        identity::blocking_keys(subject)
            .into_iter()
            .map(|value| ScopedKey {
                kind: BLOCK,
                scope: String::new(),
                value,
            })
            .collect()
    }

    /// Records of other profiles the model links to this one, and the
    /// suggestions it makes (best pair per profile).
    pub async fn matches(
        &self,
        tx: &mut dyn WriteTx,
        workspace_id: &str,
        at: &RecordRef<'_>,
        subject: &Subject,
        blocks: &[ScopedKey],
        own: Option<&str>,
    ) -> StoreResult<(Vec<Joiner>, Vec<Joiner>)> {
        let mut best: std::collections::BTreeMap<String, (f64, Joiner)> = Default::default();
        let holders = tx.block_holders(workspace_id, blocks, COMMON_BLOCK).await?;
        let mut per_block: std::collections::HashMap<&str, i64> = Default::default();
        for holder in &holders {
            *per_block.entry(holder.key_value.as_str()).or_default() += 1;
        }
        let mut seen: std::collections::HashSet<RecordId> = Default::default();
        let discriminating: Vec<KeyHolder> = holders
            .iter()
            .filter(|h| per_block[h.key_value.as_str()] < COMMON_BLOCK)
            .cloned()
            .collect();
        for holder in discriminating {
            let record = holder.record_id();
            if record.is(at) || Some(holder.profile_id.as_str()) == own {
                continue;
            }
            if seen.len() >= CANDIDATES || !seen.insert(record.clone()) {
                continue;
            }
            let Some(data) = tx.record_data(record.as_ref()).await? else {
                continue;
            };
            let Ok(other) = serde_json::from_str::<SourceRecord>(&data) else {
                continue;
            };
            let other = identity::subject_of(&other, &record.connection_id);
            let (probability, compared) = identity::score_pair(subject, &other, &self.params);
            if probability < self.settings.suggest_threshold {
                continue;
            }
            if best
                .get(&holder.profile_id)
                .is_some_and(|(p, _)| *p >= probability)
            {
                continue;
            }
            let joiner = Joiner {
                record,
                profile_id: holder.profile_id.clone(),
                rule: "model".to_string(),
                score: Some(probability),
                evidence: json!({ "compared": compared }).to_string(),
                key: None,
                rank: 4,
            };
            best.insert(holder.profile_id, (probability, joiner));
        }
        let (links, suggestions): (Vec<_>, Vec<_>) = best
            .into_values()
            .partition(|(p, _)| *p >= self.settings.link_threshold);
        Ok((
            links.into_iter().map(|(_, j)| j).collect(),
            suggestions.into_iter().map(|(_, j)| j).collect(),
        ))
    }
}

/// A likely match the model was not sure of: a person decides.
pub async fn suggest(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    joiner: &Joiner,
    now: i64,
) -> StoreResult<()> {
    if joiner.profile_id == profile_id {
        return Ok(());
    }
    let (a, b) = if profile_id < joiner.profile_id.as_str() {
        (profile_id, joiner.profile_id.as_str())
    } else {
        (joiner.profile_id.as_str(), profile_id)
    };
    let reason = format!(
        "similar records (match probability {:.3})",
        joiner.score.unwrap_or_default()
    );
    let compared: serde_json::Value = serde_json::from_str(&joiner.evidence).unwrap_or_default();
    let evidence = json!({
        "record": joiner.record,
        "score": joiner.score,
        "compared": compared["compared"],
    })
    .to_string();
    tx.suggest(&NewSuggestion {
        workspace_id,
        profile_a: a,
        profile_b: b,
        reason: &reason,
        evidence: &evidence,
        now,
    })
    .await
}
