//! The cooperative apply's primitives (step 2 of issue 18, not yet wired into apply) against the
//! real database: claims never overlap, an expired lease is taken over and says whether a
//! request went out under it, a runner that lost its lease can change nothing, and the shared
//! rate window holds across runners.

use std::time::Duration;

use redrive::limits::Take;
use redrive::state::postgres::lease::Leases;
use redrive::state::postgres::{Dsn, PgStore};

use super::pg_cluster::{Db, database};

/// A store on `db` for the runbook `rb`, connected off the test's runtime.
async fn store(db: &Db) -> PgStore {
    let dsn = Dsn::parse(&db.dsn()).expect("dsn");
    tokio::task::spawn_blocking(move || {
        PgStore::connect(&dsn, "rb", "lease test").expect("connect")
    })
    .await
    .expect("connected")
}

/// The longest a test's rate-limit slot is held without an end.
const BOUND: Duration = Duration::from_secs(60);

fn plan(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("a{i:03}"), "job".to_owned()))
        .collect()
}

fn ids(claims: &[redrive::state::postgres::lease::Claim]) -> Vec<String> {
    claims.iter().map(|c| c.action.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_claim_disjoint_actions_in_plan_order_until_all_are_done() {
    let Some(db) = database("claims") else { return };
    let store = store(&db).await;
    let lease = Duration::from_secs(30);
    let (a, b) = (
        Leases::new(&store, "run1", "A", lease),
        Leases::new(&store, "run1", "B", lease),
    );
    a.seed("digest", &plan(10)).await.expect("seed");
    // The second runner joins the same run: the first one's rows stand.
    b.seed("digest", &plan(10)).await.expect("join");
    let first = a.claim(4).await.expect("claim");
    assert_eq!(ids(&first), ["a000", "a001", "a002", "a003"]);
    let second = b.claim(4).await.expect("claim");
    assert_eq!(ids(&second), ["a004", "a005", "a006", "a007"]);
    assert!(
        first
            .iter()
            .chain(&second)
            .all(|c| c.taken_over_from.is_none() && !c.sent_before)
    );
    assert_eq!(ids(&b.claim(4).await.expect("claim")), ["a008", "a009"]);
    assert!(a.claim(4).await.expect("claim").is_empty());
    assert_eq!(a.open().await.expect("open"), 10);
    // Only its own: A cannot finish what B holds.
    assert_eq!(a.finish(&ids(&second)).await.expect("finish"), 0);
    assert_eq!(a.finish(&ids(&first)).await.expect("finish"), 4);
    assert_eq!(b.release(&["a004".to_owned()]).await.expect("release"), 1);
    assert_eq!(ids(&a.claim(4).await.expect("claim")), ["a004"]);
    assert_eq!(a.open().await.expect("open"), 6);
    // A runner given another plan for the same run is refused.
    let err = Leases::new(&store, "run1", "C", lease)
        .seed("other", &plan(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another plan"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_old_runner_can_change_nothing() {
    let Some(db) = database("expiry") else { return };
    let store = store(&db).await;
    let short = Leases::new(&store, "run1", "A", Duration::from_millis(300));
    let b = Leases::new(&store, "run1", "B", Duration::from_secs(30));
    short.seed("d", &plan(3)).await.expect("seed");
    let held = short.claim(2).await.expect("claim");
    assert!(short.mark_sent("a000").await.expect("sent"));
    // Renewed while alive: still A's after several leases.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(short.renew(&ids(&held)).await.expect("renew").is_empty());
    }
    assert_eq!(ids(&b.claim(5).await.expect("claim")), ["a002"]);
    // A stops renewing (it died, or stalled): after the lease, B takes both over.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let taken = b.claim(5).await.expect("claim");
    assert_eq!(ids(&taken), ["a000", "a001"]);
    assert!(
        taken
            .iter()
            .all(|c| c.taken_over_from.as_deref() == Some("A"))
    );
    // The one sent under A's lease is flagged for reconciliation, the other not.
    assert!(taken[0].sent_before && !taken[1].sent_before);
    // And says how long ago, on the server's clock: at least the lease (the mark renewed it,
    // and it ran out before the claim), counted from the last renewal (a request may leave at
    // any time while its runner lives), not from the mark two seconds before it.
    let ago = taken[0].marked_ago.expect("the mark's age");
    assert!(
        ago >= Duration::from_millis(300) && ago < Duration::from_millis(1500),
        "{ago:?}"
    );
    assert_eq!(taken[1].marked_ago, None);
    // A, back from its stall, holds nothing.
    assert_eq!(short.renew(&ids(&held)).await.expect("renew"), ids(&held));
    assert!(!short.mark_sent("a001").await.expect("refused"));
    assert_eq!(short.finish(&ids(&held)).await.expect("finish"), 0);
    assert_eq!(b.finish(&ids(&taken)).await.expect("finish"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mark_names_the_actions_whose_leases_went_to_another_runner() {
    let Some(db) = database("batch_mark") else {
        return;
    };
    let store = store(&db).await;
    let lease = Duration::from_secs(2);
    let a = Leases::new(&store, "run1", "A", lease);
    let b = Leases::new(&store, "run1", "B", Duration::from_secs(30));
    a.seed("d", &plan(3)).await.expect("seed");
    assert_eq!(ids(&a.claim(3).await.expect("claim")).len(), 3);
    // A stalls past its leases; B takes over only the first.
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    assert_eq!(ids(&b.claim(1).await.expect("claim")), ["a000"]);
    // A's batch of the first two: only the first is refused; the second, expired but taken by
    // nobody, is marked (and its lease renewed), so A may still send it alone.
    let both = ["a000".to_owned(), "a001".to_owned()];
    let marked = a.mark_all_sent(&both).await.expect("mark");
    assert_eq!(marked, ["a001".to_owned()].into_iter().collect());
    assert_eq!(ids(&b.claim(5).await.expect("claim")), ["a002"]);
    assert_eq!(a.finish(&both).await.expect("finish"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_runners_claiming_at_once_get_every_action_exactly_once() {
    let Some(db) = database("race") else { return };
    let store = store(&db).await;
    Leases::new(&store, "run1", "seed", Duration::from_secs(30))
        .seed("d", &plan(200))
        .await
        .expect("seed");
    let mut runners = tokio::task::JoinSet::new();
    for r in 0..8 {
        let leases = Leases::new(&store, "run1", &format!("R{r}"), Duration::from_secs(30));
        runners.spawn(async move {
            let mut mine = Vec::new();
            // Bounded: 200 actions, at least one per round while any is left.
            for _ in 0..200 {
                let claims = leases.claim(3).await.expect("claim");
                if claims.is_empty() {
                    break;
                }
                let got = ids(&claims);
                assert_eq!(leases.finish(&got).await.expect("finish"), got.len() as u64);
                mine.extend(got);
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(r) = runners.join_next().await {
        all.extend(r.expect("runner"));
    }
    all.sort();
    let expected: Vec<String> = plan(200).into_iter().map(|(id, _)| id).collect();
    assert_eq!(all, expected, "every action claimed once, none twice");
    let check = Leases::new(&store, "run1", "check", Duration::from_secs(1));
    assert_eq!(check.open().await.expect("open"), 0);
}

/// A runner renews all it holds while it finishes some of them, as a cooperative apply does.
/// At this size the renewal of all of them scans the table and a finish of 40 the index, each
/// locking rows in its own order: the two deadlocked (reproduced here before the fix), the
/// finish lost, and its actions stayed leased and were renewed for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewing_never_blocks_or_undoes_a_finish_of_the_same_runner() {
    let Some(db) = database("renew") else { return };
    let store = store(&db).await;
    let leases = Leases::new(&store, "run1", "A", Duration::from_secs(30));
    const N: usize = 20_000;
    leases.seed("d", &plan(N)).await.expect("seed");
    let mut held = Vec::new();
    for _ in 0..N / 1000 {
        held.extend(ids(&leases.claim(1000).await.expect("claim")));
    }
    assert_eq!(held.len(), N);
    // Finished in an order of their own, as answers come (a fixed shuffle).
    let order: Vec<String> = (0..N).map(|i| held[(i * 7919) % N].clone()).collect();
    // Renewed in parts first, so that the table's order is no longer the index's.
    for part in order.chunks(3000) {
        assert!(leases.renew(part).await.expect("renew").is_empty());
    }
    let renewer = {
        let leases = leases.clone();
        let all = held.clone();
        tokio::spawn(async move {
            // Bounded: as many renewals as the finishes below take, at most 200.
            for _ in 0..200 {
                if leases.open().await.expect("open") == 0 {
                    break;
                }
                leases.renew(&all).await.expect("renew while finishing");
            }
        })
    };
    for chunk in order.chunks(40) {
        assert_eq!(
            leases.finish(chunk).await.expect("finish while renewing"),
            chunk.len() as u64
        );
    }
    assert_eq!(leases.open().await.expect("open"), 0);
    renewer.await.expect("renewer");
    // What is still held is renewed, and not reported lost.
    let more = Leases::new(&store, "run2", "A", Duration::from_secs(30));
    more.seed("d", &plan(50)).await.expect("seed");
    let kept = ids(&more.claim(50).await.expect("claim"));
    assert!(more.renew(&kept).await.expect("renew").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_rate_window_never_lets_more_than_count_start_in_a_period() {
    let Some(db) = database("window") else { return };
    let db = std::sync::Arc::new(db);
    let store = store(&db).await;
    let period = Duration::from_millis(1000);
    let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut runners = tokio::task::JoinSet::new();
    // Three runners want 8 slots each from a window of 5 per second.
    for r in 0..3 {
        let leases = Leases::new(&store, "run1", &format!("R{r}"), Duration::from_secs(30));
        let (starts, db) = (starts.clone(), db.clone());
        runners.spawn(async move {
            let mut taken = 0;
            for _ in 0..400 {
                match leases.take_slot("digicert key", 5, period, BOUND).await.expect("slot") {
                    Take::Granted(slot) => {
                        // When the database recorded this start (its clock decides the
                        // window; this process's view of it lags under load).
                        let db = db.clone();
                        let at = tokio::task::spawn_blocking(move || {
                            db.scalar(&format!(
                                "SELECT extract(epoch FROM max(at))::float8 FROM redrive.rate_events WHERE runner = 'R{r}'"
                            ))
                        })
                        .await
                        .expect("read");
                        starts.lock().expect("starts").push(at.parse::<f64>().expect("epoch"));
                        leases.end_slot(slot).await.expect("ended");
                        taken += 1;
                        if taken == 8 {
                            return;
                        }
                    }
                    Take::Wait(wait) => tokio::time::sleep(wait.min(Duration::from_millis(100))).await,
                }
            }
            panic!("runner {r} took only {taken} slots");
        });
    }
    while let Some(r) = runners.join_next().await {
        r.expect("runner");
    }
    let mut starts = starts.lock().expect("starts").clone();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 24);
    for (i, at) in starts.iter().enumerate() {
        let within = starts[i..]
            .iter()
            .take_while(|t| *t - at < period.as_secs_f64())
            .count();
        assert!(
            within <= 5,
            "{within} starts within one period from start {i}: {starts:?}"
        );
    }
    // And the window was used, not merely waited out: 24 starts at 5 a second take 4 periods.
    let span = starts[23] - starts[0];
    assert!((4.0..8.0).contains(&span), "24 starts over {span:.2} s");
}

/// A slot is held while its request is in flight, however long, and for a period after its
/// end; a slot whose end never comes frees at its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_slot_is_held_until_a_period_after_its_request_ends() {
    let Some(db) = database("window_ends") else {
        return;
    };
    let store = store(&db).await;
    let period = Duration::from_millis(1000);
    let (a, b) = (
        Leases::new(&store, "run1", "A", Duration::from_secs(30)),
        Leases::new(&store, "run1", "B", Duration::from_secs(30)),
    );
    let take = |leases: &Leases, bound| {
        let leases = leases.clone();
        async move {
            leases
                .take_slot("digicert key", 2, period, bound)
                .await
                .expect("slot")
        }
    };
    let Take::Granted(first) = take(&a, BOUND).await else {
        panic!("an empty window has room")
    };
    let Take::Granted(_dies) = take(&b, Duration::from_secs(3)).await else {
        panic!("a window of 2 has room for a second")
    };
    // Both in flight: full, and asked again soon rather than after the bound.
    let Take::Wait(wait) = take(&b, BOUND).await else {
        panic!("a third slot while two requests are in flight")
    };
    assert!(wait <= Duration::from_millis(100), "{wait:?}");
    // Longer than a period in flight: counted by starts, both slots would have freed.
    tokio::time::sleep(period + Duration::from_millis(300)).await;
    assert!(matches!(take(&b, BOUND).await, Take::Wait(_)));
    a.end_slot(first).await.expect("ended");
    // Ended just now: held for a period more, and the wait says so.
    let Take::Wait(wait) = take(&b, BOUND).await else {
        panic!("a slot ended just now still counts")
    };
    assert!(wait > Duration::from_millis(500), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    let Take::Granted(_) = take(&b, BOUND).await else {
        panic!("a period after the end, the slot is free")
    };
    // The other slot's runner never ended it: it frees a period after its bound (3 s from its
    // grant), when the window has room again.
    let mut granted = false;
    for _ in 0..60 {
        match take(&b, BOUND).await {
            Take::Granted(_) => {
                granted = true;
                break;
            }
            Take::Wait(wait) => tokio::time::sleep(wait.min(Duration::from_millis(200))).await,
        }
    }
    assert!(granted, "a slot without an end was held past its bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_lock_was_taken_over_can_write_no_more_journal_records() {
    use redrive::state::{Record, State, Store as _};
    let Some(db) = database("fence") else { return };
    let record = |action: &str| Record {
        at: "2026-12-01T00:00:00Z".into(),
        run: "r".into(),
        action: action.into(),
        job: "j".into(),
        target: "t".into(),
        state: State::Sent,
        attempt: 1,
        http_status: None,
        detail: String::new(),
    };
    let a = store(&db).await;
    let (a, lock_a) = tokio::task::spawn_blocking(move || {
        let lock = a.lock().expect("A locks");
        (a, lock)
    })
    .await
    .expect("locked");
    let journal_a = a.journal().expect("journal");
    journal_a
        .append(&record("x1"))
        .await
        .expect("A writes while it holds the lock");
    // A stalls past its lease (as a stopped VM would): the row says it expired.
    db.query("UPDATE redrive.locks SET expires_at = now() - interval '1 second'");
    let b = store(&db).await;
    let (b, note, lock_b) = tokio::task::spawn_blocking(move || {
        let lock = b.lock().expect("B takes the expired lock over");
        let note = b.take_recovered();
        (b, note, lock)
    })
    .await
    .expect("taken over");
    assert!(
        note.is_some_and(|n| n.contains("lease test")),
        "the takeover names the old holder"
    );
    let err = journal_a.append(&record("x2")).await.unwrap_err();
    assert!(
        err.to_string().contains("taken over by another runner"),
        "{err}"
    );
    b.journal()
        .expect("journal")
        .append(&record("x3"))
        .await
        .expect("B writes");
    let actions: Vec<String> = db
        .query("SELECT action FROM redrive.journal ORDER BY seq")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert_eq!(actions, ["x1", "x3"]);
    // A's lock, dropped late, does not delete B's.
    tokio::task::spawn_blocking(move || drop(lock_a))
        .await
        .expect("dropped");
    assert_eq!(db.scalar("SELECT count(*) FROM redrive.locks"), "1");
    tokio::task::spawn_blocking(move || drop(lock_b))
        .await
        .expect("dropped");
    assert_eq!(db.scalar("SELECT count(*) FROM redrive.locks"), "0");
}

/// Leases belong to one run: the next run of the runbook clears those of runs that ended, so
/// the table (and the index every claim walks) does not grow run after run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_run_clears_the_leases_of_runs_that_ended() {
    let Some(db) = database("cleanup") else {
        return;
    };
    let store = store(&db).await;
    let digest = "d".repeat(64);
    let join = |store: PgStore| {
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || {
            let (lock, joined) = store.join_run(&digest).expect("join");
            (store, lock, joined)
        })
    };
    let (store, lock, first) = join(store).await.expect("joined");
    let leases = Leases::new(&store, &first.run, "A", Duration::from_secs(30));
    leases.seed(&digest, &plan(50)).await.expect("seed");
    let all = ids(&leases.claim(50).await.expect("claim"));
    assert_eq!(leases.finish(&all).await.expect("finish"), 50);
    let (store, _) = tokio::task::spawn_blocking(move || (store, drop(lock)))
        .await
        .expect("released");
    let count = |run: &str| {
        db.scalar(&format!(
            "SELECT count(*) FROM redrive.leases WHERE run = '{run}'"
        ))
    };
    assert_eq!(count(&first.run), "50", "kept while nothing else started");
    // Run ids are made of the plan and the millisecond: the next one is another run.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_store, _lock, second) = join(store).await.expect("joined again");
    assert_ne!(second.run, first.run);
    assert_eq!(count(&first.run), "0");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM redrive.runs WHERE run = '{}'",
            first.run
        )),
        "0"
    );
}
