//! `redrive render FILE`: the actions a runbook expands to, so a reviewer sees every target.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use crate::cli::args::DataFormat;
use crate::exit::ExitStatus;
use crate::manifest::render::RenderedJob;
use crate::ui::printer::Printer;

#[derive(Serialize)]
struct Output<'a> {
    format_version: u32,
    runbook: &'a str,
    file: String,
    jobs: &'a [RenderedJob],
}

pub fn run(
    file: &Path,
    format: DataFormat,
    targets: &[String],
    sources: &[String],
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(rb) = super::load_runbook(file, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    if let Some(status) = super::check_targets(&rb, targets, printer)? {
        return Ok(status);
    }
    let sources = match load_sources(sources, &rb.manifest.sources) {
        Ok(s) => s,
        Err(e) => {
            printer.note(&format!("error: {e:#}\n"))?;
            return Ok(ExitStatus::Invalid);
        }
    };
    let jobs = match rb.render((!sources.is_empty()).then_some(&sources), targets) {
        Ok(jobs) => jobs,
        Err(problems) => {
            super::report(&problems, printer)?;
            return Ok(ExitStatus::Invalid);
        }
    };
    let out = Output {
        format_version: 1,
        runbook: &rb.manifest.name,
        file: file.display().to_string(),
        jobs: &jobs,
    };
    let text = match format {
        DataFormat::Json => format!("{}\n", serde_json::to_string_pretty(&out)?),
        DataFormat::Yaml => serde_saphyr::to_string(&out)?,
    };
    printer.data(&text)?;
    Ok(ExitStatus::Success)
}

/// `--source NAME=FILE`: plan-time source items supplied from a JSON or YAML file.
fn load_sources(
    args: &[String],
    declared: &IndexMap<String, crate::manifest::model::Source>,
) -> anyhow::Result<IndexMap<String, Value>> {
    let mut out = IndexMap::new();
    for arg in args {
        let (name, path) = arg
            .split_once('=')
            .with_context(|| format!("`--source {arg}` must be NAME=FILE"))?;
        if !declared.contains_key(name) {
            let names: Vec<&str> = declared.keys().map(String::as_str).collect();
            anyhow::bail!(
                "`--source {name}=…`: the runbook declares no source `{name}` (sources: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            );
        }
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let value: Value = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not valid JSON", path.display()))?
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| anyhow::anyhow!("`{}` is not valid YAML: {e}", path.display()))?
        };
        anyhow::ensure!(
            value.is_array(),
            "`{}` must hold a list of source items",
            path.display()
        );
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}
