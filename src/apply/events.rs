//! What the engine reports while it runs; `ui/` draws it, reports and tests record it.

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
