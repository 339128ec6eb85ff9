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

/// One `COUNT/PERIOD` rule and the slots it holds: the requests in flight, and the ends of those
/// that ended less than a span ago. Slots need no names: every request passes every window of
/// its gate, so an end frees one in-flight slot of each, and ends come in time order.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) count: usize,
    pub(super) span: Duration,
    in_flight: usize,
    ended: VecDeque<Instant>,
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
            in_flight: 0,
            ended: VecDeque::with_capacity(count.min(4096)),
        }
    }

    pub(super) fn hold(&mut self, now: Instant) -> Hold {
        // Ends a whole span ago no longer count.
        while self
            .ended
            .front()
            .is_some_and(|end| *end + self.span <= now)
        {
            self.ended.pop_front();
        }
        if self.in_flight + self.ended.len() < self.count {
            return Hold::Free;
        }
        self.ended.front().map_or(Hold::UntilAnEnd, |end| {
            Hold::For((*end + self.span).saturating_duration_since(now))
        })
    }

    fn start(&mut self) {
        self.in_flight += 1;
    }

    /// A request in flight has its answer (or has given up): its slot counts from `now`.
    fn end(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.ended.push_back(now);
    }
}

/// The request-level state: the windows, the 429 pause and the learned spacing.
#[derive(Debug, Default)]
pub(super) struct Gate {
    pub(super) windows: Vec<Window>,
    pub(super) paused_until: Option<Instant>,
    pub(super) spacing: Duration,
    pub(super) last_start: Option<Instant>,
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

    /// Counts one request as started now.
    pub(super) fn start(&mut self, now: Instant) {
        for w in &mut self.windows {
            w.start();
        }
        self.last_start = Some(now);
    }

    /// Counts one request that started as ended now.
    pub(super) fn end(&mut self, now: Instant) {
        for w in &mut self.windows {
            w.end(now);
        }
    }
}
