//! Per-provider limits, shared by every job, source read, observation, send and poll of one
//! provider endpoint and key: a concurrency cap, strict rolling windows that every HTTP request
//! passes (`COUNT/PERIOD`: never more than COUNT request starts in any window of PERIOD plus a
//! margin), exclusive operations (VCF: one credential operation at a time), and 429 handling
//! that learns (`Retry-After`, or a pause and a spacing between requests that grows on every
//! 429 and shrinks again on success).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::manifest::model::{Limits, Rate};

/// In-flight requests per provider when neither its `limits` nor its documentation set any.
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// How long a provider is paused after a 429 without `Retry-After`.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// The spacing between requests after a 429 without `Retry-After` starts here and grows by half
/// with each further 429, up to the cap; each answer that is not a 429 shrinks it by a tenth
/// (the request rate is cut on a 429 and won back on success, as in AIMD).
const SPACING_START: Duration = Duration::from_millis(50);
const SPACING_CAP: Duration = Duration::from_secs(2);
const SPACING_GROWTH: f64 = 1.5;
const SPACING_DECAY: f64 = 0.9;

/// The same windows held across processes (the cooperative apply's log in the shared state):
/// `take` records one request start when every window has room (`None`), or says how long until
/// one frees. Only limiters with windows get one, so unlimited providers never wait on it.
pub trait SharedWindow: Send + Sync + std::fmt::Debug {
    fn take(&self) -> Pin<Box<dyn Future<Output = Option<Duration>> + Send + '_>>;
}

/// One operation at a time across processes (VCF: one credential operation per SDDC Manager,
/// whichever runner starts it): `hold` waits for it, and it is free again when the guard drops.
pub trait SharedOperation: Send + Sync + std::fmt::Debug {
    fn hold(&self) -> Pin<Box<dyn Future<Output = Box<dyn Send + Sync>> + Send + '_>>;
}

/// The permit of an exclusive operation, held until it has ended.
pub struct Operation {
    _local: OwnedSemaphorePermit,
    _shared: Option<Box<dyn Send + Sync>>,
}

/// What a provider's documentation says, when the runbook says nothing.
#[derive(Debug, Clone, Default)]
pub struct Documented {
    pub rates: Vec<Rate>,
    pub concurrency: Option<u32>,
    /// Operations (a send and the polling of what it started) run one at a time.
    pub exclusive: bool,
}

/// The margin added to each window: a request started at the client arrives at the server up
/// to one latency later, so starts are kept COUNT per (PERIOD + margin) for the server's own
/// window to hold. 2 % of the period, at least 250 ms: 100 ms of latency jitter and clock skew
/// with room to spare, costing 5 % of the throughput of a 5 s window.
#[must_use]
pub fn margin(period: Duration) -> Duration {
    (period / 50).max(Duration::from_millis(250))
}

/// One `COUNT/PERIOD` rule and the start times of the requests it admitted last.
#[derive(Debug)]
struct Window {
    count: usize,
    span: Duration,
    starts: VecDeque<Instant>,
}

impl Window {
    /// How long until one more request may start, `ZERO` if now.
    fn wait(&self, now: Instant) -> Duration {
        if self.starts.len() < self.count {
            return Duration::ZERO;
        }
        let oldest = self.starts[self.starts.len() - self.count];
        (oldest + self.span).saturating_duration_since(now)
    }

    fn admit(&mut self, now: Instant) {
        self.starts.push_back(now);
        while self.starts.len() > self.count {
            self.starts.pop_front();
        }
    }
}

/// The request-level state: the windows, the 429 pause and the learned spacing.
#[derive(Debug, Default)]
struct Gate {
    windows: Vec<Window>,
    paused_until: Option<Instant>,
    spacing: Duration,
    last_start: Option<Instant>,
}

impl Gate {
    fn wait(&self, now: Instant) -> Duration {
        let paused = self
            .paused_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let spaced = self.last_start.map_or(Duration::ZERO, |t| {
            (t + self.spacing).saturating_duration_since(now)
        });
        self.windows
            .iter()
            .map(|w| w.wait(now))
            .fold(paused.max(spaced), Duration::max)
    }
}

/// The limits of one provider endpoint and key.
#[derive(Debug)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    concurrency: usize,
    operations: Option<Arc<Semaphore>>,
    gate: Mutex<Gate>,
    throttled: AtomicU64,
    requests: AtomicU64,
    /// Set once by a cooperative apply: admission also waits for the runners' shared window.
    shared: OnceLock<Arc<dyn SharedWindow>>,
    /// Likewise for exclusive operations.
    shared_operations: OnceLock<Arc<dyn SharedOperation>>,
}

impl Limiter {
    /// The runbook's limits, or else the documented ones.
    #[must_use]
    pub fn new(limits: Option<&Limits>, documented: &Documented) -> Self {
        let concurrency = limits
            .and_then(|l| l.concurrency)
            .or(documented.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1);
        let rates = limits
            .and_then(|l| l.rate.as_ref())
            .map_or_else(|| documented.rates.clone(), |r| r.as_slice().to_vec());
        let windows = rates
            .into_iter()
            .filter(|r| r.count > 0)
            .map(|r| Window {
                count: r.count as usize,
                span: r.per + margin(r.per),
                starts: VecDeque::with_capacity(r.count.min(4096) as usize),
            })
            .collect();
        Self {
            slots: Arc::new(Semaphore::new(concurrency as usize)),
            concurrency: concurrency as usize,
            operations: documented.exclusive.then(|| Arc::new(Semaphore::new(1))),
            gate: Mutex::new(Gate {
                windows,
                ..Gate::default()
            }),
            throttled: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            shared: OnceLock::new(),
            shared_operations: OnceLock::new(),
        }
    }

    /// The rolling windows, as `(count, span)` with the margin already added.
    #[must_use]
    pub fn windows(&self) -> Vec<(u32, Duration)> {
        let gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let count = |w: &Window| u32::try_from(w.count).unwrap_or(u32::MAX);
        gate.windows.iter().map(|w| (count(w), w.span)).collect()
    }

    /// Whether its operations run one at a time.
    #[must_use]
    pub fn exclusive(&self) -> bool {
        self.operations.is_some()
    }

    /// Holds this limiter's exclusive operations across processes too; the first call wins.
    pub fn share_operations(&self, operation: Arc<dyn SharedOperation>) {
        let _ = self.shared_operations.set(operation);
    }

    /// Holds this limiter's windows across processes too; the first call wins.
    pub fn share(&self, window: Arc<dyn SharedWindow>) {
        let _ = self.shared.set(window);
    }

    /// No limits at all (a second endpoint of a provider, such as OTC's IAM).
    #[must_use]
    pub fn unlimited() -> Self {
        Self::new(
            None,
            &Documented {
                concurrency: Some(4096),
                ..Documented::default()
            },
        )
    }

    /// Units (an action, or a batch) in flight at most.
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Waits for a slot (one unit of work in flight); the slot is held until the permit drops.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// For a provider whose operations run one at a time: waits for the operation permit,
    /// held from the send until the operation has ended (its task polled to the end).
    pub async fn operation(&self) -> Option<Operation> {
        let ops = self.operations.as_ref()?;
        let local = ops
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // Local first: one waiter per process asks the other processes.
        let shared = match self.shared_operations.get() {
            Some(shared) => Some(shared.hold().await),
            None => None,
        };
        Some(Operation {
            _local: local,
            _shared: shared,
        })
    }

    /// Waits until one more HTTP request may start under every window, the 429 pause and the
    /// learned spacing, and counts it as started.
    pub async fn admit(&self) {
        loop {
            let wait = {
                let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let wait = gate.wait(now);
                if wait.is_zero() && self.shared.get().is_none() {
                    for w in &mut gate.windows {
                        w.admit(now);
                    }
                    gate.last_start = Some(now);
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                wait
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                continue;
            }
            // The shared window is taken last, with the local gate free, and the start counted
            // locally only once it is granted: the shared log never holds a start earlier than
            // the request's own.
            let shared = self.shared.get().expect("checked above");
            if let Some(wait) = shared.take().await {
                tokio::time::sleep(wait).await;
                continue;
            }
            let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            for w in &mut gate.windows {
                w.admit(now);
            }
            gate.last_start = Some(now);
            self.requests.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }

    /// After a 429: hold every request to this provider for `retry_after`, or else pause and
    /// space the requests further apart (the real limit is lower than what was declared).
    pub fn throttled(&self, retry_after: Option<Duration>) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let until = Instant::now() + retry_after.unwrap_or(THROTTLE_PAUSE);
        if gate.paused_until.is_none_or(|p| p < until) {
            gate.paused_until = Some(until);
        }
        if retry_after.is_none() {
            gate.spacing = gate
                .spacing
                .mul_f64(SPACING_GROWTH)
                .clamp(SPACING_START, SPACING_CAP);
        }
    }

    /// An answer that was not a 429: the learned spacing shrinks back.
    pub fn answered(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        if !gate.spacing.is_zero() {
            gate.spacing = gate.spacing.mul_f64(SPACING_DECAY);
            if gate.spacing < Duration::from_millis(1) {
                gate.spacing = Duration::ZERO;
            }
        }
    }

    /// 429 answers so far.
    #[must_use]
    pub fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// HTTP requests started so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rates: &[(u32, u64)]) -> Limiter {
        Limiter::new(
            None,
            &Documented {
                rates: rates
                    .iter()
                    .map(|&(count, ms)| Rate {
                        count,
                        per: Duration::from_millis(ms),
                    })
                    .collect(),
                ..Documented::default()
            },
        )
    }

    /// Never more than COUNT starts in any window of PERIOD, however the requests arrive.
    #[tokio::test(start_paused = true)]
    async fn a_window_never_holds_more_than_its_count() {
        let l = Arc::new(limiter(&[(10, 1000), (25, 5000)]));
        let mut starts = Vec::new();
        let t0 = Instant::now();
        for _ in 0..60 {
            l.admit().await;
            starts.push(Instant::now() - t0);
        }
        for (i, a) in starts.iter().enumerate() {
            let in_1s = starts[i..]
                .iter()
                .take_while(|b| **b - *a < Duration::from_millis(1000))
                .count();
            let in_5s = starts[i..]
                .iter()
                .take_while(|b| **b - *a < Duration::from_millis(5000))
                .count();
            assert!(in_1s <= 10, "{in_1s} starts within 1 s from {a:?}");
            assert!(in_5s <= 25, "{in_5s} starts within 5 s from {a:?}");
        }
        // Full windows are used, not a trickle: the 25/5 s rule paces the 60 requests.
        let last = *starts.last().expect("starts");
        assert!(last < Duration::from_secs(12), "{last:?}");
        assert_eq!(l.requests(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_pauses_and_spaces_requests() {
        let l = limiter(&[]);
        l.admit().await;
        let t0 = Instant::now();
        l.throttled(None);
        l.admit().await;
        assert!(Instant::now() - t0 >= THROTTLE_PAUSE);
        let t1 = Instant::now();
        l.admit().await;
        assert!(Instant::now() - t1 >= SPACING_START);
        for _ in 0..200 {
            l.answered();
        }
        let t2 = Instant::now();
        l.admit().await;
        assert!(Instant::now() - t2 < Duration::from_millis(5));
        assert_eq!(l.throttled_count(), 1);
    }
}
