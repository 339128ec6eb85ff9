//! The journal's unit tests: replay of torn and damaged lines, syncs shared by bursts, the lock.

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
        (0..20).all(|i| history.get(&format!("a{i}")).expect("a").last.state == State::Succeeded)
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
