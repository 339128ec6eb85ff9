//! Fault decisions: latency, error statuses, 429 bursts, resets, stalls and outcome-after-timeout,
//! drawn per request from the seed. Pure bookkeeping: `inject` applies them to requests.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use std::time::Duration;

use axum::http::StatusCode;

use super::scenario::{Distribution, Faults};
use crate::rng;

/// What happens to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    Error(StatusCode),
    Throttle(Option<Duration>),
    Reset,
    Stall(Duration),
    OutcomeAfterTimeout(Duration),
}

/// The fault plan of one provider plus its request counters.
pub struct Injector {
    faults: Faults,
    seed: u64,
    label: &'static str,
    requests: AtomicU64,
    throttled_requests: AtomicU64,
    active: bool,
}

fn applies(endpoints: &[String], endpoint: &str) -> bool {
    endpoints.is_empty()
        || endpoints.iter().any(|e| {
            e.eq_ignore_ascii_case(endpoint)
                || endpoint
                    .split_once(' ')
                    .is_some_and(|(_, path)| e.eq_ignore_ascii_case(path))
        })
}

/// How far the fault plan has gone: the request count behind every draw and the place in the
/// 429 bursts. Kept in the world, so that a restored sandbox goes on with the same sequence.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Draws {
    requests: u64,
    throttled_requests: u64,
}

impl Injector {
    pub fn draws(&self) -> Draws {
        Draws {
            requests: self.requests.load(Ordering::Relaxed),
            throttled_requests: self.throttled_requests.load(Ordering::Relaxed),
        }
    }

    pub fn restore_draws(&self, draws: Draws) {
        self.requests.store(draws.requests, Ordering::Relaxed);
        self.throttled_requests
            .store(draws.throttled_requests, Ordering::Relaxed);
    }

    pub fn new(faults: Faults, seed: u64, label: &'static str) -> Self {
        let active = faults.latency.is_some()
            || !faults.errors.is_empty()
            || faults.throttle.is_some()
            || faults.reset.is_some()
            || faults.stall.is_some()
            || faults.outcome_after_timeout.is_some();
        Self {
            faults,
            seed,
            label,
            requests: AtomicU64::new(0),
            throttled_requests: AtomicU64::new(0),
            active,
        }
    }

    /// The latency and the fault of the next request to `endpoint` (`METHOD /route`).
    pub fn decide(&self, endpoint: &str) -> (Duration, Fault) {
        if !self.active {
            return (Duration::ZERO, Fault::None);
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let draw = |salt: &[u8]| {
            rng::unit(rng::hash(
                self.seed,
                &[self.label.as_bytes(), salt, &n.to_le_bytes()],
            ))
        };
        let latency = self.latency(endpoint, &draw);
        (latency, self.fault(endpoint, draw(b"fault")))
    }

    fn latency(&self, endpoint: &str, draw: &impl Fn(&[u8]) -> f64) -> Duration {
        let Some(l) = self
            .faults
            .latency
            .as_ref()
            .filter(|l| applies(&l.endpoints, endpoint))
        else {
            return Duration::ZERO;
        };
        let mut latency = l.fixed.map_or(Duration::ZERO, |d| d.0);
        if let Some(j) = &l.jitter {
            let amount = j.amount.0.as_secs_f64();
            let extra = match j.distribution {
                Distribution::Uniform => draw(b"jitter") * amount,
                Distribution::Exponential => -(1.0 - draw(b"jitter")).ln() * amount,
                Distribution::Normal => {
                    // Box-Muller; the absolute value keeps latency added, never removed.
                    let (u1, u2) = (draw(b"jitter").max(f64::MIN_POSITIVE), draw(b"jitter2"));
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).abs() * amount
                }
            };
            latency += Duration::from_secs_f64(extra.min(3600.0));
        }
        latency
    }

    /// Throttle bursts come first (they follow a count, not a draw); then `u` picks at most one
    /// of the rated faults, each taking its share of [0, 1) in turn.
    fn fault(&self, endpoint: &str, mut u: f64) -> Fault {
        let f = &self.faults;
        if let Some(t) = f
            .throttle
            .as_ref()
            .filter(|t| applies(&t.endpoints, endpoint))
        {
            let k = self.throttled_requests.fetch_add(1, Ordering::Relaxed);
            if k % (t.every + t.burst) >= t.every {
                return Fault::Throttle(t.retry_after.map(|d| d.0));
            }
        }
        for e in f.errors.iter().filter(|e| applies(&e.endpoints, endpoint)) {
            if u < e.rate {
                let status =
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Fault::Error(status);
            }
            u -= e.rate;
        }
        if let Some(c) = f.reset.as_ref().filter(|c| applies(&c.endpoints, endpoint)) {
            if u < c.rate {
                return Fault::Reset;
            }
            u -= c.rate;
        }
        if let Some(s) = f.stall.as_ref().filter(|s| applies(&s.endpoints, endpoint)) {
            if u < s.rate {
                return Fault::Stall(s.duration.0);
            }
            u -= s.rate;
        }
        match f
            .outcome_after_timeout
            .as_ref()
            .filter(|s| applies(&s.endpoints, endpoint))
        {
            Some(s) if u < s.rate => Fault::OutcomeAfterTimeout(s.duration.0),
            _ => Fault::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::scenario::{ErrorFault, Throttle};

    #[test]
    fn bursts_and_rates_follow_the_plan() {
        let faults = Faults {
            throttle: Some(Throttle {
                every: 3,
                burst: 2,
                retry_after: None,
                endpoints: vec!["POST /retry".into()],
            }),
            errors: vec![ErrorFault {
                status: 503,
                rate: 0.25,
                endpoints: Vec::new(),
            }],
            ..Faults::default()
        };
        let inj = Injector::new(faults.clone(), 9, "t");
        let throttled: Vec<bool> = (0..10)
            .map(|_| matches!(inj.decide("POST /retry").1, Fault::Throttle(_)))
            .collect();
        assert_eq!(
            throttled,
            [
                false, false, false, true, true, false, false, false, true, true
            ]
        );
        let inj = Injector::new(faults.clone(), 9, "t");
        let errors = (0..4000)
            .filter(|_| inj.decide("GET /other").1 == Fault::Error(StatusCode::SERVICE_UNAVAILABLE))
            .count();
        assert!((900..1100).contains(&errors), "{errors} of 4000");
        // The same seed gives the same decisions.
        let a = Injector::new(faults.clone(), 9, "t");
        let b = Injector::new(faults, 9, "t");
        for _ in 0..100 {
            assert_eq!(a.decide("GET /x"), b.decide("GET /x"));
        }
    }
}
