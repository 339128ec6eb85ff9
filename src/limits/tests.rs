//! The limiter's own tests: windows, ends, pauses and spacing, on tokio's paused clock.

use super::*;

fn limiter(rates: &[(u32, u64)]) -> Limiter {
    Limiter::new(
        None,
        &Documented {
            rates: rates
                .iter()
                .map(|&(count, ms)| Rate {
                    count,
                    per: Duration::from_millis(ms),
                })
                .collect(),
            ..Documented::default()
        },
    )
}

/// Never more than COUNT starts in any window of PERIOD, however the requests arrive.
#[tokio::test(start_paused = true)]
async fn a_window_never_holds_more_than_its_count() {
    let l = Arc::new(limiter(&[(10, 1000), (25, 5000)]));
    let mut starts = Vec::new();
    let t0 = Instant::now();
    for _ in 0..60 {
        l.admit().await.expect("admitted").ended().await;
        starts.push(Instant::now() - t0);
    }
    for (i, a) in starts.iter().enumerate() {
        let in_1s = starts[i..]
            .iter()
            .take_while(|b| **b - *a < Duration::from_millis(1000))
            .count();
        let in_5s = starts[i..]
            .iter()
            .take_while(|b| **b - *a < Duration::from_millis(5000))
            .count();
        assert!(in_1s <= 10, "{in_1s} starts within 1 s from {a:?}");
        assert!(in_5s <= 25, "{in_5s} starts within 5 s from {a:?}");
    }
    // Full windows are used, not a trickle: the 25/5 s rule paces the 60 requests.
    let last = *starts.last().expect("starts");
    assert!(last < Duration::from_secs(12), "{last:?}");
    assert_eq!(l.requests(), 60);
}

/// A request holds its slot while it is in flight and for a whole period after its end:
/// a server that counts it late, when it arrives or while it answers, still never sees
/// more than COUNT in a period.
#[tokio::test(start_paused = true)]
async fn a_request_in_flight_holds_its_slot_until_a_period_after_its_end() {
    let l = limiter(&[(2, 1000)]);
    let span = Duration::from_millis(1000) + margin(Duration::from_millis(1000));
    let t0 = Instant::now();
    let a = l.admit().await.expect("a");
    let b = l.admit().await.expect("b");
    let third = async {
        drop(l.admit().await.expect("third"));
        Instant::now() - t0
    };
    let answers = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        a.ended().await;
        // A request given up half-way ends when it is dropped.
        drop(b);
    };
    let (started, ()) = tokio::join!(third, answers);
    // Counted by starts, it would have gone at `span`.
    assert!(
        started >= Duration::from_secs(3) + span,
        "the third request started at {started:?}"
    );
    assert!(started < Duration::from_secs(3) + span + END_POLL);
}

/// However long its requests take, and in whatever order they end, a server that counts
/// each one at its answer (the latest it can) never counts more than COUNT in a PERIOD.
#[tokio::test(start_paused = true)]
async fn requests_of_any_length_are_never_counted_more_than_count_a_period() {
    let l = Arc::new(limiter(&[(5, 1000)]));
    let counted = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..40_u64 {
        let (l, counted) = (l.clone(), counted.clone());
        requests.spawn(async move {
            let started = l.admit().await.expect("admitted");
            // Every other five take a second and are counted then; the five after them
            // are answered at once. Counted by starts, the next five would be let through
            // a span after the slow ones started, into the same second as their answers.
            let length = if (i / 5) % 2 == 0 { 1000 } else { i * 37 % 90 };
            tokio::time::sleep(Duration::from_millis(length)).await;
            counted.lock().expect("counted").push(Instant::now() - t0);
            started.ended().await;
        });
    }
    while let Some(done) = requests.join_next().await {
        done.expect("a request");
    }
    let mut counted = counted.lock().expect("counted").clone();
    counted.sort();
    assert_eq!(counted.len(), 40);
    for (i, a) in counted.iter().enumerate() {
        let within = counted[i..]
            .iter()
            .take_while(|b| **b - *a < Duration::from_millis(1000))
            .count();
        assert!(within <= 5, "{within} answers within 1 s from {a:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_pauses_and_spaces_requests() {
    let l = limiter(&[]);
    drop(l.admit().await);
    let t0 = Instant::now();
    l.throttled(None);
    drop(l.admit().await);
    assert!(Instant::now() - t0 >= THROTTLE_PAUSE);
    let t1 = Instant::now();
    drop(l.admit().await);
    assert!(Instant::now() - t1 >= SPACING_START);
    for _ in 0..200 {
        l.answered();
    }
    let t2 = Instant::now();
    drop(l.admit().await);
    assert!(Instant::now() - t2 < Duration::from_millis(5));
    assert_eq!(l.throttled_count(), 1);
}

/// The other runners' window, full until `opens`: counts the asks, and how many overlap.
#[derive(Debug)]
struct FullUntil {
    opens: Instant,
    asks: AtomicU64,
    asking: AtomicU64,
    most_at_once: AtomicU64,
}

impl SharedWindow for FullUntil {
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<Take, String>> + Send + '_>> {
        Box::pin(async move {
            self.asks.fetch_add(1, Ordering::Relaxed);
            let now = self.asking.fetch_add(1, Ordering::Relaxed) + 1;
            self.most_at_once.fetch_max(now, Ordering::Relaxed);
            // A round trip to the database.
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.asking.fetch_sub(1, Ordering::Relaxed);
            Ok(if Instant::now() >= self.opens {
                Take::Granted(1)
            } else {
                Take::Wait(Duration::from_millis(50))
            })
        })
    }

    fn ended(&self, _slot: i64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Tasks waiting on a full shared window queue for it: one of them asks at a time, so the
/// database is asked about as often as by one task, not by each.
#[tokio::test(start_paused = true)]
async fn one_waiting_admission_at_a_time_asks_the_shared_window() {
    let l = Arc::new(limiter(&[(1000, 1000)]));
    let shared = Arc::new(FullUntil {
        opens: Instant::now() + Duration::from_secs(1),
        asks: AtomicU64::new(0),
        asking: AtomicU64::new(0),
        most_at_once: AtomicU64::new(0),
    });
    l.share(shared.clone());
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let l = l.clone();
        waiting.spawn(async move { l.admit().await.expect("admitted").ended().await });
    }
    while let Some(done) = waiting.join_next().await {
        done.expect("an admission");
    }
    assert_eq!(shared.most_at_once.load(Ordering::Relaxed), 1);
    // One task polling every 52 ms for a second, then one grant each. Each polling on its
    // own, 32 tasks would have asked about 600 times.
    let asks = shared.asks.load(Ordering::Relaxed);
    assert!(asks <= 20 + 32, "{asks} asks");
    assert_eq!(l.requests(), 32);
}
