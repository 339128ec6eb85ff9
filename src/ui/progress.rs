//! Progress of an apply, drawn from the engine's events: bars on a terminal (overall with rate
//! and ETA, one per running job, live retry and 429 counts), plain lines every few seconds when
//! stderr is not a terminal, nothing with `--quiet`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::apply::State;
use crate::apply::events::{Event, Sink};

/// `TERM=dumb` (Emacs shells, some CI consoles): a terminal that cannot redraw bars, so plain
/// lines are written instead.
#[must_use]
pub fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// How often a plain progress line is written.
const EVERY: Duration = Duration::from_secs(5);
/// How often the bars' summary message (rate, failures) is rewritten at most.
const MESSAGE_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Counts {
    total: usize,
    done: usize,
    failed: usize,
    retries: usize,
    throttled: usize,
    last: Option<Instant>,
}

/// One line every few seconds: done/total, rate, failures, retries and 429s.
pub struct Plain {
    out: Mutex<Box<dyn Write + Send>>,
    counts: Mutex<Counts>,
    started: Instant,
}

impl Plain {
    #[must_use]
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            counts: Mutex::new(Counts::default()),
            started: Instant::now(),
        }
    }

    fn line(&self, c: &Counts) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = if secs > 0.0 {
            c.done as f64 / secs
        } else {
            0.0
        };
        format!(
            "[{secs:>5.0}s] {}/{} done ({rate:.1}/s), {} failed, {} retries, {} throttled\n",
            c.done, c.total, c.failed, c.retries, c.throttled
        )
    }

    fn write(&self, text: &str) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Sink for Plain {
    fn emit(&self, event: Event) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Started { jobs } => {
                c.total = jobs.iter().map(|(_, n)| n).sum();
                // The first count comes after a full interval: one taken at the first answer
                // would show a rate of nothing.
                c.last = Some(Instant::now());
                let text = format!("Applying {} action(s) in {} job(s).\n", c.total, jobs.len());
                drop(c);
                self.write(&text);
                return;
            }
            Event::Finished { state, .. } => {
                if state != State::Skipped {
                    c.done += 1;
                }
                c.failed += usize::from(matches!(state, State::Failed | State::Unknown));
            }
            Event::Retrying { .. } => c.retries += 1,
            Event::Throttled { .. } => c.throttled += 1,
            Event::Stopping => {
                drop(c);
                self.write("Interrupted: no new requests are sent; waiting for those in flight (Ctrl-C again to quit at once).\n");
                return;
            }
            _ => return,
        }
        let due = c.last.is_none_or(|t| t.elapsed() >= EVERY);
        let finished = c.total > 0 && c.done == c.total;
        if due || finished {
            c.last = Some(Instant::now());
            let text = self.line(&c);
            drop(c);
            self.write(&text);
        }
    }
}

#[derive(Default)]
struct Live {
    totals: HashMap<String, u64>,
    bars: HashMap<String, ProgressBar>,
    failed: u64,
    retries: u64,
    throttled: u64,
    /// When the overall bar's message was last rewritten.
    written: Option<Instant>,
}

/// Progress bars on a terminal.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    live: Mutex<Live>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates are valid")
        .progress_chars("=> ")
}

impl Bars {
    #[must_use]
    pub fn new() -> Self {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style(
            "{prefix:.bold} [{bar:30}] {pos}/{len} ETA {eta} {msg}",
        ));
        overall.set_prefix("apply");
        overall.enable_steady_tick(Duration::from_millis(200));
        Self {
            multi,
            overall,
            live: Mutex::new(Live::default()),
        }
    }

    fn message(&self, live: &mut Live) {
        live.written = Some(Instant::now());
        let secs = self.overall.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = if secs > 0.0 {
            self.overall.position() as f64 / secs
        } else {
            0.0
        };
        self.overall.set_message(format!(
            "{rate:.0}/s · {} failed · {} retries · {} throttled",
            live.failed, live.retries, live.throttled
        ));
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for Bars {
    fn emit(&self, event: Event) {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Started { jobs } => {
                let total: usize = jobs.iter().map(|(_, n)| n).sum();
                self.overall.set_length(total as u64);
                live.totals = jobs.into_iter().map(|(j, n)| (j, n as u64)).collect();
                self.message(&mut live);
            }
            Event::JobStarted { job } => {
                let total = live.totals.get(&job).copied().unwrap_or(0);
                if total > 0 {
                    let bar = self.multi.add(ProgressBar::new(total));
                    bar.set_style(style("  {prefix:20} [{bar:30}] {pos}/{len} {msg}"));
                    bar.set_prefix(job.clone());
                    live.bars.insert(job, bar);
                }
            }
            Event::Finished { job, state, .. } => {
                if state != State::Skipped {
                    self.overall.inc(1);
                    if let Some(bar) = live.bars.get(&job) {
                        bar.inc(1);
                    }
                }
                let failed = matches!(state, State::Failed | State::Unknown);
                live.failed += u64::from(failed);
                // The rate needs no more than the steady tick shows; a failure shows at once.
                // Rewriting the message for each of 10,000 actions cost 1 % of a run's time.
                if failed || live.written.is_none_or(|t| t.elapsed() >= MESSAGE_EVERY) {
                    self.message(&mut live);
                }
            }
            Event::JobFinished { job } => {
                if let Some(bar) = live.bars.remove(&job) {
                    bar.finish_and_clear();
                }
            }
            Event::Retrying { .. } => {
                live.retries += 1;
                self.message(&mut live);
            }
            Event::Throttled { .. } => {
                live.throttled += 1;
                self.message(&mut live);
            }
            Event::Polled { job, status, .. } => {
                if let Some(bar) = live.bars.get(&job) {
                    bar.set_message(format!("task {status}"));
                }
            }
            Event::WaveStarted { .. } | Event::Sent { .. } => {}
            Event::Stopping => {
                let _ = self.multi.println(
                    "Interrupted: no new requests are sent; waiting for those in flight (Ctrl-C again to quit at once).",
                );
            }
        }
    }

    fn close(&self) {
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for bar in live.bars.values() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
