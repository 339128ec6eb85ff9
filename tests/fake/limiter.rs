//! A strict rolling-window (sliding log) limiter: at most COUNT admitted requests in any PERIOD.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One limit: at most `count` requests in any rolling `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub count: usize,
    pub period: Duration,
}

impl Window {
    pub const fn new(count: usize, period: Duration) -> Window {
        Window { count, period }
    }
}

/// Admission times per key. A request is admitted only if, for every window, fewer than
/// `count` admitted requests lie in `(now - period, now]`. Refused requests are not stored
/// (// [INF] the docs do not say whether a 429'd request uses up budget; it does not here).
#[derive(Debug, Default)]
pub struct RollingLimiter {
    windows: Vec<Window>,
    admitted: HashMap<String, VecDeque<Instant>>,
}

impl RollingLimiter {
    pub fn new(windows: Vec<Window>) -> RollingLimiter {
        RollingLimiter {
            windows,
            admitted: HashMap::new(),
        }
    }

    /// Admits (and records) a request for `key` at `now`, or refuses it.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        let longest = self.windows.iter().map(|w| w.period).max();
        let times = self.admitted.entry(key.to_owned()).or_default();
        if let Some(longest) = longest {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= longest)
            {
                times.pop_front();
            }
        }
        let full = self.windows.iter().any(|w| {
            let inside = times
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t) < w.period)
                .count();
            inside >= w.count
        });
        if full {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// The largest number of `times` (sorted or not) that fall in any half-open window of length
/// `period` — what a test compares with the limit it configured.
pub fn max_in_window(times: &[Instant], period: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end].duration_since(sorted[start]) >= period {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}
