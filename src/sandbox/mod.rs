//! The sandbox: a local simulator of the five provider APIs, written from their documentation
//! (`providers.md`), independent of `providers/`. One loopback listener per provider, like five
//! hosts; seeded state and faults from a [`Scenario`]; `/_sandbox/stats` and `/_sandbox/state` on
//! every listener for tests and benchmarks.

mod abort;
mod digicert;
mod faults;
mod host;
mod inject;
mod ncloud;
mod otc_waf;
mod reply;
pub mod scenario;
mod stats;
mod timer;
mod vcf;
mod venafi;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scenario::Scenario;

/// The five simulated providers, named as in runbooks' `type:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    VenafiTpp,
    Digicert,
    Vcf,
    OtcWaf,
    Ncloud,
}

impl Kind {
    pub const ALL: [Self; 5] = [
        Self::VenafiTpp,
        Self::Digicert,
        Self::Vcf,
        Self::OtcWaf,
        Self::Ncloud,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VenafiTpp => "venafi_tpp",
            Self::Digicert => "digicert",
            Self::Vcf => "vcf",
            Self::OtcWaf => "otc_waf",
            Self::Ncloud => "ncloud",
        }
    }

    /// The path under the host where the provider's API lives (a runbook's `url`).
    #[must_use]
    pub fn base_path(self) -> &'static str {
        match self {
            Self::Digicert => "/automationws/v1",
            _ => "",
        }
    }
}

/// Where and how to listen.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A loopback address.
    pub ip: IpAddr,
    /// The first of five consecutive ports (Venafi, DigiCert, VCF, OTC, NCP); 0 for any free ports.
    pub port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

/// Everything the `/_sandbox` routes can see.
struct World {
    seed: u64,
    started: std::time::Instant,
    venafi: Arc<venafi::Sim>,
    digicert: Arc<digicert::Sim>,
    vcf: Arc<vcf::Sim>,
    otc: Arc<otc_waf::Sim>,
    ncloud: Arc<ncloud::Sim>,
}

impl World {
    fn hosts(&self) -> [&host::Host; 5] {
        [
            &self.venafi.host,
            &self.digicert.host,
            &self.vcf.host,
            &self.otc.host,
            &self.ncloud.host,
        ]
    }

    fn stats(&self, with_targets: bool) -> Value {
        let providers: serde_json::Map<String, Value> = self
            .hosts()
            .iter()
            .map(|h| {
                let snapshot = h.stats.snapshot(with_targets);
                (
                    h.kind.as_str().to_owned(),
                    serde_json::to_value(snapshot).expect("stats serialize"),
                )
            })
            .collect();
        json!({
            "seed": self.seed,
            "uptime_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "providers": providers,
        })
    }

    fn state(&self) -> Value {
        json!({
            "venafi_tpp": self.venafi.state(),
            "digicert": self.digicert.state(),
            "vcf": self.vcf.state(),
            "otc_waf": self.otc.state(),
            "ncloud": self.ncloud.state(),
        })
    }
}

async fn stats_route(
    State(world): State<Arc<World>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let with_targets = query.get("targets").is_none_or(|v| v != "false");
    reply::json(StatusCode::OK, &world.stats(with_targets))
}

async fn state_route(State(world): State<Arc<World>>) -> Response {
    reply::json(StatusCode::OK, &world.state())
}

/// A running sandbox. Dropping it stops the listeners.
pub struct Running {
    addrs: [(Kind, SocketAddr); 5],
    world: Arc<World>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The listener of one provider.
    #[must_use]
    pub fn addr(&self, kind: Kind) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
            .expect("every kind has a listener")
    }

    /// The base URL a runbook's `url:` takes for this provider.
    #[must_use]
    pub fn url(&self, kind: Kind) -> String {
        format!("http://{}{}", self.addr(kind), kind.base_path())
    }

    /// The OTC IAM endpoint (a runbook's `auth.iam_url`).
    #[must_use]
    pub fn iam_url(&self) -> String {
        format!("http://{}/v3", self.addr(Kind::OtcWaf))
    }

    /// What `GET /_sandbox/stats` answers.
    #[must_use]
    pub fn stats(&self) -> Value {
        self.world.stats(true)
    }

    /// What `GET /_sandbox/state` answers.
    #[must_use]
    pub fn state(&self) -> Value {
        self.world.state()
    }

    /// Stops the listeners and waits for them.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the sandbox listens on loopback only; {0} is not a loopback address")]
    NotLoopback(IpAddr),
    #[error("cannot listen on {addr} for {provider}: {error}")]
    Bind {
        provider: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Starts the five simulated providers on loopback. Must run inside a tokio runtime.
///
/// # Errors
/// When the address is not loopback or a port cannot be bound.
pub async fn start(scenario: &Scenario, options: Options) -> Result<Running, StartError> {
    if !options.ip.is_loopback() {
        return Err(StartError::NotLoopback(options.ip));
    }
    let seed = scenario.seed;
    let world = Arc::new(World {
        seed,
        started: std::time::Instant::now(),
        venafi: venafi::Sim::new(&scenario.venafi_tpp, seed),
        digicert: digicert::Sim::new(&scenario.digicert, seed),
        vcf: vcf::Sim::new(&scenario.vcf, seed),
        otc: otc_waf::Sim::new(&scenario.otc_waf, seed),
        ncloud: ncloud::Sim::new(&scenario.ncloud, seed),
    });
    let introspection = Router::new()
        .route("/_sandbox/stats", get(stats_route))
        .route("/_sandbox/state", get(state_route))
        .with_state(world.clone());
    let routers = [
        (
            world.venafi.host.clone(),
            venafi::router(world.venafi.clone()),
        ),
        (
            world.digicert.host.clone(),
            digicert::router(world.digicert.clone()),
        ),
        (world.vcf.host.clone(), vcf::router(world.vcf.clone())),
        (world.otc.host.clone(), otc_waf::router(world.otc.clone())),
        (
            world.ncloud.host.clone(),
            ncloud::router(world.ncloud.clone()),
        ),
    ];
    let (shutdown, watcher) = watch::channel(false);
    let mut addrs = Vec::with_capacity(5);
    let mut listeners = Vec::with_capacity(5);
    for (offset, (host, _)) in (0u16..).zip(&routers) {
        let port = if options.port == 0 {
            0
        } else {
            options.port.saturating_add(offset)
        };
        let (listener, addr) =
            host::bind(options.ip, port)
                .await
                .map_err(|error| StartError::Bind {
                    provider: host.kind.as_str(),
                    addr: SocketAddr::new(options.ip, port),
                    error,
                })?;
        addrs.push((host.kind, addr));
        listeners.push(listener);
    }
    let mut tasks = Vec::with_capacity(5);
    for (listener, (host, router)) in listeners.into_iter().zip(routers) {
        let router = router.merge(introspection.clone());
        tasks.push(tokio::spawn(host::serve(
            listener,
            host,
            router,
            watcher.clone(),
        )));
    }
    Ok(Running {
        addrs: addrs.try_into().expect("five listeners"),
        world,
        shutdown,
        tasks,
    })
}
