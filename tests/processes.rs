//! Processes for the tests that need them separate: a `redrive sandbox` on loopback and
//! `redrive` runners with their output in files, bounded in time, killed with SIGKILL on demand.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::apply::SECRETS;

/// Short leases keep takeovers quick: a killed runner's actions are free 2 s after its death.
const LEASE: &str = "2s";

/// A `redrive sandbox` process, killed when dropped.
pub(crate) struct Sandbox {
    child: Child,
    pub(crate) urls: Value,
}

impl Sandbox {
    pub(crate) fn start(dir: &Path, scenario: &str) -> Self {
        std::fs::write(dir.join("scenario.yaml"), scenario).expect("write the scenario");
        let mut child = Command::new(env!("CARGO_BIN_EXE_redrive"))
            .current_dir(dir)
            .args(["sandbox", "--port", "0", "--format", "json", "--scenario"])
            .arg("scenario.yaml")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sandbox.err")).expect("stderr file"))
            .spawn()
            .expect("start the sandbox");
        // Its JSON document names the ports; it ends without a newline, so bytes are read until
        // it parses (bounded).
        let mut stdout = child.stdout.take().expect("stdout");
        let mut text = Vec::new();
        let mut urls = Value::Null;
        let mut byte = [0u8; 1];
        while text.len() < 65_536 && stdout.read(&mut byte).unwrap_or(0) == 1 {
            text.push(byte[0]);
            if byte[0] == b'}'
                && let Ok(v) = serde_json::from_slice::<Value>(&text)
            {
                urls = v;
                break;
            }
        }
        let text = String::from_utf8_lossy(&text);
        assert!(
            urls["providers"].is_object(),
            "the sandbox said: {text}{}",
            std::fs::read_to_string(dir.join("sandbox.err")).unwrap_or_default()
        );
        Self { child, urls }
    }

    pub(crate) fn url(&self, kind: &str) -> String {
        self.urls["providers"][kind]
            .as_str()
            .unwrap_or_else(|| panic!("no {kind} in {}", self.urls))
            .to_owned()
    }

    /// `GET /_sandbox/stats`: the sandbox's own request counts.
    pub(crate) fn stats(&self) -> Value {
        let base = self.url("venafi_tpp");
        let authority = base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("authority")
            .to_owned();
        let mut stream = TcpStream::connect(&authority).expect("connect to the sandbox");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        write!(
            stream,
            "GET /_sandbox/stats?targets=false HTTP/1.0\r\nHost: {authority}\r\n\r\n"
        )
        .expect("ask");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the stats");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats: {e}: {answer}"))
    }

    pub(crate) fn provider(&self, kind: &str) -> Value {
        self.stats()["providers"][kind].clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runner: `redrive ARGS…` in `dir` with its output in files (a pipe nobody reads would
/// block it).
pub(crate) struct Runner {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) all: String,
}

pub(crate) fn redrive(dir: &Path, args: &[&str]) -> Runner {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out, err) = (
        dir.join(format!("runner-{n}.out")),
        dir.join(format!("runner-{n}.err")),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_redrive"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("REDRIVE_STATE_LEASE", LEASE)
        .env_remove("REDRIVE_STATE")
        .envs(SECRETS)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("run redrive");
    Runner { child, out, err }
}

impl Runner {
    /// Waits at most `limit`, then kills it (the assertion on its code then fails).
    pub(crate) fn wait_for(mut self, limit: Duration) -> Ended {
        let until = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        let tail = |s: &str| s[s.len().saturating_sub(4000)..].to_owned();
        Ended {
            code: status.and_then(|s| s.code()),
            all: format!(
                "--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
                tail(&stdout),
                tail(&stderr)
            ),
            stdout,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`STOP`, `CONT`): a stopped runner is one that stalls without dying.
    pub(crate) fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    pub(crate) fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
