//! `redrive plan FILE`: reads the providers' state and shows what apply would send, as a diff
//! (text), a versioned document (JSON) or a pull-request comment (Markdown); `--out` saves it.

use std::io::Write as _;

use anyhow::Context as _;

mod spool;
mod stream;

use crate::exit::ExitStatus;
use crate::plan::prepare::{self, Options, Prepared};
use crate::plan::{file, markdown};
use crate::ui::printer::Printer;

pub use crate::cli::args::PlanFormat;

/// Everything `redrive plan` was asked.
pub type Request = crate::cli::args::PlanArgs;

pub fn run(request: &Request, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let Some(mut rb) = super::load_runbook(&request.file, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    let vars = match super::command_line_vars(&request.var_files, &request.vars) {
        Ok(vars) => vars,
        Err(e) => {
            printer.note(&format!("error: {e}\n"))?;
            return Ok(ExitStatus::Invalid);
        }
    };
    rb.manifest.vars.extend(vars.clone());
    if let Some(status) = super::check_targets(&rb, &request.targets, printer)? {
        return Ok(status);
    }
    let scenario = match super::scenario(request.sandbox, request.scenario.as_deref(), printer)? {
        Ok(s) => s,
        Err(status) => return Ok(status),
    };
    let store = super::state::choose(
        &rb,
        super::state::Where {
            dir: request.state_dir.as_deref(),
            shared: request.state.as_deref(),
        },
        request.sandbox,
        printer,
    )?;
    let history = super::history(
        &rb,
        &store,
        scenario.as_ref(),
        request.sandbox_reset,
        false,
        printer,
    )?;
    // A plan shown as text or JSON is written as it is made, never held (a Markdown comment
    // shows a bounded part of each job and is made from the whole plan). The JSON document
    // goes straight to the file it ends up in where it can be cut back on failure.
    let json = match (&request.out, request.format) {
        (Some(out), PlanFormat::Json | PlanFormat::Text) => Some(
            stream::Stream::to_file(out)
                .with_context(|| format!("cannot write the plan to {}", out.display()))?,
        ),
        (None, PlanFormat::Json) => Some(match printer.data_file()? {
            Some((file, start)) => {
                stream::Stream::to_stdout(file, start).context("cannot write the plan to stdout")?
            }
            None => stream::Stream::spooled(),
        }),
        _ => None,
    };
    let mut spool = match request.format {
        PlanFormat::Markdown => None,
        PlanFormat::Json => Some(spool::Spool::new(spool::Wanted { json, text: None })),
        PlanFormat::Text => Some(spool::Spool::new(spool::Wanted {
            json,
            text: Some(printer.color()),
        })),
    };
    let runtime = super::runtime()?;
    let (prepared, warning) = runtime.block_on(async {
        let rehearsal = match (&scenario, store.dir()) {
            (Some(s), Some(dir)) => {
                let world = crate::cli::rehearsal::world_path(dir);
                Some(crate::cli::rehearsal::start(&rb, s, &world).await?)
            }
            _ => None,
        };
        let prepared = prepare::prepare(
            &rb,
            Options {
                targets: &request.targets,
                refresh: request.refresh,
                bulk_reads: !request.no_bulk_reads,
                sandbox: rehearsal.as_ref().map(|(_, e)| e),
                history: &history,
                replace: &request.replace,
                tokens: store.store().tokens(),
                approved: None,
                vars: &vars,
                progress: Some(&crate::ui::reads::Reads::new(false)),
                await_landing: true,
                sink: spool
                    .as_mut()
                    .map(|s| s as &mut (dyn prepare::ActionSink + Send)),
                limits: None,
            },
        )
        .await;
        let warning = match rehearsal {
            Some((running, _)) => crate::cli::rehearsal::stop(running).await,
            None => None,
        };
        anyhow::Ok((prepared, warning))
    })?;
    if let Some(w) = warning {
        printer.note(&w)?;
    }
    let Prepared { plan, limiters, .. } = prepared?;
    if let Some(line) = super::apply::throttled_line(&super::apply::throttled(&limiters)) {
        printer.note(&line)?;
    }
    let json = spool.as_mut().and_then(spool::Spool::take_json);
    if let Some(spool) = &mut spool {
        spool
            .finish()
            .context("cannot spool the plan in the temporary folder")?;
    }
    let written = json
        .map(|json| json.end(&plan))
        .transpose()
        .with_context(|| match &request.out {
            Some(out) => format!("cannot write the plan to {}", out.display()),
            None => "cannot write the plan".to_owned(),
        })?;
    if let Some(out) = &request.out {
        if spool.is_none() {
            file::save(&plan, out)
                .with_context(|| format!("cannot write the plan to {}", out.display()))?;
        }
        printer.note(&format!("Saved the plan to {}.\n", out.display()))?;
    }
    match (&spool, written) {
        (Some(spool), _) if matches!(request.format, PlanFormat::Text) => {
            spool.write_text(&plan, &mut |chunk| printer.data(chunk))?;
        }
        (Some(_), Some(stream::Written::Spooled(mut json))) => {
            let mut out = printer.data_writer();
            json.copy(&mut |bytes| out.write_all(bytes))?;
            out.flush()?;
        }
        (Some(_), Some(stream::Written::InPlace)) => {
            // Saved with `--out`: shown from the saved file (or already in stdout's file).
            if let Some(out) = &request.out {
                let mut saved = std::fs::File::open(out)
                    .with_context(|| format!("cannot read the plan back from {}", out.display()))?;
                let mut w = printer.data_writer();
                std::io::copy(&mut saved, &mut w)?;
                w.flush()?;
            }
        }
        (Some(_), None) => unreachable!("a JSON plan has its stream"),
        (None, _) => printer.data(&markdown::render(&plan, markdown::GITHUB_COMMENT_LIMIT))?,
    }
    Ok(if plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
