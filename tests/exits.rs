//! Exit codes that were wrong once: `apply --target` of a job that does not exist is an invalid
//! argument (3), like `plan`'s; a state directory that cannot be used is a runtime error (1),
//! not "stale or locked" (5).

use super::apply::{examples_copy, redrive, text};

#[test]
fn an_unknown_target_is_invalid_for_plan_and_apply() {
    let dir = examples_copy("exit-target");
    for command in [
        vec![
            "plan",
            "--sandbox",
            "--target",
            "nosuchjob",
            "venafi-retry.yaml",
        ],
        vec![
            "apply",
            "--sandbox",
            "--auto-approve",
            "--target",
            "nosuchjob",
            "venafi-retry.yaml",
        ],
    ] {
        let out = redrive(&dir, &command, &[]);
        assert_eq!(out.status.code(), Some(3), "{command:?}: {}", text(&out));
        assert!(text(&out).contains("is not a job"), "{}", text(&out));
    }
}

#[test]
fn a_state_directory_that_cannot_be_used_is_a_runtime_error() {
    let dir = examples_copy("exit-state");
    // A file where the state directory should be.
    std::fs::write(dir.join("state"), "not a directory").expect("write");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "--state-dir",
            "state",
            "venafi-retry.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("state"), "{}", text(&out));
}
