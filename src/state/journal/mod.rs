//! The local journal: one JSON line per state change of every action, in a file beside the
//! runbook. Concurrent appends share one `fsync` (group commit, in `writer`); every append starts
//! on a new line, and a damaged line is counted and skipped on replay, never fatal.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use super::writer::{self, Pending, Shared};
use super::{History, Record, StateError as JournalError, Ticket};

/// The journal as apply sees it: a handle shared by every task, whatever the backend.
#[derive(Debug, Clone)]
pub struct Journal(Arc<dyn Backend>);

/// What a journal backend does: queue records and say when they are durable.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Queues a record; the ticket says when it is durable. `linger`: its sync may wait a
    /// moment for others.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    fn submit(&self, record: &Record, linger: bool) -> Result<Ticket, JournalError>;
    /// Queues a record nothing waits for: durable with the next sync.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    fn submit_unsynced(&self, record: &Record) -> Result<(), JournalError>;
    /// Queues many records at once (none: a barrier).
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    fn submit_all(&self, records: &[Record]) -> Result<Ticket, JournalError>;
    /// How many syncs it has made.
    fn syncs(&self) -> u64;
    /// Where it is, for messages.
    fn location(&self) -> &Path;
}

/// The local file journal. Appends go through one writer thread.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    tx: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
}

impl Journal {
    #[must_use]
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self(backend)
    }

    /// Opens (creating) a local journal file for appending; needs a tokio runtime.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Ok(Self(Arc::new(FileJournal::open(path)?)))
    }

    /// Queues a record and returns at once; the ticket tells when it is durable. Records are
    /// kept in submission order.
    ///
    /// Meant for a record that is waited for only after a round trip (a `sent`, whose answer
    /// is not acted on before it is durable): during a burst its sync waits up to a
    /// millisecond for the others, so a thousand requests share a few dozen syncs.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    pub fn submit(&self, record: &Record) -> Result<Ticket, JournalError> {
        self.0.submit(record, true)
    }

    /// Queues a record that nothing waits for (a final state): durable with the next sync, at
    /// the latest by [`Journal::barrier`]. A crash before that can lose it, which costs the
    /// next apply one re-check of the action.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    pub fn submit_unsynced(&self, record: &Record) -> Result<(), JournalError> {
        self.0.submit_unsynced(record)
    }

    /// How many syncs the backend has made.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.0.syncs()
    }

    /// Appends many records and returns once all are durable: in chunks, one write and one
    /// sync each, so a plan of 100,000 actions never sits in memory twice.
    ///
    /// # Errors
    /// When a write or a sync fails.
    pub async fn append_all(
        &self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<(), JournalError> {
        const CHUNK: usize = 4096;
        let mut chunk = Vec::with_capacity(CHUNK);
        for record in records {
            chunk.push(record);
            if chunk.len() >= CHUNK {
                self.0.submit_all(&chunk)?.wait().await?;
                chunk.clear();
            }
        }
        self.0.submit_all(&chunk)?.wait().await
    }

    /// Appends a record and returns once it is durable.
    ///
    /// # Errors
    /// When the write or the sync fails.
    pub async fn append(&self, record: &Record) -> Result<(), JournalError> {
        self.0.submit(record, false)?.wait().await
    }

    /// Returns once everything submitted so far is durable.
    ///
    /// # Errors
    /// When a write or a sync failed.
    pub async fn barrier(&self) -> Result<(), JournalError> {
        self.0.submit_all(&[])?.wait().await
    }

    /// Where it is, for messages.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.0.location()
    }
}

impl FileJournal {
    /// Opens (creating) the journal for appending; needs a tokio runtime for its writer.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io)?;
        // A crash mid-line leaves a torn tail: the next record must not be glued to it.
        if ends_torn(&mut file).map_err(io)? {
            file.write_all(b"\n").map_err(io)?;
        }
        let (tx, rx) = mpsc::channel::<Pending>();
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        tokio::task::spawn_blocking(move || writer::run(file, &rx, &theirs));
        Ok(Self {
            path: path.to_owned(),
            tx,
            shared,
        })
    }

    fn enqueue(&self, line: Vec<u8>, linger: bool) -> Result<Ticket, JournalError> {
        let (done, wait) = oneshot::channel();
        self.send(Pending {
            line,
            linger,
            done: Some(done),
        })?;
        Ok(Ticket::new(wait, self.path.clone()))
    }

    fn send(&self, pending: Pending) -> Result<(), JournalError> {
        let refused = |why: String| JournalError::Io {
            path: self.path.clone(),
            error: std::io::Error::other(why),
        };
        if let Some(earlier) = self.shared.broken.get() {
            return Err(refused(format!("an earlier write failed: {earlier}")));
        }
        self.tx
            .send(pending)
            .map_err(|_| refused("the journal writer stopped".into()))
    }
}

impl Backend for FileJournal {
    fn submit(&self, record: &Record, linger: bool) -> Result<Ticket, JournalError> {
        self.enqueue(line(record), linger)
    }

    fn submit_unsynced(&self, record: &Record) -> Result<(), JournalError> {
        self.send(Pending {
            line: line(record),
            linger: false,
            done: None,
        })
    }

    fn submit_all(&self, records: &[Record]) -> Result<Ticket, JournalError> {
        let mut chunk = Vec::with_capacity(records.len() * 256);
        for record in records {
            line::write(record, &mut chunk);
        }
        self.enqueue(chunk, false)
    }

    fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    fn location(&self) -> &Path {
        &self.path
    }
}

/// Whether a non-empty file does not end with a newline.
fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// A record as one JSON line.
fn line(record: &Record) -> Vec<u8> {
    // Sized for a whole record: grown from serde_json's default it is copied twice per line.
    let mut out = Vec::with_capacity(256 + record.target.len() + record.detail.len());
    line::write(record, &mut out);
    out
}

/// Every readable record of a journal, oldest first, and the (1-based) numbers of the lines that
/// are not records: a torn write or a damaged line costs that line only, never the rest.
///
/// # Errors
/// When the file cannot be read or is not a regular file.
pub fn replay(path: &Path) -> Result<(Vec<Record>, Vec<usize>), JournalError> {
    let mut records = Vec::new();
    let damaged = each(path, |r| records.push(r))?;
    Ok((records, damaged))
}

/// Hands every readable record to `f`, oldest first, one at a time (a journal of a million
/// actions is never in memory whole); the (1-based) numbers of the damaged lines.
///
/// # Errors
/// When the file cannot be read or is not a regular file.
pub fn each(path: &Path, mut f: impl FnMut(Record)) -> Result<Vec<usize>, JournalError> {
    let io = |error| JournalError::Io {
        path: path.to_owned(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    // A device in its place (/dev/full, /dev/zero) would be read forever.
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
    let mut damaged = Vec::new();
    // Bytes, not `lines()`: one line of invalid UTF-8 must not stop the reading.
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => f(r),
            Err(_) => damaged.push(i + 1),
        }
    }
    Ok(damaged)
}

/// The history of the journal at `path`, folded as it is read.
///
/// # Errors
/// When the file cannot be read or is not a regular file.
pub fn history(path: &Path) -> Result<History, JournalError> {
    let mut history = History::default();
    history.damaged = each(path, |r| history.fold(r))?;
    Ok(history)
}

pub mod compact;
mod line;
#[cfg(test)]
mod tests;
