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
pub mod world;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scenario::Scenario;
pub use world::{WorldError, WorldOrigin, WorldSave};

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

/// Where and how to listen, and where the world is kept.
#[derive(Debug, Clone)]
pub struct Options {
    /// A loopback address.
    pub ip: IpAddr,
    /// The first of five consecutive ports (Venafi, DigiCert, VCF, OTC, NCP); 0 for any free ports.
    pub port: u16,
    /// A file the world is restored from (when it holds a world of the same scenario) and saved
    /// to; `None` starts from the scenario every time and keeps nothing.
    pub world: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            world: None,
        }
    }
}

/// How often, at most, a changed world is saved in the background: what a `kill -9` can lose.
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// The five simulated providers: everything the `/_sandbox` routes and the world file see.
struct Sims {
    seed: u64,
    started: std::time::Instant,
    venafi: Arc<venafi::Sim>,
    digicert: Arc<digicert::Sim>,
    vcf: Arc<vcf::Sim>,
    otc: Arc<otc_waf::Sim>,
    ncloud: Arc<ncloud::Sim>,
}

impl Sims {
    fn new(scenario: &Scenario) -> Self {
        let seed = scenario.seed;
        Self {
            seed,
            started: std::time::Instant::now(),
            venafi: venafi::Sim::new(&scenario.venafi_tpp, seed),
            digicert: digicert::Sim::new(&scenario.digicert, seed),
            vcf: vcf::Sim::new(&scenario.vcf, seed),
            otc: otc_waf::Sim::new(&scenario.otc_waf, seed),
            ncloud: ncloud::Sim::new(&scenario.ncloud, seed),
        }
    }

    /// Whether anything changed since the last call; clears every host's flag.
    fn take_dirty(&self) -> bool {
        self.hosts()
            .iter()
            .fold(false, |dirty, h| h.stats.take_dirty() | dirty)
    }

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
    State(world): State<Arc<Sims>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let with_targets = query.get("targets").is_none_or(|v| v != "false");
    reply::json(StatusCode::OK, &world.stats(with_targets))
}

async fn state_route(State(world): State<Arc<Sims>>) -> Response {
    reply::json(StatusCode::OK, &world.state())
}

/// Where the world is saved, and the one lock that keeps two saves from interleaving.
struct Keeper {
    path: PathBuf,
    scenario: String,
    sims: Arc<Sims>,
    saving: Mutex<()>,
}

impl Keeper {
    /// Saves on a blocking thread: serializing a large world must not hold up a runtime worker.
    async fn save(self: &Arc<Self>) -> Result<(), WorldError> {
        let keeper = self.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _one_at_a_time = keeper.saving.lock().unwrap_or_else(PoisonError::into_inner);
            world::save(&keeper.path, &keeper.scenario, &keeper.sims)
        })
        .await
        .unwrap_or_else(|e| {
            Err(WorldError::Write {
                path,
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}

/// Saves the world at most every `SAVE_EVERY` while something changed, until `stop` turns true.
/// The final save is `Running::stop`'s, after the listeners have ended.
async fn keep(
    keeper: Arc<Keeper>,
    mut stop: watch::Receiver<bool>,
    failed: Arc<Mutex<Option<WorldError>>>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SAVE_EVERY) => {}
            _ = stop.changed() => return,
        }
        if keeper.sims.take_dirty() {
            let outcome = keeper.save().await;
            *failed.lock().unwrap_or_else(PoisonError::into_inner) = outcome.err();
        }
    }
}

/// A running sandbox. Dropping it stops the listeners (and the background saves: call `stop`
/// for the final one).
pub struct Running {
    addrs: [(Kind, SocketAddr); 5],
    world: Arc<Sims>,
    origin: WorldOrigin,
    keeper: Option<Arc<Keeper>>,
    /// The last background save's failure, cleared by a later success.
    save_failed: Arc<Mutex<Option<WorldError>>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    saver: Option<JoinHandle<()>>,
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

    /// Where the world came from; its `note()` is a line worth printing.
    #[must_use]
    pub fn world_origin(&self) -> &WorldOrigin {
        &self.origin
    }

    /// Saves the world now (nothing without a world file).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub async fn save(&self) -> Result<(), WorldError> {
        match &self.keeper {
            Some(k) => k.save().await,
            None => Ok(()),
        }
    }

    /// Stops the listeners, waits for them, then saves the world one last time.
    pub async fn stop(mut self) -> WorldSave {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(saver) = self.saver.take() {
            let _ = saver.await;
        }
        let Some(keeper) = self.keeper.take() else {
            return WorldSave::NotKept;
        };
        match keeper.save().await {
            Ok(()) => WorldSave::Saved(keeper.path.clone()),
            Err(e) => WorldSave::Failed(e),
        }
    }

    /// The last background save's failure, if the latest attempt failed.
    #[must_use]
    pub fn save_failure(&self) -> Option<String> {
        self.save_failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ToString::to_string)
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
    /// The world file exists but cannot be restored; `world::reset` (or `--reset`) and a new
    /// start begin from the scenario.
    #[error(transparent)]
    World(#[from] WorldError),
}

/// Starts the five simulated providers on loopback. Must run inside a tokio runtime.
///
/// With `options.world`, the world is restored from that file when it was made from the same
/// scenario (see [`Running::world_origin`]), and saved there in the background and on
/// [`Running::stop`].
///
/// # Errors
/// When the address is not loopback, a port cannot be bound, or the world file exists but
/// cannot be restored (nothing is listening then).
pub async fn start(scenario: &Scenario, options: Options) -> Result<Running, StartError> {
    if !options.ip.is_loopback() {
        return Err(StartError::NotLoopback(options.ip));
    }
    let world = Arc::new(Sims::new(scenario));
    let (origin, keeper) = match options.world {
        None => (WorldOrigin::Scenario, None),
        Some(path) => {
            let digest = world::digest(scenario);
            let origin = world::restore(&path, &digest, &world)?;
            if !matches!(origin, WorldOrigin::Restored { .. }) {
                // A seeded world is saved at the first tick, so that the file exists early.
                world.venafi.host.stats.mark_dirty();
            }
            let keeper = Arc::new(Keeper {
                path,
                scenario: digest,
                sims: world.clone(),
                saving: Mutex::new(()),
            });
            (origin, Some(keeper))
        }
    };
    let (shutdown, watcher) = watch::channel(false);
    let (addrs, tasks) = listen(&world, options.ip, options.port, &watcher).await?;
    let save_failed = Arc::new(Mutex::new(None));
    let saver = keeper
        .clone()
        .map(|k| tokio::spawn(keep(k, watcher, save_failed.clone())));
    Ok(Running {
        addrs,
        world,
        origin,
        keeper,
        save_failed,
        shutdown,
        tasks,
        saver,
    })
}

/// Binds the five listeners (all or none) and serves each provider's router on its own.
async fn listen(
    world: &Arc<Sims>,
    ip: IpAddr,
    first_port: u16,
    shutdown: &watch::Receiver<bool>,
) -> Result<([(Kind, SocketAddr); 5], Vec<JoinHandle<()>>), StartError> {
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
    let mut addrs = Vec::with_capacity(5);
    let mut listeners = Vec::with_capacity(5);
    for (offset, (host, _)) in (0u16..).zip(&routers) {
        let port = if first_port == 0 {
            0
        } else {
            first_port.saturating_add(offset)
        };
        let (listener, addr) = host::bind(ip, port)
            .await
            .map_err(|error| StartError::Bind {
                provider: host.kind.as_str(),
                addr: SocketAddr::new(ip, port),
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
            shutdown.clone(),
        )));
    }
    Ok((addrs.try_into().expect("five listeners"), tasks))
}
