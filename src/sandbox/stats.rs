//! What the sandbox saw: requests per endpoint and per target, mutations, duplicate mutations of
//! non-idempotent actions, faults served and the peak of concurrent requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Default)]
pub struct Stats {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    inner: Mutex<Inner>,
    /// Set by every change; the world keeper clears it when it saves. Every provider request
    /// passes `request`, so this one flag also says "the provider's objects may have changed".
    dirty: AtomicBool,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Inner {
    requests: u64,
    by_endpoint: HashMap<String, u64>,
    faults: BTreeMap<String, u64>,
    throttled: u64,
    mutations: u64,
    duplicate_mutations: u64,
    targets: HashMap<String, TargetStats>,
}

/// Counters for one target (a certificate DN, an `ip:port`, a task id, a certificate number).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetStats {
    /// Requests that named this target, reads and writes.
    pub requests: u64,
    /// Write requests that took effect.
    pub mutations: u64,
    /// Write requests that arrived while an earlier accepted write had not yet ended in a
    /// failure that makes the target eligible again: what a client must never send.
    pub duplicate_mutations: u64,
}

/// The counters as a world file keeps them.
#[derive(Clone, Serialize, Deserialize)]
pub struct Saved {
    max_in_flight: u64,
    counters: Inner,
}

/// A snapshot, as served by `GET /_sandbox/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub requests: u64,
    pub by_endpoint: BTreeMap<String, u64>,
    pub mutations: u64,
    pub duplicate_mutations: u64,
    pub throttled_429: u64,
    pub faults: BTreeMap<String, u64>,
    pub in_flight: u64,
    pub max_in_flight: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<BTreeMap<String, TargetStats>>,
}

/// Decrements the in-flight count when the request ends, however it ends.
pub struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    pub fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Like `with`, for a change. The flag is read before it is written so that concurrent
    /// requests share the cache line instead of bouncing it.
    fn change<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
        self.with(f)
    }

    /// Whether anything changed since the last call; clears the flag.
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Marks a change that came from outside a request (a world seeded afresh).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// The counters a world file keeps (not the in-flight count: nothing is in flight after a
    /// restart).
    pub fn saved(&self) -> Saved {
        Saved {
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            counters: self.with(|s| s.clone()),
        }
    }

    pub fn restore(&self, saved: Saved) {
        self.max_in_flight
            .store(saved.max_in_flight, Ordering::Relaxed);
        self.with(|s| *s = saved.counters);
    }

    pub fn request(&self, endpoint: &str) {
        self.change(|s| {
            s.requests += 1;
            match s.by_endpoint.get_mut(endpoint) {
                Some(n) => *n += 1,
                None => {
                    s.by_endpoint.insert(endpoint.to_owned(), 1);
                }
            }
        });
    }

    pub fn fault(&self, kind: &'static str) {
        self.change(|s| match s.faults.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                s.faults.insert(kind.to_owned(), 1);
            }
        });
    }

    pub fn throttled(&self) {
        self.change(|s| s.throttled += 1);
    }

    fn target<'a>(s: &'a mut Inner, target: &str) -> &'a mut TargetStats {
        if !s.targets.contains_key(target) {
            s.targets.insert(target.to_owned(), TargetStats::default());
        }
        s.targets.get_mut(target).expect("inserted above")
    }

    /// A request that read or named `target`.
    pub fn touch(&self, target: &str) {
        self.change(|s| Self::target(s, target).requests += 1);
    }

    /// A write request for `target`: `applied` when it took effect, `duplicate` when the target
    /// still carried an earlier accepted write.
    pub fn mutation(&self, target: &str, applied: bool, duplicate: bool) {
        self.change(|s| {
            if applied {
                s.mutations += 1;
            }
            if duplicate {
                s.duplicate_mutations += 1;
            }
            let t = Self::target(s, target);
            t.requests += 1;
            t.mutations += u64::from(applied);
            t.duplicate_mutations += u64::from(duplicate);
        });
    }

    pub fn snapshot(&self, with_targets: bool) -> Snapshot {
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let max_in_flight = self.max_in_flight.load(Ordering::Relaxed);
        self.with(|s| Snapshot {
            requests: s.requests,
            by_endpoint: s.by_endpoint.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            mutations: s.mutations,
            duplicate_mutations: s.duplicate_mutations,
            throttled_429: s.throttled,
            faults: s.faults.clone(),
            in_flight,
            max_in_flight,
            targets: with_targets.then(|| {
                s.targets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        })
    }
}
