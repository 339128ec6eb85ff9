//! `redrive apply FILE|PLAN`: plans (or takes a saved plan, refused when stale or when it is not
//! exactly what the runbook renders now), asks for confirmation, runs the plan with the journal
//! on, prints the results in plan order and writes the reports.

mod coop;
mod identity;
mod reports;
mod signals;

use reports::{open_reports, render_report};
pub(crate) use reports::{throttled, throttled_line};

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, watch};

use crate::apply::ActionResult;
use crate::apply::engine::{Engine, JobPolicy, WaitPolicy};
use crate::apply::events::{Silent, Sink, Tee};
use crate::apply::retry::Policy;
use crate::cli::args::ApplyFormat;
use crate::exit::ExitStatus;
use crate::manifest::model::Manifest;
use crate::manifest::runbook::Runbook;
use crate::plan::prepare::{self, Options, Prepared};
use crate::plan::{Plan, file};
use crate::report::events::{Body, JsonLines};
use crate::report::html::Recorder;
use crate::report::outputs::{Kind, Outputs};
use crate::report::{Summary, Tally};
use crate::state::History;
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
    let Some(mut rb) = super::load_runbook(&runbook_path, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    // A saved plan carries the vars it was rendered with; others come from the command line.
    let vars = match &saved {
        Some(_) if !request.vars.is_empty() || !request.var_files.is_empty() => {
            printer.note("error: a saved plan carries the vars it was made with; `--var` and `--var-file` go to `redrive plan`\n\nhelp: plan again with the vars, review the plan, and apply that\n")?;
            return Ok(ExitStatus::Invalid);
        }
        Some(plan) => plan.vars.clone(),
        None => match super::command_line_vars(&request.var_files, &request.vars) {
            Ok(vars) => vars,
            Err(e) => {
                printer.note(&format!("error: {e}\n"))?;
                return Ok(ExitStatus::Invalid);
            }
        },
    };
    rb.manifest.vars.extend(vars.clone());
    let targets = saved.as_ref().map_or(&request.targets, |p| &p.targets);
    if let Some(status) = super::check_targets(&rb, targets, printer)? {
        return Ok(status);
    }
    let sandbox = request.sandbox || saved.as_ref().is_some_and(|p| p.sandbox);
    let scenario = match super::scenario(sandbox, request.scenario.as_deref(), printer)? {
        Ok(s) => s,
        Err(status) => return Ok(status),
    };
    let store = super::state::choose(
        &rb,
        super::state::Where {
            dir: request.state_dir.as_deref(),
            shared: request.state.as_deref(),
        },
        sandbox,
        printer,
    )?;
    // A saved plan with the shared state is a cooperative run: runners of that plan join it,
    // anything else is refused while it lasts (exit 5).
    let (_lock, run) = match (&store, &saved) {
        (super::state::Chosen::Shared(shared), Some(_)) => {
            let (lock, run) = coop::join(shared, coop::digest(&request.file)?)?;
            if let Some(note) = &run.joined.recovered {
                printer.note(note)?;
            }
            (lock, Some(run))
        }
        // Held until apply ends: a second apply of the same runbook waits its turn.
        _ => (store.store().lock()?, None),
    };
    // A shared lock left by a runner that died was taken over: say whose.
    if let super::state::Chosen::Shared(shared) = &store
        && let Some(note) = shared.take_recovered()
    {
        printer.note(&note)?;
    }
    // And a copy of the runbook elsewhere, with a journal of its own, waits too; cooperating
    // runners on one machine share the shared state's lock instead.
    let _identity = match run {
        Some(_) => None,
        None => Some(identity::lock(&rb, &store, sandbox)?),
    };
    let history = match (&store, &run) {
        (super::state::Chosen::Shared(shared), Some(run)) => {
            shared.history_before(&run.joined.run)?
        }
        _ => super::history(
            &rb,
            &store,
            scenario.as_ref(),
            request.sandbox_reset,
            true,
            printer,
        )?,
    };
    let runtime = super::runtime()?;
    let setup = Setup {
        rb: &rb,
        vars: &vars,
        saved,
        scenario: scenario.as_ref(),
        store: &store,
        history: &history,
        run,
    };
    runtime.block_on(apply(request, setup, printer))
}

/// What `run` found out before the async part.
struct Setup<'a> {
    rb: &'a Runbook,
    /// Vars set on the command line or carried by the saved plan (already in `rb`).
    vars: &'a indexmap::IndexMap<String, serde_json::Value>,
    saved: Option<Plan>,
    scenario: Option<&'a crate::sandbox::Scenario>,
    store: &'a super::state::Chosen,
    history: &'a History,
    /// A cooperative run joined (a saved plan with the shared state).
    run: Option<coop::Run>,
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
    // Every report path is opened before anything is sent: one that cannot be written fails now.
    let mut outputs = match open_reports(request) {
        Ok(outputs) => outputs,
        Err(e) => {
            printer.note(&format!(
                "error: {e}\nhint: nothing was planned or sent; fix the path or leave the report out\n"
            ))?;
            return Ok(ExitStatus::Failure);
        }
    };
    let rehearsal = match (setup.scenario, setup.store.dir()) {
        (Some(s), Some(dir)) => {
            let world = crate::cli::rehearsal::world_path(dir);
            Some(crate::cli::rehearsal::start(setup.rb, s, &world).await?)
        }
        _ => None,
    };
    let endpoints = rehearsal.as_ref().map(|(_, e)| e);
    // `--format json`: events on stdout instead of the plan and the results.
    let json = (request.format == ApplyFormat::Json)
        .then(|| Arc::new(JsonLines::new(Box::new(std::io::stdout()))));
    let status = match reviewed(request, &setup, endpoints, json.as_ref(), printer).await {
        Ok(Ok(prepared)) => send(request, &setup, prepared, &mut outputs, json, printer).await,
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

/// The plan to send, made, checked against the saved plan, shown and confirmed; or the exit
/// status when there is nothing to send or no approval.
async fn reviewed(
    request: &Request,
    setup: &Setup<'_>,
    endpoints: Option<&crate::providers::SandboxEndpoints>,
    json: Option<&Arc<JsonLines>>,
    printer: &mut Printer,
) -> anyhow::Result<Result<Prepared, ExitStatus>> {
    let saved = setup.saved.as_ref();
    let approved: Option<HashSet<crate::plan::ActionId>> = saved.map(|p| {
        p.jobs
            .iter()
            .flat_map(|j| &j.actions)
            .filter(|a| a.decision == crate::plan::Decision::Run)
            .map(|a| a.id)
            .collect()
    });
    // A cooperative runner's reads count in the windows the other runners send in.
    let share = |limiters: &prepare::Limiters| {
        if let (Some(run), super::state::Chosen::Shared(shared)) = (&setup.run, setup.store) {
            coop::share_windows(setup.rb, shared, run, limiters);
        }
    };
    let prepared = prepare::prepare(
        setup.rb,
        Options {
            targets: saved.map_or(&request.targets, |p| &p.targets),
            refresh: request.refresh,
            bulk_reads: !request.no_bulk_reads,
            sandbox: endpoints,
            history: setup.history,
            replace: &request.replace,
            tokens: setup.store.store().tokens(),
            approved: approved.as_ref(),
            vars: setup.vars,
            progress: Some(&crate::ui::reads::Reads::new(request.quiet)),
            // A cooperative runner's takeover waits for what another runner left on its way.
            await_landing: setup.run.is_none(),
            sink: None,
            limits: Some(&share),
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
    let plan = &prepared.plan;
    match json {
        Some(json) => json.write(Body::plan(plan)),
        None => {
            let color = printer.color();
            crate::ui::diff::render_to(plan, color, &mut |chunk| printer.data(chunk))?;
        }
    }
    // A cooperative runner that finds nothing left still waits for the others' results.
    if !plan.has_changes() && setup.run.is_none() {
        printer.note("Nothing to send: every action is done, converged or blocked.\n")?;
        if let Some(json) = json {
            json.write(Body::Summary {
                exit_code: ExitStatus::Success.code(),
                duration_ms: 0,
                interrupted: false,
                counts: Tally::default().into(),
            });
        }
        return Ok(Err(ExitStatus::Success));
    }
    if !request.auto_approve {
        if !std::io::stdin().is_terminal() {
            printer.note("error: refusing to apply without confirmation: standard input is not a terminal\nhint: review the plan above and pass --auto-approve, or apply a reviewed saved plan with --auto-approve\n")?;
            return Ok(Err(ExitStatus::Invalid));
        }
        if !confirm(plan.summary.run, printer)? {
            printer.note("Apply cancelled; nothing was sent.\n")?;
            return Ok(Err(ExitStatus::Failure));
        }
    }
    Ok(Ok(prepared))
}

/// Where the engine's events go: progress for people, a recording for the HTML report, JSON
/// lines for machines.
fn sinks(
    request: &Request,
    plan: &Plan,
    outputs: &Outputs,
    json: Option<&Arc<JsonLines>>,
) -> (Arc<dyn Sink>, Option<Arc<Recorder>>) {
    let progress: Arc<dyn Sink> = if request.quiet {
        Arc::new(Silent)
    } else if std::io::stderr().is_terminal() && !crate::ui::progress::dumb_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Plain::new(Box::new(std::io::stderr())))
    };
    let mut all = vec![progress];
    let recorder = outputs.wants(Kind::Html).then(|| {
        Arc::new(Recorder::new(
            plan.jobs
                .iter()
                .map(|j| (j.id.clone(), j.provider.clone()))
                .collect(),
        ))
    });
    if let Some(recorder) = &recorder {
        all.push(recorder.clone());
    }
    if let Some(json) = json {
        all.push(json.clone());
    }
    (Arc::new(Tee(all)), recorder)
}

/// Sends the plan with the journal on, until it ends or a second interrupt; then the results
/// and reports.
async fn send(
    request: &Request,
    setup: &Setup<'_>,
    prepared: Prepared,
    outputs: &mut Outputs,
    json: Option<Arc<JsonLines>>,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Prepared {
        plan,
        clients,
        limiters,
    } = prepared;
    let (plan, share, run_id) = match (&setup.run, setup.store, &setup.saved) {
        (Some(run), super::state::Chosen::Shared(shared), Some(saved)) => {
            let (plan, coop) = coop::cooperation(setup.rb, shared, run, saved, &plan).await?;
            (plan, Some(Arc::new(coop)), run.joined.run.clone())
        }
        _ => (
            plan.without_previews(),
            None,
            format!("{}", jiff::Timestamp::now().as_millisecond()),
        ),
    };
    let journal = setup.store.store().journal()?;
    let (stop_tx, stop) = watch::channel(false);
    let (sink, recorder) = sinks(request, &plan, outputs, json.as_ref());
    let engine = Arc::new(Engine {
        clients,
        limiters,
        global: Arc::new(Semaphore::new(request.parallelism.max(1))),
        journal: journal.clone(),
        run_id: run_id.clone(),
        sink: sink.clone(),
        stop,
        policies: policies(&setup.rb.manifest),
        share,
    });
    let started_at = jiff::Timestamp::now().to_string();
    let clock = Instant::now();
    let (runbook_path, name) = (plan.runbook.path.clone(), plan.name.clone());
    let ran = tokio::select! {
        ran = engine.clone().run(plan) => ran,
        () = signals::interrupts(&stop_tx, &sink) => {
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
    let throttled = throttled(&engine.limiters);
    let summary = Summary {
        runbook: &runbook_path,
        name: &name,
        run: &run_id,
        started_at: &started_at,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
        tally: Tally::of(&results),
        results: &results,
        throttled: &throttled,
    };
    if let Some(line) = throttled_line(&throttled) {
        printer.note(&line)?;
    }
    if json.is_none() {
        let color = printer.color();
        crate::ui::results::print_results(
            &results,
            &summary,
            color,
            request.quiet,
            &mut |chunk| printer.data(chunk),
        )?;
    }
    let recording = recorder.map(|r| r.take());
    outputs.write(&|kind| render_report(kind, &summary, recording.as_ref()))?;
    let status = if ran.journal_error.is_some() {
        ExitStatus::Failure
    } else if interrupted {
        ExitStatus::Interrupted
    } else if results.iter().any(ActionResult::is_failure) {
        ExitStatus::ActionsFailed
    } else {
        ExitStatus::Success
    };
    if let Some(json) = &json {
        json.write(Body::summary(&summary, status.code()));
    }
    if let Some(e) = ran.journal_error {
        printer.note(&format!(
            "error: the journal {} failed during the run ({e}): actions after the failure were not sent, and it may lack some of the results above\nhint: free the disk or fix the state directory, then apply again: the next plan reads every target's state before anything is resent\n",
            journal.path().display()
        ))?;
    }
    Ok(status)
}
