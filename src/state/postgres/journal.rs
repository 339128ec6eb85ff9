//! The journal in PostgreSQL, with the local journal's group commit: whatever is queued when the
//! writer comes round goes into one `INSERT … SELECT FROM unnest(…)` and one commit, so a burst
//! of a thousand `sent` records costs a few commits, not a thousand round trips. A batch nobody
//! waits for (final states) commits with `synchronous_commit = off`, the database's own form of
//! "durable with the next sync". Every batch is fenced by the apply lock: once another runner
//! has taken the lock over (this one stalled past its lease), nothing more is written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::bridge::{Bridge, timed};
use super::state_name;
use crate::state::journal::Backend;
use crate::state::{Record, StateError, Ticket};

/// Records per statement: bounds one statement's size and the writer's memory.
const MAX_BATCH: usize = 8192;

/// Records on their way to the database.
struct Pending {
    records: Vec<Record>,
    linger: bool,
    done: Option<oneshot::Sender<std::io::Result<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The first failure; it sticks, as in the file journal: a journal with a hole cannot vouch
    /// for what follows it.
    broken: OnceLock<String>,
    /// Synchronous commits so far.
    syncs: AtomicU64,
}

/// The journal of one runbook in the `redrive.journal` table.
#[derive(Debug)]
pub struct PgJournal {
    location: PathBuf,
    tx: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
}

impl PgJournal {
    /// Starts the writer on the store's runtime; the first batch connects.
    pub fn open(bridge: &Bridge, key: &str, fence: Arc<Mutex<Option<String>>>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            pool: bridge.pool().clone(),
            location: bridge.location().to_owned(),
            key: key.to_owned(),
            runner: runner_id(),
            fence,
            shared: shared.clone(),
            unflushed: false,
        };
        bridge.spawn(writer.run(rx));
        Self {
            location: PathBuf::from(bridge.location()),
            tx,
            shared,
        }
    }

    fn send(&self, pending: Pending) -> Result<(), StateError> {
        let refused = |why: String| StateError::Io {
            path: self.location.clone(),
            error: std::io::Error::other(why),
        };
        if let Some(earlier) = self.shared.broken.get() {
            return Err(refused(format!("an earlier write failed: {earlier}")));
        }
        self.tx
            .send(pending)
            .map_err(|_| refused("the journal writer stopped".into()))
    }

    fn enqueue(&self, records: Vec<Record>, linger: bool) -> Result<Ticket, StateError> {
        let (done, wait) = oneshot::channel();
        self.send(Pending {
            records,
            linger,
            done: Some(done),
        })?;
        Ok(Ticket::new(wait, self.location.clone()))
    }
}

impl Backend for PgJournal {
    fn submit(&self, record: &Record, linger: bool) -> Result<Ticket, StateError> {
        self.enqueue(vec![record.clone()], linger)
    }

    fn submit_unsynced(&self, record: &Record) -> Result<(), StateError> {
        self.send(Pending {
            records: vec![record.clone()],
            linger: false,
            done: None,
        })
    }

    fn submit_all(&self, records: &[Record]) -> Result<Ticket, StateError> {
        self.enqueue(records.to_vec(), false)
    }

    fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    fn location(&self) -> &Path {
        &self.location
    }
}

/// Who wrote a row: host and process, so a cooperative apply can tell whose `sent` it is.
pub(super) fn runner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "localhost".to_owned(), |h| h.trim().to_owned());
    format!("{host}/{}", std::process::id())
}

struct Writer {
    pool: deadpool_postgres::Pool,
    location: String,
    key: String,
    runner: String,
    fence: Arc<Mutex<Option<String>>>,
    shared: Arc<Shared>,
    /// An asynchronous commit may not be on disk yet: the next barrier must flush it.
    unflushed: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        // As in the file journal: lingering only pays during a burst.
        let mut burst = false;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            drain(&mut rx, &mut batch);
            let someone_waits_now = batch.iter().any(|p| p.done.is_some() && !p.linger);
            if burst && !someone_waits_now {
                tokio::time::sleep(crate::state::writer::LINGER).await;
                drain(&mut rx, &mut batch);
            }
            burst = batch.len() > 1;
            let failed = match self.shared.broken.get() {
                Some(earlier) => Some(format!("not written: an earlier write failed: {earlier}")),
                None => self.write(&batch).await.err().inspect(|text| {
                    let _ = self.shared.broken.set(text.clone());
                }),
            };
            for done in batch.into_iter().filter_map(|p| p.done) {
                let _ = done.send(match &failed {
                    None => Ok(()),
                    Some(text) => Err(std::io::Error::other(text.clone())),
                });
            }
        }
    }

    /// One transaction for the whole batch; its commit is the batch's sync.
    async fn write(&mut self, batch: &[Pending]) -> Result<(), String> {
        let records: Vec<&Record> = batch.iter().flat_map(|p| &p.records).collect();
        let waited = batch.iter().any(|p| p.done.is_some());
        if records.is_empty() {
            // A barrier: earlier batches are committed, but an asynchronous commit may still
            // be in the WAL buffers.
            return if waited && self.unflushed {
                self.flush().await
            } else {
                Ok(())
            };
        }
        let fence = self
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let work = async {
            let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            if !waited {
                tx.batch_execute("SET LOCAL synchronous_commit TO off")
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for chunk in records.chunks(MAX_BATCH) {
                let written = insert(&tx, &self.key, &self.runner, fence.as_deref(), chunk)
                    .await
                    .map_err(|e| e.to_string())?;
                if written != chunk.len() as u64 {
                    return Err(
                        "the apply lock was taken over by another runner (this one missed its lease): nothing more is written"
                            .to_owned(),
                    );
                }
            }
            tx.commit().await.map_err(|e| e.to_string())
        };
        let result = timed(&self.location, work)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| crate::providers::redact::mask(&e).into_owned());
        if result.is_ok() {
            if waited {
                self.shared.syncs.fetch_add(1, Ordering::Relaxed);
            }
            // A synchronous commit flushes the WAL up to it, earlier asynchronous ones included.
            self.unflushed = !waited;
        }
        result
    }

    /// A synchronous commit of a transaction with an id: its commit record is flushed, and
    /// with it every asynchronous commit before it (the WAL is written in order).
    async fn flush(&mut self) -> Result<(), String> {
        let work = async {
            let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            tx.batch_execute("SELECT txid_current()")
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())
        };
        timed(&self.location, work)
            .await
            .map_err(|e| e.to_string())??;
        self.unflushed = false;
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Pending>, batch: &mut Vec<Pending>) {
    let mut count: usize = batch.iter().map(|p| p.records.len()).sum();
    while count < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => {
                count += p.records.len();
                batch.push(p);
            }
            Err(_) => break,
        }
    }
}

/// Inserts `records` in one statement, only while `fence` (the lock's token) is still the
/// lock's; the number of rows written.
async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &str,
    runner: &str,
    fence: Option<&str>,
    records: &[&Record],
) -> Result<u64, tokio_postgres::Error> {
    let column = |f: fn(&Record) -> String| records.iter().map(|r| f(r)).collect::<Vec<String>>();
    let at = column(|r| r.at.clone());
    let run = column(|r| r.run.clone());
    let action = column(|r| r.action.clone());
    let job = column(|r| r.job.clone());
    let target = column(|r| r.target.clone());
    let state = column(|r| state_name(r.state));
    let detail = column(|r| r.detail.clone());
    let attempt: Vec<i32> = records
        .iter()
        .map(|r| i32::try_from(r.attempt).unwrap_or(i32::MAX))
        .collect();
    let http: Vec<Option<i32>> = records
        .iter()
        .map(|r| r.http_status.map(i32::from))
        .collect();
    tx.execute(
        "INSERT INTO redrive.journal
             (state_key, runner, at, run, action, job, target, state, attempt, http_status, detail)
         SELECT $1, $2, u.*
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::int4[], $10::int4[], $11::text[]) AS u
         WHERE $12::text IS NULL
            OR EXISTS (SELECT 1 FROM redrive.locks WHERE state_key = $1 AND token = $12 FOR SHARE)",
        &[
            &key, &runner, &at, &run, &action, &job, &target, &state, &attempt, &http, &detail,
            &fence,
        ],
    )
    .await
}
