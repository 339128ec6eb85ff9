//! The report files of one apply, opened before anything is sent: a path that cannot be written
//! fails the apply up front (exit 1, naming the path) instead of after every request went out.

use std::fs::File;
use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Which report a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Json,
    Junit,
    Markdown,
    Html,
}

struct Output {
    kind: Kind,
    path: PathBuf,
    file: File,
    /// `$GITHUB_STEP_SUMMARY` is appended to, as GitHub expects; other reports are replaced.
    append: bool,
    /// Created by `open`: removed again when the run ends without writing it.
    created: bool,
    written: bool,
}

/// A report path that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report {}: {source}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The open report files.
#[derive(Default)]
pub struct Outputs {
    files: Vec<Output>,
}

impl Outputs {
    /// Opens (creating when needed) every report file, without truncating yet.
    ///
    /// # Errors
    /// The first path that cannot be opened for writing.
    pub fn open(reports: &[(Kind, &Path)]) -> Result<Self, OpenError> {
        let summary = std::env::var_os("GITHUB_STEP_SUMMARY");
        // Built in place: on an error, drop removes the files created so far.
        let mut outputs = Self::default();
        for &(kind, path) in reports {
            let append = summary.as_deref().is_some_and(|s| Path::new(s) == path);
            let existed = path.exists();
            let fail = |source| OpenError {
                path: path.to_owned(),
                source,
            };
            if path.is_dir() {
                return Err(fail(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "it is a directory",
                )));
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(append)
                .write(!append)
                .open(path)
                .map_err(fail)?;
            outputs.files.push(Output {
                kind,
                path: path.to_owned(),
                file,
                append,
                created: !existed,
                written: false,
            });
        }
        Ok(outputs)
    }

    /// Whether a report of this kind was asked for.
    #[must_use]
    pub fn wants(&self, kind: Kind) -> bool {
        self.files.iter().any(|o| o.kind == kind)
    }

    /// Writes every report, each rendered by `render`.
    ///
    /// # Errors
    /// A failed write, naming the path.
    pub fn write(&mut self, render: &dyn Fn(Kind) -> String) -> anyhow::Result<()> {
        use anyhow::Context as _;
        for o in &mut self.files {
            let text = render(o.kind);
            let path = o.path.display().to_string();
            if !o.append {
                o.file
                    .set_len(0)
                    .and_then(|()| o.file.rewind())
                    .with_context(|| format!("cannot write the report {path}"))?;
            }
            o.file
                .write_all(text.as_bytes())
                .and_then(|()| o.file.flush())
                .with_context(|| format!("cannot write the report {path}"))?;
            o.written = true;
        }
        Ok(())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for o in &self.files {
            if o.created && !o.written {
                let _ = std::fs::remove_file(&o.path);
            }
        }
    }
}
