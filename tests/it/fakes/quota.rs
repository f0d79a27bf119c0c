//! Request accounting shared by the fake destination tools: a rolling
//! window like the tools' own rate limits, and scripted failures (a 429
//! storm, an outage) for the next requests.

// The hub-level tests use what they need of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

#[derive(Clone, Default)]
pub struct Quota(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    window: Option<(usize, Duration)>,
    admitted: VecDeque<Instant>,
    scripted: VecDeque<StatusCode>,
    requests: usize,
}

/// What a fake does with one request.
pub enum Admission {
    /// Serve it; `remaining` requests are left in the window.
    Serve { remaining: usize },
    /// Over the window: answer 429, the window frees up after `reset`.
    Throttled {
        max: usize,
        window: Duration,
        reset: Duration,
    },
    /// A scripted failure with this status (429 answers like a throttle).
    Fail(StatusCode),
}

impl Quota {
    /// Allows `max` requests per rolling `window`.
    pub fn limit(&self, max: usize, window: Duration) {
        self.0.lock().unwrap().window = Some((max, window));
    }

    /// The next `n` requests answer `status` (a 429 storm, a 503 outage).
    pub fn fail_next(&self, n: usize, status: StatusCode) {
        self.0
            .lock()
            .unwrap()
            .scripted
            .extend(std::iter::repeat(status).take(n));
    }

    /// Every request seen, served or not.
    pub fn requests(&self) -> usize {
        self.0.lock().unwrap().requests
    }

    pub fn admit(&self) -> Admission {
        let mut state = self.0.lock().unwrap();
        state.requests += 1;
        if let Some(status) = state.scripted.pop_front() {
            return Admission::Fail(status);
        }
        let Some((max, window)) = state.window else {
            return Admission::Serve {
                remaining: usize::MAX,
            };
        };
        let now = Instant::now();
        while state
            .admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            state.admitted.pop_front();
        }
        if state.admitted.len() >= max {
            let oldest = *state.admitted.front().expect("window is full");
            return Admission::Throttled {
                max,
                window,
                reset: window.saturating_sub(now.duration_since(oldest)),
            };
        }
        state.admitted.push_back(now);
        Admission::Serve {
            remaining: max - state.admitted.len(),
        }
    }
}
