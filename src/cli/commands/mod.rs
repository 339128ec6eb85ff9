//! One file per subcommand.
pub mod apply;
pub mod completions;
pub mod man;
pub mod plan;
pub mod render;
pub mod sandbox;
pub mod schema;
pub mod state;
pub mod status;
pub mod validate;

use std::path::Path;

use anyhow::Context as _;

use crate::exit::ExitStatus;
use crate::manifest::diagnostic::Diagnostics;
use crate::manifest::runbook::{self, Runbook};
use crate::state::History;
use crate::state::journal::compact::Compaction;
use crate::ui::diagnostic::render as render_diagnostic;
use crate::ui::printer::Printer;

/// Prints every diagnostic on stderr.
pub(crate) fn report(problems: &Diagnostics, printer: &mut Printer) -> std::io::Result<()> {
    for d in &problems.0 {
        printer.note(&render_diagnostic(d, printer.color()))?;
    }
    Ok(())
}

/// Loads a runbook, or prints why it cannot be used (`None`: exit 3).
pub(crate) fn load_runbook(path: &Path, printer: &mut Printer) -> std::io::Result<Option<Runbook>> {
    match runbook::load(path) {
        Ok(rb) => Ok(Some(rb)),
        Err(problems) => {
            report(&problems, printer)?;
            Ok(None)
        }
    }
}

/// Checks `--target` names against the runbook's jobs; `Some(Invalid)` after saying which is
/// wrong and what was meant.
pub(crate) fn check_targets(
    rb: &Runbook,
    targets: &[String],
    printer: &mut Printer,
) -> std::io::Result<Option<ExitStatus>> {
    for t in targets {
        if !rb.manifest.jobs.iter().any(|j| &j.id == t) {
            let ids: Vec<&str> = rb.manifest.jobs.iter().map(|j| j.id.as_str()).collect();
            let hint = crate::suggest::did_you_mean(t, ids.iter().copied()).map_or_else(
                || format!("jobs: {}", ids.join(", ")),
                |s| format!("did you mean `{s}`?"),
            );
            printer.note(&format!(
                "error: `--target {t}` is not a job in {}\n\nhelp: {hint}\n",
                rb.path().display()
            ))?;
            return Ok(Some(ExitStatus::Invalid));
        }
    }
    Ok(None)
}

/// The rehearsal's scenario (`--scenario`, or the built-in one) when rehearsing; `Err(Invalid)`
/// after saying why it cannot be loaded.
pub(crate) fn scenario(
    sandbox: bool,
    path: Option<&Path>,
    printer: &mut Printer,
) -> std::io::Result<Result<Option<crate::sandbox::Scenario>, ExitStatus>> {
    if !sandbox {
        return Ok(Ok(None));
    }
    match crate::cli::rehearsal::scenario(path) {
        Ok(s) => Ok(Ok(Some(s))),
        Err(e) => {
            printer.note(&format!("error: {e}\n"))?;
            Ok(Err(ExitStatus::Invalid))
        }
    }
}

/// The runbook's history, after a rehearsal that starts over (`--sandbox-reset`, or another
/// scenario) has dropped its old world and journal; damaged journal lines are reported. An
/// apply (`for_apply`, holding the lock) lets the store compact its journal first.
pub(crate) fn history(
    rb: &Runbook,
    store: &state::Chosen,
    scenario: Option<&crate::sandbox::Scenario>,
    reset: bool,
    for_apply: bool,
    printer: &mut Printer,
) -> anyhow::Result<History> {
    if let Some(s) = scenario
        && let Some(dir) = store.dir()
        && let Some(note) = crate::cli::rehearsal::fresh_start(dir, &rb.manifest.name, s, reset)?
    {
        printer.note(&note)?;
    }
    let history = if for_apply {
        let (history, compaction) = store.store().history_for_apply()?;
        match compaction {
            Compaction::Kept => {}
            Compaction::Done(c) => printer.note(&format!(
                "note: compacted the journal {}: kept the {} line(s) its history reads, of {}\n",
                store.journal(),
                c.after,
                c.before
            ))?,
            Compaction::Failed(e) => printer.note(&format!(
                "warning: could not compact the journal {} ({e}); it stays as it was\n",
                store.journal()
            ))?,
        }
        history
    } else {
        store.store().history()?
    };
    warn_damaged(&history, store, printer)?;
    Ok(history)
}

/// Says how many journal lines (or rows) were damaged and skipped.
pub(crate) fn warn_damaged(
    history: &History,
    store: &state::Chosen,
    printer: &mut Printer,
) -> std::io::Result<()> {
    if history.damaged.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = history
        .damaged
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect();
    let (what, unit) = match store {
        state::Chosen::Local(_) => ("damaged line(s)", "line"),
        state::Chosen::Shared(_) => ("row(s) in a state this redrive does not know", "seq"),
    };
    printer.note(&format!(
        "warning: {} {what} in the journal {} were skipped ({unit} {}{})\n",
        history.damaged.len(),
        store.journal(),
        shown.join(", "),
        if history.damaged.len() > 5 {
            ", …"
        } else {
            ""
        }
    ))
}

/// The async runtime of plan and apply.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The vars of `--var-file FILE…` then `--var NAME=VALUE…` (later wins), values read as YAML;
/// `Err` with the message for a malformed one.
pub(crate) fn command_line_vars(
    files: &[std::path::PathBuf],
    pairs: &[String],
) -> Result<indexmap::IndexMap<String, serde_json::Value>, String> {
    let mut out = indexmap::IndexMap::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the var file {}: {e}", file.display()))?;
        let map: indexmap::IndexMap<String, serde_json::Value> = serde_saphyr::from_str(&text)
            .map_err(|e| {
                format!(
                    "{} is not a mapping of var names to values: {e}",
                    file.display()
                )
            })?;
        out.extend(map);
    }
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("`--var {pair}` is not NAME=VALUE"));
        };
        let name = name.trim();
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!("`--var {pair}`: `{name}` is not a var name"));
        }
        // Read as YAML, so `n=3` is a number; a value YAML cannot read stays a string.
        let value = serde_saphyr::from_str::<serde_json::Value>(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}
