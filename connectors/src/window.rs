//! A sweep over an update-time range in fixed windows, for APIs that filter
//! by update time and page by number under a fixed query (Youzan, Doudian).
//!
//! A sweep covers `[from, until]`, `until` being fixed by its first call, in
//! windows of [`Sweep::window`] that share their boundary second (re-reading
//! is harmless). Inside a window the query is fixed and pages are numbered,
//! so records sharing one timestamp are never skipped. A record updated
//! during the sweep leaves its window (its new time is after `until`) and
//! shifts later pages up; the reported total then changes and the window is
//! read again from its first page, so nothing is skipped, and the record
//! itself is read by the next sweep. A window reporting more than
//! [`Sweep::max_results`] is halved, as pages that deep are refused. When the
//! last window is read, the watermark becomes the highest version seen (or
//! the sweep end minus [`LOOKBACK`], if higher) and the next sweep starts at
//! watermark minus [`LOOKBACK`].
//!
//! The platform supplies the page call and the mapping; this module owns the
//! cursor, whose JSON is what existing connections have stored.

// Only platform modules use this; a build without them has no sweep.
#![cfg_attr(not(any(feature = "youzan", feature = "douyin")), allow(dead_code))]

use std::future::Future;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::SourceRecord;
use crate::poll::{ConnectorError, Page, LOOKBACK};

/// What differs between the platforms that sweep this way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sweep {
    /// Length of one window, inside the platform's longest query span.
    pub window: TimeDelta,
    /// The number of a window's first page: 1 or 0.
    pub first_page: u32,
    pub page_size: u32,
    /// Deepest offset read in one window; a window reporting more is halved.
    pub max_results: u64,
}

/// Where a sweep stands. Times are UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Fixed start of this sweep's query.
    pub from: DateTime<Utc>,
    /// Fixed end of this sweep, set by its first call.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// The window being paged; `None` before the sweep's first call.
    #[serde(default)]
    pub window: Option<Window>,
    /// Highest record version read in this sweep.
    #[serde(default)]
    pub seen: Option<DateTime<Utc>>,
    /// Everything modified before this was read by an earlier sweep.
    #[serde(default)]
    pub watermark: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Next page, in the platform's numbering ([`Sweep::first_page`]).
    pub page: u32,
    /// The total reported by the window's previous page.
    #[serde(default)]
    pub total: Option<u64>,
}

/// One page of a window as the platform answered it, not yet mapped: an
/// oversized window is halved before its items are read.
#[derive(Debug)]
pub(crate) struct Answer<T> {
    /// How many records match the window's query.
    pub total: u64,
    pub items: Vec<T>,
}

/// The cursor of a sweep from `since`, or from `history_start`.
pub(crate) fn start_cursor(since: Option<DateTime<Utc>>, history_start: DateTime<Utc>) -> Value {
    let cursor = Cursor {
        from: since.unwrap_or(history_start),
        until: None,
        window: None,
        seen: None,
        watermark: since,
    };
    serde_json::to_value(cursor).expect("cursor serialises")
}

impl Sweep {
    fn window_at(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Window {
        Window {
            from,
            to: (from + self.window).min(until),
            page: self.first_page,
            total: None,
        }
    }

    /// Reads the next page of `cursor`'s sweep: `fetch` calls the platform
    /// for one page of a window, `record` maps each item it returned.
    pub(crate) async fn poll<T, Fut>(
        &self,
        now: DateTime<Utc>,
        mut cursor: Cursor,
        fetch: impl FnOnce(&Window) -> Fut,
        record: impl FnMut(T) -> Result<SourceRecord, ConnectorError>,
    ) -> Result<Page, ConnectorError>
    where
        Fut: Future<Output = Result<Answer<T>, ConnectorError>>,
    {
        let until = *cursor.until.get_or_insert_with(|| now.trunc_subsecs(0));
        if cursor.from >= until {
            return Ok(finish(cursor, until, Vec::new()));
        }
        let window = cursor
            .window
            .take()
            .unwrap_or_else(|| self.window_at(cursor.from, until));

        let answer = fetch(&window).await?;
        let total = answer.total;

        if total > self.max_results && window.to - window.from > TimeDelta::seconds(1) {
            // Too many to page through: read the first half first.
            let half = window.from + (window.to - window.from) / 2;
            cursor.window = Some(Window {
                from: window.from,
                to: half.trunc_subsecs(0),
                page: self.first_page,
                total: None,
            });
            return Ok(in_progress(cursor, Vec::new()));
        }

        let records = answer
            .items
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        cursor.seen = records.iter().map(|r| r.version).chain(cursor.seen).max();

        // Records read in this window once this page is counted. In u64 and
        // saturating: a hand-edited page below `first_page` counts as none.
        let pages = (u64::from(window.page) + 1).saturating_sub(u64::from(self.first_page));
        let read = pages * u64::from(self.page_size);
        let shifted = window.page > self.first_page && window.total.is_some_and(|t| t != total);
        let last_page = read >= total
            || records.is_empty()
            || read + u64::from(self.page_size) > self.max_results;
        if shifted {
            // The set changed under the pages: read the window again.
            cursor.window = Some(Window {
                page: self.first_page,
                total: Some(total),
                ..window
            });
        } else if last_page {
            if window.to >= until {
                return Ok(finish(cursor, until, records));
            }
            cursor.window = Some(self.window_at(window.to, until));
        } else {
            cursor.window = Some(Window {
                page: window.page + 1,
                total: Some(total),
                ..window
            });
        }
        Ok(in_progress(cursor, records))
    }
}

fn in_progress(cursor: Cursor, records: Vec<SourceRecord>) -> Page {
    let watermark = cursor.watermark;
    Page {
        records,
        cursor: serde_json::to_value(cursor).expect("cursor serialises"),
        caught_up: false,
        watermark,
        pace: None,
    }
}

/// The sweep is complete: raise the watermark and start the next sweep.
fn finish(cursor: Cursor, until: DateTime<Utc>, records: Vec<SourceRecord>) -> Page {
    let lookback = TimeDelta::from_std(LOOKBACK).expect("lookback fits");
    let watermark = [cursor.watermark, cursor.seen, Some(until - lookback)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(until);
    let next = Cursor {
        from: watermark - lookback,
        until: None,
        window: None,
        seen: None,
        watermark: Some(watermark),
    };
    Page {
        records,
        cursor: serde_json::to_value(next).expect("cursor serialises"),
        caught_up: true,
        watermark: Some(watermark),
        pace: None,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::model::{Customer, RecordBody};

    const ONE_BASED: Sweep = Sweep {
        window: TimeDelta::days(10),
        first_page: 1,
        page_size: 2,
        max_results: 6,
    };
    const ZERO_BASED: Sweep = Sweep {
        first_page: 0,
        ..ONE_BASED
    };

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, day, hour, 0, 0).unwrap()
    }

    fn now() -> DateTime<Utc> {
        at(25, 0) + TimeDelta::milliseconds(700)
    }

    fn lookback() -> TimeDelta {
        TimeDelta::from_std(LOOKBACK).unwrap()
    }

    fn record((id, version): (String, DateTime<Utc>)) -> Result<SourceRecord, ConnectorError> {
        Ok(SourceRecord {
            external_id: id,
            version,
            occurred_at: version,
            keys: Vec::new(),
            body: RecordBody::Customer(Customer::default()),
        })
    }

    /// A platform holding `(id, version)` items, answering one window page
    /// in id order, and logging the windows it was asked for.
    struct Shop {
        sweep: Sweep,
        items: RefCell<Vec<(String, DateTime<Utc>)>>,
        calls: RefCell<Vec<Window>>,
    }

    impl Shop {
        fn new(sweep: Sweep, items: &[(&str, DateTime<Utc>)]) -> Shop {
            Shop::holding(
                sweep,
                items.iter().map(|(i, v)| ((*i).to_owned(), *v)).collect(),
            )
        }

        /// `n` items sharing the version `at`.
        fn dense(sweep: Sweep, n: usize, at: DateTime<Utc>) -> Shop {
            Shop::holding(sweep, (0..n).map(|i| (format!("x{i}"), at)).collect())
        }

        fn holding(sweep: Sweep, items: Vec<(String, DateTime<Utc>)>) -> Shop {
            Shop {
                sweep,
                items: RefCell::new(items),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn answer(&self, w: &Window) -> Answer<(String, DateTime<Utc>)> {
            self.calls.borrow_mut().push(*w);
            let mut matching: Vec<_> = self
                .items
                .borrow()
                .iter()
                .filter(|(_, v)| *v >= w.from && *v <= w.to)
                .cloned()
                .collect();
            matching.sort();
            let size = self.sweep.page_size as usize;
            let skip = (w.page - self.sweep.first_page) as usize * size;
            Answer {
                total: matching.len() as u64,
                items: matching.into_iter().skip(skip).take(size).collect(),
            }
        }

        async fn poll(&self, cursor: &Value) -> Page {
            let cursor: Cursor = serde_json::from_value(cursor.clone()).unwrap();
            self.sweep
                .poll(
                    now(),
                    cursor,
                    |w| std::future::ready(Ok(self.answer(w))),
                    record,
                )
                .await
                .unwrap()
        }

        async fn sweep(&self, mut cursor: Value) -> Vec<Page> {
            let mut pages = Vec::new();
            for _ in 0..50 {
                let page = self.poll(&cursor).await;
                cursor = page.cursor.clone();
                let done = page.caught_up;
                pages.push(page);
                if done {
                    return pages;
                }
            }
            panic!("sweep did not finish");
        }
    }

    fn ids(pages: &[Page]) -> Vec<&str> {
        pages
            .iter()
            .flat_map(|p| &p.records)
            .map(|r| r.external_id.as_str())
            .collect()
    }

    fn cursor_of(page: &Page) -> Cursor {
        serde_json::from_value(page.cursor.clone()).unwrap()
    }

    #[test]
    fn cursor_json_keeps_its_stored_shape() {
        let stored = json!({
            "from": "2025-01-01T00:00:00Z",
            "until": "2025-01-25T00:00:00Z",
            "window": {"from": "2025-01-01T00:00:00Z", "to": "2025-01-11T00:00:00Z", "page": 3, "total": 120},
            "seen": "2025-01-05T00:00:00Z",
            "watermark": null,
        });
        let cursor: Cursor = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&cursor).unwrap(), stored);
        // Cursors written before a field existed still read.
        let bare: Cursor = serde_json::from_value(json!({"from": "2025-01-01T00:00:00Z"})).unwrap();
        assert_eq!(
            (bare.until, bare.window, bare.seen, bare.watermark),
            (None, None, None, None)
        );
        assert!(serde_json::from_value::<Cursor>(json!({"page": 3})).is_err());
    }

    #[test]
    fn start_cursor_begins_at_since_or_the_start_of_history() {
        let fresh: Cursor = serde_json::from_value(start_cursor(None, at(1, 0))).unwrap();
        assert_eq!((fresh.from, fresh.watermark), (at(1, 0), None));
        let resumed: Cursor =
            serde_json::from_value(start_cursor(Some(at(3, 0)), at(1, 0))).unwrap();
        assert_eq!(
            (resumed.from, resumed.watermark),
            (at(3, 0), Some(at(3, 0)))
        );
    }

    #[tokio::test]
    async fn both_page_numberings_read_every_window_page_by_page() {
        let items = [
            ("a", at(2, 0)),
            ("b", at(3, 0)),
            ("c", at(4, 0)),
            ("d", at(12, 0)),
            ("e", at(20, 0)),
        ];
        for sweep in [ONE_BASED, ZERO_BASED] {
            let shop = Shop::new(sweep, &items);
            let pages = shop.sweep(start_cursor(Some(at(1, 0)), at(1, 0))).await;
            assert_eq!(ids(&pages), ["a", "b", "c", "d", "e"]);
            let f = sweep.first_page;
            let calls: Vec<_> = shop
                .calls
                .borrow()
                .iter()
                .map(|w| (w.from, w.to, w.page))
                .collect();
            // The sweep ends at `now` truncated to the second.
            assert_eq!(
                calls,
                [
                    (at(1, 0), at(11, 0), f),
                    (at(1, 0), at(11, 0), f + 1),
                    (at(11, 0), at(21, 0), f),
                    (at(21, 0), at(25, 0), f),
                ]
            );
            assert!(pages.last().unwrap().caught_up);
            assert!(pages[..pages.len() - 1].iter().all(|p| !p.caught_up));
        }
    }

    #[tokio::test]
    async fn a_changed_total_rereads_the_window_from_its_first_page() {
        for sweep in [ONE_BASED, ZERO_BASED] {
            let shop = Shop::new(sweep, &[("a", at(2, 0)), ("b", at(3, 0)), ("c", at(4, 0))]);
            let first = shop.poll(&start_cursor(Some(at(1, 0)), at(1, 0))).await;
            assert_eq!(ids(std::slice::from_ref(&first)), ["a", "b"]);
            // "a" is updated after the sweep's end: it leaves the window.
            shop.items.borrow_mut()[0].1 = at(26, 0);
            let second = shop.poll(&first.cursor).await;
            let window = cursor_of(&second).window.unwrap();
            assert_eq!((window.page, window.total), (sweep.first_page, Some(2)));
            let third = shop.poll(&second.cursor).await;
            assert_eq!(ids(std::slice::from_ref(&third)), ["b", "c"]);
        }
    }

    #[tokio::test]
    async fn a_window_reporting_too_many_is_halved() {
        for sweep in [ONE_BASED, ZERO_BASED] {
            let shop = Shop::dense(sweep, 7, at(2, 0));
            let page = shop.poll(&start_cursor(Some(at(1, 0)), at(1, 0))).await;
            assert!(page.records.is_empty() && !page.caught_up);
            let window = cursor_of(&page).window.unwrap();
            assert_eq!(
                (window.from, window.to, window.page, window.total),
                (at(1, 0), at(6, 0), sweep.first_page, None)
            );
        }
    }

    #[tokio::test]
    async fn a_window_too_narrow_to_halve_stops_at_the_deepest_readable_page() {
        let t = at(2, 0);
        for first_page in [1, 0] {
            let sweep = Sweep {
                window: TimeDelta::seconds(1),
                first_page,
                ..ONE_BASED
            };
            let shop = Shop::dense(sweep, 7, t);
            let mut cursor = start_cursor(Some(t), t);
            let mut read = Vec::new();
            for _ in 0..3 {
                let page = shop.poll(&cursor).await;
                read.extend(page.records.iter().map(|r| r.external_id.clone()));
                cursor = page.cursor;
            }
            // Six (`max_results`) are read; the window then moves on.
            assert_eq!(read.len(), 6);
            let window = serde_json::from_value::<Cursor>(cursor)
                .unwrap()
                .window
                .unwrap();
            assert_eq!(
                (window.from, window.page),
                (t + TimeDelta::seconds(1), first_page)
            );
        }
    }

    #[tokio::test]
    async fn finishing_raises_the_watermark_and_starts_lookback_before_it() {
        let until = now().trunc_subsecs(0);
        // Nothing newer than the sweep end minus the lookback: that is the mark.
        let shop = Shop::new(ONE_BASED, &[("a", at(2, 0))]);
        let last = shop
            .sweep(start_cursor(Some(at(1, 0)), at(1, 0)))
            .await
            .pop()
            .unwrap();
        assert_eq!(last.watermark, Some(until - lookback()));
        let next = cursor_of(&last);
        assert_eq!(next.from, until - lookback() * 2);
        assert_eq!((next.until, next.window, next.seen), (None, None, None));
        assert_eq!(next.watermark, Some(until - lookback()));

        // A record newer than that (clock skew) raises the mark to itself.
        let late = until - TimeDelta::seconds(30);
        let shop = Shop::new(ONE_BASED, &[("a", at(2, 0)), ("b", late)]);
        let last = shop
            .sweep(start_cursor(Some(at(1, 0)), at(1, 0)))
            .await
            .pop()
            .unwrap();
        assert_eq!(last.watermark, Some(late));
        assert_eq!(cursor_of(&last).from, late - lookback());
    }

    #[tokio::test]
    async fn a_start_in_the_future_is_caught_up_without_a_call() {
        let shop = Shop::new(ONE_BASED, &[]);
        let page = shop.poll(&start_cursor(Some(at(26, 0)), at(1, 0))).await;
        assert!(page.caught_up);
        assert!(shop.calls.borrow().is_empty());
        assert_eq!(page.watermark, Some(at(26, 0)));
    }

    #[tokio::test]
    async fn errors_of_the_call_and_the_mapping_pass_through() {
        let cursor: Cursor =
            serde_json::from_value(start_cursor(Some(at(1, 0)), at(1, 0))).unwrap();
        let refused = ONE_BASED
            .poll(
                now(),
                cursor.clone(),
                |_| {
                    std::future::ready(Err::<Answer<()>, _>(ConnectorError::RateLimited {
                        retry_after: None,
                    }))
                },
                |_| unreachable!(),
            )
            .await;
        assert_eq!(
            refused,
            Err(ConnectorError::RateLimited { retry_after: None })
        );
        let unreadable = ONE_BASED
            .poll(
                now(),
                cursor,
                |_| {
                    std::future::ready(Ok(Answer {
                        total: 1,
                        items: vec![()],
                    }))
                },
                |()| Err(ConnectorError::Malformed("bad".to_owned())),
            )
            .await;
        assert_eq!(unreadable, Err(ConnectorError::Malformed("bad".to_owned())));
    }
}
