//! The token store: token pairs a provider rotated (Venafi's single-use refresh token), kept
//! between runs so the next run does not present a consumed token. Values never reach plans,
//! journals or reports; the local store writes owner-only files.

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
}
