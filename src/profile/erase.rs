//! Erasing a person: every record of the profile with its keys, links,
//! complaints and conversations, the consent of identifiers nobody else
//! holds, suggestions about the profile, the views the change feed carried,
//! and the profile and its aliases. `profile.erased` announces it; later
//! records with the same identifiers start a new profile.

use serde_json::json;

use crate::store::{NewChange, RecordId, StoreResult, WriteTx};

/// Erases a live profile; returns how many records went with it.
pub async fn erase(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    now: i64,
) -> StoreResult<usize> {
    let rows = tx.profile_keys(profile_id).await?;
    let mut records: Vec<RecordId> = rows.iter().map(|row| row.record_id()).collect();
    records.sort();
    records.dedup();
    let mut values: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|row| match (row.key_kind, row.key_value) {
            (Some(kind), Some(value)) if kind == "email" || kind == "phone" => Some((kind, value)),
            _ => None,
        })
        .collect();
    values.sort();
    values.dedup();
    for record in &records {
        tx.erase_record(workspace_id, record.as_ref()).await?;
    }
    // A value another person's records still carry keeps its consent.
    let mut unheld = Vec::new();
    for (kind, value) in values {
        if tx
            .profiles_with_value(workspace_id, &kind, &value)
            .await?
            .is_empty()
        {
            unheld.push(format!("{kind}:{value}"));
        }
    }
    tx.delete_consents(workspace_id, &unheld).await?;
    crate::segments::forget(tx, profile_id, now).await?;
    crate::search::forget(tx, profile_id).await?;
    tx.erase_profile(workspace_id, profile_id).await?;
    let data = json!({ "profile_id": profile_id }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind: "profile.erased",
        profile_id,
        data: &data,
        now,
    })
    .await?;
    Ok(records.len())
}
