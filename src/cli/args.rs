//! The command line, as clap types only; completions and the man page are generated from it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Examples shown by `--help` and in the man page, per command.
pub mod examples {
    pub const TOP: &str = "\
Examples:
  redrive validate examples/*.yaml
  redrive plan --sandbox examples/outage-remediation.yaml
  redrive apply --sandbox --auto-approve examples/outage-remediation.yaml
  redrive status --sandbox examples/outage-remediation.yaml";
    pub const VALIDATE: &str = "\
Examples:
  redrive validate runbooks/*.yaml
  redrive validate --format json runbooks/outage.yaml | jq '.[].message'";
    pub const RENDER: &str = "\
Examples:
  redrive render runbooks/outage.yaml
  redrive render --target venafi-retry --format json runbooks/outage.yaml
  redrive render --source expiring=waf-certs.json runbooks/outage.yaml";
    pub const SCHEMA: &str = "\
Examples:
  redrive schema > redrive.schema.json
  redrive schema --plan > plan.schema.json";
    pub const PLAN: &str = "\
Examples:
  redrive plan runbooks/outage.yaml                      # exit 0: nothing to do, 2: changes
  redrive plan runbooks/outage.yaml --out outage.plan.json
  redrive plan --format markdown runbooks/outage.yaml > plan.md
  redrive plan --no-refresh runbooks/outage.yaml         # from the journal alone
  redrive plan --sandbox --target venafi-retry examples/outage-remediation.yaml";
    pub const APPLY: &str = "\
Examples:
  redrive apply runbooks/outage.yaml                     # plan, confirm, send
  redrive apply outage.plan.json --auto-approve          # exactly a reviewed plan
  redrive apply --sandbox --auto-approve examples/outage-remediation.yaml
  redrive apply plan.json --auto-approve --format json > events.jsonl
  redrive apply plan.json --auto-approve --report-html report.html --report-junit junit.xml";
    pub const STATUS: &str = "\
Examples:
  redrive status runbooks/outage.yaml                    # exit 4 while anything is unfinished
  redrive status --format json runbooks/outage.yaml
  REDRIVE_STATE=postgres://redrive@db.internal/redrive redrive status runbooks/outage.yaml";
    pub const SANDBOX: &str = "\
Examples:
  redrive sandbox
  redrive sandbox --port 0 --format json
  redrive sandbox --scenario examples/sandbox/default.yaml";
    pub const COMPLETIONS: &str = "\
Examples:
  redrive completions bash > /etc/bash_completion.d/redrive
  redrive completions zsh > \"${fpath[1]}/_redrive\"";
    pub const MAN: &str = "\
Examples:
  redrive man > redrive.1 && man -l redrive.1";
}

/// Declarative, reviewable batch remediation of certificate and credential lifecycles.
#[derive(Debug, Parser)]
#[command(name = "redrive", version, about, long_about = None, propagate_version = true, after_help = examples::TOP)]
pub struct Args {
    /// When to use colour on the terminal.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, env = "REDRIVE_COLOR")]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks: YAML, schema, references, templates and rendered parameters. No network.
    #[command(after_help = examples::VALIDATE)]
    Validate {
        /// Runbook files (YAML) to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `text` for people (stderr), `json` for machines (stdout).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Print the actions a runbook expands to, after `for_each`, `when` and templates. No network.
    #[command(after_help = examples::RENDER)]
    Render {
        /// The runbook (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// `yaml` for people, `json` for machines.
        #[arg(long, value_enum, default_value_t = DataFormat::Yaml)]
        format: DataFormat,
        /// Only these jobs (repeatable).
        #[arg(long = "target", value_name = "JOB")]
        targets: Vec<String>,
        /// Items of a plan-time source from a JSON or YAML file, as `NAME=FILE` (repeatable).
        #[arg(long = "source", value_name = "NAME=FILE")]
        sources: Vec<String>,
    },
    /// Print the runbook JSON Schema (draft 2020-12), or the sandbox scenario's, or the plan's.
    #[command(after_help = examples::SCHEMA)]
    Schema {
        /// The schema of sandbox scenario files instead.
        #[arg(long, conflicts_with = "plan")]
        scenario: bool,
        /// The schema of JSON and saved plans instead.
        #[arg(long)]
        plan: bool,
    },
    /// Read the providers' state and show what apply would send (exit 0: nothing to do, 2: changes).
    #[command(after_help = examples::PLAN)]
    Plan(PlanArgs),
    /// Plan and send: concurrent, rate-limited, retried, journaled (exit 4: some actions failed).
    ///
    /// Takes a runbook (plans it first and asks for confirmation) or a saved plan (`.json`;
    /// refused when the runbook or its inputs changed, every precondition re-checked).
    #[command(after_help = examples::APPLY)]
    Apply(ApplyArgs),
    /// Show the journal's view of a runbook: states per job, and what is not done and why.
    #[command(after_help = examples::STATUS)]
    Status {
        /// The runbook (YAML) whose journal to read.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Where the journal lives; `.redrive/` beside the runbook by default.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The shared state: a PostgreSQL DSN (`postgres://USER:PASSWORD@HOST:PORT/DB`); wins
        /// over `REDRIVE_STATE` and the runbook's `state:`, never printed
        #[arg(long, value_name = "DSN", conflicts_with = "state_dir")]
        state: Option<String>,
        /// The journal of rehearsals (`apply --sandbox`)
        #[arg(long)]
        sandbox: bool,
        /// `text` for people, `json` for machines (versioned, `schemas/status.schema.json`).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Run the simulator of the five provider APIs on loopback until Ctrl-C.
    ///
    /// One listener per provider on consecutive ports from `--port`: Venafi TPP, DigiCert,
    /// VCF, OTC (IAM and WAF) and NCP. Each also answers `GET /_sandbox/stats` and
    /// `GET /_sandbox/state`.
    #[command(after_help = examples::SANDBOX)]
    Sandbox {
        /// The state and faults to simulate (YAML); the built-in outage scenario by default.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// The first of five consecutive ports; 0 picks free ports.
        #[arg(long, value_name = "N", default_value_t = 7400)]
        port: u16,
        /// `text` for people, `json` for scripts (one object with the URLs).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
        /// Keep the simulated world in FILE: restored at start when it was made from the same
        /// scenario, saved while serving and at exit.
        #[arg(long, value_name = "FILE")]
        world: Option<PathBuf>,
        /// Delete the world file first, so the sandbox starts from the scenario.
        #[arg(long, requires = "world")]
        reset: bool,
    },
    /// Print a shell completion script.
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): every command, EXIT STATUS and ENVIRONMENT on one page.
    #[command(after_help = examples::MAN)]
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
}

/// How to print the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Yaml,
    Json,
}

/// The arguments of `redrive plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The runbook (YAML) to plan.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Run against the built-in simulator of the five APIs, with its demo credentials.
    #[arg(long)]
    pub sandbox: bool,
    /// The sandbox scenario (with `--sandbox`); the built-in outage scenario by default.
    #[arg(long, value_name = "FILE", requires = "sandbox")]
    pub scenario: Option<PathBuf>,
    /// Also save the plan (JSON, no secret values) for a later `apply`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// `text` (a diff for people), `json` (versioned) or `markdown` (a pull-request comment).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Only these jobs, and the jobs they need (repeatable).
    #[arg(long = "target", value_name = "JOB")]
    pub targets: Vec<String>,
    /// Read the providers' current state (`--refresh false` or `--no-refresh` plans from the
    /// journal alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// The same as `--refresh false`.
    #[arg(long, overrides_with = "refresh")]
    pub no_refresh: bool,
    /// Read every target's state on its own instead of a list page at a time (to compare the
    /// two, or for an account that may read its objects but not list them).
    #[arg(long)]
    pub no_bulk_reads: bool,
    /// Plan this action (by id) or every action of this job again, although an earlier run
    /// did it (non-idempotent actions are otherwise never planned twice)
    #[arg(long, value_name = "ID|JOB")]
    pub replace: Vec<String>,
    /// Where the journal and tokens live (default: `.redrive/` beside the runbook)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The shared state: a PostgreSQL DSN (`postgres://USER:PASSWORD@HOST:PORT/DB`); wins over
    /// `REDRIVE_STATE` and the runbook's `state:`, never printed
    #[arg(long, value_name = "DSN", conflicts_with = "state_dir")]
    pub state: Option<String>,
    /// Start the rehearsal's simulated world (and its journal) from the scenario again
    #[arg(long, requires = "sandbox")]
    pub sandbox_reset: bool,
    /// Set a runbook var for this plan (`NAME=VALUE`, the value read as YAML: `n=3` is a
    /// number, `on=true` a bool); repeatable, and it wins over `--var-file` and the runbook
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Set runbook vars from a YAML mapping of names to values; repeatable, later files win
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

/// The arguments of `redrive apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// A runbook (YAML; planned first, then confirmed) or a saved plan (`.json`, from
    /// `plan --out`).
    #[arg(value_name = "FILE|PLAN")]
    pub file: PathBuf,
    /// Run against the built-in simulator of the five APIs, with its demo credentials.
    #[arg(long)]
    pub sandbox: bool,
    /// The sandbox scenario (with `--sandbox`); the built-in outage scenario by default.
    #[arg(long, value_name = "FILE", requires = "sandbox")]
    pub scenario: Option<PathBuf>,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Requests in flight over all providers (1 to 65,536).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub parallelism: usize,
    /// Only these jobs (repeatable; runbooks only).
    #[arg(long = "target", value_name = "JOB")]
    pub targets: Vec<String>,
    /// Where the journal and the lock live; `.redrive/` beside the runbook by default.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The shared state: a PostgreSQL DSN (`postgres://USER:PASSWORD@HOST:PORT/DB`); wins over
    /// `REDRIVE_STATE` and the runbook's `state:`, never printed
    #[arg(long, value_name = "DSN", conflicts_with = "state_dir")]
    pub state: Option<String>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per action).
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Write a Markdown summary (appended when it is `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "FILE")]
    pub report_markdown: Option<PathBuf>,
    /// Write an HTML report: one self-contained file (no network access when opened) with
    /// the summary, results by job and by reason, and charts over time.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// No progress; of the results only the failures and the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// `text` (the plan and results for people) or `json` (newline-delimited events on
    /// stdout, `schemas/events.schema.json`; progress stays on stderr).
    #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
    pub format: ApplyFormat,
    /// Read the providers' state first (`--refresh=false` sends every action the journal does
    /// not show as done; a non-idempotent one that succeeded or whose outcome is unknown is
    /// never resent blindly; `--no-refresh` is the same as `--refresh false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// The same as `--refresh false`.
    #[arg(long, overrides_with = "refresh")]
    pub no_refresh: bool,
    /// Read every target's state on its own instead of a list page at a time (to compare the
    /// two, or for an account that may read its objects but not list them).
    #[arg(long)]
    pub no_bulk_reads: bool,
    /// Send this action (by id) or every action of this job again, although an earlier run did
    /// it
    #[arg(long, value_name = "ID|JOB")]
    pub replace: Vec<String>,
    /// Start the rehearsal's simulated world (and its journal) from the scenario again
    #[arg(long)]
    pub sandbox_reset: bool,
    /// Set a runbook var for this apply (a saved plan carries its own) (`NAME=VALUE`, the value read as YAML: `n=3` is a
    /// number, `on=true` a bool); repeatable, and it wins over `--var-file` and the runbook
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Set runbook vars from a YAML mapping of names to values; repeatable, later files win
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

impl Args {
    /// Folds the spellings of one setting together: `--no-refresh` is `--refresh false`.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        match &mut self.command {
            Command::Plan(a) if a.no_refresh => a.refresh = false,
            Command::Apply(a) if a.no_refresh => a.refresh = false,
            _ => {}
        }
        self
    }
}
