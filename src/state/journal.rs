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
            serde_json::to_writer(&mut chunk, record).expect("records serialize");
            chunk.push(b'\n');
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
    let mut line = serde_json::to_vec(record).expect("records serialize");
    line.push(b'\n');
    line
}

/// Every readable record of a journal, oldest first, and the (1-based) numbers of the lines that
/// are not records: a torn write or a damaged line costs that line only, never the rest.
///
/// # Errors
/// When the file cannot be read or is not a regular file.
pub fn replay(path: &Path) -> Result<(Vec<Record>, Vec<usize>), JournalError> {
    let io = |error| JournalError::Io {
        path: path.to_owned(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
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
    let mut damaged = Vec::new();
    // Bytes, not `lines()`: one line of invalid UTF-8 must not stop the reading.
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => records.push(r),
            Err(_) => damaged.push(i + 1),
        }
    }
    Ok((records, damaged))
}

/// The history of the journal at `path`.
///
/// # Errors
/// When the file cannot be read or is not a regular file.
pub fn history(path: &Path) -> Result<History, JournalError> {
    let (records, damaged) = replay(path)?;
    Ok(History::of(records, damaged))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;
    use crate::state::State;

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
        let path = dir.join("rb.journal.jsonl");
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
        // The next apply appends after it; the torn line costs itself only.
        let journal = Journal::open(&path).expect("reopen");
        journal
            .append(&record("a1", State::Failed))
            .await
            .expect("append");
        let (records, damaged) = replay(&path).expect("replay");
        assert_eq!(records.len(), 52);
        assert_eq!(damaged, [52]);
        let history = History::of(records, damaged);
        assert_eq!(history.get("a0").expect("a0").last.state, State::Succeeded);
        assert_eq!(history.get("a1").expect("a1").last.state, State::Failed);
        assert_eq!(history.get("a7").expect("a7").last.state, State::Sent);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn final_states_reach_the_file_without_a_sync_of_their_own() {
        let dir = std::env::temp_dir().join(format!("redrive-unsynced-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("rb.journal.jsonl");
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
        let (records, _) = replay(&path).expect("replay");
        assert_eq!(records.len(), 41);
        let history = History::of(records, Vec::new());
        assert!(
            (0..20)
                .all(|i| history.get(&format!("a{i}")).expect("a").last.state == State::Succeeded)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_what_is_waited_for_is_synced_and_bursts_share_syncs() {
        let dir = std::env::temp_dir().join(format!("redrive-syncs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::open(&dir.join("rb.journal.jsonl")).expect("open");
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
        assert_eq!(
            replay(&dir.join("rb.journal.jsonl"))
                .expect("replay")
                .0
                .len(),
            250
        );
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
    fn a_damaged_middle_line_is_skipped_and_counted() {
        let dir = std::env::temp_dir().join(format!("redrive-damaged-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("rb.journal.jsonl");
        let good = String::from_utf8(line(&record("a0", State::Succeeded))).expect("utf-8");
        let mut text = good.clone().into_bytes();
        text.extend_from_slice(b"{\"at\": garbage\n\xff\xfe\n");
        text.extend_from_slice(line(&record("a1", State::Failed)).as_slice());
        std::fs::write(&path, text).expect("write");
        let (records, damaged) = replay(&path).expect("replay");
        assert_eq!(records.len(), 2);
        assert_eq!(damaged, [2, 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_lock_is_refused() {
        use crate::state::{LocalStore, Store as _};
        let dir = std::env::temp_dir().join(format!("redrive-lock-{}", std::process::id()));
        let store = LocalStore::new(&dir, "rb");
        let first = store.lock().expect("first lock");
        let second = store.lock().unwrap_err();
        assert!(second.to_string().contains("another apply"), "{second}");
        drop(first);
        assert!(store.lock().is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
