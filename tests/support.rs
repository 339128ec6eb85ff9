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

/// Runs `redrive ARGS…` in this process, without colour. A rehearsal gets a state directory
/// of its own: the world a quick start left in the checkout is not this test's.
pub fn redrive(args: &[&str]) -> Run {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let (out, err) = (Buf::default(), Buf::default());
    let mut printer = Printer::capture(Box::new(out.clone()), Box::new(err.clone()));
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let state = std::env::temp_dir().join(format!(
        "redrive-state-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let rehearsal = args.contains(&"--sandbox") && !args.contains(&"--state-dir");
    if rehearsal && matches!(args.first(), Some(&"plan" | &"apply")) {
        argv.push("--state-dir".into());
        argv.push(state.display().to_string());
    }
    let status = redrive::cli::run(
        std::iter::once("redrive".to_owned()).chain(argv),
        &mut printer,
    );
    let _ = std::fs::remove_dir_all(&state);
    Run {
        status,
        stdout: out.text(),
        stderr: err.text(),
    }
}
