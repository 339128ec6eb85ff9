//! `redrive man`: one man page (roff) for every command, generated from the clap definitions:
//! NAME, SYNOPSIS, DESCRIPTION and OPTIONS from clap_mangen, then each command with its
//! arguments and examples, EXIT STATUS, ENVIRONMENT and FILES.

use std::fmt::Write as _;

use clap::CommandFactory;

use crate::cli::args::Args;
use crate::exit::ExitStatus;
use crate::ui::printer::Printer;

/// Text for roff: backslashes escaped, no line starting with a control character.
fn roff(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn arg_heading(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if arg.is_positional() {
        return format!("\\fI{}\\fR", roff(&value));
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\fB\\-{short}\\fR"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", roff(long)));
    }
    let mut heading = names.join(", ");
    if takes_value {
        let _ = write!(heading, " \\fI{}\\fR", roff(&value));
    }
    heading
}

fn arg_body(arg: &clap::Arg) -> String {
    let mut body = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let body_ends = |b: &mut String| {
        if !b.is_empty() && !b.ends_with('.') {
            b.push('.');
        }
    };
    body_ends(&mut body);
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !values.is_empty() && arg.get_num_args().is_some_and(|n| n.takes_values()) {
        let _ = write!(body, " One of: {}.", values.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty()
        && !arg.is_positional()
        && !matches!(arg.get_action(), clap::ArgAction::SetTrue)
    {
        let _ = write!(body, " Default: {}.", defaults.join(", "));
    }
    roff(&body)
}

fn command_section(out: &mut String, cmd: &clap::Command) {
    let name = cmd.get_name();
    let _ = writeln!(out, ".SS \"redrive {name}\"");
    let mut usage = cmd.clone().bin_name(format!("redrive {name}"));
    let usage = usage.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    let _ = writeln!(out, ".B {}", roff(usage));
    let _ = writeln!(out, ".PP");
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        let _ = writeln!(out, "{}", roff(&about.to_string()));
    }
    for arg in cmd.get_arguments() {
        // Global options are on the page once, under OPTIONS.
        if arg.is_hide_set()
            || arg.is_global_set()
            || matches!(arg.get_id().as_str(), "help" | "version" | "color")
        {
            continue;
        }
        let _ = writeln!(out, ".TP\n{}\n{}", arg_heading(arg), arg_body(arg));
    }
    if let Some(after) = cmd.get_after_help() {
        let _ = writeln!(out, ".PP\n.nf\n{}\n.fi", roff(&after.to_string()));
    }
}

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success; for plan: nothing to do."),
    (
        "1",
        "A runtime error: I/O, network setup, a report that cannot be written, a state that could not be read (sources and observation never take \"could not find out\" for \"nothing to do\").",
    ),
    ("2", "plan: changes are pending."),
    (
        "3",
        "An invalid runbook or invalid arguments (schema, template, reference errors).",
    ),
    (
        "4",
        "apply: some actions failed or their outcome is unknown; status: something is not done.",
    ),
    (
        "5",
        "A stale plan, or the state is locked by another apply.",
    ),
    ("130", "Interrupted (Ctrl-C or SIGTERM)."),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "REDRIVE_COLOR",
        "When to use colour: auto, always or never (as --color).",
    ),
    ("NO_COLOR", "Set to anything: no colour."),
    (
        "REDRIVE_STATE",
        "The shared state of plan, apply and status: a PostgreSQL DSN (postgres://USER:PASSWORD@HOST:PORT/DB). --state and --state-dir win over it; it wins over the runbook's state: block.",
    ),
    (
        "REDRIVE_STATE_LEASE",
        "How long the shared state's apply lock outlives a runner that stopped renewing it (30s by default, 500ms to 1h).",
    ),
    ("TERM", "dumb: plain progress lines instead of bars."),
    (
        "GITHUB_STEP_SUMMARY",
        "A --report-markdown path equal to it is appended to, as GitHub Actions expects; other reports are replaced.",
    ),
    (
        "CI",
        "true in CI; the test suite then requires its external tools.",
    ),
    (
        "(runbook secrets)",
        "Secrets are named in the runbook as {env: NAME} and read from the environment only when a request needs them, e.g. TPP_PASSWORD, DIGICERT_API_KEY, VCF_PASSWORD, OTC_PASSWORD, NCLOUD_ACCESS_KEY, NCLOUD_SECRET_KEY.",
    ),
];

fn page() -> anyhow::Result<String> {
    let mut cmd = Args::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    let mut out = String::from_utf8(buf)?;
    out.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(&mut out, sub);
    }
    if let Some(after) = cmd.get_after_help() {
        let _ = writeln!(out, ".SH EXAMPLES\n.nf\n{}\n.fi", roff(&after.to_string()));
    }
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_STATUS {
        let _ = writeln!(out, ".TP\n\\fB{code}\\fR\n{}", roff(meaning));
    }
    out.push_str(".SH ENVIRONMENT\n");
    for (name, meaning) in ENVIRONMENT {
        let _ = writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(name), roff(meaning));
    }
    out.push_str(".SH FILES\n.TP\n\\fI.redrive/\\fR\nBeside the runbook: the journal, the lock and the token store (\\fI.redrive/sandbox/\\fR for rehearsals); \\fB\\-\\-state\\-dir\\fR moves it.\n");
    let mut version = Vec::new();
    man.render_version_section(&mut version)?;
    out.push_str(&String::from_utf8(version)?);
    Ok(out)
}

pub fn run(printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    printer.data(&page()?)?;
    Ok(ExitStatus::Success)
}
