//! What the HTTP benches share: the sandbox as the real binary in its own process, its token and
//! its counters.

// Each bench compiles its own copy and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running `redrive sandbox`; killed, and its scenario file removed, when dropped.
pub struct Sandbox {
    child: Child,
    pub venafi: String,
    scenario: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.scenario);
    }
}

impl Sandbox {
    /// Starts the sandbox on `scenario` (YAML text); `name` keeps concurrent files apart.
    pub fn start(scenario: &str, name: &str) -> Self {
        Self::start_on(scenario, name, None)
    }

    /// As [`Sandbox::start`], held to the CPUs `cpus` (a `taskset -c` list) when given.
    pub fn start_on(scenario: &str, name: &str, cpus: Option<&str>) -> Self {
        let path =
            std::env::temp_dir().join(format!("redrive-bench-{}-{name}.yaml", std::process::id()));
        std::fs::write(&path, scenario).expect("write the scenario");
        let bin = env!("CARGO_BIN_EXE_redrive");
        // taskset execs the sandbox: the child's pid stays the sandbox's, for its CPU figures.
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, bin]);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(["sandbox", "--port", "0", "--format", "json", "--scenario"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start `redrive sandbox`");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sandbox prints its URLs");
        let urls: Value = serde_json::from_str(&line).expect("one JSON line");
        Self {
            venafi: urls["providers"]["venafi_tpp"]
                .as_str()
                .expect("a Venafi URL")
                .to_owned(),
            child,
            scenario: path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Venafi counters of `GET /_sandbox/stats`.
    pub async fn venafi_stats(&self) -> Value {
        let stats: Value = reqwest::get(format!("{}/_sandbox/stats?targets=false", self.venafi))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        stats["providers"]["venafi_tpp"].clone()
    }
}

/// A scenario of `certificates` Venafi certificates in error, `c1` … `cN` under
/// `\VED\Policy\Bench`, plus `extra` YAML lines under `venafi_tpp:`.
pub fn scenario(certificates: usize, extra: &str) -> String {
    format!(
        "seed: 7\nvenafi_tpp:\n  processing: 1h\n  token_ttl: 24h\n  generate:\n    - {{count: {certificates}, parent: '\\VED\\Policy\\Bench', name: 'c{{n}}'}}\n{extra}"
    )
}

/// The sandbox's password for the runbook's `svc-redrive`.
pub const PASSWORD: &str = "sandbox";

/// A bearer token with the `certificate:manage` scope.
pub async fn token(client: &reqwest::Client, base: &str) -> String {
    let body: Value = client
        .post(format!("{base}/vedauth/authorize/oauth"))
        .json(&serde_json::json!({"client_id": "redrive", "username": "svc-redrive", "password": PASSWORD, "scope": "certificate:manage"}))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// The body of the retry of certificate `n`, as redrive sends it.
pub fn retry_body(n: usize) -> String {
    serde_json::json!({"CertificateDN": format!("\\VED\\Policy\\Bench\\c{n}")}).to_string()
}

/// Sends the retry of certificate `n` to `url` (`…/vedsdk/Certificates/Retry`); the status and
/// the body of the answer.
pub async fn retry(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> (reqwest::StatusCode, bytes::Bytes) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(retry_body(n))
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    (status, response.bytes().await.expect("a body"))
}
