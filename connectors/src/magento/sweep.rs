//! The polling cursor: a keyset sweep over `(updated_at, entity_id)`.
//!
//! ```json
//! {"sweep_start": "2025-01-01T00:00:00Z", "since": "2025-01-03T10:00:01Z",
//!  "tie": null, "seen": [12, 13], "max_seen": "2025-01-03T10:00:01Z",
//!  "watermark": null}
//! ```
//!
//! Every query asks for `currentPage` 1, so Magento's "a page past the end
//! repeats the last page" never applies and no record can shift between
//! pages when others change during the sweep:
//! - **range** (`tie` null): `updated_at gteq since`, sorted by `updated_at`
//!   then `entity_id`. When more rows match than one page holds, the next
//!   query starts at the page's last `updated_at`, skipping the ids of that
//!   second the page already returned (`seen`).
//! - **tie** (`tie` set): when a whole page shares one second (a mass
//!   action), that second is read on its own: `updated_at eq at` and
//!   `entity_id gt after_id` (two AND-ed filter groups), sorted by
//!   `entity_id`, until it runs out; then the range resumes one second later.
//!
//! A sweep ends when a range query's first page holds every matching row
//! (`total_count`). The watermark then becomes the highest version seen,
//! and the next sweep starts [`LOOKBACK`] before it (never before the
//! finished sweep's own start), which also re-reads rows written late into
//! seconds the sweep had already passed.

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::poll::{ConnectorError, LOOKBACK};

/// Where a sync without a start date begins: before any Magento 2 store
/// existed (2.0 shipped in 2015), so the whole history is read.
pub(super) fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Tie {
    /// The second being read id by id.
    pub at: DateTime<Utc>,
    /// The highest `entity_id` of that second already read.
    pub after_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Sweep {
    /// Where the current sweep began; the next one never starts earlier.
    pub sweep_start: DateTime<Utc>,
    /// The range query's lower bound (inclusive, whole seconds).
    pub since: DateTime<Utc>,
    pub tie: Option<Tie>,
    /// Ids at `since` that the previous page already returned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u64>,
    /// Highest version read in this sweep so far.
    pub max_seen: Option<DateTime<Utc>>,
    /// Highest version read by a completed sweep.
    pub watermark: Option<DateTime<Utc>>,
}

/// What the next search asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Query {
    /// `updated_at gteq since`.
    Range { since: DateTime<Utc> },
    /// `updated_at eq at` and `entity_id gt after_id`.
    Tie { at: DateTime<Utc>, after_id: u64 },
}

impl Sweep {
    pub(super) fn start(since: Option<DateTime<Utc>>) -> Sweep {
        let since = since.map(second).unwrap_or_else(earliest);
        Sweep {
            sweep_start: since,
            since,
            tie: None,
            seen: Vec::new(),
            max_seen: None,
            watermark: None,
        }
    }

    pub(super) fn from_cursor(cursor: &Value) -> Result<Sweep, ConnectorError> {
        serde_json::from_value(cursor.clone()).map_err(|_| {
            ConnectorError::Permanent("cursor is not a magento keyset sweep cursor".to_owned())
        })
    }

    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a sweep serialises")
    }

    pub(super) fn query(&self) -> Query {
        match self.tie {
            Some(tie) => Query::Tie {
                at: tie.at,
                after_id: tie.after_id,
            },
            None => Query::Range { since: self.since },
        }
    }

    /// Whether the record was returned by the previous page.
    pub(super) fn already_emitted(&self, id: u64, version: DateTime<Utc>) -> bool {
        self.tie.is_none() && second(version) == self.since && self.seen.contains(&id)
    }

    /// The cursor after one page: every row it held as (entity id, version)
    /// in the order Magento returned them, and whether more rows matched
    /// than it held. Returns the next cursor and whether the sweep completed.
    pub(super) fn advance(&self, page: &[(u64, DateTime<Utc>)], more: bool) -> (Sweep, bool) {
        let max_seen = self.max_seen.max(page.iter().map(|(_, v)| *v).max());
        let carry = |since, tie, seen| Sweep {
            since,
            tie,
            seen,
            max_seen,
            ..self.clone()
        };
        match (self.tie, page.last(), more) {
            // A second read id by id: continue after the last id, or resume
            // the range just after that second.
            (Some(tie), Some(&(last_id, _)), true) => {
                let next = Tie {
                    after_id: last_id,
                    ..tie
                };
                (carry(self.since, Some(next), Vec::new()), false)
            }
            (Some(tie), _, _) => (
                carry(tie.at + TimeDelta::seconds(1), None, Vec::new()),
                false,
            ),
            (None, Some(_), true) => {
                let last_second = page.iter().map(|(_, v)| second(*v)).max().expect("a row");
                let first_second = page.iter().map(|(_, v)| second(*v)).min().expect("a row");
                if first_second == last_second {
                    // A whole page in one second: read that second by id.
                    let after_id = page.iter().map(|(id, _)| *id).max().expect("a row");
                    let tie = Tie {
                        at: last_second,
                        after_id: after_id.max(self.seen.iter().copied().max().unwrap_or(0)),
                    };
                    (carry(self.since, Some(tie), Vec::new()), false)
                } else {
                    let seen = page
                        .iter()
                        .filter(|(_, v)| second(*v) == last_second)
                        .map(|(id, _)| *id)
                        .collect();
                    (carry(last_second, None, seen), false)
                }
            }
            (None, _, _) => {
                let watermark = self.watermark.max(max_seen);
                let lookback = TimeDelta::from_std(LOOKBACK).expect("LOOKBACK fits");
                let next_start = watermark
                    .map(|w| second(w - lookback).max(self.sweep_start))
                    .unwrap_or(self.sweep_start);
                let next = Sweep {
                    sweep_start: next_start,
                    since: next_start,
                    tie: None,
                    seen: Vec::new(),
                    max_seen: None,
                    watermark,
                };
                (next, true)
            }
        }
    }
}

/// Magento compares `updated_at` to the second.
fn second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn page(entries: &[(u64, &str)]) -> Vec<(u64, DateTime<Utc>)> {
        entries.iter().map(|(id, v)| (*id, t(v))).collect()
    }

    #[test]
    fn a_full_page_spanning_seconds_restarts_at_its_last_second() {
        let sweep = Sweep::start(Some(t("2025-01-01T00:00:00Z")));
        let rows = page(&[
            (4, "2025-01-01T00:00:05Z"),
            (2, "2025-01-01T00:00:09Z"),
            (3, "2025-01-01T00:00:09Z"),
        ]);
        let (next, done) = sweep.advance(&rows, true);
        assert!(!done);
        assert_eq!(
            next.query(),
            Query::Range {
                since: t("2025-01-01T00:00:09Z")
            }
        );
        assert_eq!(next.seen, vec![2, 3]);
        assert!(next.already_emitted(3, t("2025-01-01T00:00:09Z")));
        assert!(
            !next.already_emitted(3, t("2025-01-01T00:00:10Z")),
            "a newer version is new"
        );
        assert!(!next.already_emitted(5, t("2025-01-01T00:00:09Z")));
        assert_eq!(
            next.watermark, None,
            "the watermark moves only when a sweep completes"
        );
    }

    #[test]
    fn a_page_within_one_second_reads_that_second_by_id_then_moves_on() {
        let sweep = Sweep::start(Some(t("2025-01-01T00:00:00Z")));
        let (tie, _) = sweep.advance(
            &page(&[(1, "2025-01-01T00:00:07Z"), (2, "2025-01-01T00:00:07Z")]),
            true,
        );
        assert_eq!(
            tie.query(),
            Query::Tie {
                at: t("2025-01-01T00:00:07Z"),
                after_id: 2
            }
        );
        let (tie, _) = tie.advance(
            &page(&[(5, "2025-01-01T00:00:07Z"), (9, "2025-01-01T00:00:07Z")]),
            true,
        );
        assert_eq!(
            tie.query(),
            Query::Tie {
                at: t("2025-01-01T00:00:07Z"),
                after_id: 9
            }
        );
        let (range, done) = tie.advance(&page(&[(11, "2025-01-01T00:00:07Z")]), false);
        assert!(!done, "the tie run ends, the sweep does not");
        assert_eq!(
            range.query(),
            Query::Range {
                since: t("2025-01-01T00:00:08Z")
            }
        );
        let (range, done) = range.advance(&[], false);
        assert!(done);
        assert_eq!(range.watermark, Some(t("2025-01-01T00:00:07Z")));
    }

    #[test]
    fn a_completed_sweep_starts_the_next_lookback_before_the_watermark() {
        let sweep = Sweep::start(Some(t("2025-01-01T00:00:00Z")));
        let (next, done) = sweep.advance(&page(&[(1, "2025-01-02T00:00:00Z")]), false);
        assert!(done);
        assert_eq!(next.watermark, Some(t("2025-01-02T00:00:00Z")));
        assert_eq!(
            next.query(),
            Query::Range {
                since: t("2025-01-01T23:55:00Z")
            }
        );
        let (again, _) = next.advance(&[], false);
        assert_eq!(
            again.since,
            t("2025-01-01T23:55:00Z"),
            "an empty sweep does not drift"
        );
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_permanent_errors() {
        let sweep = Sweep::start(None);
        assert_eq!(sweep.since, earliest());
        let (mid, _) = sweep.advance(
            &page(&[(1, "2024-05-01T00:00:00Z"), (2, "2024-05-01T00:00:00Z")]),
            true,
        );
        assert_eq!(Sweep::from_cursor(&mid.to_value()).unwrap(), mid);
        assert!(matches!(
            Sweep::from_cursor(&serde_json::json!({"page": 1})),
            Err(ConnectorError::Permanent(_))
        ));
    }
}
