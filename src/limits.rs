//! Per-provider limits: a concurrency cap, request rates (governor), and a pause after a 429
//! that slows the provider down for a while and then lets it recover.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::manifest::model::Limits;

/// In-flight requests per provider when its `limits` set none.
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// How long a provider is paused after a 429 without `Retry-After`.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    concurrency: usize,
    rates: Vec<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    #[must_use]
    pub fn new(limits: Option<&Limits>) -> Self {
        let concurrency = limits
            .and_then(|l| l.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1);
        let rates = limits
            .and_then(|l| l.rate.as_ref())
            .map(|r| r.as_slice().to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|rate| {
                let count = NonZeroU32::new(rate.count)?;
                let period = rate.per.checked_div(rate.count)?;
                // Bursts up to the full count, then one every per/count: never more than the
                // count in any window of the rate's length.
                Quota::with_period(period)
                    .map(|q| DefaultDirectRateLimiter::direct(q.allow_burst(count)))
            })
            .collect();
        Self {
            slots: Arc::new(Semaphore::new(concurrency as usize)),
            concurrency: concurrency as usize,
            rates,
            paused_until: Mutex::new(None),
        }
    }

    /// Requests in flight at most.
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Waits for a slot, for any 429 pause and for every rate; the slot is held until the
    /// permit drops.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        for rate in &self.rates {
            rate.until_ready().await;
        }
        permit
    }

    /// After a 429: hold every request to this provider for `retry_after` (or a second).
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let until = Instant::now() + retry_after.unwrap_or(THROTTLE_PAUSE);
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}
