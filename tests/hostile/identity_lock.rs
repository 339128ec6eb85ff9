//! A lock per runbook identity: while one apply runs, a copy of the same runbook (same name,
//! same endpoints) in another folder, or the same runbook with another `--state-dir`, is
//! refused with exit 5 and told who holds the lock; once the first ends, the copy applies.

use std::time::Duration;

use crate::apply::{SECRETS, live, redrive, temp_dir, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_running_runbook_waits_for_it() {
    let live = live(
        "identity",
        "venafi_tpp:\n  generate: [{count: 20, parent: '\\VED\\Policy\\Slow'}]\n  faults:\n    latency: {fixed: 400ms, endpoints: ['POST /vedsdk/certificates/retry']}\n",
        "jobs:\n  - id: slow\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{ range(1, 21) | list }}\"\n    with: {certificate_dn: '\\VED\\Policy\\Slow\\cert-{{ item }}.example.com'}\n",
    )
    .await;
    let copy = temp_dir("identity-copy");
    std::fs::copy(live.dir.join("live.yaml"), copy.join("live.yaml")).expect("copy");
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
        .current_dir(&live.dir)
        .args(["apply", "--auto-approve", "--parallelism", "2", "live.yaml"])
        .envs(SECRETS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let (dir, other_state) = (live.dir.clone(), live.dir.join("elsewhere"));
    let copy_dir = copy.clone();
    let (from_copy, other_dir) = tokio::task::spawn_blocking(move || {
        let state = other_state.display().to_string();
        (
            redrive(
                &copy_dir,
                &["apply", "--auto-approve", "live.yaml"],
                &SECRETS,
            ),
            redrive(
                &dir,
                &[
                    "apply",
                    "--auto-approve",
                    "live.yaml",
                    "--state-dir",
                    &state,
                ],
                &SECRETS,
            ),
        )
    })
    .await
    .expect("ran");
    for (what, out) in [("a copy", &from_copy), ("another state dir", &other_dir)] {
        let all = text(out);
        assert_eq!(out.status.code(), Some(5), "{what}: {all}");
        assert!(
            all.contains("another apply of this runbook is running (process ")
                && all.contains(&format!("{}", first.id()))
                && all.contains("live.yaml"),
            "{what}: {all}"
        );
    }

    let first = tokio::task::spawn_blocking(move || first.wait_with_output())
        .await
        .expect("joined")
        .expect("waited");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let copy_dir = copy.clone();
    let again = tokio::task::spawn_blocking(move || {
        redrive(
            &copy_dir,
            &["apply", "--auto-approve", "live.yaml"],
            &SECRETS,
        )
    })
    .await
    .expect("ran");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    live.running.stop().await;
}
