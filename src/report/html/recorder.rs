//! Records what the HTML report charts: each event with the time it arrived.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use super::super::Summary;
use crate::apply::State;
use crate::apply::events::{Event, Sink};

#[derive(Default)]
struct Log {
    /// `[t_ms, job, state]` of every final state.
    finished: Vec<(u64, usize, u8)>,
    /// `(job, target)` → index into `finished`, to join the results' durations.
    index: HashMap<(usize, String), usize>,
    /// `[t_ms, job]` of every request sent (once the engine emits `Sent`).
    sent: Vec<(u64, usize)>,
    retries: Vec<(u64, usize)>,
    throttled: Vec<(u64, usize)>,
    polls: Vec<(u64, usize)>,
    /// `[t_ms, job, wave, waves, actions]`.
    waves: Vec<(u64, usize, usize, usize, usize)>,
    /// `[t_ms, job]` of job starts and ends.
    job_started: Vec<(u64, usize)>,
    job_finished: Vec<(u64, usize)>,
    stopping: Option<u64>,
}

/// A `Sink` that timestamps events for the HTML report.
pub struct Recorder {
    started: Instant,
    jobs: Vec<String>,
    /// Per job, its provider.
    providers: Vec<String>,
    log: Mutex<Log>,
}

/// What a run recorded.
pub struct Recording {
    jobs: Vec<String>,
    providers: Vec<String>,
    log: Log,
}

fn state_code(state: State) -> u8 {
    match state {
        State::Succeeded => 0,
        State::Converged => 1,
        State::Skipped | State::Planned => 2,
        State::Failed => 3,
        State::Unknown | State::Sent => 4,
    }
}

impl Recorder {
    /// `jobs`: each job with its provider, in plan order.
    #[must_use]
    pub fn new(jobs: Vec<(String, String)>) -> Self {
        let (jobs, providers) = jobs.into_iter().unzip();
        Self {
            started: Instant::now(),
            jobs,
            providers,
            log: Mutex::new(Log::default()),
        }
    }

    fn job(&self, job: &str) -> usize {
        self.jobs.iter().position(|j| j == job).unwrap_or(0)
    }

    fn provider(&self, provider: &str) -> usize {
        self.providers
            .iter()
            .position(|p| p == provider)
            .unwrap_or(0)
    }

    /// The recording so far (the run is over when it is taken).
    #[must_use]
    pub fn take(&self) -> Recording {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Recording {
            jobs: self.jobs.clone(),
            providers: self.providers.clone(),
            log: std::mem::take(&mut *log),
        }
    }
}

impl Sink for Recorder {
    fn emit(&self, event: Event) {
        let t = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Finished {
                job, target, state, ..
            } => {
                let j = self.job(&job);
                let k = log.finished.len();
                log.finished.push((t, j, state_code(state)));
                log.index.insert((j, target), k);
            }
            Event::Sent { job, .. } => {
                let j = self.job(&job);
                log.sent.push((t, j));
            }
            Event::Retrying { job, .. } => {
                let j = self.job(&job);
                log.retries.push((t, j));
            }
            Event::Throttled { provider } => {
                // Throttling is the provider's; charted against its first job.
                let p = self.provider(&provider);
                log.throttled.push((t, p));
            }
            Event::Polled { job, .. } => {
                let j = self.job(&job);
                log.polls.push((t, j));
            }
            Event::WaveStarted {
                job,
                wave,
                waves,
                actions,
            } => {
                let j = self.job(&job);
                log.waves.push((t, j, wave, waves, actions));
            }
            Event::JobStarted { job } => {
                let j = self.job(&job);
                log.job_started.push((t, j));
            }
            Event::JobFinished { job } => {
                let j = self.job(&job);
                log.job_finished.push((t, j));
            }
            Event::Stopping => log.stopping = Some(t),
            Event::Started { .. } => {}
        }
    }
}

impl Recording {
    /// The provider of a job.
    #[must_use]
    pub fn provider_of(&self, job: &str) -> Option<&str> {
        self.jobs
            .iter()
            .position(|j| j == job)
            .map(|i| self.providers[i].as_str())
    }

    /// The data the report's script draws, compact: arrays of numbers indexing `jobs`.
    #[must_use]
    pub fn data(&self, s: &Summary<'_>) -> Value {
        let log = &self.log;
        // Each final state with the action's duration (from its result), so the script can
        // tell when it started: `[end_ms, duration_ms, job, state]`.
        let mut finished: Vec<[u64; 4]> = log
            .finished
            .iter()
            .map(|&(t, j, st)| [t, 0, j as u64, u64::from(st)])
            .collect();
        for r in s.results {
            let j = self.jobs.iter().position(|x| **x == *r.job).unwrap_or(0);
            if let Some(&k) = log.index.get(&(j, r.target.clone())) {
                finished[k][1] = r.duration_ms;
            }
        }
        let pairs = |v: &[(u64, usize)]| v.iter().map(|&(t, j)| [t, j as u64]).collect::<Vec<_>>();
        json!({
            "duration_ms": s.duration_ms,
            "jobs": self.jobs,
            "providers": self.providers,
            "states": ["succeeded", "converged", "skipped", "failed", "unknown"],
            "finished": finished,
            "sent": pairs(&log.sent),
            "retries": pairs(&log.retries),
            "throttled": pairs(&log.throttled),
            "polls": pairs(&log.polls),
            "waves": log.waves.iter().map(|&(t, j, w, n, a)| [t, j as u64, w as u64, n as u64, a as u64]).collect::<Vec<_>>(),
            "job_started": pairs(&log.job_started),
            "job_finished": pairs(&log.job_finished),
            "stopping": log.stopping,
        })
    }
}
