//! The shared state in PostgreSQL: the journal, the apply lock (a lease with a heartbeat) and the
//! token store of one runbook, in the tables of the `redrive` schema, so that every CI runner or
//! machine given the same DSN sees the same history, the same lock and the same rotated tokens.
//!
//! The [`Store`] seam is synchronous and apply's engine runs on the CLI's own tokio runtime, so
//! every database call runs on a small runtime of the store's own ([`Bridge`]): a sync caller
//! blocks on a channel, never on a nested runtime, and the journal's writer and the lock's
//! heartbeat keep going whatever the caller's runtime is doing.

mod bridge;
mod dsn;
mod journal;
pub mod lease;
mod lock;
mod schema;
pub mod share;
mod tokens;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use bridge::Bridge;
pub use dsn::Dsn;
pub use lock::Joined;
pub use schema::{SUPPORTED, Version};

use super::{History, Journal, Lock, Record, State, StateError, Store, TokenStore};

/// How long a lock (or, later, an action's lease) lives without a heartbeat: a runner killed
/// with `kill -9` holds it at most this long. `REDRIVE_STATE_LEASE` (`30s`, `1500ms`) changes it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// The environment variable that sets the lease.
pub const LEASE_ENV: &str = "REDRIVE_STATE_LEASE";
/// Every statement gives up after this long: an unreachable or stuck server is an error, not a
/// hang.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The lease from `REDRIVE_STATE_LEASE`, or the default.
///
/// # Errors
/// When the variable is set to something that is not a duration from 1s to 1h.
pub fn lease_from_env() -> Result<Duration, StateError> {
    let Ok(text) = std::env::var(LEASE_ENV) else {
        return Ok(DEFAULT_LEASE);
    };
    let parsed = text
        .trim()
        .parse::<crate::manifest::model::Duration>()
        .map(|d| d.0)
        .ok()
        .filter(|d| (Duration::from_millis(500)..=Duration::from_secs(3600)).contains(d));
    parsed.ok_or_else(|| StateError::Setting {
        name: LEASE_ENV,
        why: format!("`{text}` is not a duration from 500ms to 1h (for example `30s`)"),
    })
}

/// One runbook's state in a PostgreSQL database.
#[derive(Debug)]
pub struct PgStore {
    bridge: Arc<Bridge>,
    /// The runbook's name: the key of its rows in every table.
    key: String,
    /// Who this apply is, for the lock's holder column (no secrets).
    holder: String,
    lease: Duration,
    /// The token of the lock this store holds: the journal writes only while it is still ours.
    fence: Arc<Mutex<Option<String>>>,
    /// Said once the lock is taken over from a dead runner, for the CLI to print.
    recovered: Mutex<Option<String>>,
    tokens: Arc<dyn TokenStore>,
}

impl PgStore {
    /// Connects, brings the schema up to date (refusing a newer one) and opens the state of the
    /// runbook `key`.
    ///
    /// # Errors
    /// When the database cannot be reached or used, or its schema is newer than this binary.
    pub fn connect(dsn: &Dsn, key: &str, holder: &str) -> Result<Self, StateError> {
        let lease = lease_from_env()?;
        let bridge = Arc::new(Bridge::start(dsn)?);
        let pool = bridge.pool().clone();
        let location = bridge.location().to_owned();
        bridge.call(async move { schema::migrate(&pool, &location).await })?;
        let tokens = Arc::new(tokens::PgTokens::new(bridge.clone()));
        Ok(Self {
            bridge,
            key: key.to_owned(),
            holder: holder.to_owned(),
            lease,
            fence: Arc::new(Mutex::new(None)),
            recovered: Mutex::new(None),
            tokens,
        })
    }

    /// The same store with another lease (`REDRIVE_STATE_LEASE` sets it for the CLI).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// What the lock recovered from a runner whose lease had expired, once.
    #[must_use]
    pub fn take_recovered(&self) -> Option<String> {
        self.recovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The bridge to the database (the cooperative apply's leases use it).
    #[must_use]
    pub fn bridge(&self) -> &Arc<Bridge> {
        &self.bridge
    }

    /// Takes or joins the lock of the cooperative run of the saved plan `digest`
    /// (`lock::acquire_run`); held until the returned lock drops.
    ///
    /// # Errors
    /// [`StateError::Leased`] while another apply holds the runbook; database errors.
    pub fn join_run(&self, digest: &str) -> Result<(Box<dyn Lock>, Joined), StateError> {
        let (held, joined) = lock::acquire_run(
            &self.bridge,
            &self.key,
            &self.holder,
            self.lease,
            self.fence.clone(),
            digest,
        )?;
        Ok((Box::new(held), joined))
    }

    /// How long a lock or a lease outlives a runner that stopped renewing it.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The runbook's key in the tables.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PgStore {
    /// The history without the records of the cooperative run `run`: what a runner joining
    /// it plans from, as its first runner did. The run's own progress is in its leases, and
    /// what it sent unanswered is taken over and reconciled there, not re-planned.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub fn history_before(&self, run: &str) -> Result<History, StateError> {
        self.read_history(Some(run.to_owned()))
    }

    fn read_history(&self, skip_run: Option<String>) -> Result<History, StateError> {
        let pool = self.bridge.pool().clone();
        let key = self.key.clone();
        let location = self.bridge.location().to_owned();
        self.bridge.call(async move {
            let db = bridge::database(&location, "read the journal");
            let client = pool.get().await.map_err(|e| db.at(&e))?;
            let rows = bridge::timed(
                &location,
                client.query(
                    "SELECT seq, at, run, action, job, target, state, attempt, http_status, detail
                     FROM redrive.journal
                     WHERE state_key = $1 AND ($2::text IS NULL OR run <> $2) ORDER BY seq",
                    &[&key, &skip_run],
                ),
            )
            .await?
            .map_err(|e| db.at(&e))?;
            let mut records = Vec::with_capacity(rows.len());
            let mut damaged = Vec::new();
            for row in rows {
                let seq: i64 = row.get(0);
                let state: String = row.get(6);
                match state_of(&state) {
                    Some(state) => records.push(Record {
                        at: row.get(1),
                        run: row.get(2),
                        action: row.get(3),
                        job: row.get(4),
                        target: row.get(5),
                        state,
                        attempt: u32::try_from(row.get::<_, i32>(7)).unwrap_or_default(),
                        http_status: row
                            .get::<_, Option<i32>>(8)
                            .and_then(|s| u16::try_from(s).ok()),
                        detail: row.get(9),
                    }),
                    // A state this binary does not know (written by a newer one): that row
                    // only is skipped, as a damaged line is in a file.
                    None => damaged.push(usize::try_from(seq).unwrap_or(usize::MAX)),
                }
            }
            Ok(History::of(records, damaged))
        })
    }
}

impl Store for PgStore {
    fn history(&self) -> Result<History, StateError> {
        self.read_history(None)
    }

    fn lock(&self) -> Result<Box<dyn Lock>, StateError> {
        let (held, recovered) = lock::acquire(
            &self.bridge,
            &self.key,
            &self.holder,
            self.lease,
            self.fence.clone(),
        )?;
        *self
            .recovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = recovered;
        Ok(Box::new(held))
    }

    fn journal(&self) -> Result<Journal, StateError> {
        Ok(Journal::new(Arc::new(journal::PgJournal::open(
            &self.bridge,
            &self.key,
            self.fence.clone(),
        ))))
    }

    fn tokens(&self) -> Arc<dyn TokenStore> {
        self.tokens.clone()
    }

    fn location(&self) -> String {
        self.bridge.location().to_owned()
    }
}

/// The state a journal row names, by its serde name.
fn state_of(name: &str) -> Option<State> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The serde name of a state, as stored.
fn state_name(state: State) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
