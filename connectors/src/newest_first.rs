//! Sweeps over a review listing that pages by number, lists the newest
//! reviews first (by creation) and has no modified-since filter.
//!
//! Two kinds of sweep share one cursor:
//! - a *recent* sweep reads from page 1 until a page shows a review created
//!   before its bound (`LOOKBACK` before the last sweep's highest version),
//!   or the pages end; it finds new reviews quickly and cheaply;
//! - a *full* sweep reads every page. It runs first, and again when the
//!   last one began [`FULL_SWEEP_EVERY`] ago, because an edit changes a
//!   review's modification time but not its place in a creation-ordered
//!   listing: edits of older reviews are found by the next full sweep.
//!
//! Both emit only reviews modified at or after the sweep's `emit_from`
//! (re-reading is harmless, records are versioned): a recent sweep's bound,
//! or for a full sweep `LOOKBACK` before the earlier of the previous full
//! sweep's start (the hub's clock) and the watermark. The first full sweep
//! emits everything, or everything modified since `start_cursor`'s `since`.
//!
//! Page numbers shift when the listing changes during a sweep. New reviews
//! push rows to later pages (they are read twice, which is harmless); a
//! review deleted or hidden mid-sweep pulls one row to an earlier page,
//! which this sweep then misses and the next full sweep reads.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::SourceRecord;
use crate::poll::{ConnectorError, Page, LOOKBACK};

/// How often a sweep reads the whole listing to find edited older reviews.
pub(super) const FULL_SWEEP_EVERY: Duration = Duration::hours(24);

/// One listed review: when it was created (which orders the listing), its
/// version, and the record it yields (reviews without stars yield none).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    pub(super) created: DateTime<Utc>,
    pub(super) version: DateTime<Utc>,
    pub(super) record: Option<SourceRecord>,
}

/// Where the sweep stands; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cursor {
    /// The next page to read; 0 before a sweep's first page.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) page: u32,
    /// Whether the running sweep reads every page.
    #[serde(default, skip_serializing_if = "is_false")]
    full: bool,
    /// Reviews modified before this are not emitted (fixed for a sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emit_from: Option<DateTime<Utc>>,
    /// The hub's clock when the running sweep read its first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    began: Option<DateTime<Utc>>,
    /// Highest version seen in the running sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<DateTime<Utc>>,
    /// What the last completed sweep established (or the starting `since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<DateTime<Utc>>,
    /// When the last completed full sweep began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full_at: Option<DateTime<Utc>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Cursor {
    pub(super) fn start(since: Option<DateTime<Utc>>) -> Cursor {
        Cursor {
            watermark: since,
            ..Cursor::default()
        }
    }

    pub(super) fn read(value: &Value, platform: &str) -> Result<Cursor, ConnectorError> {
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent(format!("cursor is not a {platform} sweep cursor"))
        })
    }

    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("cursor serialises")
    }

    /// Starts a sweep if none is running: decides its kind and bound.
    pub(super) fn begin(&mut self, now: DateTime<Utc>) {
        if self.page > 0 {
            return;
        }
        let lookback = Duration::from_std(LOOKBACK).expect("lookback fits");
        self.full = self.full_at.map_or(true, |at| now - at >= FULL_SWEEP_EVERY);
        self.emit_from = match (self.full, self.full_at) {
            (true, None) => self.watermark,
            (true, Some(at)) => Some(self.watermark.map_or(at, |w| w.min(at)) - lookback),
            (false, _) => self.watermark.map(|w| w - lookback),
        };
        self.began = Some(now);
        self.seen = None;
        self.page = 1;
    }

    /// Applies one page (`last`: the listing has no page after it).
    pub(super) fn advance(mut self, rows: Vec<Row>, last: bool) -> Page {
        let mut records = Vec::new();
        let mut reached = false;
        for row in rows.iter() {
            self.seen = self.seen.max(Some(row.version));
            if let Some(from) = self.emit_from {
                reached |= row.created < from;
                if row.version < from {
                    continue;
                }
            }
            if let Some(record) = &row.record {
                records.push(record.clone());
            }
        }
        let done = last || rows.is_empty() || (reached && !self.full);
        if !done {
            self.page += 1;
            return Page {
                records,
                watermark: self.watermark,
                cursor: self.to_value(),
                caught_up: false,
                pace: None,
            };
        }
        let watermark = self.watermark.max(self.seen);
        let next = Cursor {
            watermark,
            full_at: if self.full { self.began } else { self.full_at },
            ..Cursor::default()
        };
        Page {
            records,
            cursor: next.to_value(),
            caught_up: true,
            watermark,
            pace: None,
        }
    }
}
