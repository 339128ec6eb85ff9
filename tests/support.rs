//! Shared helpers: run the CLI in-process and capture what it prints.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::OnceLock;

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
    let state = scratch_root().join(format!(
        "state-{}",
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

/// A fresh, empty folder for one test: `name` under this test process's own folder in the
/// system's temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test's folder");
    dir
}

/// This test process's folder, which a watchdog removes once the process is gone, however it
/// ends; set `REDRIVE_KEEP_TEST_DIRS` to keep it for a look after a failure.
fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("redrive-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("the tests' folder");
        // Without the watchdog the folders are merely left behind.
        if std::env::var_os("REDRIVE_KEEP_TEST_DIRS").is_none() {
            let _ = when_gone(&format!("rm -rf '{}'", root.display()));
        }
        root
    })
}

/// Runs the shell command `then` once this test process is gone, however it ends (waiting a
/// day at most), from a process that is nobody's child, so this one waits for no one. Whether
/// it could be started.
pub(crate) fn when_gone(then: &str) -> bool {
    let script = format!(
        "i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 86400 ]; do sleep 1; i=$((i+1)); done; {then}",
        pid = std::process::id(),
    );
    Command::new("setsid")
        .args(["--fork", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
