//! The clock behind injected latency: one thread that sleeps to the next deadline and wakes its
//! request. tokio's timer counts whole milliseconds, so a 20 ms setting came out anywhere from
//! 19 to 21 ms; this one lands within a few tens of microseconds of it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::Instant;

use tokio::sync::oneshot;

/// One request waiting for its deadline.
struct Wake {
    at: Instant,
    /// Arrival order, so that equal deadlines wake first come, first served.
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Wake {}

impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wake {
    // Reversed: `BinaryHeap` is a max-heap and the earliest deadline must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The deadlines and what the thread is sleeping to.
#[derive(Default)]
struct Queue {
    waiting: BinaryHeap<Wake>,
    seq: u64,
    /// The deadline the thread sleeps to; `None` while it sleeps until woken.
    sleeping_to: Option<Instant>,
    /// The thread is gone (it panicked): waits fall back to tokio's timer.
    gone: bool,
}

/// The thread and its queue.
struct Timer {
    queue: Arc<Mutex<Queue>>,
    thread: Thread,
}

impl Timer {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a wake; `false` when there is no thread to do it.
    fn add(&self, at: Instant, done: oneshot::Sender<()>) -> bool {
        let mut queue = self.queue();
        if queue.gone {
            return false;
        }
        queue.seq += 1;
        let seq = queue.seq;
        queue.waiting.push(Wake { at, seq, done });
        // The thread is woken only for a deadline earlier than the one it sleeps to. With a
        // fixed latency every new deadline is later than those queued, so a busy sandbox adds
        // its requests without waking the thread (and without a context switch) each time.
        if queue.sleeping_to.is_none_or(|s| at < s) {
            queue.sleeping_to = Some(at);
            drop(queue);
            self.thread.unpark();
        }
        true
    }
}

/// Shared by every sandbox of the process; the thread lives as long as the process. `None`
/// when the thread cannot start.
static TIMER: OnceLock<Option<Timer>> = OnceLock::new();

/// Waits until `at`.
pub async fn sleep_until(at: Instant) {
    if at <= Instant::now() {
        return;
    }
    let (done, woken) = oneshot::channel();
    let queued = TIMER
        .get_or_init(start)
        .as_ref()
        .is_some_and(|timer| timer.add(at, done));
    if !queued || woken.await.is_err() {
        // No thread (it cannot start, or panicked): tokio's coarser timer still holds the
        // request for about as long.
        tokio::time::sleep_until(at.into()).await;
    }
}

fn start() -> Option<Timer> {
    let queue = Arc::new(Mutex::new(Queue::default()));
    let theirs = queue.clone();
    let thread = std::thread::Builder::new()
        .name("sandbox-timer".into())
        .spawn(move || run(&theirs))
        .ok()?;
    Some(Timer {
        queue,
        thread: thread.thread().clone(),
    })
}

/// Marks the queue gone and lets its waiters go if the thread unwinds.
struct Farewell<'a>(&'a Mutex<Queue>);

impl Drop for Farewell<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        queue.gone = true;
        // Dropping the senders ends every wait, which then falls back to tokio's timer.
        queue.waiting.clear();
    }
}

fn run(queue: &Mutex<Queue>) {
    let _farewell = Farewell(queue);
    let mut due = Vec::new();
    loop {
        let next = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            while queue.waiting.peek().is_some_and(|w| w.at <= now) {
                due.extend(queue.waiting.pop());
            }
            let next = queue.waiting.peek().map(|w| w.at);
            queue.sleeping_to = next;
            next
        };
        // Woken outside the lock: a wake may have to rouse a runtime worker.
        for w in due.drain(..) {
            // A request that went away (its client hung up) has no one to wake.
            let _ = w.done.send(());
        }
        // An `unpark` between setting `sleeping_to` and here makes the park return at once.
        match next {
            None => std::thread::park(),
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadlines_in_any_order_are_never_woken_early() {
        let start = Instant::now();
        let mut waits = tokio::task::JoinSet::new();
        for i in 0..40u64 {
            // Out of order, with ties: 0, 7, 14, …, wrapping at 30 ms.
            let at = start + Duration::from_millis(i * 7 % 30);
            waits.spawn(async move {
                sleep_until(at).await;
                Instant::now() >= at
            });
        }
        let mut woken = 0;
        while let Some(on_time) = waits.join_next().await {
            assert!(
                on_time.expect("a wait task"),
                "a wait ended before its deadline"
            );
            woken += 1;
        }
        assert_eq!(woken, 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_that_went_away_hold_no_one_up() {
        let now = Instant::now();
        // One gone before its deadline, one far in the future.
        let early = tokio::spawn(sleep_until(now + Duration::from_millis(5)));
        let far = tokio::spawn(sleep_until(now + Duration::from_secs(600)));
        early.abort();
        far.abort();
        let at = now + Duration::from_millis(20);
        tokio::time::timeout(Duration::from_secs(10), sleep_until(at))
            .await
            .expect("woken despite the abandoned waits");
        assert!(Instant::now() >= at);
    }
}
