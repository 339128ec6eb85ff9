//! redrive: declarative, reviewable batch remediation of certificate and credential lifecycles.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! runbook.yaml ─load (spans)─▶ schema check ─▶ semantic check ─▶ render templates
//!    ─▶ observe (read-only provider calls) ─▶ Plan (immutable) ─▶ apply ─▶ journal + report
//! ```
//!
//! - [`manifest`]: the runbook model, loading with spans, the JSON Schema, checks, templates.
//! - [`sandbox`]: a local simulator of the five provider APIs, for `--sandbox`, tests and benchmarks.
//! - [`ui`]: the printer (stdout for data, stderr for people) and diagnostics rendering.
//! - [`cli`]: argument parsing and one file per subcommand.
//! - [`exit`]: the exit-code table.

pub mod apply;
pub mod cli;
pub mod exit;
pub mod limits;
pub mod manifest;
pub mod plan;
pub mod providers;
pub mod report;
pub mod rng;
pub mod sandbox;
pub mod schema_formats;
pub mod state;
pub mod suggest;
pub mod ui;
