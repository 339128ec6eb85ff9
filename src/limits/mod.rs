//! Per-provider limits, shared by every job, source read, observation, send and poll of one
//! provider endpoint and key: a concurrency cap, strict rolling windows that every HTTP request
//! passes (`COUNT/PERIOD`: never more than COUNT requests counted by the provider in any window
//! of PERIOD, [`window`]), exclusive operations (VCF: one credential operation at a time), and
//! 429 handling that learns (`Retry-After`, or a pause and a spacing between requests that grows
//! on every 429 and shrinks again on success).

mod window;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use window::{Gate, Hold, Window};

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

/// The same windows held across processes (the cooperative apply's log in the shared state),
/// counted as the local ones are ([`window`]): `take` records one request as started when every
/// window has room, and `ended` when its answer is in. Only limiters with windows get one, so
/// unlimited providers never wait on it.
pub trait SharedWindow: Send + Sync + std::fmt::Debug {
    /// A slot, or how long until one may free; an error when the log cannot be read, which
    /// never counts as room.
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<Take, String>> + Send + '_>>;
    /// The request of `slot` has its answer, or has given up.
    fn ended(&self, slot: i64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// What a shared window answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted(i64),
    Wait(Duration),
}

/// How long admission keeps asking a shared window that cannot be read before the request
/// fails unsent.
const SHARED_PATIENCE: Duration = Duration::from_secs(30);
/// The pause between two such tries.
const SHARED_RETRY: Duration = Duration::from_secs(1);
/// The longest wait for a request in flight to end before the windows are looked at again.
const END_POLL: Duration = Duration::from_millis(250);

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

/// One admitted request: it holds its slot in every window until it ends. Ended by
/// [`Started::ended`] once its answer is in; a request dropped half-way ends when it drops.
#[must_use = "a request holds its window slots until it ends"]
pub struct Started<'a> {
    limiter: &'a Limiter,
    shared: Option<i64>,
    open: bool,
}

impl Started<'_> {
    /// Records the end here and, for a shared window, in the shared log before returning.
    pub async fn ended(mut self) {
        self.open = false;
        self.limiter.end();
        if let (Some(slot), Some(shared)) = (self.shared, self.limiter.shared.get()) {
            shared.ended(slot).await;
        }
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        self.limiter.end();
        // A cancelled request: its shared slot is ended on the side. If that cannot run, the
        // log still ends the slot by itself at its bound (`PgWindow`).
        if let (Some(slot), Some(shared)) = (self.shared, self.limiter.shared.get().cloned())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { shared.ended(slot).await });
        }
    }
}

/// What a provider's documentation says, when the runbook says nothing.
#[derive(Debug, Clone, Default)]
pub struct Documented {
    pub rates: Vec<Rate>,
    pub concurrency: Option<u32>,
    /// Operations (a send and the polling of what it started) run one at a time.
    pub exclusive: bool,
}

/// The margin added to each window. Counting by ends ([`window`]) holds for every request that
/// got its answer; one that ended without (a timeout, a broken connection) may still have its
/// bytes reach the server a little after the client gave up, and a provider may count a moment
/// after it answered. 2 % of the period, at least 250 ms, costing 5 % of the throughput of a
/// 5 s window.
#[must_use]
pub fn margin(period: Duration) -> Duration {
    (period / 50).max(Duration::from_millis(250))
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
    /// Whether any window is set: without one, a request's end needs no bookkeeping.
    windowed: bool,
    /// Woken when a request ends, for admissions waiting on a window full of requests in flight.
    ended: Notify,
    /// Set once by a cooperative apply: admission also waits for the runners' shared window.
    shared: OnceLock<Arc<dyn SharedWindow>>,
    /// With a shared window, one admission at a time asks it (in arrival order): a full window
    /// is then polled by one task per runner, not by every task waiting on it.
    shared_turn: tokio::sync::Mutex<()>,
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
            .map(|r| Window::new(r.count as usize, r.per + margin(r.per)))
            .collect::<Vec<_>>();
        let windowed = !windows.is_empty();
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
            windowed,
            ended: Notify::new(),
            shared: OnceLock::new(),
            shared_turn: tokio::sync::Mutex::new(()),
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
    /// learned spacing, and counts it as started; the request holds its slots until the
    /// returned [`Started`] ends.
    ///
    /// # Errors
    /// A shared window that could not be read for [`SHARED_PATIENCE`]: the request is not sent.
    pub async fn admit(&self) -> Result<Started<'_>, String> {
        let mut unread_since: Option<Instant> = None;
        // Taken before the local gate is read, so what the gate says still holds when the
        // shared window is asked; kept while waiting, so waiters queue instead of polling.
        let _turn = match self.shared.get() {
            Some(_) => Some(self.shared_turn.lock().await),
            None => None,
        };
        loop {
            // Registered before the windows are read, so an end in between is not missed;
            // only where an end can matter: a limiter without windows (most, and every one on a
            // hot path) takes no lock of the `Notify`'s per request.
            let ended = self.windowed.then(|| self.ended.notified());
            tokio::pin!(ended);
            if let Some(ended) = ended.as_mut().as_pin_mut() {
                ended.enable();
            }
            let hold = {
                let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let hold = gate.hold(now);
                if hold == Hold::Free && self.shared.get().is_none() {
                    return Ok(self.started(&mut gate, now, None));
                }
                hold
            };
            match hold {
                Hold::For(wait) => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Hold::UntilAnEnd => {
                    // Only a window says this, so `ended` is registered.
                    if let Some(ended) = ended.as_pin_mut() {
                        let _ = tokio::time::timeout(END_POLL, ended).await;
                    }
                    continue;
                }
                Hold::Free => {}
            }
            // The shared window is taken last, with the local gate free, and the start counted
            // locally only once it is granted: the shared log never holds a start earlier than
            // the request's own.
            let shared = self.shared.get().expect("checked above");
            match shared.take().await {
                Ok(Take::Granted(slot)) => {
                    let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
                    return Ok(self.started(&mut gate, Instant::now(), Some(slot)));
                }
                Ok(Take::Wait(wait)) => {
                    unread_since = None;
                    tokio::time::sleep(wait).await;
                }
                Err(detail) => {
                    let since = *unread_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= SHARED_PATIENCE {
                        return Err(format!(
                            "the rate limit shared with the other runners could not be read for {}s: {detail}",
                            SHARED_PATIENCE.as_secs()
                        ));
                    }
                    tokio::time::sleep(SHARED_RETRY).await;
                }
            }
        }
    }

    fn started(&self, gate: &mut Gate, now: Instant, shared: Option<i64>) -> Started<'_> {
        gate.start(now);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Started {
            limiter: self,
            shared,
            open: true,
        }
    }

    /// A request has its answer (or gave up): its slots count from now.
    fn end(&self) {
        if !self.windowed {
            return;
        }
        self.gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end(Instant::now());
        self.ended.notify_waiters();
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
mod tests;
