//! Sandbox speed: requests per second on the Venafi retry endpoint at zero latency, and how close
//! injected latency stays to its setting at 64 concurrent requests. Prints its figures.
//!
//! The sandbox runs as the real binary in its own process (as in the end-to-end benchmarks), the
//! load comes from keep-alive reqwest clients in this process; both share the machine's cores.
//!
//! `cargo bench --bench sandbox` (set `SANDBOX_BENCH_REQUESTS` to change the request count).
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const CONCURRENCY: usize = 64;

struct Sandbox {
    child: Child,
    venafi: String,
    _scenario: tempfile_path::TempPath,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scenario file that lives as long as the sandbox reading it.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn start(scenario: &str, name: &str) -> Sandbox {
    let path =
        std::env::temp_dir().join(format!("redrive-bench-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, scenario).expect("write the scenario");
    let mut child = Command::new(env!("CARGO_BIN_EXE_redrive"))
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
    Sandbox {
        child,
        venafi: urls["providers"]["venafi_tpp"]
            .as_str()
            .expect("a Venafi URL")
            .to_owned(),
        _scenario: tempfile_path::TempPath(path),
    }
}

fn scenario(certificates: usize, latency: &str) -> String {
    format!(
        "seed: 7\nvenafi_tpp:\n  processing: 1h\n  generate:\n    - {{count: {certificates}, parent: '\\VED\\Policy\\Bench', name: 'c{{n}}'}}\n{latency}"
    )
}

async fn token(client: &reqwest::Client, base: &str) -> String {
    let body: Value = client
        .post(format!("{base}/vedauth/authorize/oauth"))
        .json(&serde_json::json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox", "scope": "certificate:manage"}))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// Sends `total` retries of distinct certificates over `CONCURRENCY` connections; returns the
/// wall time and each request's duration.
async fn drive(base: &str, total: usize) -> (Duration, Vec<Duration>) {
    redrive::providers::http::install_crypto();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a client");
    let token = Arc::new(token(&client, base).await);
    let url = Arc::new(format!("{base}/vedsdk/Certificates/Retry"));
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, token, url, next) = (client.clone(), token.clone(), url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n > total {
                    break times;
                }
                let body = format!(r#"{{"CertificateDN":"\\VED\\Policy\\Bench\\c{n}"}}"#);
                let t = Instant::now();
                let response = client
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("a response");
                let status = response.status();
                let _ = response.bytes().await;
                times.push(t.elapsed());
                assert_eq!(status, 200, "retry of c{n}");
            }
        }));
    }
    let mut times = Vec::with_capacity(total);
    for w in workers {
        times.extend(w.await.expect("worker"));
    }
    (started.elapsed(), times)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let total: usize = std::env::var("SANDBOX_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // Throughput at zero latency.
        let sandbox = start(&scenario(total, ""), "throughput");
        let (wall, mut times) = drive(&sandbox.venafi, total).await;
        times.sort();
        let stats: Value = reqwest::get(format!("{}/_sandbox/stats?targets=false", sandbox.venafi))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        let received = &stats["providers"]["venafi_tpp"]["by_endpoint"]["POST /vedsdk/certificates/retry"];
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / wall.as_secs_f64();
        println!(
            "sandbox throughput: {total} retries over {CONCURRENCY} connections in {:.2} s = {rate:.0} requests/s (p50 {:.2} ms, p99 {:.2} ms); sandbox received {received}, mutations {}",
            wall.as_secs_f64(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            stats["providers"]["venafi_tpp"]["mutations"],
        );
        let baseline = percentile(&times, 0.5);
        drop(sandbox);

        // Latency accuracy: 20 ms injected on the retry route only.
        let n = CONCURRENCY * 60;
        let latency = "  faults:\n    latency: {fixed: 20ms, endpoints: ['POST /vedsdk/certificates/retry']}\n";
        let sandbox = start(&scenario(n, latency), "latency");
        let (_, mut times) = drive(&sandbox.venafi, n).await;
        times.sort();
        let set = Duration::from_millis(20);
        let excess = |p: f64| ms(percentile(&times, p)) - ms(set);
        println!(
            "latency injection: 20 ms set, {n} requests at {CONCURRENCY} concurrent: min {:+.2} ms, p50 {:+.2} ms, p90 {:+.2} ms, p99 {:+.2} ms, max {:+.2} ms from the setting (zero-latency p50 {:.2} ms)",
            excess(0.0),
            excess(0.5),
            excess(0.9),
            excess(0.99),
            excess(1.0),
            ms(baseline),
        );
    });
}
