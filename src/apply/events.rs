//! What the engine reports while it runs; `ui/` draws it, reports and tests record it.
//!
//! The engine emits `Started`, `JobStarted`, `Retrying`, `Throttled`, `Polled`, `Finished` and
//! `JobFinished`; the CLI emits `Stopping`.

use std::sync::Arc;

use super::State;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Apply starts: the number of actions it will send, per job in plan order.
    Started {
        jobs: Vec<(String, usize)>,
    },
    JobStarted {
        job: String,
    },
    /// A wave of a job's rollout starts: `wave` of `waves` (1-based), `actions` in it.
    ///
    /// To be emitted by the engine in `run_job`, before each `run_wave`; until it is, [`Waves`]
    /// derives it (a wave starts when the previous one's last action finished).
    WaveStarted {
        job: String,
        wave: usize,
        waves: usize,
        actions: usize,
    },
    /// A request for an action went out (`attempt` from 1).
    ///
    /// To be emitted by the engine (`apply/attempt.rs`) right after the journal's `sent`
    /// record of each attempt, once per target of a DigiCert batch; nothing emits it yet.
    Sent {
        job: String,
        target: String,
        attempt: u32,
    },
    JobFinished {
        job: String,
    },
    /// An action reached its final state.
    Finished {
        job: String,
        target: String,
        state: State,
        detail: String,
    },
    /// An attempt failed and another follows after `after_ms`.
    Retrying {
        job: String,
        target: String,
        attempt: u32,
        after_ms: u64,
        reason: String,
    },
    /// A provider answered 429.
    Throttled {
        provider: String,
    },
    /// An asynchronous task was polled.
    Polled {
        job: String,
        target: String,
        status: String,
    },
    /// The first interrupt: no new sends, in-flight requests may finish.
    Stopping,
}

/// Where events go. Implementations must not block: they run on the engine's tasks.
pub trait Sink: Send + Sync {
    fn emit(&self, event: Event);

    /// The run is over: stop drawing (before the results are printed).
    fn close(&self) {}
}

/// Drops every event.
#[derive(Debug, Default)]
pub struct Silent;

impl Sink for Silent {
    fn emit(&self, _: Event) {}
}

/// Every event to each of several sinks, in order.
pub struct Tee(pub Vec<Arc<dyn Sink>>);

impl Sink for Tee {
    fn emit(&self, event: Event) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.emit(event.clone());
            }
            last.emit(event);
        }
    }

    fn close(&self) {
        for sink in &self.0 {
            sink.close();
        }
    }
}
