//! The journal: one JSON line per state change of every action. What the next step depends on
//! (the run's intents, each `sent`) is synced before that step; final states are written at once
//! and synced with the next sync. Concurrent appends share one `fsync` (group commit), a torn
//! last line is ignored on replay, and a file lock keeps a second apply of the same runbook out.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

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

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "another apply of this runbook is running (the lock {} is held); wait for it or stop it",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("cannot use the journal {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// How long the writer gathers `sent` records before syncing them (see [`Journal::submit`]).
const LINGER: Duration = Duration::from_millis(1);

struct Pending {
    line: Vec<u8>,
    /// Its sync may wait for more records (up to [`LINGER`]).
    linger: bool,
    /// Waiting for the line to be on disk; `None` for a line that rides on the next sync.
    done: Option<oneshot::Sender<std::io::Result<()>>>,
}

/// A submitted record; `wait` returns once it (and everything before it) is on disk.
#[derive(Debug)]
pub struct Ticket {
    wait: oneshot::Receiver<std::io::Result<()>>,
    path: PathBuf,
}

impl Ticket {
    /// # Errors
    /// When the write or the sync failed.
    pub async fn wait(self) -> Result<(), JournalError> {
        let io = |error| JournalError::Io {
            path: self.path.clone(),
            error,
        };
        self.wait
            .await
            .map_err(|_| io(std::io::Error::other("the journal writer stopped")))?
            .map_err(io)
    }
}

/// An open, locked journal. Appends go through one writer task.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    tx: mpsc::Sender<Pending>,
}

/// The lock file, held for as long as this value lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Where the journal of a runbook named `name` lives in `state_dir`.
#[must_use]
pub fn path_for(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.journal.jsonl"))
}

/// Takes the runbook's lock, or says who holds it.
///
/// # Errors
/// When another process holds it, or the state directory cannot be made.
pub fn lock(state_dir: &Path, name: &str) -> Result<Lock, JournalError> {
    let path = state_dir.join(format!("{name}.lock"));
    let io = |error| JournalError::Io {
        path: path.clone(),
        error,
    };
    std::fs::create_dir_all(state_dir).map_err(io)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(TryLockError::Error(error)) => Err(io(error)),
    }
}

impl Journal {
    /// Opens (creating) the journal for appending; needs a tokio runtime for its writer.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| JournalError::Io {
                path: path.to_owned(),
                error,
            })?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| JournalError::Io {
                path: path.to_owned(),
                error,
            })?;
        let (tx, rx) = mpsc::channel::<Pending>();
        tokio::task::spawn_blocking(move || {
            // Group commit: take everything queued, write it, sync once if anyone waits for
            // it, then acknowledge all. After a failure every later answer is that failure: a
            // journal with a hole cannot vouch for what follows it.
            let mut broken: Option<std::io::Error> = None;
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                if batch.iter().any(|p| p.linger) {
                    gather(&rx, &mut batch);
                }
                if broken.is_none() {
                    let mut buf = Vec::with_capacity(batch.iter().map(|p| p.line.len()).sum());
                    for p in &batch {
                        buf.extend_from_slice(&p.line);
                    }
                    let waited = batch.iter().any(|p| p.done.is_some());
                    let result = file
                        .write_all(&buf)
                        .and_then(|()| if waited { file.sync_data() } else { Ok(()) });
                    broken = result.err();
                }
                for done in batch.into_iter().filter_map(|p| p.done) {
                    let _ = done.send(match &broken {
                        None => Ok(()),
                        Some(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    });
                }
            }
        });
        Ok(Self {
            path: path.to_owned(),
            tx,
        })
    }

    /// Queues a record for the writer and returns at once; the ticket tells when it is on
    /// disk. Records reach the disk in submission order.
    ///
    /// Meant for a record that is waited for only after a round trip (a `sent`, whose answer
    /// is not acted on before it is on disk): its sync waits up to [`LINGER`] for the others
    /// of the same burst, so a thousand requests share a few dozen syncs instead of hundreds.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub fn submit(&self, record: &Record) -> Result<Ticket, JournalError> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        self.enqueue(line, true)
    }

    /// Queues a record that nothing waits for (a final state): it is written with the next
    /// batch and made durable by the next sync, at the latest by [`Journal::barrier`]. A crash
    /// of the process loses nothing (the line is in the file); a crash of the machine before
    /// that sync can lose it, which costs the next apply one re-check of the action.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub fn submit_unsynced(&self, record: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        self.send(Pending {
            line,
            linger: false,
            done: None,
        })
    }

    fn enqueue(&self, line: Vec<u8>, linger: bool) -> Result<Ticket, JournalError> {
        let (done, wait) = oneshot::channel();
        self.send(Pending {
            line,
            linger,
            done: Some(done),
        })?;
        Ok(Ticket {
            wait,
            path: self.path.clone(),
        })
    }

    fn send(&self, pending: Pending) -> Result<(), JournalError> {
        self.tx.send(pending).map_err(|_| JournalError::Io {
            path: self.path.clone(),
            error: std::io::Error::other("the journal writer stopped"),
        })
    }

    /// Appends many records and returns once all are on disk: serialized in chunks of about a
    /// megabyte, one write and one sync each, so a plan of 100,000 actions never sits in
    /// memory twice.
    ///
    /// # Errors
    /// When a write or a sync fails.
    pub async fn append_all(
        &self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<(), JournalError> {
        const CHUNK: usize = 1 << 20;
        let mut chunk = Vec::with_capacity(CHUNK + 4096);
        for record in records {
            serde_json::to_writer(&mut chunk, &record).expect("records serialize");
            chunk.push(b'\n');
            if chunk.len() >= CHUNK {
                self.enqueue(std::mem::take(&mut chunk), false)?
                    .wait()
                    .await?;
            }
        }
        self.enqueue(chunk, false)?.wait().await
    }

    /// Appends a record and returns once it is on disk.
    ///
    /// # Errors
    /// When the write or the sync fails.
    pub async fn append(&self, record: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        self.enqueue(line, false)?.wait().await
    }

    /// Returns once everything submitted so far is on disk.
    ///
    /// # Errors
    /// When a write or a sync failed.
    pub async fn barrier(&self) -> Result<(), JournalError> {
        self.enqueue(Vec::new(), false)?.wait().await
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Adds to `batch` what arrives within [`LINGER`]. A plain sleep rather than a timed receive:
/// senders then find no one to wake, where a waiting receiver would be woken for every record.
fn gather(rx: &mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    // Someone waits for this batch at once (a barrier, the run's intents): no lingering.
    if batch.iter().any(|p| p.done.is_some() && !p.linger) {
        return;
    }
    std::thread::sleep(LINGER);
    batch.extend(rx.try_iter());
}

/// Every record of a journal, oldest first. A torn last line (a crash mid-write) is ignored;
/// a damaged line elsewhere is an error, since the journal was synced line by line.
///
/// # Errors
/// When the file cannot be read or a complete line is not a record.
pub fn replay(path: &Path) -> Result<Vec<Record>, JournalError> {
    let io = |error| JournalError::Io {
        path: path.to_owned(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut records = Vec::new();
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) if i == last => {}
            Err(e) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {} is not a journal record: {e}", i + 1),
                )));
            }
        }
    }
    Ok(records)
}

/// The last state of each action (by id), with the record that set it.
#[must_use]
pub fn last_states(records: &[Record]) -> HashMap<String, Record> {
    let mut last = HashMap::new();
    for r in records {
        last.insert(r.action.clone(), r.clone());
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str, state: State) -> Record {
        Record {
            at: "2026-11-24T00:00:00Z".into(),
            run: "r1".into(),
            action: action.into(),
            job: "j".into(),
            target: "t".into(),
            state,
            attempt: 1,
            http_status: None,
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn appends_replay_and_tolerate_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("redrive-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = path_for(&dir, "rb");
        let journal = Journal::open(&path).expect("open");
        let mut writes = Vec::new();
        for i in 0..50 {
            let j = journal.clone();
            writes.push(tokio::spawn(async move {
                j.append(&record(&format!("a{i}"), State::Sent)).await
            }));
        }
        for w in writes {
            w.await.expect("task").expect("append");
        }
        journal
            .append(&record("a0", State::Succeeded))
            .await
            .expect("append");
        // A crash in the middle of a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"at\":\"2026"))
            .expect("torn write");
        let records = replay(&path).expect("replay");
        assert_eq!(records.len(), 51);
        let last = last_states(&records);
        assert_eq!(last["a0"].state, State::Succeeded);
        assert_eq!(last["a7"].state, State::Sent);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn final_states_reach_the_file_without_a_sync_of_their_own() {
        let dir = std::env::temp_dir().join(format!("redrive-unsynced-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = path_for(&dir, "rb");
        let journal = Journal::open(&path).expect("open");
        let mut tickets = Vec::new();
        for i in 0..20 {
            tickets.push(
                journal
                    .submit(&record(&format!("a{i}"), State::Sent))
                    .expect("sent"),
            );
            journal
                .submit_unsynced(&record(&format!("a{i}"), State::Succeeded))
                .expect("final");
        }
        for t in tickets {
            t.wait().await.expect("sent on disk");
        }
        // Written in submission order, with nothing waiting for the finals.
        journal
            .submit_unsynced(&record("late", State::Failed))
            .expect("final");
        let mut seen = false;
        for _ in 0..200 {
            if std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"late\"")) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen, "an unsynced record was not written");
        journal.barrier().await.expect("barrier");
        let records = replay(&path).expect("replay");
        assert_eq!(records.len(), 41);
        let last = last_states(&records);
        assert!((0..20).all(|i| last[&format!("a{i}")].state == State::Succeeded));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_by_every_later_wait() {
        // Every write to /dev/full fails, as on a full disk.
        let journal = Journal::open(Path::new("/dev/full")).expect("open");
        journal
            .submit_unsynced(&record("a0", State::Succeeded))
            .expect("queued");
        let err = journal.barrier().await.unwrap_err();
        assert!(err.to_string().contains("/dev/full"), "{err}");
        let again = journal
            .append(&record("a1", State::Sent))
            .await
            .unwrap_err();
        assert!(again.to_string().contains("/dev/full"), "{again}");
    }

    #[test]
    fn a_second_lock_is_refused() {
        let dir = std::env::temp_dir().join(format!("redrive-lock-{}", std::process::id()));
        let first = lock(&dir, "rb").expect("first lock");
        let second = lock(&dir, "rb").unwrap_err();
        assert!(second.to_string().contains("another apply"), "{second}");
        drop(first);
        assert!(lock(&dir, "rb").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
