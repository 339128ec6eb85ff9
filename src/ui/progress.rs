//! Progress of an apply, drawn from the engine's events: plain lines every few seconds when
//! stderr is not a terminal, nothing with `--quiet`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::apply::State;
use crate::apply::events::{Event, Sink};

/// How often a plain progress line is written.
const EVERY: Duration = Duration::from_secs(5);

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
