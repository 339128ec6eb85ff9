//! `redrive schema`: the runbook JSON Schema (or the sandbox scenario's, or the plan's) on stdout.

use crate::exit::ExitStatus;
use crate::manifest::schema;
use crate::sandbox::scenario;
use crate::ui::printer::Printer;

pub fn run(scenario: bool, plan: bool, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let text = if scenario {
        scenario::schema_text()
    } else if plan {
        crate::plan::schema_text()
    } else {
        schema::generate_text()
    };
    printer.data(&text)?;
    Ok(ExitStatus::Success)
}
