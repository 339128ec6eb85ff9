//! A non-idempotent request that times out on a slow server which still performs it a moment
//! later, against a fake NAVER Cloud (written from providers.md §5): the look taken at the
//! timeout says "did not happen", and the reissue must not be sent again on that look alone;
//! nor by the next run, started right after the first was killed with the request on its way.

use std::time::Duration;

use super::apply::temp_dir;
use super::fake::ncloud::slow_reissue;
use super::processes::redrive;

const NO: u64 = 4712;

#[test]
fn a_request_that_timed_out_and_landed_later_is_not_sent_again() {
    // The client gives up after 1 s; the server performs the reissue at 2 s.
    let fake = slow_reissue(NO, "late", Duration::from_secs(2));
    let dir = temp_dir("late-landing");
    let retry = "    retry: {attempts: 3, initial_delay: 20s}\n";
    let runbook = fake.reissue_runbook("late", NO, "1s", retry);
    std::fs::write(dir.join("late.yaml"), runbook).expect("write the runbook");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--format",
            "json",
            "late.yaml",
        ],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{}", out.all);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let of = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    // The look at the timeout saw nothing yet (the case this test is about)...
    assert!(
        of("action_retried").any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not take effect"))),
        "{}",
        out.all
    );
    // ...and the look after the pause found the reissue that landed meanwhile.
    assert_eq!(
        fake.reissue_requests(NO),
        1,
        "the reissue was sent again: {}",
        out.all
    );
    assert_eq!(fake.reissues(NO), 1);
    let last = of("action_final").next_back().expect("a final event");
    assert_eq!(last["state"], "succeeded", "{}", out.all);
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("observed afterwards that it took effect")),
        "{}",
        out.all
    );
}

/// A run killed (`kill -9`) with its reissue on its way, and applied again at once: the second
/// run must wait for that request to land before it reads the state, not read "did not happen"
/// and send the reissue again.
#[test]
fn a_run_applied_again_right_after_a_kill_waits_for_the_request_it_left_on_its_way() {
    const KILLED: u64 = 4713;
    let fake = slow_reissue(KILLED, "killed", Duration::from_secs(3));
    let dir = temp_dir("late-landing-kill");
    let runbook = fake.reissue_runbook("killed", KILLED, "4s", "");
    std::fs::write(dir.join("killed.yaml"), runbook).expect("write the runbook");
    let apply = ["apply", "--auto-approve", "killed.yaml"];
    let first = redrive(&dir, &apply);
    let until = std::time::Instant::now() + Duration::from_secs(120);
    while fake.reissue_requests(KILLED) == 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill_9();
    assert_eq!(fake.reissue_requests(KILLED), 1, "the first run sent it");
    assert_eq!(fake.reissues(KILLED), 0, "killed before it landed");
    let second = redrive(&dir, &apply).wait_for(Duration::from_secs(120));
    assert_eq!(second.code, Some(0), "{}", second.all);
    assert_eq!(
        fake.reissue_requests(KILLED),
        1,
        "the second run sent the reissue again: {}",
        second.all
    );
    assert_eq!(fake.reissues(KILLED), 1);
    assert!(second.all.contains("may still land"), "{}", second.all);
    // Read after it landed: the issuance it started is running.
    assert!(
        second.stdout.contains("an issuance is already running"),
        "{}",
        second.all
    );
}
