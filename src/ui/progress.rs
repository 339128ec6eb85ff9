//! Progress of an apply, drawn from the engine's events: bars on a terminal (overall with rate
//! and ETA, one per running job with its current wave, live retry and 429 counts), plain lines
//! every few seconds when stderr is not a terminal or `TERM=dumb`, nothing with `--quiet`. While
//! a task is being polled the ETA says "unknown": a poll's end is the provider's, not a rate's.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Actions whose task is being polled.
    polling: HashSet<(String, String)>,
}

/// The ETA from the rate so far; "unknown" while tasks are polled or before anything ended.
fn eta(done: usize, total: usize, secs: f64, polling: usize) -> String {
    if polling > 0 {
        return format!("unknown ({polling} task(s) polled)");
    }
    if done == 0 || secs <= 0.0 {
        return "unknown".to_owned();
    }
    #[allow(clippy::cast_precision_loss)]
    let left = (total.saturating_sub(done)) as f64 * secs / done as f64;
    format!("{left:.0}s")
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
            "[{secs:>5.0}s] {}/{} done ({rate:.1}/s, ETA {}), {} failed, {} retries, {} throttled\n",
            c.done,
            c.total,
            eta(c.done, c.total, secs, c.polling.len()),
            c.failed,
            c.retries,
            c.throttled
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
            Event::Finished {
                job, target, state, ..
            } => {
                c.polling.remove(&(job, target));
                if state != State::Skipped {
                    c.done += 1;
                }
                c.failed += usize::from(matches!(state, State::Failed | State::Unknown));
            }
            Event::Retrying { .. } => c.retries += 1,
            Event::Throttled { .. } => c.throttled += 1,
            Event::Polled { job, target, .. } => {
                c.polling.insert((job, target));
                return;
            }
            Event::WaveStarted {
                job,
                wave,
                waves,
                actions,
            } => {
                drop(c);
                if waves > 1 {
                    self.write(&format!(
                        "{job}: wave {wave} of {waves} ({actions} action(s))\n"
                    ));
                }
                return;
            }
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
    polling: HashSet<(String, String)>,
    /// When the overall bar's message was last rewritten.
    written: Option<Instant>,
}

/// Progress bars on a terminal.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    live: Mutex<Live>,
    /// Set by `close`: events after it (tasks still ending after a second Ctrl-C) draw nothing,
    /// so no bar comes back once cleared.
    closed: AtomicBool,
}

const OVERALL: &str = "{prefix:.bold} [{bar:30}] {pos}/{len} ETA {eta} {msg}";
const OVERALL_POLLING: &str = "{prefix:.bold} [{bar:30}] {pos}/{len} ETA unknown (polling) {msg}";

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
        overall.set_style(style(OVERALL));
        overall.set_prefix("apply");
        overall.enable_steady_tick(Duration::from_millis(200));
        Self {
            multi,
            overall,
            live: Mutex::new(Live::default()),
            closed: AtomicBool::new(false),
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
        if self.closed.load(Ordering::Acquire) {
            return;
        }
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
            Event::Finished {
                job, state, target, ..
            } => {
                if live.polling.remove(&(job.clone(), target)) && live.polling.is_empty() {
                    self.overall.set_style(style(OVERALL));
                }
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
            Event::Polled {
                job,
                status,
                target,
            } => {
                if let Some(bar) = live.bars.get(&job) {
                    bar.set_message(format!("task {status}"));
                }
                if live.polling.insert((job, target)) && live.polling.len() == 1 {
                    self.overall.set_style(style(OVERALL_POLLING));
                }
            }
            Event::WaveStarted {
                job, wave, waves, ..
            } => {
                if let Some(bar) = live.bars.get(&job)
                    && waves > 1
                {
                    bar.set_message(format!("wave {wave}/{waves}"));
                }
            }
            Event::Sent { .. } => {}
            Event::Stopping => {
                let _ = self.multi.println(
                    "Interrupted: no new requests are sent; waiting for those in flight (Ctrl-C again to quit at once).",
                );
            }
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn eta_is_unknown_while_polling() {
        assert_eq!(eta(1, 3, 2.0, 1), "unknown (1 task(s) polled)");
        assert_eq!(eta(0, 3, 2.0, 0), "unknown");
        assert_eq!(eta(1, 3, 2.0, 0), "4s");
    }

    #[test]
    fn plain_lines_show_waves_and_the_eta() {
        let out = Shared::default();
        let plain = Plain::new(Box::new(out.clone()));
        plain.emit(Event::Started {
            jobs: vec![("vcf".into(), 2)],
        });
        plain.emit(Event::WaveStarted {
            job: "vcf".into(),
            wave: 2,
            waves: 3,
            actions: 1,
        });
        plain.emit(Event::Polled {
            job: "vcf".into(),
            target: "t1".into(),
            status: "IN_PROGRESS".into(),
        });
        plain.emit(Event::Finished {
            job: "vcf".into(),
            target: "t2".into(),
            state: State::Succeeded,
            detail: String::new(),
        });
        // The last line comes when everything ended.
        plain.emit(Event::Finished {
            job: "vcf".into(),
            target: "t1".into(),
            state: State::Succeeded,
            detail: String::new(),
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(text.contains("vcf: wave 2 of 3 (1 action(s))"), "{text}");
        assert!(text.contains("2/2 done"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn bars_draw_nothing_once_closed() {
        let bars = Bars::new();
        bars.emit(Event::Started {
            jobs: vec![("j".into(), 1)],
        });
        bars.close();
        bars.emit(Event::JobStarted { job: "j".into() });
        assert!(bars.live.lock().expect("lock").bars.is_empty());
    }
}
