//! The state seam: what earlier applies did (the journal), who is applying now (the lock) and the
//! tokens a provider rotated (the token store). Plan reads history through it, apply writes
//! through it; [`local`] keeps it in files beside the runbook, [`postgres`] in a database that
//! every runner shares.

pub mod identity;
pub mod journal;
pub mod local;
pub mod postgres;
pub mod tokens;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use journal::Journal;
pub use local::LocalStore;
pub use tokens::{TokenPair, TokenStore};

/// The states an action goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Planned,
    Sent,
    Succeeded,
    Converged,
    Failed,
    Unknown,
    Skipped,
}

impl State {
    /// Every state, in the order above.
    pub const ALL: [Self; 7] = [
        Self::Planned,
        Self::Sent,
        Self::Succeeded,
        Self::Converged,
        Self::Failed,
        Self::Unknown,
        Self::Skipped,
    ];

    /// Whether the action is finished for this apply.
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Planned | Self::Sent)
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When, RFC 3339.
    pub at: String,
    /// The apply this line belongs to.
    pub run: String,
    pub action: String,
    pub job: String,
    pub target: String,
    pub state: State,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    /// A redacted summary: messages and statuses, never request bodies or credentials.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub detail: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why the state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another apply of this runbook is running (the lock {} is held); wait for it or stop it",
        path.display()
    )]
    Locked { path: std::path::PathBuf },
    /// The same runbook (name and endpoints) is being applied from another folder or state
    /// directory: its own journal would not stop it from sending everything again.
    #[error(
        "another apply of this runbook is running ({holder}): the same runbook name and endpoints, from another folder or state directory (the lock {} is held)",
        path.display()
    )]
    Busy {
        holder: String,
        path: std::path::PathBuf,
    },
    #[error("cannot use the journal {}: {error}", path.display())]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// The shared state's lock is held by a live runner (its lease is being renewed).
    #[error(
        "another apply of this runbook is running ({holder}): its lock in {location} is leased until {until}"
    )]
    Leased {
        holder: String,
        location: String,
        until: String,
    },
    /// The shared state cannot be reached or used. `location` is the redacted
    /// `postgres://host:port/db`; nothing here carries the password.
    #[error("the state database {location}: cannot {what}: {error}")]
    Database {
        location: String,
        what: String,
        error: String,
        hint: &'static str,
    },
    /// The database was brought to a schema this binary does not know.
    #[error(
        "the state database {location} has schema version {found}, newer than this redrive knows ({supported})"
    )]
    TooNew {
        location: String,
        found: i32,
        supported: i32,
    },
    /// A cooperative run of this id exists for another plan.
    #[error("the run {run} in {location} was started from another plan")]
    PlanMismatch { run: String, location: String },
    /// A setting (an environment variable) is malformed.
    #[error("`{name}`: {why}")]
    Setting { name: &'static str, why: String },
}

impl StateError {
    /// What to do about it, for the line after the error.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Locked { .. } | Self::Busy { .. } => Some(
                "wait for the other apply to finish; a lock left by a process that died is released with it",
            ),
            Self::Leased { .. } => Some(
                "wait for the other apply to finish; a lock left by a runner that died is taken over once its lease expires (`REDRIVE_STATE_LEASE`, 30s by default)",
            ),
            Self::Database { hint, .. } => Some(hint),
            Self::TooNew { .. } => Some(
                "a newer redrive migrated this database: use that version (or newer) here too; redrive never downgrades a schema",
            ),
            Self::PlanMismatch { .. } => {
                Some("every runner of one cooperative apply must be given the same saved plan")
            }
            Self::Io { .. } | Self::Setting { .. } => None,
        }
    }

    /// Whether another apply holds the state (exit 5).
    #[must_use]
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            Self::Locked { .. } | Self::Busy { .. } | Self::Leased { .. }
        )
    }
}

/// What earlier applies did to one action.
#[derive(Debug, Clone)]
pub struct Past {
    /// The last state change.
    pub last: Record,
    /// When it last succeeded (or was found converged), RFC 3339.
    pub succeeded_at: Option<String>,
    /// When a request for it was last sent, RFC 3339.
    pub sent_at: Option<String>,
}

impl Past {
    /// The request may have reached the provider and no answer says how it ended.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        match self.last.state {
            State::Unknown => true,
            // A journal that ends at "sent" was stopped before the answer.
            State::Sent => true,
            // "Planned" after an earlier "sent" of the same run cannot happen; a bare intent
            // was never sent.
            _ => false,
        }
    }
}

/// What of an action's past a record sets, by its state: the one rule of [`History::fold`],
/// which the journal's compaction keeps lines by.
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    /// When it last succeeded.
    pub success: bool,
    /// When it was last sent.
    pub sent: bool,
    /// Its last state change.
    pub last: bool,
}

impl Reads {
    #[must_use]
    pub fn of(state: State) -> Self {
        Self {
            success: matches!(state, State::Succeeded | State::Converged),
            sent: state == State::Sent,
            // A skip records that nothing was sent in that run: what happened before still
            // stands (a success stays a success, an intent not acted on stays unsent).
            last: state != State::Skipped,
        }
    }
}

/// Every action's past, by action id, and how many journal lines could not be read.
#[derive(Debug, Default)]
pub struct History {
    pub actions: HashMap<String, Past>,
    /// Line numbers (1-based) of damaged journal lines, skipped.
    pub damaged: Vec<usize>,
}

impl History {
    /// Folds records, oldest first, into each action's past.
    #[must_use]
    pub fn of(records: impl IntoIterator<Item = Record>, damaged: Vec<usize>) -> Self {
        let mut history = Self {
            actions: HashMap::new(),
            damaged,
        };
        for r in records {
            history.fold(r);
        }
        history
    }

    /// Folds the next record, in journal order.
    pub fn fold(&mut self, r: Record) {
        let reads = Reads::of(r.state);
        // One state sets at most one of the two times.
        let time = |past: &mut Past, at: &str| {
            if reads.success {
                past.succeeded_at = Some(at.to_owned());
            } else if reads.sent {
                past.sent_at = Some(at.to_owned());
            }
        };
        // Most records are of an action seen before: looked up by reference, so neither its id
        // nor the record is copied.
        let Some(past) = self.actions.get_mut(&r.action) else {
            let (id, at) = (r.action.clone(), r.at.clone());
            let mut past = Past {
                last: r,
                succeeded_at: None,
                sent_at: None,
            };
            time(&mut past, &at);
            self.actions.insert(id, past);
            return;
        };
        time(past, &r.at);
        if reads.last {
            past.last = r;
        }
    }

    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Past> {
        self.actions.get(id)
    }
}

/// A submitted record; `wait` returns once it (and everything before it) is durable.
#[derive(Debug)]
pub struct Ticket {
    wait: oneshot::Receiver<std::io::Result<()>>,
    location: std::path::PathBuf,
}

impl Ticket {
    pub(crate) fn new(
        wait: oneshot::Receiver<std::io::Result<()>>,
        location: std::path::PathBuf,
    ) -> Self {
        Self { wait, location }
    }

    /// # Errors
    /// When the write or the sync failed.
    pub async fn wait(self) -> Result<(), StateError> {
        let io = |error| StateError::Io {
            path: self.location.clone(),
            error,
        };
        self.wait
            .await
            .map_err(|_| io(std::io::Error::other("the journal writer stopped")))?
            .map_err(io)
    }
}

/// Held while an apply runs; dropping it lets the next one in.
pub trait Lock: Send + fmt::Debug {}

/// Where a runbook's state lives. Plan reads its history; apply takes the lock, writes the
/// journal and keeps rotated tokens.
pub trait Store: Send + Sync + fmt::Debug {
    /// What earlier applies did, by action id.
    ///
    /// # Errors
    /// When the state exists but cannot be read.
    fn history(&self) -> Result<History, StateError>;

    /// The same, read by an apply that holds the lock: a store may first drop what its history
    /// no longer reads (a local journal made mostly of superseded lines), and says so.
    ///
    /// # Errors
    /// When the state cannot be read, or not rewritten.
    fn history_for_apply(&self) -> Result<(History, journal::compact::Compaction), StateError> {
        Ok((self.history()?, journal::compact::Compaction::Kept))
    }

    /// Takes the apply lock, or says who holds it.
    ///
    /// # Errors
    /// [`StateError::Locked`] while another apply runs; I/O errors.
    fn lock(&self) -> Result<Box<dyn Lock>, StateError>;

    /// Opens the journal for appending (needs a tokio runtime).
    ///
    /// # Errors
    /// When it cannot be opened.
    fn journal(&self) -> Result<Journal, StateError>;

    /// Tokens that providers rotated in earlier runs.
    fn tokens(&self) -> Arc<dyn TokenStore>;

    /// Where the state is, for messages.
    fn location(&self) -> String;
}
