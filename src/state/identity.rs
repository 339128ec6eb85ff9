//! The lock per runbook identity: the state directory's lock stops a second apply in the same
//! folder, this one a second apply of the same runbook from a copy in another folder or with
//! another `--state-dir`, which has a journal of its own and would send everything again.
//!
//! The identity is the runbook's `name` plus its providers' rendered base URLs: two runbooks
//! sharing a folder are not blocked, a copy pointed at the same endpoints is. Rehearsals talk to
//! a simulator on random ports, so they are keyed by name and state directory instead. The lock
//! is a file named by the identity's SHA-256 in a per-user runtime directory
//! (`$XDG_RUNTIME_DIR/redrive/`, else `<temp>/redrive-locks-<uid>/`, created 0700), taken with
//! `File::try_lock`: the operating system releases it when the process ends, however it ends.
//! While held, it says who holds it (process, runbook, state directory, since when).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::{Lock, StateError};

/// What identifies one runbook's apply across copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    /// A real apply: the runbook's name and its providers' base URLs (`kind url`, any order).
    #[must_use]
    pub fn of(name: &str, endpoints: &[String]) -> Self {
        let mut endpoints: Vec<&str> = endpoints.iter().map(|e| e.trim_end_matches('/')).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        Self(format!("{name}\n{}", endpoints.join("\n")))
    }

    /// A rehearsal: the simulator's ports change every run, its state directory does not.
    #[must_use]
    pub fn rehearsal(name: &str, state_dir: &Path) -> Self {
        let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
        Self(format!("{name}\nsandbox\n{}", dir.display()))
    }

    fn file_name(&self) -> String {
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.lock", &hex[..32])
    }
}

/// The lock, held for as long as this value lives.
#[derive(Debug)]
struct IdentityLock {
    _file: File,
}

impl Lock for IdentityLock {}

/// The per-user directory of identity locks, created owner-only.
fn lock_dir() -> std::io::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() && runtime.is_dir() => runtime.join("redrive"),
        _ => std::env::temp_dir().join(format!("redrive-locks-{}", user())),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // In a shared temp directory another user could have made it first.
        let meta = std::fs::symlink_metadata(&dir)?;
        let mine = std::fs::metadata("/proc/self").map_or(true, |me| me.uid() == meta.uid());
        if !meta.is_dir() || !mine || meta.mode() & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "it is not a directory of this user's, closed to others",
            ));
        }
    }
    Ok(dir)
}

/// The user, for the lock directory's name.
fn user() -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(me) = std::fs::metadata("/proc/self") {
            return me.uid().to_string();
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".to_owned())
}

/// Takes the lock of `identity`; `holder` says who this apply is, for a second one to read.
///
/// # Errors
/// [`StateError::Busy`] while another apply of the same identity runs; I/O errors.
pub fn lock(identity: &Identity, holder: &str) -> Result<Box<dyn Lock>, StateError> {
    let dir = lock_dir().map_err(|error| StateError::Io {
        path: std::env::temp_dir(),
        error,
    })?;
    let path = dir.join(identity.file_name());
    let io = |error| StateError::Io {
        path: path.clone(),
        error,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            // Only the holder writes, so a reader never sees a half-written note for long.
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(holder.as_bytes()).map_err(io)?;
            Ok(Box::new(IdentityLock { _file: file }))
        }
        Err(TryLockError::WouldBlock) => {
            let mut note = String::new();
            let _ = file.take(4096).read_to_string(&mut note);
            let holder = if note.trim().is_empty() {
                "a process that is starting".to_owned()
            } else {
                note.trim().to_owned()
            };
            Err(StateError::Busy { holder, path })
        }
        Err(TryLockError::Error(error)) => Err(io(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_the_name_and_the_endpoints() {
        let a = Identity::of("r", &["vcf https://a/".into(), "digicert https://b".into()]);
        let b = Identity::of("r", &["digicert https://b".into(), "vcf https://a".into()]);
        assert_eq!(a.file_name(), b.file_name());
        assert_ne!(a, Identity::of("other", &["vcf https://a".into()]));
        assert_ne!(a, Identity::of("r", &["vcf https://c".into()]));
    }

    #[test]
    fn a_second_lock_of_one_identity_is_refused_and_names_the_first() {
        let id = Identity::of(
            &format!("unit-{}", std::process::id()),
            &["http https://lock.example".into()],
        );
        let held = lock(&id, "pid 1, runbook /a/r.yaml").expect("first");
        match lock(&id, "pid 2") {
            Err(StateError::Busy { holder, .. }) => assert_eq!(holder, "pid 1, runbook /a/r.yaml"),
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(lock(&id, "pid 2").is_ok());
    }
}
