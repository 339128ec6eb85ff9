//! Parses the command line and runs one subcommand; the only place errors become exit codes.

pub mod args;
mod commands;
pub mod rehearsal;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::exit::ExitStatus;
use crate::ui::printer::Printer;
use args::{Args, Color, Command};

/// The binary's entry point.
#[must_use]
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Invalid.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    let choice = match args.color {
        Color::Auto => anstream::ColorChoice::Auto,
        Color::Always => anstream::ColorChoice::Always,
        Color::Never => anstream::ColorChoice::Never,
    };
    let mut printer = Printer::terminal(choice);
    run_parsed(args, &mut printer).into()
}

/// Runs a command line in-process, writing through `printer`; tests use this.
pub fn run<I, T>(argv: I, printer: &mut Printer) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Args::try_parse_from(argv) {
        Ok(args) => run_parsed(args.normalized(), printer),
        Err(e) => {
            let _ = printer.note(&e.to_string());
            if e.use_stderr() {
                ExitStatus::Invalid
            } else {
                ExitStatus::Success
            }
        }
    }
}

fn run_parsed(args: Args, printer: &mut Printer) -> ExitStatus {
    let result = match args.command {
        Command::Validate { files, format } => commands::validate::run(&files, format, printer),
        Command::Render {
            file,
            format,
            targets,
            sources,
        } => commands::render::run(&file, format, &targets, &sources, printer),
        Command::Schema { scenario, plan } => commands::schema::run(scenario, plan, printer),
        Command::Plan(args) => commands::plan::run(&args, printer),
        Command::Apply(args) => commands::apply::run(&args, printer),
        Command::Status {
            file,
            state_dir,
            state,
            sandbox,
            format,
        } => commands::status::run(
            &file,
            &commands::state::Where {
                dir: state_dir.as_deref(),
                shared: state.as_deref(),
            },
            sandbox,
            format,
            printer,
        ),
        Command::Sandbox {
            scenario,
            port,
            format,
            world,
            reset,
        } => commands::sandbox::run(
            &commands::sandbox::Settings {
                scenario_file: scenario.as_deref(),
                port,
                format,
                world: world.as_deref(),
                reset,
            },
            printer,
        ),
        Command::Completions { shell } => commands::completions::run(shell, printer),
        Command::Man => commands::man::run(printer),
    };
    match result {
        Ok(status) => status,
        Err(e) => report(&e, printer),
    }
}

/// The one place an error becomes an exit code: prints it (with its hint) and says which.
fn report(e: &anyhow::Error, printer: &mut Printer) -> ExitStatus {
    use crate::plan::prepare::PrepareError;
    use crate::state::StateError;
    if let Some(PrepareError::Render(problems)) = e.downcast_ref::<PrepareError>() {
        let _ = commands::report(problems, printer);
        return ExitStatus::Invalid;
    }
    let (status, hint) = if let Some(p) = e.downcast_ref::<PrepareError>() {
        (ExitStatus::Failure, p.hint())
    } else if let Some(s) = e.downcast_ref::<StateError>() {
        let status = if s.is_locked() {
            ExitStatus::Stale
        } else {
            ExitStatus::Failure
        };
        (status, s.hint())
    } else {
        (ExitStatus::Failure, None)
    };
    let mut text = format!("error: {e:#}\n");
    if let Some(hint) = hint {
        text.push_str(&format!("\nhint: {hint}\n"));
    }
    // An error may quote what a server answered, and the server may have echoed a secret.
    let _ = printer.note(&crate::providers::redact::mask(&text));
    status
}
