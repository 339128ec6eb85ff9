//! The store's own runtime and connection pool. Sync callers (the [`Store`](crate::state::Store)
//! seam, the token store called from inside a provider, a lock dropped at the end of apply) hand
//! a future to it and wait on a plain channel: that works from any thread, inside or outside the
//! CLI's runtime, where blocking on a runtime from inside another one would panic.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

use super::{Dsn, STATEMENT_TIMEOUT};
use crate::state::StateError;

/// The runtime and the pool every call of one store goes through.
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    location: String,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Starts the runtime and the (lazy) pool; nothing is connected yet.
    ///
    /// # Errors
    /// When the runtime cannot start or the pool cannot be built.
    pub fn start(dsn: &Dsn) -> Result<Self, StateError> {
        let location = dsn.location().to_owned();
        let fail = |what: &str, error: String| StateError::Database {
            location: location.clone(),
            what: what.to_owned(),
            error,
            hint: "this is a local problem of redrive's, not of the database",
        };
        // One worker: the store's work is waiting on the network; the cores belong to apply.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redrive-state")
            .enable_all()
            .build()
            .map_err(|e| fail("start the state runtime", e.to_string()))?;
        let manager = Manager::from_config(
            dsn.config().clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // The journal writer, the lock's heartbeat, the leases' renewal, a cooperative wave's
        // claimer and finisher, `sent` marks and the occasional read: a renewal that waits for
        // a connection past the lease loses this runner's claimed actions to the others.
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(STATEMENT_TIMEOUT))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| fail("build the connection pool", e.to_string()))?;
        Ok(Self {
            runtime: Some(runtime),
            pool,
            location,
        })
    }

    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `postgres://host:port/db`.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `fut` on the store's runtime and waits for it, from any thread.
    pub fn call<F, T>(&self, fut: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the state runtime runs every task it is given to the end")
    }

    /// Runs `fut` on the store's runtime in the background.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bridge")
            .spawn(fut)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics inside another runtime:
        // whatever is left (an idle connection) is cut loose instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An error of the database client or of the pool, with the SQLSTATE the server sent, if any.
pub(super) trait Cause {
    fn sql_state(&self) -> Option<&SqlState>;
    /// What went wrong, with the server's message or the operating system's cause: the
    /// errors' own `Display` stops at "db error" or "error connecting to server".
    fn detail(&self) -> String;
}

impl Cause for tokio_postgres::Error {
    fn sql_state(&self) -> Option<&SqlState> {
        self.code()
    }

    fn detail(&self) -> String {
        if let Some(db) = self.as_db_error() {
            return format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
        }
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        // Bounded: a cause chain is a few links long.
        for _ in 0..8 {
            let Some(cause) = source else { break };
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}

impl Cause for deadpool_postgres::PoolError {
    fn sql_state(&self) -> Option<&SqlState> {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.code(),
            _ => None,
        }
    }

    fn detail(&self) -> String {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.detail(),
            other => other.to_string(),
        }
    }
}

/// What was being done when the database failed, to turn its error into a [`StateError`].
pub(super) struct Doing<'a> {
    location: &'a str,
    what: &'a str,
}

/// A database error while doing `what`, with the hint for its cause.
pub(super) fn database<'a>(location: &'a str, what: &'a str) -> Doing<'a> {
    Doing { location, what }
}

impl Doing<'_> {
    pub(super) fn at<E: Cause>(&self, e: &E) -> StateError {
        StateError::Database {
            location: self.location.to_owned(),
            what: self.what.to_owned(),
            // The server may quote what it was sent, and that may hold the password.
            error: crate::providers::redact::mask(&e.detail()).into_owned(),
            hint: hint(e.sql_state()),
        }
    }
}

/// A hint for the class of failure, by the SQLSTATE the server answered (none: the connection
/// itself failed).
fn hint(state: Option<&SqlState>) -> &'static str {
    match state {
        Some(s)
            if *s == SqlState::INVALID_PASSWORD
                || *s == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "check the user and password in the DSN (`--state`, `REDRIVE_STATE` or the runbook's `state:`)"
        }
        Some(s) if *s == SqlState::INVALID_CATALOG_NAME => {
            "create the database first (`createdb NAME`), or fix its name in the DSN"
        }
        Some(s) if *s == SqlState::INSUFFICIENT_PRIVILEGE => {
            "the first use needs CREATE on the database (for the `redrive` schema); later ones USAGE on that schema and read/write on its tables"
        }
        Some(_) => "the database refused the statement; the SQLSTATE above names why",
        None => {
            "check that the server runs and is reachable at that host and port (`pg_isready -h HOST -p PORT`)"
        }
    }
}

/// `fut`, or a timeout error after [`STATEMENT_TIMEOUT`].
pub(super) async fn timed<F: Future>(location: &str, fut: F) -> Result<F::Output, StateError> {
    tokio::time::timeout(STATEMENT_TIMEOUT, fut)
        .await
        .map_err(|_| StateError::Database {
            location: location.to_owned(),
            what: "wait for the database".to_owned(),
            error: format!("no answer within {}s", STATEMENT_TIMEOUT.as_secs()),
            hint: "check the server's load and the network; a lock another session holds on the tables also stalls statements",
        })
}
