//! A cooperative runner that stalls (SIGSTOP) right after its non-idempotent request left,
//! against a fake NAVER Cloud (written from providers.md §5) on which that request lands only
//! seconds later: the runner that takes the action over must not read "did not happen" while
//! the request is still on its way, and send the reissue a second time.

use std::time::{Duration, Instant};

use super::apply::temp_dir;
use super::fake::ncloud::slow_reissue;
use super::pg_cluster::database;
use super::processes::redrive;

const NO: u64 = 4711;

#[test]
fn a_request_of_a_stalled_runner_lands_before_the_takeover_decides() {
    let Some(db) = database("coop_stall") else {
        return;
    };
    let fake = slow_reissue(NO, "stall", Duration::from_secs(4));
    let dir = temp_dir("coop-stall");
    let runbook = fake.reissue_runbook("stall", NO, "6s", "");
    std::fs::write(dir.join("stall.yaml"), runbook).expect("write the runbook");
    let dsn = db.dsn();
    let planned = redrive(
        &dir,
        &["plan", "--out", "plan.json", "--state", &dsn, "stall.yaml"],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(planned.code, Some(2), "{}", planned.all);
    let apply = [
        "apply",
        "--auto-approve",
        "--refresh=false",
        "--state",
        &dsn,
        "plan.json",
    ];
    let first = redrive(&dir, &apply);
    // The reissue arrived (it lands 4 s later); the runner stalls with it on its way.
    let until = Instant::now() + Duration::from_secs(120);
    while fake.reissue_requests(NO) == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    first.signal("STOP");
    assert_eq!(fake.reissue_requests(NO), 1, "the first runner sent it");
    // A second runner joins, waits out the stalled one's lease (2 s) and takes the action over.
    let second = redrive(&dir, &apply).wait_for(Duration::from_secs(120));
    first.signal("CONT");
    first.kill_9();
    assert_eq!(second.code, Some(0), "{}", second.all);
    assert_eq!(
        fake.reissue_requests(NO),
        1,
        "the takeover sent the reissue again: {}",
        second.all
    );
    assert_eq!(fake.reissues(NO), 1);
    let detail = db.scalar(
        "SELECT detail FROM redrive.journal WHERE state_key = 'stall' AND state = 'succeeded'",
    );
    assert!(
        detail.starts_with("taken over from") && detail.contains("took effect"),
        "{detail}"
    );
}
