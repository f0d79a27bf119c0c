//! `shophub import`: loads canonical records from a file into a connection,
//! through the same resolution as webhooks and polls. JSON Lines carry one
//! canonical record per line; CSV rows become records through a column
//! mapping or a preset. Bad lines are reported with their line numbers and
//! skipped; the rest are loaded.

pub mod presets;

use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use shophub_connectors::custom::canonical;
use shophub_connectors::model::SourceRecord;
use shophub_connectors::DecodeContext;

use crate::clock::now_ms;
use crate::complaints::ComplaintRules;
use crate::resolve::{self, Batch};
use crate::store::Store;
use presets::Mapping;

/// Records per transaction: large enough to amortise commits, small enough
/// to keep a writer's lock short.
const BATCH: usize = 500;

pub enum Format {
    JsonLines,
    Csv(Mapping),
}

#[derive(Debug, Default)]
pub struct Report {
    pub loaded: usize,
    /// (line number, why), for lines that were skipped.
    pub rejected: Vec<(usize, String)>,
}

pub async fn run(
    store: &dyn Store,
    connection_id: &str,
    path: &Path,
    format: &Format,
    rules: &ComplaintRules,
) -> anyhow::Result<Report> {
    let connection = store
        .connection_secrets(connection_id)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .with_context(|| format!("connection {connection_id} does not exist"))?;
    let context = DecodeContext {
        default_region: crate::connections::default_region(&connection.settings),
    };
    let rows = read(path, format)?;
    let target = Target {
        store,
        workspace_id: &connection.workspace_id,
        connection_id,
        rules,
    };

    let mut report = Report::default();
    let mut pending: Vec<SourceRecord> = Vec::with_capacity(BATCH);
    for (line, row) in rows {
        match row.and_then(|value| canonical::decode_value(&value, &context)) {
            Ok(record) => pending.push(record),
            Err(reason) => report.rejected.push((line, reason)),
        }
        if pending.len() == BATCH {
            report.loaded += apply(&target, &mut pending).await?;
        }
    }
    report.loaded += apply(&target, &mut pending).await?;
    Ok(report)
}

/// Where records go and how they are judged.
#[derive(Clone, Copy)]
struct Target<'a> {
    store: &'a dyn Store,
    workspace_id: &'a str,
    connection_id: &'a str,
    rules: &'a ComplaintRules,
}

async fn apply(target: &Target<'_>, pending: &mut Vec<SourceRecord>) -> anyhow::Result<usize> {
    let Target {
        store,
        workspace_id,
        connection_id,
        rules,
    } = *target;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin_write(workspace_id).await?;
    resolve::apply(
        tx.as_mut(),
        workspace_id,
        &[Batch {
            connection_id,
            records: pending,
        }],
        rules,
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    let loaded = pending.len();
    pending.clear();
    Ok(loaded)
}

/// UTF-8, or else GB18030 (a superset of GBK, which Chinese seller-centre
/// exports use).
fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

/// The file's records as canonical JSON, each with its line number.
fn read(path: &Path, format: &Format) -> anyhow::Result<Vec<(usize, Result<Value, String>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = decode_text(&bytes);
    match format {
        Format::JsonLines => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                (
                    i + 1,
                    serde_json::from_str(line).map_err(|e| format!("not JSON: {e}")),
                )
            })
            .collect()),
        Format::Csv(mapping) => {
            let imported_at = chrono::Utc::now().to_rfc3339();
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
            let headers: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
            Ok(reader
                .records()
                .map(|row| match row {
                    Ok(row) => {
                        let line = row.position().map_or(0, |p| p.line() as usize);
                        let values: Vec<String> = row.iter().map(str::to_string).collect();
                        (line, Ok(mapping.record(&headers, &values, &imported_at)))
                    }
                    Err(e) => (
                        e.position().map_or(0, |p| p.line() as usize),
                        Err(format!("unreadable CSV row: {e}")),
                    ),
                })
                .collect())
        }
    }
}
