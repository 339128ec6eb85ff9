//! What limits the 100,000-action apply (issue 16): the same N Venafi retries at concurrency C
//! against the sandbox with L ms of latency, sent three ways, each against a fresh sandbox:
//!
//! - `hyper`: hyper's pooled client alone, the HTTP/1 machinery under reqwest;
//! - `reqwest`: reqwest configured as `providers::http::Http` configures it;
//! - `redrive`: `redrive apply --auto-approve --refresh=false` of a runbook of the N retries
//!   (planning, the journal and everything else included).
//!
//! Prints, per client, the median wall time and its ratio to the bound ceil(N/C)·L, and the CPU
//! seconds of the client and of the sandbox: on one machine, both ends of the loopback share its
//! cores, so the bare clients' figures are the floor any client reaches here.
//!
//! `FLOOR_PIN=1` holds the sandbox to the last CPU and the clients (this process, and the
//! redrive it starts) to the others, as a server of its own would leave them: what each client
//! costs then shows without the two ends fighting for the same cores.
//!
//! `cargo bench --bench floor` (`FLOOR_N`, `FLOOR_C`, `FLOOR_L` (ms) and `FLOOR_RUNS` change the
//! defaults 100000, 256, 5 and 3; `FLOOR_REDRIVE=path` runs another redrive build as the
//! `redrive` client).
#![allow(clippy::print_stdout)]

#[path = "support/mod.rs"]
mod support;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use support::Sandbox;

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Hyper,
    Reqwest,
    Redrive,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Self::Hyper => "hyper",
            Self::Reqwest => "reqwest",
            Self::Redrive => "redrive",
        }
    }
}

struct Setting {
    n: usize,
    c: usize,
    latency_ms: u64,
    /// With `FLOOR_PIN`: the sandbox's CPU (the clients have the others).
    sandbox_cpus: Option<String>,
}

/// Holds this process (and every thread and child it starts from now on) to all CPUs but the
/// last, which it returns for the sandbox; `None` on a single CPU.
fn pin() -> Option<String> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpus < 2 {
        return None;
    }
    let clients = format!("0-{}", cpus - 2);
    let status = Command::new("taskset")
        .args(["-p", "-c", &clients, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset could not pin the bench");
    Some((cpus - 1).to_string())
}

/// One run's figures.
struct Run {
    wall: f64,
    client_cpu: f64,
    sandbox_cpu: f64,
    received: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks per second, the unit of `/proc/*/stat`'s CPU times.
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces), from `utime`
/// (field 14) on: `[utime, stime, cutime, cstime]` in ticks.
fn cpu_ticks(pid: &str) -> [f64; 4] {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After ')': state is field 3, so utime (14) is the 12th of these.
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    let mut out = [0.0; 4];
    out[..fields.len()].copy_from_slice(&fields);
    out
}

fn runbook(dir: &std::path::Path, setting: &Setting, url: &str) -> std::path::PathBuf {
    use std::fmt::Write as _;
    let mut dns = String::with_capacity(setting.n * 24);
    for i in 1..=setting.n {
        let _ = writeln!(dns, "\\VED\\Policy\\Bench\\c{i}");
    }
    std::fs::write(dir.join("dns.txt"), dns).expect("write the DNs");
    let path = dir.join("floor.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nname: floor\ninputs:\n  dns: {{file: dns.txt}}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: {url}\n    auth: {{client_id: redrive, username: svc-redrive, password: {{env: TPP_PASSWORD}}, scope: 'certificate:manage'}}\n    limits: {{concurrency: {}}}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{{{ inputs.dns }}}}\"\n    with: {{certificate_dn: \"{{{{ item }}}}\"}}\n",
            setting.c
        ),
    )
    .expect("write the runbook");
    path
}

/// Sends the N retries from `c` tasks sharing one pooled client; returns how many got a 200.
async fn bare(client: Client, base: &str, setting: &Setting) -> usize {
    redrive::providers::http::install_crypto();
    let reqwest = reqwest::Client::builder()
        .user_agent(concat!("redrive/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .gzip(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .no_proxy()
        .build()
        .expect("a client");
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http::<Full<Bytes>>();
    let token = Arc::new(support::token(&reqwest, base).await);
    let url: Arc<str> = format!("{base}/vedsdk/Certificates/Retry").into();
    let next = Arc::new(AtomicUsize::new(1));
    let ok = Arc::new(AtomicUsize::new(0));
    let n = setting.n;
    let mut tasks = Vec::with_capacity(setting.c);
    for _ in 0..setting.c {
        let (reqwest, hyper, token, url, next, ok) = (
            reqwest.clone(),
            hyper.clone(),
            token.clone(),
            url.clone(),
            next.clone(),
            ok.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > n {
                    break;
                }
                let (status, answer) = if client == Client::Reqwest {
                    support::retry(&reqwest, &url, &token, i).await
                } else {
                    let request = hyper::Request::post(&*url)
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(support::retry_body(i))))
                        .expect("a request");
                    let response = hyper.request(request).await.expect("an answer");
                    let status = response.status();
                    let answer = response.into_body().collect().await.expect("a body");
                    (status, answer.to_bytes())
                };
                if status == 200 && !answer.is_empty() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a sender");
    }
    ok.load(Ordering::Relaxed)
}

fn run(client: Client, setting: &Setting, dir: &std::path::Path, tick: f64) -> Run {
    let latency = format!(
        "  faults:\n    latency: {{fixed: {}ms, endpoints: ['POST /vedsdk/certificates/retry']}}\n",
        setting.latency_ms
    );
    let scenario = support::scenario(setting.n, &latency);
    let sandbox = Sandbox::start_on(&scenario, client.name(), setting.sandbox_cpus.as_deref());
    let sandbox_pid = sandbox.pid().to_string();
    let rb = runbook(dir, setting, &sandbox.venafi);
    let _ = std::fs::remove_dir_all(dir.join(".redrive"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let s0 = cpu_ticks(&sandbox_pid);
    let c0 = cpu_ticks("self");
    let started = Instant::now();
    let sent_ok = match client {
        Client::Redrive => {
            // `FLOOR_REDRIVE`: another build of redrive, measured against this build's sandbox.
            let bin = std::env::var("FLOOR_REDRIVE")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_redrive").to_owned());
            let status = Command::new(bin)
                .args([
                    "apply",
                    "--auto-approve",
                    "--refresh=false",
                    "--parallelism",
                ])
                .arg(setting.c.to_string())
                .arg(&rb)
                .env("TPP_PASSWORD", support::PASSWORD)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run redrive");
            assert!(status.success(), "redrive apply failed: {status}");
            setting.n
        }
        _ => runtime.block_on(bare(client, &sandbox.venafi, setting)),
    };
    let wall = started.elapsed().as_secs_f64();
    let c1 = cpu_ticks("self");
    let s1 = cpu_ticks(&sandbox_pid);
    let client_cpu = if client == Client::Redrive {
        // A waited-for child's CPU lands in cutime and cstime.
        (c1[2] + c1[3] - c0[2] - c0[3]) / tick
    } else {
        (c1[0] + c1[1] - c0[0] - c0[1]) / tick
    };
    let stats = runtime.block_on(sandbox.venafi_stats());
    let received = stats["by_endpoint"]["POST /vedsdk/certificates/retry"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        sent_ok,
        setting.n,
        "{}: every retry answered 200",
        client.name()
    );
    Run {
        wall,
        client_cpu,
        sandbox_cpu: (s1[0] + s1[1] - s0[0] - s0[1]) / tick,
        received,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let setting = Setting {
        n: env_or("FLOOR_N", 100_000),
        c: env_or("FLOOR_C", 256),
        latency_ms: env_or("FLOOR_L", 5),
        sandbox_cpus: if env_or("FLOOR_PIN", 0) == 1 {
            pin()
        } else {
            None
        },
    };
    let runs: usize = env_or("FLOOR_RUNS", 3).max(1);
    let tick = ticks_per_second();
    let dir = std::env::temp_dir().join(format!("redrive-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a work folder");
    #[allow(clippy::cast_precision_loss)]
    let bound = setting.n.div_ceil(setting.c) as f64 * setting.latency_ms as f64 / 1000.0;
    println!(
        "floor: N={} C={} L={}ms, bound {bound:.2} s, {runs} runs each, interleaved{}",
        setting.n,
        setting.c,
        setting.latency_ms,
        setting
            .sandbox_cpus
            .as_deref()
            .map_or(String::new(), |cpu| format!(
                ", the sandbox on CPU {cpu} and the clients on the others"
            ))
    );
    let clients = [Client::Hyper, Client::Reqwest, Client::Redrive];
    let mut figures: Vec<Vec<Run>> = clients.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, client) in clients.iter().enumerate() {
            figures[i].push(run(*client, &setting, &dir, tick));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    #[allow(clippy::cast_precision_loss)]
    let per_request = |cpu: f64| cpu / setting.n as f64 * 1e6;
    for (client, runs) in clients.iter().zip(figures) {
        let received: Vec<u64> = runs.iter().map(|r| r.received).collect();
        let wall = median(runs.iter().map(|r| r.wall).collect());
        let client_cpu = median(runs.iter().map(|r| r.client_cpu).collect());
        let sandbox_cpu = median(runs.iter().map(|r| r.sandbox_cpu).collect());
        let walls: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.wall)).collect();
        println!(
            "{:8} median {wall:.2} s = {:.2}x the bound  client CPU {client_cpu:.2} s ({:.0} us/request)  sandbox CPU {sandbox_cpu:.2} s ({:.0} us/request)  [{} s]  sandbox received {received:?}",
            client.name(),
            wall / bound,
            per_request(client_cpu),
            per_request(sandbox_cpu),
            walls.join(", "),
        );
    }
}
