//! Sandbox speed: requests per second on the Venafi retry endpoint at zero latency, and how close
//! injected latency stays to its setting at 64 concurrent requests. Prints its figures.
//!
//! The sandbox runs as the real binary in its own process (as in the end-to-end benchmarks), the
//! load comes from keep-alive reqwest clients in this process; both share the machine's cores.
//!
//! `cargo bench --bench sandbox` (set `SANDBOX_BENCH_REQUESTS` to change the request count).
#![allow(clippy::print_stdout)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::Sandbox;

const CONCURRENCY: usize = 64;

/// Sends `total` retries of distinct certificates over `CONCURRENCY` connections; returns the
/// wall time and each request's duration.
async fn drive(base: &str, total: usize) -> (Duration, Vec<Duration>) {
    redrive::providers::http::install_crypto();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a client");
    let token = Arc::new(support::token(&client, base).await);
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
                let t = Instant::now();
                let (status, _) = support::retry(&client, &url, &token, n).await;
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
        let sandbox = Sandbox::start(&support::scenario(total, ""), "throughput");
        let (wall, mut times) = drive(&sandbox.venafi, total).await;
        times.sort();
        let stats = sandbox.venafi_stats().await;
        let received = &stats["by_endpoint"]["POST /vedsdk/certificates/retry"];
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / wall.as_secs_f64();
        println!(
            "sandbox throughput: {total} retries over {CONCURRENCY} connections in {:.2} s = {rate:.0} requests/s (p50 {:.2} ms, p99 {:.2} ms); sandbox received {received}, mutations {}",
            wall.as_secs_f64(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            stats["mutations"],
        );
        let baseline = percentile(&times, 0.5);
        drop(sandbox);

        // Latency accuracy: 20 ms injected on the retry route only.
        let n = CONCURRENCY * 60;
        let latency = "  faults:\n    latency: {fixed: 20ms, endpoints: ['POST /vedsdk/certificates/retry']}\n";
        let sandbox = Sandbox::start(&support::scenario(n, latency), "latency");
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
