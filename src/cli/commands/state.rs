//! Which state a command reads and writes. In order: `--state-dir DIR` (files there), `--state
//! DSN`, `REDRIVE_STATE`, the runbook's `state: {dsn: …}`, else `.redrive/` beside the runbook.
//! Rehearsals (`--sandbox`) always keep theirs in files: their simulated world is a file, and a
//! rehearsal's history must never decide a real plan. The DSN is never printed: messages and
//! `status` show `postgres://host:port/db`.

use std::path::{Path, PathBuf};

use crate::manifest::runbook::Runbook;
use crate::state::postgres::{Dsn, PgStore};
use crate::state::tokens::MemoryTokens;
use crate::state::{LocalStore, StateError, Store};
use crate::ui::printer::Printer;

/// The environment variable naming the shared state.
pub const STATE_ENV: &str = "REDRIVE_STATE";

/// What the command line said about the state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Where<'a> {
    /// `--state-dir`.
    pub dir: Option<&'a Path>,
    /// `--state`.
    pub shared: Option<&'a str>,
}

/// The state a command uses.
#[derive(Debug)]
pub enum Chosen {
    Local(LocalStore),
    Shared(Box<PgStore>),
}

impl Chosen {
    #[must_use]
    pub fn store(&self) -> &dyn Store {
        match self {
            Self::Local(s) => s,
            Self::Shared(s) => s.as_ref(),
        }
    }

    /// The folder of a local state (where a rehearsal's world lives).
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Self::Local(s) => Some(s.dir()),
            Self::Shared(_) => None,
        }
    }

    /// Where the journal is, for `status` and messages: its file, or `postgres://host:port/db`.
    #[must_use]
    pub fn journal(&self) -> String {
        match self {
            Self::Local(s) => s.journal_path().display().to_string(),
            Self::Shared(s) => s.location(),
        }
    }
}

/// A DSN from the command line, the environment or the runbook, by precedence; `None`: local.
fn shared_dsn(
    rb: &Runbook,
    wanted: Where<'_>,
) -> Result<Option<(String, &'static str)>, StateError> {
    if wanted.dir.is_some() {
        return Ok(None);
    }
    if let Some(flag) = wanted.shared {
        return Ok(Some((flag.to_owned(), "--state")));
    }
    if let Some(env) = std::env::var(STATE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Ok(Some((env, STATE_ENV)));
    }
    let Some(spec) = &rb.manifest.state else {
        return Ok(None);
    };
    match crate::providers::secret::resolve(&spec.dsn, rb.dir()) {
        Ok(secret) => Ok(Some((
            secret.expose().to_owned(),
            "the runbook's `state.dsn`",
        ))),
        Err(e) => Err(StateError::Setting {
            name: "state.dsn",
            why: format!("{e}; it names the runbook's shared state ({})", spec.dsn),
        }),
    }
}

/// Whether a shared state is asked for at all (without reading a secret).
fn shared_configured(rb: &Runbook, wanted: Where<'_>) -> bool {
    wanted.dir.is_none()
        && (wanted.shared.is_some()
            || std::env::var(STATE_ENV).is_ok_and(|v| !v.trim().is_empty())
            || rb.manifest.state.is_some())
}

/// Who this apply is, for the shared lock's holder column: no secrets.
fn holder(rb: &Runbook) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned());
    format!(
        "process {} on {host}, runbook {}, since {}",
        std::process::id(),
        std::fs::canonicalize(rb.path())
            .unwrap_or_else(|_| rb.path().to_owned())
            .display(),
        jiff::Timestamp::now()
    )
}

/// The state of a runbook, chosen by precedence (module docs).
///
/// # Errors
/// When the shared state is asked for and cannot be used.
pub fn choose(
    rb: &Runbook,
    wanted: Where<'_>,
    sandbox: bool,
    printer: &mut Printer,
) -> anyhow::Result<Chosen> {
    let dir: PathBuf = wanted
        .dir
        .map_or_else(|| rb.dir().join(".redrive"), Path::to_owned);
    if sandbox {
        if shared_configured(rb, wanted) {
            printer.note(&format!(
                "note: a rehearsal keeps its state in {}; the shared state is for real applies\n",
                dir.join("sandbox").display()
            ))?;
        }
        return Ok(Chosen::Local(
            LocalStore::new(&dir.join("sandbox"), &rb.manifest.name)
                .with_tokens(std::sync::Arc::new(MemoryTokens::default())),
        ));
    }
    let Some((text, from)) = shared_dsn(rb, wanted)? else {
        return Ok(Chosen::Local(LocalStore::new(&dir, &rb.manifest.name)));
    };
    // Which setting held the unreadable DSN, since the DSN itself is not shown.
    let dsn = Dsn::parse(&text).map_err(|e| match e {
        StateError::Database {
            what, error, hint, ..
        } => StateError::Database {
            location: format!("named by {from}"),
            what,
            error,
            hint,
        },
        other => other,
    })?;
    let store = PgStore::connect(&dsn, &rb.manifest.name, &holder(rb))?;
    Ok(Chosen::Shared(Box::new(store)))
}
