//! Progress of planning's read-only checks, which can take a while for thousands of items.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::progress::dumb_terminal;

/// How far planning's read-only checks got: a bar on a terminal, a plain line every couple of
/// seconds otherwise (a plan of 3,000 items reads for a while), nothing with `--quiet`.
pub struct Reads {
    bar: Option<ProgressBar>,
    plain: bool,
    last: Mutex<Option<Instant>>,
}

/// How often a plain line about the reads is written.
const READS_EVERY: Duration = Duration::from_secs(2);

impl Reads {
    #[must_use]
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !dumb_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("Reading the providers' state {bar:30} {pos}/{len}")
                    .expect("a valid template"),
            );
            bar
        });
        Self {
            bar,
            plain: !quiet && !terminal,
            last: Mutex::new(None),
        }
    }
}

impl crate::plan::observe::Progress for Reads {
    fn read(&self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            return;
        }
        if !self.plain {
            return;
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        // The first line waits a full interval: a quick plan says nothing.
        let since = *last.get_or_insert(now);
        if now - since >= READS_EVERY {
            *last = Some(now);
            let _ = writeln!(
                std::io::stderr(),
                "Reading the providers' state: {done}/{total}"
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn landing(&self, wait: Duration, requests: usize) {
        if self.bar.is_none() && !self.plain {
            return;
        }
        let line = format!(
            "Waiting {:.0}s before reading the providers' state: an earlier run was stopped with {requests} non-idempotent request(s) on their way, which may still land (read now, they would look as if they never arrived, and be sent again)",
            wait.as_secs_f64().ceil()
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}
