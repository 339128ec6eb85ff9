//! The journal: one JSON line per state change of every action. The run's intents are synced
//! before anything is sent, each `sent` while its request is in flight and before its answer is
//! acted on; final states are written at once and synced with the next sync. Concurrent appends
//! share one `fsync` (group commit, in `writer`), a torn last line is ignored on replay, and a
//! file lock keeps a second apply of the same runbook out.

mod writer;

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;
use writer::{Pending, Shared};

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
    shared: Arc<Shared>,
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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| JournalError::Io {
                path: path.to_owned(),
                error,
            })?;
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

    /// Queues a record for the writer and returns at once; the ticket tells when it is on
    /// disk. Records reach the disk in submission order.
    ///
    /// Meant for a record that is waited for only after a round trip (a `sent`, whose answer
    /// is not acted on before it is on disk): during a burst its sync waits up to a
    /// millisecond for the others, so a thousand requests share a few dozen syncs.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    pub fn submit(&self, record: &Record) -> Result<Ticket, JournalError> {
        self.enqueue(line(record), true)
    }

    /// Queues a record that nothing waits for (a final state): it is written with the next
    /// batch (within about a millisecond) and made durable by the next sync, at the latest by
    /// [`Journal::barrier`]. A crash before that can lose it, which costs the next apply one
    /// re-check of the action.
    ///
    /// # Errors
    /// When an earlier write failed, or the writer has stopped.
    pub fn submit_unsynced(&self, record: &Record) -> Result<(), JournalError> {
        self.send(Pending {
            line: line(record),
            linger: false,
            done: None,
        })
    }

    /// How many syncs the writer has made.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
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
        self.enqueue(line(record), false)?.wait().await
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

/// A record as one JSON line.
fn line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("records serialize");
    line.push(b'\n');
    line
}

/// Every record of a journal, oldest first. A torn last line (a crash mid-write) is ignored;
/// a damaged line elsewhere is an error, since the journal was synced line by line.
///
/// # Errors
/// When the file cannot be read, is not a regular file, or a complete line is not a record.
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
    // A device in its place (/dev/full, /dev/zero) would be read forever.
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
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
    use std::io::Write as _;
    use std::time::Duration;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_what_is_waited_for_is_synced_and_bursts_share_syncs() {
        let dir = std::env::temp_dir().join(format!("redrive-syncs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::open(&path_for(&dir, "rb")).expect("open");
        for i in 0..50 {
            journal
                .submit_unsynced(&record(&format!("f{i}"), State::Succeeded))
                .expect("final");
        }
        journal.barrier().await.expect("barrier");
        assert_eq!(
            journal.syncs(),
            1,
            "50 final states and a barrier: one sync"
        );
        // 200 `sent` records from 64 writers at once, as a burst of requests.
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..64 {
            let journal = journal.clone();
            writers.spawn(async move {
                for i in (w..200).step_by(64) {
                    journal
                        .submit(&record(&format!("s{i}"), State::Sent))
                        .expect("sent")
                        .wait()
                        .await
                        .expect("synced");
                }
            });
        }
        while let Some(w) = writers.join_next().await {
            w.expect("writer");
        }
        let burst = journal.syncs() - 1;
        assert!(burst < 100, "200 sent records took {burst} syncs");
        assert_eq!(replay(&path_for(&dir, "rb")).expect("replay").len(), 250);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn after_a_failed_write_nothing_more_is_accepted() {
        // Every write to /dev/full fails, as on a full disk.
        let journal = Journal::open(Path::new("/dev/full")).expect("open");
        let err = journal
            .append(&record("a0", State::Sent))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/dev/full"), "{err}");
        // A `sent` refused up front: the request it stands for is never sent.
        let refused = journal.submit(&record("a1", State::Sent)).unwrap_err();
        assert!(
            refused.to_string().contains("an earlier write failed"),
            "{refused}"
        );
        assert!(
            journal
                .submit_unsynced(&record("a1", State::Failed))
                .is_err()
        );
        assert!(journal.barrier().await.is_err());
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
