//! Progress and quiet output of `apply`, from the binary: `--quiet` keeps only failures and the
//! summary; plain lines without a terminal and under `TERM=dumb` (a pseudo-terminal made with
//! `script`), with the current wave.

use crate::apply::{examples_copy, redrive, text};

#[test]
fn quiet_prints_the_summary_and_failures_only() {
    let dir = crate::apply::temp_dir("quiet");
    std::fs::write(
        dir.join("failing.yaml"),
        "seed: 1\nvenafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}, {dn: '\\VED\\Policy\\A\\b.example.com'}]\n  faults:\n    errors: [{status: 400, rate: 1.0, endpoints: ['POST /vedsdk/certificates/retry']}]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("runbook.yaml"),
        "version: 1\nname: quiet\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [a, b]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n",
    )
    .expect("write");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--scenario",
            "failing.yaml",
            "--auto-approve",
            "--quiet",
            "runbook.yaml",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("Results:") && !stdout.contains('✓'),
        "{stdout}"
    );
    assert!(
        stdout.contains("Failures:") && stdout.contains("a.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("Apply: 0 succeeded"), "{stdout}");
    assert!(
        !stderr.contains("Applying") && !stderr.contains(" done ("),
        "{stderr}"
    );
}

#[test]
fn plain_lines_without_a_terminal_show_waves() {
    let dir = examples_copy("plain");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "outage-remediation.yaml",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr.contains("Applying 22 action(s) in 4 job(s)."),
        "{stderr}"
    );
    assert!(stderr.contains("venafi-retry: wave 2 of 3"), "{stderr}");
    assert!(stderr.contains("22/22 done"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

/// On a terminal that cannot redraw (`TERM=dumb`), plain lines instead of bars.
#[test]
fn dumb_terminals_get_plain_lines() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` (util-linux) is missing in CI"
        );
        return;
    }
    let dir = examples_copy("dumb");
    let command = format!(
        "{} apply --sandbox --auto-approve outage-remediation.yaml",
        env!("CARGO_BIN_EXE_redrive")
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(&dir)
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("Applying 22 action(s)"), "{shown}");
    assert!(shown.contains("22/22 done"), "{shown}");
    // No cursor movement or line clearing: indicatif's bars were not drawn.
    assert!(
        !shown.contains("\x1b[2K") && !shown.contains("\x1b[1A"),
        "{shown:?}"
    );
}
