//! `redrive schema`: the runbook JSON Schema on stdout.

use crate::exit::ExitStatus;
use crate::manifest::schema;
use crate::ui::printer::Printer;

pub fn run(printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    printer.data(&schema::generate_text())?;
    Ok(ExitStatus::Success)
}
