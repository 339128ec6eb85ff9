//! Shared helpers: run the CLI in-process and capture what it prints.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use redrive::exit::ExitStatus;
use redrive::ui::printer::Printer;

#[derive(Clone, Default)]
pub struct Buf(Rc<RefCell<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `redrive ARGS…` in this process, without colour.
pub fn redrive(args: &[&str]) -> Run {
    let (out, err) = (Buf::default(), Buf::default());
    let mut printer = Printer::capture(Box::new(out.clone()), Box::new(err.clone()));
    let status = redrive::cli::run(
        std::iter::once("redrive").chain(args.iter().copied()),
        &mut printer,
    );
    Run {
        status,
        stdout: out.text(),
        stderr: err.text(),
    }
}
