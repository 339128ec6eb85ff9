//! The clock behind injected latency: one thread that sleeps to the next deadline and wakes its
//! request. tokio's timer counts whole milliseconds, so a 20 ms setting came out anywhere from
//! 19 to 21 ms; this one lands within a few tens of microseconds of it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{OnceLock, mpsc};
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

/// Shared by every sandbox of the process; the thread lives as long as the process.
static TIMER: OnceLock<mpsc::Sender<(Instant, oneshot::Sender<()>)>> = OnceLock::new();

/// Waits until `at`.
pub async fn sleep_until(at: Instant) {
    if at <= Instant::now() {
        return;
    }
    let (done, woken) = oneshot::channel();
    let timer = TIMER.get_or_init(start);
    if timer.send((at, done)).is_err() || woken.await.is_err() {
        // The thread is gone (it cannot start, or panicked): tokio's coarser timer still holds
        // the request for about as long.
        tokio::time::sleep_until(at.into()).await;
    }
}

fn start() -> mpsc::Sender<(Instant, oneshot::Sender<()>)> {
    let (tx, rx) = mpsc::channel();
    // Without the thread, `send` fails and every wait falls back to tokio's timer.
    let _ = std::thread::Builder::new()
        .name("sandbox-timer".into())
        .spawn(move || run(&rx));
    tx
}

fn run(rx: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut waiting: BinaryHeap<Wake> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut add = |waiting: &mut BinaryHeap<Wake>, (at, done)| {
        seq += 1;
        waiting.push(Wake { at, seq, done });
    };
    loop {
        while waiting.peek().is_some_and(|w| w.at <= Instant::now()) {
            if let Some(w) = waiting.pop() {
                // A request that went away (its client hung up) has no one to wake.
                let _ = w.done.send(());
            }
        }
        let next = match waiting.peek() {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(w) => rx.recv_timeout(w.at.saturating_duration_since(Instant::now())),
        };
        match next {
            Ok(wake) => add(&mut waiting, wake),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Never while the process runs: the sender is a static.
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        for wake in rx.try_iter() {
            add(&mut waiting, wake);
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
