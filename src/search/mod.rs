//! Profile search: by email, phone (any format, or its last four digits),
//! platform customer id, order number and name (Han or pinyin, any order,
//! one typo per token), ranked.
//!
//! Each profile is indexed as a set of terms (`terms`), kept in the same
//! write transaction as the profile view: `index` after the view is saved,
//! `forget` when a profile is absorbed or erased. A query (`query`) becomes
//! a handful of exact-term and prefix-range lookups on the terms' primary
//! key; `rank` scores what they find.

pub mod query;
pub mod rank;
pub mod terms;

use std::collections::BTreeSet;

use crate::profile::ProfileView;
use crate::store::{SearchDoc, Store, StoreError, StoreResult, StoredRecord, WriteTx};

pub use rank::{search, Found};

/// Brings the profile's terms up to date with its records and view. Writes
/// nothing when the terms are unchanged; when only the recency moved, the
/// terms are rewritten under the new recency.
pub async fn index(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    records: &[StoredRecord],
    view: &ProfileView,
) -> StoreResult<()> {
    let doc = terms::Document::of(records, view);
    let wanted = if records.is_empty() {
        BTreeSet::new()
    } else {
        terms::of(&doc)
    };
    save(tx, workspace_id, profile_id, doc.recency, &wanted).await
}

/// Replaces what is indexed for the profile with `wanted` at `recency`.
pub async fn save(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    recency: i64,
    wanted: &BTreeSet<String>,
) -> StoreResult<()> {
    let old = tx.search_doc(profile_id).await?;
    let had: BTreeSet<&str> = old
        .as_ref()
        .map(|doc| doc.terms.split('\n').filter(|t| !t.is_empty()).collect())
        .unwrap_or_default();
    let same_place = old
        .as_ref()
        .is_some_and(|doc| doc.recency == recency && doc.workspace_id == workspace_id);
    let wanted_refs: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    if same_place && had == wanted_refs {
        return Ok(());
    }
    let (remove, add): (Vec<&str>, Vec<&str>) = if same_place {
        (
            had.difference(&wanted_refs).copied().collect(),
            wanted_refs.difference(&had).copied().collect(),
        )
    } else {
        (
            had.iter().copied().collect(),
            wanted_refs.iter().copied().collect(),
        )
    };
    if let Some(old) = &old {
        tx.delete_search_terms(&old.workspace_id, profile_id, old.recency, &remove)
            .await?;
    }
    tx.insert_search_terms(workspace_id, profile_id, recency, &add)
        .await?;
    let doc = (!wanted.is_empty()).then(|| SearchDoc {
        workspace_id: workspace_id.to_owned(),
        recency,
        terms: wanted_refs.into_iter().collect::<Vec<_>>().join("\n"),
    });
    tx.save_search_doc(profile_id, doc.as_ref()).await
}

/// Drops a profile from the index (it was absorbed into another, or erased).
pub async fn forget(tx: &mut dyn WriteTx, profile_id: &str) -> StoreResult<()> {
    let Some(old) = tx.search_doc(profile_id).await? else {
        return Ok(());
    };
    let terms: Vec<&str> = old.terms.split('\n').filter(|t| !t.is_empty()).collect();
    tx.delete_search_terms(&old.workspace_id, profile_id, old.recency, &terms)
        .await?;
    tx.save_search_doc(profile_id, None).await
}

/// Profiles re-indexed per transaction by `reindex`.
const REINDEX_BATCH: i64 = 500;

/// Re-indexes every live profile of a workspace from its stored records and
/// view (`shophub search reindex`: for data that predates the index).
/// Returns the number of profiles looked at.
pub async fn reindex(store: &dyn Store, workspace_id: &str) -> StoreResult<usize> {
    let mut after = String::new();
    let mut seen = 0;
    loop {
        let ids = store
            .profile_ids(workspace_id, &after, REINDEX_BATCH)
            .await?;
        let Some(last) = ids.last() else {
            return Ok(seen);
        };
        after = last.clone();
        let mut tx = store.begin_write(workspace_id).await?;
        for id in &ids {
            let records = tx.profile_records(id).await?;
            let view: ProfileView = serde_json::from_str(&tx.profile_view(id).await?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            index(tx.as_mut(), workspace_id, id, &records, &view).await?;
        }
        tx.commit().await?;
        seen += ids.len();
    }
}
