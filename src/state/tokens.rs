//! The token store: token pairs a provider rotated (Venafi's single-use refresh token), kept
//! between runs so the next run does not present a consumed token. Values never reach plans,
//! journals or reports; the local store writes owner-only files.
//!
//! A renewal goes through [`TokenStore::hold`]: while a pair is held no other holder of the same
//! key (another task, process or runner sharing the store) can take it, so a single-use refresh
//! token is presented once however many runners find their access token expired together.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StateError;

/// An access token and the refresh token that renews it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    pub access: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh: Option<String>,
    /// When the access token expires, in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_at: Option<i64>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access", &"********")
            .field("refresh", &self.refresh.as_ref().map(|_| "********"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where rotated tokens are kept, by a key naming the provider endpoint and identity.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The pair stored under `key`, if any.
    ///
    /// # Errors
    /// When the store exists but cannot be read.
    fn get(&self, key: &str) -> Result<Option<TokenPair>, StateError>;

    /// Replaces the pair under `key`; durable when it returns.
    ///
    /// # Errors
    /// When it cannot be written.
    fn put(&self, key: &str, pair: &TokenPair) -> Result<(), StateError>;

    /// Takes the pair under `key` for a renewal, waiting while another holder has it. What is
    /// stored may have changed since it was last read: another runner may have rotated it.
    ///
    /// # Errors
    /// When the store cannot be read or the hold cannot be had in time.
    fn hold(&self, key: &str) -> Result<Box<dyn HeldPair + '_>, StateError>;
}

/// A pair taken for renewal. Dropping it without [`commit`](HeldPair::commit) leaves the stored
/// pair as it was and lets the next holder in.
pub trait HeldPair: Send {
    /// The pair stored when the hold was taken.
    fn current(&self) -> Option<&TokenPair>;

    /// Stores `pair` and releases the hold; durable when it returns.
    ///
    /// # Errors
    /// When it cannot be written (the stored pair is then unchanged).
    fn commit(self: Box<Self>, pair: &TokenPair) -> Result<(), StateError>;
}

/// Tokens kept in memory only (rehearsals, tests).
#[derive(Debug, Default)]
pub struct MemoryTokens(Mutex<HashMap<String, TokenPair>>);

impl TokenStore for MemoryTokens {
    fn get(&self, key: &str) -> Result<Option<TokenPair>, StateError> {
        Ok(self
            .0
            .lock()
            .expect("the token map is never poisoned")
            .get(key)
            .cloned())
    }

    fn put(&self, key: &str, pair: &TokenPair) -> Result<(), StateError> {
        self.0
            .lock()
            .expect("the token map is never poisoned")
            .insert(key.to_owned(), pair.clone());
        Ok(())
    }

    fn hold(&self, key: &str) -> Result<Box<dyn HeldPair + '_>, StateError> {
        // Memory is one process's: the provider already renews one pair at a time there.
        Ok(Box::new(MemoryHeld {
            store: self,
            key: key.to_owned(),
            current: self.get(key)?,
        }))
    }
}

struct MemoryHeld<'a> {
    store: &'a MemoryTokens,
    key: String,
    current: Option<TokenPair>,
}

impl HeldPair for MemoryHeld<'_> {
    fn current(&self) -> Option<&TokenPair> {
        self.current.as_ref()
    }

    fn commit(self: Box<Self>, pair: &TokenPair) -> Result<(), StateError> {
        self.store.put(&self.key, pair)
    }
}

/// One owner-only file per key in a folder of the state directory.
#[derive(Debug)]
pub struct FileTokens {
    dir: PathBuf,
}

impl FileTokens {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.json"))
    }
}

impl TokenStore for FileTokens {
    fn get(&self, key: &str) -> Result<Option<TokenPair>, StateError> {
        let path = self.path(key);
        let io = |error| StateError::Io {
            path: path.clone(),
            error,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a stored token pair: {e}"),
            ))
        })
    }

    fn put(&self, key: &str, pair: &TokenPair) -> Result<(), StateError> {
        let path = self.path(key);
        let io = |error| StateError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        // Written whole and renamed into place: a crash leaves the old pair or the new one.
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io)?;
        let text = serde_json::to_vec(pair).expect("token pairs serialize");
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    fn hold(&self, key: &str) -> Result<Box<dyn HeldPair + '_>, StateError> {
        let path = self.path(key).with_extension("lock");
        let io = |error| StateError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io)?;
        // Polled, not a blocking `lock()`: a holder that hangs (stopped, not dead: a dead one's
        // lock goes with it) must end in an error, not in a run that never finishes.
        let until = std::time::Instant::now() + HOLD_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "another process has held the token lock for {}s",
                            HOLD_WAIT.as_secs()
                        ),
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        Ok(Box::new(FileHeld {
            store: self,
            key: key.to_owned(),
            current: self.get(key)?,
            _lock: file,
        }))
    }
}

/// How long a renewal waits for another holder of the same pair: longer than any refresh call.
const HOLD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

struct FileHeld<'a> {
    store: &'a FileTokens,
    key: String,
    current: Option<TokenPair>,
    /// The advisory lock on `<pair>.lock`; closing the file releases it.
    _lock: std::fs::File,
}

impl HeldPair for FileHeld<'_> {
    fn current(&self) -> Option<&TokenPair> {
        self.current.as_ref()
    }

    fn commit(self: Box<Self>, pair: &TokenPair) -> Result<(), StateError> {
        // Written while the lock is still held, so the next holder reads this pair.
        self.store.put(&self.key, pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_survive_in_owner_only_files() {
        let dir = std::env::temp_dir().join(format!("redrive-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileTokens::new(&dir);
        assert_eq!(store.get("k").expect("read"), None);
        let pair = TokenPair {
            access: "a1".into(),
            refresh: Some("r1".into()),
            expires_at: Some(10),
        };
        store.put("k", &pair).expect("write");
        assert_eq!(FileTokens::new(&dir).get("k").expect("read"), Some(pair));
        assert!(!format!("{:?}", store.get("k")).contains("r1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path("k"))
                .expect("file")
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_holder_waits_and_reads_the_first_holders_pair() {
        let dir = std::env::temp_dir().join(format!("redrive-hold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pair = |n: &str| TokenPair {
            access: format!("a{n}"),
            refresh: Some(format!("r{n}")),
            expires_at: None,
        };
        let first = FileTokens::new(&dir);
        let held = first.hold("k").expect("hold");
        assert_eq!(held.current(), None);
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let second = FileTokens::new(&dir);
                let held = second.hold("k").expect("hold");
                held.current().cloned()
            })
        };
        // The second holder cannot be in yet (bounded: a tenth of a second).
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished());
        held.commit(&pair("1")).expect("commit");
        assert_eq!(waiter.join().expect("the waiter"), Some(pair("1")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
