//! What the engine reports while it runs; `ui/` draws it, reports and tests record it.
//!
//! The engine emits `Started`, `JobStarted`, `Retrying`, `Throttled`, `Polled`, `Finished` and
//! `JobFinished`; the CLI emits `Stopping`. `WaveStarted` comes from [`Waves`], which derives it
//! from the finished counts, until the engine emits it itself (see the variant). `Sent` is
//! declared for the engine to emit (see the variant); consumers already handle it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

#[derive(Default)]
struct JobWaves {
    /// Cumulative ends of the waves (as `engine::wave_ends`).
    ends: Vec<usize>,
    done: usize,
    /// The wave running now (0-based).
    current: usize,
}

/// Passes events on and adds `WaveStarted` from each job's rollout: the first wave when the job
/// starts, the next when as many of its sent actions finished as the waves before it hold.
pub struct Waves {
    inner: Arc<dyn Sink>,
    /// Wave ends per job, from the plan's runnable counts and the job's rollout.
    plans: HashMap<String, Vec<usize>>,
    live: Mutex<HashMap<String, JobWaves>>,
}

impl Waves {
    /// `ends`: per job, where each wave ends (`engine::wave_ends`).
    #[must_use]
    pub fn new(inner: Arc<dyn Sink>, ends: HashMap<String, Vec<usize>>) -> Self {
        Self {
            inner,
            plans: ends,
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl Sink for Waves {
    fn emit(&self, event: Event) {
        let mut next = None;
        {
            let mut live = self
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &event {
                Event::JobStarted { job } => {
                    let ends = self.plans.get(job).cloned().unwrap_or_default();
                    if ends.last().copied().unwrap_or(0) > 0 {
                        next = Some(Event::WaveStarted {
                            job: job.clone(),
                            wave: 1,
                            waves: ends.len(),
                            actions: ends[0],
                        });
                    }
                    live.insert(
                        job.clone(),
                        JobWaves {
                            ends,
                            ..JobWaves::default()
                        },
                    );
                }
                // Skipped actions were never sent in a wave (unchanged, blocked, or held back
                // after a stop).
                Event::Finished { job, state, .. } if *state != State::Skipped => {
                    if let Some(w) = live.get_mut(job) {
                        w.done += 1;
                        if w.ends.get(w.current) == Some(&w.done) && w.current + 1 < w.ends.len() {
                            w.current += 1;
                            next = Some(Event::WaveStarted {
                                job: job.clone(),
                                wave: w.current + 1,
                                waves: w.ends.len(),
                                actions: w.ends[w.current] - w.ends[w.current - 1],
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        // The job's start comes before its first wave; an action's end before the next wave.
        self.inner.emit(event);
        if let Some(wave) = next {
            self.inner.emit(wave);
        }
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<Event>>);

    impl Sink for Kept {
        fn emit(&self, event: Event) {
            self.0.lock().expect("lock").push(event);
        }
    }

    fn finished(job: &str, n: usize, state: State) -> Event {
        Event::Finished {
            job: job.into(),
            target: format!("t{n}"),
            state,
            detail: String::new(),
        }
    }

    #[test]
    fn waves_start_when_the_previous_wave_ended() {
        let kept = Arc::new(Kept::default());
        let waves = Waves::new(
            kept.clone(),
            HashMap::from([("j".to_owned(), vec![1, 3, 5])]),
        );
        waves.emit(Event::JobStarted { job: "j".into() });
        // Unchanged actions end first, outside any wave.
        waves.emit(finished("j", 0, State::Skipped));
        for n in 1..=5 {
            waves.emit(finished("j", n, State::Succeeded));
        }
        let started: Vec<(usize, usize)> = kept
            .0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e {
                Event::WaveStarted { wave, actions, .. } => Some((*wave, *actions)),
                _ => None,
            })
            .collect();
        assert_eq!(started, vec![(1, 1), (2, 2), (3, 2)]);
    }
}
