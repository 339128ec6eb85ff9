//! DigiCert's rate limits (providers.md §2.4): rolling windows per API key, 100 requests / 5 s
//! and 1000 / 5 min by default. Strict: in no interval of a window's length, ends included, are
//! more requests accepted than it allows. A refused request does not count (providers.md [INF]:
//! otherwise a client that keeps knocking would never get in again).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sandbox::scenario::RateWindow;

/// The accepted requests of every key, per window: only what is still inside its window.
pub struct RollingWindows {
    limits: Vec<(usize, Duration)>,
    keys: HashMap<String, Vec<VecDeque<Instant>>>,
}

impl RollingWindows {
    pub fn new(limits: &[RateWindow]) -> Self {
        Self {
            limits: limits
                .iter()
                .map(|w| (usize::try_from(w.requests).unwrap_or(usize::MAX), w.per.0))
                .collect(),
            keys: HashMap::new(),
        }
    }

    /// Whether a request of `key` at `now` is accepted; an accepted one counts in every window.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        if !self.keys.contains_key(key) {
            self.keys
                .insert(key.to_owned(), vec![VecDeque::new(); self.limits.len()]);
        }
        let queues = self.keys.get_mut(key).expect("inserted above");
        let mut over = false;
        for (queue, &(count, per)) in queues.iter_mut().zip(&self.limits) {
            // An acceptance exactly `per` ago still shares a closed interval of length `per`
            // with this request: it leaves the window only once strictly more time has passed.
            while queue.front().is_some_and(|t| now.duration_since(*t) > per) {
                queue.pop_front();
            }
            over |= queue.len() >= count;
        }
        if over {
            return false;
        }
        for queue in queues.iter_mut() {
            queue.push_back(now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::common::Duration as Setting;
    use crate::sandbox::scenario::DigicertScenario;

    fn window(requests: u32, per: Duration) -> RateWindow {
        RateWindow {
            requests,
            per: Setting(per),
        }
    }

    /// Brute force: in every closed interval of each window's length that starts at an accepted
    /// request, at most `count` were accepted; and every refusal had a full window behind it.
    fn check(limits: &[RateWindow], arrivals: &[Duration], accepted: &[bool]) {
        for w in limits {
            let (count, per) = (w.requests as usize, w.per.0);
            for (i, &start) in arrivals.iter().enumerate() {
                if !accepted[i] {
                    let behind = (0..i)
                        .filter(|&j| accepted[j] && start - arrivals[j] <= per)
                        .count();
                    let full = limits.iter().any(|l| {
                        (0..i)
                            .filter(|&j| accepted[j] && start - arrivals[j] <= l.per.0)
                            .count()
                            >= l.requests as usize
                    });
                    assert!(
                        full,
                        "refused at {start:?} with {behind} accepted behind it"
                    );
                    continue;
                }
                let inside = (i..arrivals.len())
                    .filter(|&j| accepted[j] && arrivals[j] - start <= per)
                    .count();
                assert!(
                    inside <= count,
                    "{inside} accepted within {per:?} from {start:?}, limit {count}"
                );
            }
        }
    }

    fn run(limits: &[RateWindow], arrivals: &[Duration]) -> Vec<bool> {
        let base = Instant::now();
        let mut windows = RollingWindows::new(limits);
        let accepted: Vec<bool> = arrivals
            .iter()
            .map(|&at| windows.admit("key", base + at))
            .collect();
        check(limits, arrivals, &accepted);
        accepted
    }

    #[test]
    fn the_documented_limits_are_the_default() {
        let limits = DigicertScenario::default().rate_limits;
        let pairs: Vec<(u32, Duration)> = limits.iter().map(|w| (w.requests, w.per.0)).collect();
        assert_eq!(
            pairs,
            [
                (100, Duration::from_secs(5)),
                (1000, Duration::from_secs(300))
            ]
        );
    }

    #[test]
    fn default_limits_give_exact_counts() {
        let limits = DigicertScenario::default().rate_limits;
        let ms = Duration::from_millis;
        // 150 requests at once: exactly 100 pass.
        let burst = vec![ms(0); 150];
        assert_eq!(run(&limits, &burst).iter().filter(|a| **a).count(), 100);
        // Exactly 5 s after the first hundred, the window still holds them (closed interval);
        // one millisecond later it is free again.
        let mut arrivals = vec![ms(0); 100];
        arrivals.extend([ms(5000), ms(5001)]);
        let accepted = run(&limits, &arrivals);
        assert_eq!(&accepted[100..], [false, true]);
        // 100 every 5.001 s: the 5-minute window stops them after 1000 although every 5-second
        // window has room.
        let arrivals: Vec<Duration> = (0..12u64)
            .flat_map(|round| vec![ms(round * 5001); 100])
            .collect();
        let accepted = run(&limits, &arrivals);
        assert_eq!(accepted.iter().filter(|a| **a).count(), 1000);
        assert!(accepted[..1000].iter().all(|a| *a));
    }

    #[test]
    fn refusals_do_not_count_and_keys_are_apart() {
        let limits = [window(3, Duration::from_secs(1))];
        let base = Instant::now();
        let mut w = RollingWindows::new(&limits);
        let at = |ms: u64| base + Duration::from_millis(ms);
        assert!(w.admit("a", at(0)) && w.admit("a", at(0)) && w.admit("a", at(0)));
        // Refused, many times: none of it pushes the window out.
        for _ in 0..50 {
            assert!(!w.admit("a", at(500)));
        }
        assert!(w.admit("b", at(500)), "another key has its own windows");
        assert!(w.admit("a", at(1001)));
    }

    #[test]
    fn no_window_ever_holds_more_than_its_count() {
        let limits = [
            window(7, Duration::from_millis(50)),
            window(20, Duration::from_millis(400)),
        ];
        // A deterministic, bursty arrival pattern: gaps of 0 to 17 ms, about 40% of them 0.
        let mut t = 0u64;
        let mut x = 0x2545_f491_u64;
        let arrivals: Vec<Duration> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t += (x % 30).saturating_sub(12);
                Duration::from_millis(t)
            })
            .collect();
        let accepted = run(&limits, &arrivals);
        assert!(accepted.iter().any(|a| !a), "the pattern hits the limits");
    }
}
