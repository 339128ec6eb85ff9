//! When to try again: exponential backoff with full jitter, a cap, an attempt budget and a
//! deadline, with `Retry-After` taking precedence when the server gives one.

use std::time::Duration;

use crate::manifest::model::RetryPolicy;
use crate::rng;

const DEFAULT_ATTEMPTS: u32 = 3;
const DEFAULT_INITIAL: Duration = Duration::from_secs(1);
const DEFAULT_MAX: Duration = Duration::from_secs(60);
const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// A job's retry policy with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
    pub deadline: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            initial: DEFAULT_INITIAL,
            max: DEFAULT_MAX,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

impl Policy {
    /// The job's policy over the runbook's defaults over redrive's.
    #[must_use]
    pub fn resolve(job: Option<&RetryPolicy>, defaults: Option<&RetryPolicy>) -> Self {
        let base = Self::default();
        let pick = |f: fn(&RetryPolicy) -> Option<Duration>, fallback| {
            job.and_then(f)
                .or_else(|| defaults.and_then(f))
                .unwrap_or(fallback)
        };
        Self {
            attempts: job
                .and_then(|p| p.attempts)
                .or_else(|| defaults.and_then(|p| p.attempts))
                .unwrap_or(base.attempts)
                .max(1),
            initial: pick(|p| p.initial_delay.map(|d| d.0), base.initial),
            max: pick(|p| p.max_delay.map(|d| d.0), base.max),
            deadline: pick(|p| p.deadline.map(|d| d.0), base.deadline),
        }
    }

    /// The pause before attempt `next` (2 for the first retry): full jitter over
    /// `initial · 2^(next-2)`, capped; `retry_after` wins when longer. `salt` makes the jitter
    /// differ between actions without a shared generator.
    #[must_use]
    pub fn delay(&self, next: u32, retry_after: Option<Duration>, salt: u64) -> Duration {
        let exponent = next.saturating_sub(2).min(30);
        let ceiling = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let jitter = rng::unit(rng::mix(salt ^ u64::from(next)));
        let backoff = ceiling.mul_f64(jitter);
        retry_after.map_or(backoff, |after| after.max(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::Duration as D;

    #[test]
    fn delays_grow_are_capped_and_honour_retry_after() {
        let p = Policy {
            attempts: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(800),
            deadline: Duration::from_secs(60),
        };
        for salt in 0..50 {
            assert!(p.delay(2, None, salt) <= Duration::from_millis(100));
            assert!(p.delay(4, None, salt) <= Duration::from_millis(400));
            assert!(p.delay(12, None, salt) <= Duration::from_millis(800));
            assert!(p.delay(3, Some(Duration::from_secs(2)), salt) >= Duration::from_secs(2));
        }
        // Full jitter spreads the delays out.
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|s| p.delay(5, None, s)).collect();
        assert!(spread.len() > 40);
    }

    #[test]
    fn job_settings_override_defaults() {
        let job = RetryPolicy {
            attempts: Some(1),
            initial_delay: None,
            max_delay: None,
            deadline: None,
        };
        let defaults = RetryPolicy {
            attempts: Some(4),
            initial_delay: Some(D(Duration::from_secs(2))),
            max_delay: None,
            deadline: None,
        };
        let p = Policy::resolve(Some(&job), Some(&defaults));
        assert_eq!(p.attempts, 1);
        assert_eq!(p.initial, Duration::from_secs(2));
        assert_eq!(p.max, DEFAULT_MAX);
    }
}
