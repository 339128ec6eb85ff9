//! The rolling windows of one limiter, counted by when requests *end*: a request holds its slot
//! from its start until its answer is in, and for PERIOD after that.
//!
//! Why the end and not the start: a provider counts a request when it arrives (or while it
//! serves it), and that is somewhere between the client's start and the client's answer. Say a
//! new request r may start only while fewer than COUNT requests are in flight or ended less
//! than PERIOD ago. Take any COUNT + 1 requests the server counted within one PERIOD, and r the
//! one of them that started last: each of the other COUNT started before r, and any of them
//! that had ended a PERIOD before r's start was counted at least a PERIOD before r was, so all
//! COUNT were still holding their slots when r started, and r could not have started. No
//! assumption about latency, queues or clocks is needed beyond the server counting within the
//! request's own lifetime, and the same rule holds across processes on one shared clock
//! (`state::postgres`: granted before the request leaves, ended after its answer).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// One slot of a window: the request of `id`, in flight while `end` is `None`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    end: Option<Instant>,
}

/// One `COUNT/PERIOD` rule and the slots it holds.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) count: usize,
    pub(super) span: Duration,
    slots: VecDeque<Slot>,
}

/// How long a request must wait before it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Hold {
    Free,
    /// Until a slot frees by itself.
    For(Duration),
    /// Until a request in flight ends: every slot of a full window is in flight, so nothing
    /// frees by the clock alone.
    UntilAnEnd,
}

impl Window {
    pub(super) fn new(count: usize, span: Duration) -> Self {
        Self {
            count,
            span,
            slots: VecDeque::with_capacity(count.min(4096)),
        }
    }

    /// Drops the slots of requests that ended a whole span ago.
    fn prune(&mut self, now: Instant) {
        let span = self.span;
        self.slots
            .retain(|s| s.end.is_none_or(|end| end + span > now));
    }

    pub(super) fn hold(&mut self, now: Instant) -> Hold {
        self.prune(now);
        if self.slots.len() < self.count {
            return Hold::Free;
        }
        self.slots
            .iter()
            .filter_map(|s| s.end)
            .min()
            .map_or(Hold::UntilAnEnd, |end| {
                Hold::For((end + self.span).saturating_duration_since(now))
            })
    }

    pub(super) fn take(&mut self, id: u64) {
        self.slots.push_back(Slot { id, end: None });
    }

    /// The request of `id` has its answer (or has given up): its slot counts from `now`.
    pub(super) fn end(&mut self, id: u64, now: Instant) {
        // Slots are taken in id order and pruning keeps the order.
        if let Ok(i) = self.slots.binary_search_by_key(&id, |s| s.id) {
            self.slots[i].end = Some(now);
        }
    }
}

/// The request-level state: the windows, the 429 pause and the learned spacing.
#[derive(Debug, Default)]
pub(super) struct Gate {
    pub(super) windows: Vec<Window>,
    pub(super) paused_until: Option<Instant>,
    pub(super) spacing: Duration,
    pub(super) last_start: Option<Instant>,
    /// The id of the next request admitted.
    pub(super) next: u64,
}

impl Gate {
    pub(super) fn hold(&mut self, now: Instant) -> Hold {
        let paused = self
            .paused_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let spaced = self.last_start.map_or(Duration::ZERO, |t| {
            (t + self.spacing).saturating_duration_since(now)
        });
        let timed = paused.max(spaced);
        let windows = self
            .windows
            .iter_mut()
            .map(|w| w.hold(now))
            .max()
            .unwrap_or(Hold::Free);
        match windows {
            // A pause still to run comes first; the window is looked at again after it.
            Hold::For(d) => Hold::For(d.max(timed)),
            _ if !timed.is_zero() => Hold::For(timed),
            other => other,
        }
    }

    /// Counts one request as started now; returns its id.
    pub(super) fn start(&mut self, now: Instant) -> u64 {
        let id = self.next;
        self.next += 1;
        for w in &mut self.windows {
            w.take(id);
        }
        self.last_start = Some(now);
        id
    }

    pub(super) fn end(&mut self, id: u64, now: Instant) {
        for w in &mut self.windows {
            w.end(id, now);
        }
    }
}
