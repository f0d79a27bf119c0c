//! Polling: incremental sync, reconciliation sweeps and backfills.
//!
//! Each (connection, resource) has a stream whose cursor is committed in
//! the same transaction as the records of the page that produced it, and
//! only if the stream was still at the cursor the page started from: a crash
//! never skips a page or applies one twice, and two pollers cannot both
//! advance one stream. Connectors fetch pages; everything about time
//! (schedules, pacing, retries with backoff, the shared rate budget) is here.

mod budget;
mod runner;
mod scheduler;

pub use budget::RateBudgets;
pub use runner::{Mode, Progress, SyncError, Syncer};
pub use scheduler::run_scheduler;
