//! A cooperative wave's traffic with the shared state, off its send loop: a [`Claimer`] keeps a
//! buffer of claimed actions ahead of the free slots, and a [`Finisher`] marks finished actions
//! done in batches after the journal's barrier. Done inline, each claim (~8 ms for 128) and
//! each finish (~10 ms for 256) left every free slot of the runner empty while it lasted.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Claimed, Share};
use crate::apply::context::Engine;

/// Claims for one wave in a task of its own, `ahead` actions ahead of what is started.
pub(super) struct Claimer {
    rx: mpsc::Receiver<Vec<Claimed>>,
    /// Claimed and not started yet: in the channel or in the wave's queue.
    buffered: Arc<AtomicUsize>,
    ahead: usize,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Claimer {
    pub(super) fn start(
        engine: &Arc<Engine>,
        share: &Arc<dyn Share>,
        job: &str,
        range: Range<usize>,
        ahead: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let buffered = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(claim(
            Ctx {
                engine: engine.clone(),
                share: share.clone(),
                job: job.to_owned(),
                range,
                ahead,
                buffered: buffered.clone(),
                wake: wake.clone(),
            },
            tx,
        ));
        Self {
            rx,
            buffered,
            ahead,
            wake,
            task,
        }
    }

    /// Claims that are ready, without waiting.
    pub(super) fn ready(&mut self) -> Option<Vec<Claimed>> {
        self.rx.try_recv().ok()
    }

    /// The next claims; `None` once the claimer has stopped (interrupted).
    pub(super) async fn next(&mut self) -> Option<Vec<Claimed>> {
        self.rx.recv().await
    }

    /// `n` claimed actions were started or ended: claim more once the buffer runs low.
    pub(super) fn took(&self, n: usize) {
        let before = self.buffered.fetch_sub(n, Ordering::Relaxed);
        if before.saturating_sub(n) <= self.ahead / 2 {
            self.wake.notify_one();
        }
    }

    /// Stops claiming; what was claimed and never started is handed back by id.
    pub(super) async fn stop(mut self) -> Vec<String> {
        self.rx.close();
        let mut unstarted = Vec::new();
        // Bounded: the channel holds at most four claims, and it is closed.
        while let Some(claims) = self.rx.recv().await {
            unstarted.extend(claims.into_iter().map(|c| c.action));
        }
        // A claim under way ends with a send that fails: the claimer releases it itself.
        let _ = self.task.await;
        unstarted
    }
}

struct Ctx {
    engine: Arc<Engine>,
    share: Arc<dyn Share>,
    job: String,
    range: Range<usize>,
    ahead: usize,
    buffered: Arc<AtomicUsize>,
    wake: Arc<Notify>,
}

async fn claim(cx: Ctx, tx: mpsc::Sender<Vec<Claimed>>) {
    let poll = cx.share.poll();
    let mut cursor = cx.range.start;
    // Bounded like the leases' renewal: a week of looking.
    let until = Instant::now() + Duration::from_secs(7 * 24 * 3600);
    while Instant::now() < until && !cx.engine.stopping() && !tx.is_closed() {
        let have = cx.buffered.load(Ordering::Relaxed);
        if have > cx.ahead / 2 {
            tokio::select! {
                () = cx.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                () = tx.closed() => return,
            }
            continue;
        }
        let want = cx.ahead - have;
        // From past the last claim: the rows behind it are leased or done, and scanning them
        // again on every claim would cost more as the run goes on. Only when that finds too
        // few is the whole wave swept (expired leases, released actions).
        let mut claims = if cursor < cx.range.end {
            cx.share
                .claim(&cx.job, cursor..cx.range.end, want)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut short = false;
        if claims.len() < want {
            let more = cx
                .share
                .claim(&cx.job, cx.range.clone(), want - claims.len())
                .await
                .unwrap_or_default();
            short = claims.len() + more.len() < want;
            claims.extend(more);
        }
        if let Some(last) = claims.iter().map(|c| c.index).max() {
            cursor = cursor.max(last + 1);
        }
        if !claims.is_empty() {
            cx.buffered.fetch_add(claims.len(), Ordering::Relaxed);
            if let Err(mpsc::error::SendError(claims)) = tx.send(claims).await {
                // The wave ended meanwhile (interrupted): nobody will start these.
                let ids = claims.into_iter().map(|c| c.action).collect();
                let _ = cx.share.release(ids).await;
                return;
            }
        }
        if short {
            // Other runners hold the rest; their leases may expire: look again after a while.
            tokio::select! {
                awake = cx.engine.nap(poll) => if !awake { return },
                () = tx.closed() => return,
            }
        }
    }
}

enum Done {
    Finished(Vec<String>),
    Released(Vec<String>),
    /// Answered once everything sent before it is done in the shared state.
    Drain(oneshot::Sender<()>),
}

/// Marks actions done (or released) in the background, in batches of what accumulated.
pub(super) struct Finisher {
    tx: mpsc::UnboundedSender<Done>,
    task: JoinHandle<()>,
}

impl Finisher {
    pub(super) fn start(engine: &Arc<Engine>, share: &Arc<dyn Share>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(finish(engine.clone(), share.clone(), rx));
        Self { tx, task }
    }

    pub(super) fn finished(&self, ids: Vec<String>) {
        if !ids.is_empty() {
            let _ = self.tx.send(Done::Finished(ids));
        }
    }

    pub(super) fn released(&self, ids: Vec<String>) {
        if !ids.is_empty() {
            let _ = self.tx.send(Done::Released(ids));
        }
    }

    /// Waits until everything handed over so far is done in the shared state.
    pub(super) async fn drain(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Done::Drain(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub(super) async fn stop(self) {
        self.drain().await;
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Up to this many actions a statement; more wait for the next batch.
const BATCH: usize = 1024;

async fn finish(engine: Arc<Engine>, share: Arc<dyn Share>, mut rx: mpsc::UnboundedReceiver<Done>) {
    let linger = share.poll();
    let (mut finished, mut released, mut drains) = (Vec::new(), Vec::new(), Vec::new());
    // Ends when the wave drops its sender: every message is taken before that.
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let deadline = Instant::now() + linger;
        // A batch: what is queued now, and what comes within `linger` (a journal barrier and
        // an `UPDATE` a batch, not one per finished task), unless someone waits for it.
        loop {
            match next.take() {
                Some(Done::Finished(ids)) => finished.extend(ids),
                Some(Done::Released(ids)) => released.extend(ids),
                Some(Done::Drain(ack)) => drains.push(ack),
                None => {}
            }
            if !drains.is_empty() || finished.len() + released.len() >= BATCH {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => next = Some(message),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&engine, share.as_ref(), &mut finished, &mut released).await;
        for ack in drains.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Journal first, then the leases: an action is final in the shared state only once its final
/// record is durable, so a runner that dies in between leaves it to be taken over, not lost.
async fn flush(
    engine: &Engine,
    share: &dyn Share,
    finished: &mut Vec<String>,
    released: &mut Vec<String>,
) {
    if finished.is_empty() && released.is_empty() {
        return;
    }
    if engine.journal.barrier().await.is_err() {
        // Kept, never marked: a journal error sticks, so the leases run out instead, and
        // whoever takes them over reconciles them.
        return;
    }
    if !finished.is_empty() {
        let ids = std::mem::take(finished);
        retried(|| share.finish(ids.clone())).await;
    }
    if !released.is_empty() {
        let ids = std::mem::take(released);
        retried(|| share.release(ids.clone())).await;
    }
}

/// How often a finish or release is tried before its leases are left to run out.
const TRIES: u32 = 5;

/// Tries a change of leases again after a passing error (a deadlock victim, a dropped
/// connection). What still fails is no longer renewed: its lease runs out and whoever claims
/// it, this runner included, finds its final record in the journal.
async fn retried<'a>(mut change: impl FnMut() -> super::Answer<'a, ()>) {
    for attempt in 1..=TRIES {
        if change().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100) * attempt).await;
    }
}
