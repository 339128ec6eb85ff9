//! `redrive completions SHELL`: a completion script generated from the clap definitions.

use clap::CommandFactory;

use crate::cli::args::Args;
use crate::exit::ExitStatus;
use crate::ui::printer::Printer;

pub fn run(shell: clap_complete::Shell, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "redrive", &mut buf);
    printer.data(&String::from_utf8(buf)?)?;
    Ok(ExitStatus::Success)
}
