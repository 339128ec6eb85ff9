//! Secrets: references in the runbook, resolved at the last moment into a type that never prints
//! its value.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::manifest::model::SecretRef;
use crate::manifest::paths;

/// A resolved secret. Debug and Display print `*****`; only [`Secret::expose`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A value redrive sends as a credential (a resolved secret, a token it obtained): it is
    /// registered for redaction, so no output shows it even when a server echoes it back.
    #[must_use]
    pub fn registered(value: impl Into<String>) -> Self {
        let value = value.into();
        super::redact::register(&value);
        Self(value)
    }

    /// The value, for the one place that puts it on the wire.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(*****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable `{name}` is not set")]
    MissingEnv { name: String },
    #[error("the environment variable `{name}` is empty")]
    EmptyEnv { name: String },
    #[error("cannot read the secret file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Resolves a reference; `base` is the runbook's folder for `{file: …}`.
///
/// # Errors
/// When the variable is unset or empty, or the file cannot be read.
pub fn resolve(reference: &SecretRef, base: &Path) -> Result<Secret, SecretError> {
    match reference {
        SecretRef::Env(name) => match std::env::var(name) {
            Ok(v) if v.is_empty() => Err(SecretError::EmptyEnv { name: name.clone() }),
            Ok(v) => Ok(Secret::registered(v)),
            Err(_) => Err(SecretError::MissingEnv { name: name.clone() }),
        },
        SecretRef::File(written) => {
            // Confined and type-checked at the moment of reading, not only at validate time:
            // the file may have been swapped for a symlink or a FIFO since.
            let file_error = |source| SecretError::File {
                path: base.join(written),
                source,
            };
            let bytes = paths::read_confined(base, written).map_err(file_error)?;
            let mut text = String::from_utf8(bytes).map_err(|_| {
                file_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it is not UTF-8",
                ))
            })?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            Ok(Secret::registered(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "***** Secret(*****)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn files_lose_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("redrive-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("s"), "value\n").expect("write");
        let s = resolve(&SecretRef::File("s".into()), &dir).expect("read");
        assert_eq!(s.expose(), "value");
        let e = resolve(&SecretRef::Env("REDRIVE_SURELY_UNSET_VAR".into()), &dir).unwrap_err();
        assert!(e.to_string().contains("REDRIVE_SURELY_UNSET_VAR"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn files_outside_the_folder_or_not_regular_are_refused_at_read_time() {
        let root = std::env::temp_dir().join(format!("redrive-secret-out-{}", std::process::id()));
        let dir = root.join("runbook");
        std::fs::create_dir_all(dir.join("secrets")).expect("dir");
        std::fs::write(root.join("outside"), "stolen").expect("write");
        std::fs::write(dir.join("secrets/ok"), "fine").expect("write");
        // Valid when checked, then swapped for a symlink that leads out.
        std::os::unix::fs::symlink(root.join("outside"), dir.join("secrets/swapped"))
            .expect("link");
        let read = |p: &str| resolve(&SecretRef::File(p.into()), &dir);
        assert_eq!(read("secrets/ok").expect("inside").expose(), "fine");
        for bad in ["secrets/swapped", "../outside", "/etc/passwd", "secrets"] {
            let e = read(bad).expect_err(bad);
            assert!(!e.to_string().contains("stolen"), "{e}");
        }
        let fifo = dir.join("secrets/fifo");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            // Returns at once instead of blocking on a FIFO nobody writes to.
            assert!(read("secrets/fifo").is_err());
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
