//! `redrive man`: the man page (roff) generated from the clap definitions.

use clap::CommandFactory;

use crate::cli::args::Args;
use crate::exit::ExitStatus;
use crate::ui::printer::Printer;

pub fn run(printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Args::command()).render(&mut buf)?;
    printer.data(&String::from_utf8(buf)?)?;
    Ok(ExitStatus::Success)
}
