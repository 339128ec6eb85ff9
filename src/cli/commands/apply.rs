//! `redrive apply FILE|PLAN`: plans (or takes a saved plan, refused when stale, every
//! precondition re-checked), asks for confirmation, runs the plan with the journal on, prints
//! the results in plan order and writes the reports.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};

use super::plan::{Prepared, prepare};
use crate::apply::ActionResult;
use crate::apply::engine::{Engine, JobPolicy, WaitPolicy};
use crate::apply::events::{Event, Silent, Sink};
use crate::apply::journal::{self, Journal, State};
use crate::apply::retry::Policy;
use crate::exit::ExitStatus;
use crate::manifest::model::Manifest;
use crate::manifest::runbook::Runbook;
use crate::plan::items::{Item, What};
use crate::plan::{Decision, Plan, file, observe, text};
use crate::providers::Verdict;
use crate::report::{self, Summary, Tally};
use crate::sandbox::Scenario;
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
    let sandbox = request.sandbox || saved.as_ref().is_some_and(|p| p.sandbox);
    let scenario = match (&request.scenario, sandbox) {
        (Some(path), true) => match Scenario::load(path) {
            Ok(s) => Some(s),
            Err(e) => {
                printer.note(&format!("error: {e}\n"))?;
                return Ok(ExitStatus::Invalid);
            }
        },
        (None, true) => Some(Scenario::builtin()),
        _ => None,
    };
    let state_dir = request
        .state_dir
        .clone()
        .unwrap_or_else(|| rb.dir().join(".redrive"));
    // Held until apply ends: a second apply of the same runbook waits its turn.
    let _lock = match journal::lock(&state_dir, &rb.manifest.name) {
        Ok(lock) => lock,
        Err(e) => {
            printer.note(&format!("error: {e}\n"))?;
            return Ok(ExitStatus::Stale);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(apply(
        request,
        &rb,
        saved,
        scenario.as_ref(),
        &state_dir,
        printer,
    ))
}

/// A saved plan's actions, checked again now: those whose precondition changed are not sent.
async fn recheck(
    plan: &mut Plan,
    clients: &Arc<IndexMap<String, crate::providers::Client>>,
    limiters: &Arc<IndexMap<String, crate::limits::Limiter>>,
) {
    let mut where_ = Vec::new();
    let mut items = Vec::new();
    for (j, job) in plan.jobs.iter().enumerate() {
        let kind = serde_json::from_value(serde_json::Value::String(job.action.clone()));
        for (k, a) in job.actions.iter().enumerate() {
            if a.decision != Decision::Run {
                continue;
            }
            let what = match kind {
                Ok(crate::manifest::model::ActionKind::BulkRetryAutomation) => {
                    serde_json::from_value::<crate::manifest::model::BulkRetryAutomation>(
                        a.params_value(),
                    )
                    .ok()
                    .and_then(|bulk| {
                        let target = Box::new(bulk.targets.first()?.clone());
                        Some(What::Bulk {
                            action: bulk,
                            target,
                        })
                    })
                }
                Ok(kind) => {
                    crate::manifest::model::ActionParams::from_value(kind, a.params_value())
                        .ok()
                        .map(What::Single)
                }
                Err(_) => None,
            };
            if let Some(what) = what {
                where_.push((j, k));
                items.push(Item {
                    job: j,
                    index: a.index,
                    target: a.target.clone(),
                    what: Box::new(what),
                });
            }
        }
    }
    let providers: Vec<String> = plan.jobs.iter().map(|j| j.provider.clone()).collect();
    let reads = observe::check(
        Arc::new(items),
        &providers,
        clients.clone(),
        limiters.clone(),
    )
    .await;
    for ((j, k), read) in where_.into_iter().zip(reads) {
        let decision = match read {
            Some(Ok(seen)) => match seen.verdict {
                Verdict::Run => continue,
                Verdict::Converged(why) => Decision::Skip(format!("changed since the plan: {why}")),
                Verdict::Blocked(why) => {
                    Decision::Blocked(format!("changed since the plan: {why}"))
                }
            },
            Some(Err(e)) => Decision::Blocked(format!("cannot re-check the precondition: {e}")),
            None => continue,
        };
        plan.jobs[j].actions[k].decision = decision;
    }
    plan.recount();
}

/// Marks actions that failed or ended unknown in an earlier apply (`~` in the diff).
fn mark_previous(plan: &mut Plan, journal_path: &Path) {
    let Ok(records) = journal::replay(journal_path) else {
        return;
    };
    let last = journal::last_states(&records);
    for a in plan.jobs.iter_mut().flat_map(|j| j.actions.iter_mut()) {
        if let Some(r) = last.get(&a.id) {
            a.previous = match r.state {
                State::Failed => Some(format!("failed in an earlier apply: {}", r.detail)),
                // A journal that ends at "sent" was interrupted before the answer.
                State::Unknown | State::Sent => Some(
                    format!("outcome unknown in an earlier apply {}", r.detail)
                        .trim()
                        .to_owned(),
                ),
                _ => None,
            };
        }
    }
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
    rb: &Runbook,
    saved: Option<Plan>,
    scenario: Option<&Scenario>,
    state_dir: &Path,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let targets = if saved.is_some() {
        &[][..]
    } else {
        &request.targets[..]
    };
    let refresh = saved.is_none() && request.refresh;
    let Some(prepared) = prepare(rb, targets, refresh, scenario, printer).await? else {
        return Ok(ExitStatus::Invalid);
    };
    let Prepared {
        plan: fresh,
        clients,
        limiters,
        running,
    } = prepared;
    let mut plan = match saved {
        Some(mut plan) => {
            recheck(&mut plan, &clients, &limiters).await;
            plan
        }
        None => fresh,
    };
    let journal_path = journal::path_for(state_dir, &rb.manifest.name);
    mark_previous(&mut plan, &journal_path);
    let color = printer.color();
    text::render_to(&plan, color, &mut |chunk| printer.data(chunk))?;
    if !plan.has_changes() {
        printer.note("Nothing to send: every action is converged or blocked.\n")?;
        if let Some(r) = running {
            r.stop().await;
        }
        return Ok(ExitStatus::Success);
    }
    if !request.auto_approve {
        if !std::io::stdin().is_terminal() {
            printer.note("error: refusing to apply without confirmation: standard input is not a terminal\nhint: review the plan above and pass --auto-approve, or apply a reviewed saved plan with --auto-approve\n")?;
            return Ok(ExitStatus::Invalid);
        }
        if !confirm(plan.summary.run, printer)? {
            printer.note("Apply cancelled; nothing was sent.\n")?;
            return Ok(ExitStatus::Failure);
        }
    }
    // The previews were for review; sending needs only the parameters. Dropping them now keeps
    // a 100,000-action run from holding every request body twice over.
    let none = crate::providers::RequestPreview::default();
    for a in plan.jobs.iter_mut().flat_map(|j| j.actions.iter_mut()) {
        a.request = none.clone();
        a.observed = None;
    }
    let journal = Journal::open(&journal_path)?;
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
        policies: policies(&rb.manifest),
    });
    let interrupts = tokio::spawn({
        let sink = sink.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
                sink.emit(Event::Stopping);
                if tokio::signal::ctrl_c().await.is_ok() {
                    // The journal ends at "sent" for what was in flight: read back as unknown.
                    let mut err = std::io::stderr();
                    let _ = writeln!(
                        err,
                        "Interrupted again: quitting now; requests in flight are recorded as unknown."
                    );
                    std::process::exit(130);
                }
            }
        }
    });
    let started_at = jiff::Timestamp::now().to_string();
    let clock = Instant::now();
    let interrupted_flag = engine.stop.clone();
    let (runbook_path, name) = (plan.runbook.path.clone(), plan.name.clone());
    let ran = match engine.clone().run(plan).await {
        Ok(ran) => ran,
        Err(e) => {
            sink.close();
            printer.note(&format!(
                "error: the journal cannot be written, so nothing was sent: {e}\n"
            ))?;
            return Ok(ExitStatus::Failure);
        }
    };
    let results = ran.results;
    sink.close();
    interrupts.abort();
    let interrupted = *interrupted_flag.borrow();
    if let Some(r) = running {
        r.stop().await;
    }
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
            journal_path.display()
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
