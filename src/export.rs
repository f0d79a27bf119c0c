//! `shophub export profiles`: one JSON line per live profile, with its
//! golden fields, identities, traits and the source records it was built
//! from, read page by page so memory stays flat however many there are.

use std::io::Write;

use serde_json::{json, Value};

use crate::store::Store;

const PAGE: i64 = 500;

/// Writes the workspace's profiles as JSON Lines; returns how many.
pub async fn profiles(
    store: &dyn Store,
    workspace_id: &str,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut after = String::new();
    let mut written = 0;
    loop {
        let ids = store.profile_ids(workspace_id, &after, PAGE).await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        for id in &ids {
            let Some(profile) = store.get_profile(workspace_id, id).await? else {
                continue;
            };
            let view: Value = serde_json::from_str(&profile.view)?;
            let records = store.profile_sources(id).await?;
            let line = json!({
                "id": profile.id,
                "name": view["name"],
                "emails": view["emails"],
                "phones": view["phones"],
                "identities": view["identities"],
                "traits": view["traits"],
                "records": records,
            });
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}
