//! One rate budget per store account, shared by every task of this process
//! that calls it: a page's pacing hint, a `Retry-After`, or a backoff pushes
//! the account's next allowed call into the future for all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Default)]
pub struct RateBudgets {
    next_call: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RateBudgets {
    /// Waits until the account may be called again.
    pub async fn wait(&self, account: &str) {
        let until = self
            .next_call
            .lock()
            .expect("budget lock")
            .get(account)
            .copied();
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    /// No call to the account before `delay` from now (a later existing
    /// deadline wins).
    pub fn defer(&self, account: &str, delay: Duration) {
        let until = Instant::now() + delay;
        let mut next = self.next_call.lock().expect("budget lock");
        let entry = next.entry(account.to_string()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }
}
