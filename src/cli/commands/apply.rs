//! `redrive apply FILE|PLAN`: plans (or takes a saved plan, refused when stale or when it is not
//! exactly what the runbook renders now), asks for confirmation, runs the plan with the journal
//! on, prints the results in plan order and writes the reports.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::{Semaphore, watch};

use crate::apply::ActionResult;
use crate::apply::engine::{Engine, JobPolicy, WaitPolicy};
use crate::apply::events::{Event, Silent, Sink};
use crate::apply::retry::Policy;
use crate::exit::ExitStatus;
use crate::manifest::model::Manifest;
use crate::manifest::runbook::Runbook;
use crate::plan::prepare::{self, Options, Prepared};
use crate::plan::{Plan, file, text};
use crate::report::{self, Summary, Tally};
use crate::state::{History, LocalStore, State, Store as _};
use crate::ui::printer::Printer;
use crate::ui::progress::{Bars, Plain};

/// Everything `redrive apply` was asked.
pub type Request = crate::cli::args::ApplyArgs;

fn is_saved_plan(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

pub fn run(request: &Request, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let saved = if is_saved_plan(&request.file) {
        let plan = match file::load(&request.file) {
            Ok(p) => p,
            Err(e) => {
                printer.note(&format!("error: {e:#}\n"))?;
                return Ok(ExitStatus::Invalid);
            }
        };
        let stale = file::stale_files(&plan);
        if !stale.is_empty() {
            printer.note(&format!(
                "error: the plan {} is stale: {} since it was made\nhint: plan again (`redrive plan {} --out {}`) and review the new plan\n",
                request.file.display(),
                stale.join(", "),
                plan.runbook.path,
                request.file.display()
            ))?;
            return Ok(ExitStatus::Stale);
        }
        Some(plan)
    } else {
        None
    };
    let runbook_path = saved
        .as_ref()
        .map_or_else(|| request.file.clone(), |p| PathBuf::from(&p.runbook.path));
    let Some(rb) = super::load_runbook(&runbook_path, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    let targets = saved.as_ref().map_or(&request.targets, |p| &p.targets);
    if let Some(status) = super::check_targets(&rb, targets, printer)? {
        return Ok(status);
    }
    let sandbox = request.sandbox || saved.as_ref().is_some_and(|p| p.sandbox);
    let scenario = if sandbox {
        match crate::cli::rehearsal::scenario(request.scenario.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => {
                printer.note(&format!("error: {e}\n"))?;
                return Ok(ExitStatus::Invalid);
            }
        }
    } else {
        None
    };
    let store = super::store(&rb, request.state_dir.as_deref(), sandbox);
    // Held until apply ends: a second apply of the same runbook waits its turn.
    let _lock = store.lock()?;
    // And a copy of the runbook elsewhere, with a journal of its own, waits too.
    let _identity = identity_lock(&rb, &store, sandbox)?;
    if let Some(s) = &scenario
        && let Some(note) = crate::cli::rehearsal::fresh_start(
            store.dir(),
            &rb.manifest.name,
            s,
            request.sandbox_reset,
        )?
    {
        printer.note(&note)?;
    }
    let history = store.history()?;
    super::warn_damaged(&history, &store, printer)?;
    let runtime = super::runtime()?;
    let setup = Setup {
        rb: &rb,
        saved,
        scenario: scenario.as_ref(),
        store: &store,
        history: &history,
    };
    runtime.block_on(apply(request, setup, printer))
}

/// Takes the lock of the runbook's identity (`state::identity`): its name and its providers'
/// rendered base URLs, or for a rehearsal its name and state directory.
fn identity_lock(
    rb: &Runbook,
    store: &LocalStore,
    sandbox: bool,
) -> Result<Box<dyn crate::state::Lock>, crate::state::StateError> {
    use crate::state::identity::{self, Identity};
    let name = &rb.manifest.name;
    let id = if sandbox {
        Identity::rehearsal(name, store.dir())
    } else {
        let cx = rb.context();
        let endpoints: Vec<String> = rb
            .manifest
            .providers
            .values()
            .map(|p| {
                let url = p.url.as_deref().map_or_else(
                    || "(default)".to_owned(),
                    |u| cx.render_text(u).unwrap_or_else(|_| u.to_owned()),
                );
                format!("{} {url}", p.kind.name())
            })
            .collect();
        Identity::of(name, &endpoints)
    };
    let holder = format!(
        "process {}, runbook {}, state {}, since {}",
        std::process::id(),
        std::fs::canonicalize(rb.path())
            .unwrap_or_else(|_| rb.path().to_owned())
            .display(),
        store.location(),
        jiff::Timestamp::now()
    );
    identity::lock(&id, &holder)
}

/// What `run` found out before the async part.
struct Setup<'a> {
    rb: &'a Runbook,
    saved: Option<Plan>,
    scenario: Option<&'a crate::sandbox::Scenario>,
    store: &'a LocalStore,
    history: &'a History,
}

fn policies(manifest: &Manifest) -> HashMap<String, JobPolicy> {
    let defaults = &manifest.defaults;
    manifest
        .jobs
        .iter()
        .map(|job| {
            let wait = job.wait.as_ref().or(defaults.wait.as_ref());
            let base = WaitPolicy::default();
            let policy = JobPolicy {
                retry: Policy::resolve(job.retry.as_ref(), defaults.retry.as_ref()),
                wait: WaitPolicy {
                    enabled: wait.is_none_or(|w| w.enabled),
                    interval: wait.and_then(|w| w.interval).map_or(base.interval, |d| d.0),
                    timeout: wait.and_then(|w| w.timeout).map_or(base.timeout, |d| d.0),
                },
                rollout: job.rollout.clone(),
            };
            (job.id.clone(), policy)
        })
        .collect()
}

fn confirm(count: usize, printer: &mut Printer) -> anyhow::Result<bool> {
    printer.note(&format!(
        "\nDo you want to send these {count} request(s)?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    ))?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

async fn apply(
    request: &Request,
    setup: Setup<'_>,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let world = crate::cli::rehearsal::world_path(setup.store.dir());
    let rehearsal = match setup.scenario {
        Some(s) => Some(crate::cli::rehearsal::start(setup.rb, s, &world).await?),
        None => None,
    };
    let endpoints = rehearsal.as_ref().map(|(_, e)| e);
    let status = match reviewed(request, &setup, endpoints, printer).await {
        Ok(Ok(prepared)) => send(request, &setup, prepared, printer).await,
        Ok(Err(status)) => Ok(status),
        Err(e) => Err(e),
    };
    // Stopped whatever happened: its world is saved for the next rehearsal.
    if let Some((running, _)) = rehearsal
        && let Some(warning) = crate::cli::rehearsal::stop(running).await
    {
        printer.note(&warning)?;
    }
    status
}

/// The plan to send, made, checked against the saved plan, printed and confirmed; or the exit
/// status when there is nothing to send or no approval.
async fn reviewed(
    request: &Request,
    setup: &Setup<'_>,
    endpoints: Option<&crate::providers::SandboxEndpoints>,
    printer: &mut Printer,
) -> anyhow::Result<Result<Prepared, ExitStatus>> {
    let saved = setup.saved.as_ref();
    let approved: Option<HashSet<String>> = saved.map(|p| {
        p.jobs
            .iter()
            .flat_map(|j| &j.actions)
            .filter(|a| a.decision == crate::plan::Decision::Run)
            .map(|a| a.id.clone())
            .collect()
    });
    let prepared = prepare::prepare(
        setup.rb,
        Options {
            targets: saved.map_or(&request.targets, |p| &p.targets),
            refresh: request.refresh,
            sandbox: endpoints,
            history: setup.history,
            replace: &request.replace,
            tokens: setup.store.tokens(),
            approved: approved.as_ref(),
        },
    )
    .await?;
    if let Some(saved) = saved {
        let differences = crate::plan::compare::differences(saved, &prepared.plan);
        if !differences.is_empty() {
            printer.note(&crate::plan::compare::refusal(&request.file, &differences))?;
            return Ok(Err(ExitStatus::Stale));
        }
    }
    let color = printer.color();
    text::render_to(&prepared.plan, color, &mut |chunk| printer.data(chunk))?;
    if !prepared.plan.has_changes() {
        printer.note("Nothing to send: every action is done, converged or blocked.\n")?;
        return Ok(Err(ExitStatus::Success));
    }
    if !request.auto_approve {
        if !std::io::stdin().is_terminal() {
            printer.note("error: refusing to apply without confirmation: standard input is not a terminal\nhint: review the plan above and pass --auto-approve, or apply a reviewed saved plan with --auto-approve\n")?;
            return Ok(Err(ExitStatus::Invalid));
        }
        if !confirm(prepared.plan.summary.run, printer)? {
            printer.note("Apply cancelled; nothing was sent.\n")?;
            return Ok(Err(ExitStatus::Failure));
        }
    }
    Ok(Ok(prepared))
}

/// Sends the plan with the journal on, until it ends or a second interrupt; then the results
/// and reports.
async fn send(
    request: &Request,
    setup: &Setup<'_>,
    prepared: Prepared,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Prepared {
        plan,
        clients,
        limiters,
    } = prepared;
    let plan = plan.without_previews();
    let journal = setup.store.journal()?;
    let run_id = format!("{}", jiff::Timestamp::now().as_millisecond());
    let (stop_tx, stop) = watch::channel(false);
    let sink: Arc<dyn Sink> = if request.quiet {
        Arc::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Plain::new(Box::new(std::io::stderr())))
    };
    let engine = Arc::new(Engine {
        clients,
        limiters,
        global: Arc::new(Semaphore::new(request.parallelism.max(1))),
        journal: journal.clone(),
        run_id: run_id.clone(),
        sink: sink.clone(),
        stop,
        policies: policies(&setup.rb.manifest),
    });
    let started_at = jiff::Timestamp::now().to_string();
    let clock = Instant::now();
    let (runbook_path, name) = (plan.runbook.path.clone(), plan.name.clone());
    let ran = tokio::select! {
        ran = engine.clone().run(plan) => ran,
        () = interrupts(&stop_tx, &sink) => {
            // The second interrupt: what was in flight stays at "sent" in the journal and is
            // reconciled by the next plan.
            let _ = journal.barrier().await;
            sink.close();
            printer.note("Interrupted again: quit at once; requests in flight are recorded as sent without an answer, and the next plan reconciles them.\n")?;
            return Ok(ExitStatus::Interrupted);
        }
    };
    sink.close();
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            printer.note(&format!(
                "error: the journal cannot be written, so nothing was sent: {e}\n"
            ))?;
            return Ok(ExitStatus::Failure);
        }
    };
    let results = ran.results;
    let interrupted = *stop_tx.borrow();
    let summary = Summary {
        runbook: &runbook_path,
        name: &name,
        run: &run_id,
        started_at: &started_at,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
        tally: Tally::of(&results),
        results: &results,
    };
    let color = printer.color();
    print_results(&results, &summary, color, &mut |chunk| printer.data(chunk))?;
    write_reports(request, &summary)?;
    if let Some(e) = ran.journal_error {
        printer.note(&format!(
            "error: the journal {} failed during the run ({e}): actions after the failure were not sent, and it may lack some of the results above\nhint: free the disk or fix the state directory, then apply again: the next plan reads every target's state before anything is resent\n",
            journal.path().display()
        ))?;
        return Ok(ExitStatus::Failure);
    }
    Ok(if interrupted {
        ExitStatus::Interrupted
    } else if results.iter().any(ActionResult::is_failure) {
        ExitStatus::ActionsFailed
    } else {
        ExitStatus::Success
    })
}

/// Resolves at the second interrupt (Ctrl-C or SIGTERM); the first stops new sends. CI runners
/// and Kubernetes stop jobs with SIGTERM, so it counts as an interrupt too.
async fn interrupts(stop: &watch::Sender<bool>, sink: &Arc<dyn Sink>) {
    let mut signals = Signals::new();
    if signals.next().await {
        let _ = stop.send(true);
        sink.emit(Event::Stopping);
        if signals.next().await {
            return;
        }
    }
    // No signal handling: never resolve.
    std::future::pending::<()>().await;
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// `false` when signals cannot be received.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            };
        }
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// Results in plan order, then failures with their job's runbook line, then the tally; written
/// in chunks so that 100,000 results are not held as one string.
fn print_results(
    results: &[ActionResult],
    summary: &Summary<'_>,
    color: bool,
    sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from("\nResults:\n");
    let mut job = "";
    for r in results {
        if &*r.job != job {
            job = &r.job;
            let _ = writeln!(out, "{}", paint("\x1b[1m", job));
        }
        let (mark, code) = match r.state {
            State::Succeeded => ("✓", "\x1b[32m"),
            State::Converged => ("=", "\x1b[2m"),
            State::Skipped => ("-", "\x1b[2m"),
            State::Failed => ("✗", "\x1b[31m"),
            _ => ("?", "\x1b[33m"),
        };
        let _ = writeln!(out, "  {} {}  {}", paint(code, mark), r.target, r.detail);
        if out.len() >= 64 * 1024 {
            sink(&out)?;
            out.clear();
        }
    }
    let failures: Vec<&ActionResult> = results.iter().filter(|r| r.is_failure()).collect();
    if !failures.is_empty() {
        out.push_str("\nFailures:\n");
        for r in failures {
            let _ = writeln!(
                out,
                "  {}: {} {}: {:?}: {}",
                r.defined_at, r.job, r.target, r.state, r.detail
            );
        }
    }
    let _ = writeln!(out, "\n{}", paint("\x1b[1m", &summary.tally.sentence()));
    sink(&out)
}

fn write_reports(request: &Request, summary: &Summary<'_>) -> anyhow::Result<()> {
    type Render = fn(&Summary<'_>) -> String;
    let reports: [(&Option<PathBuf>, Render); 3] = [
        (&request.report_json, report::json::render),
        (&request.report_junit, report::junit::render),
        (&request.report_markdown, report::markdown::render),
    ];
    for (path, render) in reports {
        if let Some(path) = path {
            // $GITHUB_STEP_SUMMARY is appended to, as GitHub expects; other reports are replaced.
            let append =
                std::env::var_os("GITHUB_STEP_SUMMARY").is_some_and(|s| Path::new(&s) == path);
            let mut options = std::fs::OpenOptions::new();
            options.create(true);
            if append {
                options.append(true);
            } else {
                options.write(true).truncate(true);
            }
            let mut f = options
                .open(path)
                .with_context(|| format!("cannot write the report {}", path.display()))?;
            f.write_all(render(summary).as_bytes())
                .with_context(|| format!("cannot write the report {}", path.display()))?;
        }
    }
    Ok(())
}
