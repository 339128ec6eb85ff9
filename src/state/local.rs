//! The default state: files in a folder beside the runbook (`.redrive/`) — the journal, a lock
//! file and the token store.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::tokens::FileTokens;
use super::{History, Journal, Lock, StateError, Store, TokenStore, journal};

/// A runbook's state in `dir`.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    name: String,
    tokens: Arc<dyn TokenStore>,
}

/// The lock file, held for as long as this value lives.
#[derive(Debug)]
struct FileLock {
    _file: File,
}

impl Lock for FileLock {}

impl LocalStore {
    /// The state of the runbook named `name`, kept in `dir`.
    #[must_use]
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            tokens: Arc::new(FileTokens::new(&dir.join("tokens"))),
        }
    }

    /// The same, with another token store (rehearsals keep tokens in memory).
    #[must_use]
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenStore>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Where the journal lives.
    #[must_use]
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(format!("{}.journal.jsonl", self.name))
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Store for LocalStore {
    fn history(&self) -> Result<History, StateError> {
        journal::history(&self.journal_path())
    }

    fn history_for_apply(&self) -> Result<(History, journal::compact::Compaction), StateError> {
        journal::compact::history(&self.journal_path())
    }

    fn lock(&self) -> Result<Box<dyn Lock>, StateError> {
        let path = self.dir.join(format!("{}.lock", self.name));
        let io = |error| StateError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(FileLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(StateError::Locked { path }),
            Err(TryLockError::Error(error)) => Err(io(error)),
        }
    }

    fn journal(&self) -> Result<Journal, StateError> {
        Journal::open(&self.journal_path())
    }

    fn tokens(&self) -> Arc<dyn TokenStore> {
        self.tokens.clone()
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}
