//! The JSON plan written as it is made, straight into the file it ends up in: stdout when that
//! is a regular file, or `--out`'s temporary file. At a million actions that is the 458 MB
//! document written once instead of spooled and copied. A plan that fails half-way leaves
//! nothing: stdout's file is cut back to where it was, the temporary file is removed. Where
//! the output cannot be cut back (a pipe, a terminal) the document is spooled and copied once
//! it is whole.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::spool::Store;
use crate::plan::file::Layout;
use crate::plan::line::ActionLines;
use crate::plan::{Plan, PlanAction, PlanJob};
use crate::providers::RequestPreview;

/// Where the document is written, and what happens to it at the end.
enum Dest {
    /// stdout's file, `start` bytes long before the plan: cut back to them on failure.
    Stdout { file: File, start: u64 },
    /// `--out`'s temporary file, renamed over `path` when the plan is whole.
    Out { tmp: PathBuf, path: PathBuf },
    /// A spool, copied to stdout when the plan is whole.
    Spool,
}

/// The JSON document of a plan being made (the [`crate::plan::file::write_json`] document,
/// byte for byte).
pub struct Stream {
    store: Store,
    dest: Dest,
    layout: Layout,
    lines: ActionLines,
    line: Vec<u8>,
    /// The first write that failed: reported once the plan is made.
    error: Option<io::Error>,
    done: bool,
}

/// What is left to do with the document once it is whole.
pub enum Written {
    /// It is where it belongs.
    InPlace,
    /// It is in a spool, to be copied to stdout.
    Spooled(Box<Stream>),
}

impl Stream {
    fn with(store: Store, dest: Dest) -> Self {
        Self {
            store,
            dest,
            layout: Layout::default(),
            lines: ActionLines::default(),
            line: Vec::new(),
            error: None,
            done: false,
        }
    }

    /// Into stdout's regular file, which is `start` bytes long and written at its end.
    ///
    /// # Errors
    /// When the file's handle cannot be duplicated.
    pub fn to_stdout(file: File, start: u64) -> io::Result<Self> {
        let store = Store::File {
            w: BufWriter::with_capacity(1 << 16, file.try_clone()?),
            len: 0,
        };
        Ok(Self::with(store, Dest::Stdout { file, start }))
    }

    /// Into a temporary file beside `path`, renamed over it when the plan is whole.
    ///
    /// # Errors
    /// When the temporary file cannot be made.
    pub fn to_file(path: &Path) -> io::Result<Self> {
        let tmp = crate::plan::file::temporary_beside(path);
        let file = File::create(&tmp)?;
        let store = Store::File {
            w: BufWriter::with_capacity(1 << 16, file),
            len: 0,
        };
        Ok(Self::with(
            store,
            Dest::Out {
                tmp,
                path: path.to_owned(),
            },
        ))
    }

    /// Into memory (the fallback of a spool whose folder cannot be written).
    #[cfg(test)]
    #[must_use]
    pub fn in_memory() -> Self {
        Self::with(Store::Memory(Vec::new()), Dest::Spool)
    }

    /// Into a spool, for an output that cannot be cut back.
    #[must_use]
    pub fn spooled() -> Self {
        Self::with(Store::new(), Dest::Spool)
    }

    fn keep(&mut self, result: io::Result<()>) {
        if let Err(e) = result
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    /// The plan's fields before its jobs.
    pub fn begin(&mut self, head: &Plan) {
        let result = self.layout.begin(&mut self.store, head);
        self.keep(result);
    }

    /// One action of job `head` (which is opened at its first).
    pub fn action(&mut self, head: &PlanJob, action: &PlanAction, request: &RequestPreview) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        let result = self
            .open(head)
            .and_then(|()| self.layout.action(&mut self.store))
            .and_then(|()| self.lines.write(&mut self.line, action, request))
            .and_then(|()| self.store.append(&self.line));
        self.keep(result);
    }

    /// Job `head` has every action written (it is opened here when it has none).
    pub fn job_done(&mut self, head: &PlanJob) {
        if self.error.is_some() {
            return;
        }
        let result = self
            .open(head)
            .and_then(|()| self.layout.job_end(&mut self.store, head));
        self.keep(result);
    }

    /// Opens job `head` unless it is open: at its first action, or at its end if it has none.
    fn open(&mut self, head: &PlanJob) -> io::Result<()> {
        if self.layout.in_job() {
            return Ok(());
        }
        self.layout.job_begin(&mut self.store, head)
    }

    /// Ends the document with `plan`'s fields after its jobs and puts it where it belongs.
    ///
    /// # Errors
    /// The first write that failed, and renaming `--out`'s file.
    pub fn end(mut self, plan: &Plan) -> io::Result<Written> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.layout.end(&mut self.store, plan)?;
        self.store.flush()?;
        match &self.dest {
            Dest::Stdout { .. } => {}
            Dest::Out { tmp, path } => std::fs::rename(tmp, path)?,
            Dest::Spool => return Ok(Written::Spooled(Box::new(self))),
        }
        self.done = true;
        Ok(Written::InPlace)
    }

    /// A spooled document, in blocks.
    ///
    /// # Errors
    /// The sink's, and reading the spool.
    pub fn copy(&mut self, each: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(crate::ui::diff::CHUNK);
        self.store.read((0, self.store.len()), &mut buf, each)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Stream {
    /// A plan that did not end leaves nothing behind.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // What is still buffered must not reach the file after it is cut back.
        if let Store::File { w, .. } = std::mem::replace(&mut self.store, Store::Memory(Vec::new()))
        {
            drop(w.into_parts());
        }
        match &self.dest {
            Dest::Stdout { file, start } => {
                let _ = file.set_len(*start);
            }
            Dest::Out { tmp, .. } => {
                let _ = std::fs::remove_file(tmp);
            }
            Dest::Spool => {}
        }
    }
}
