//! Reports: JUnit valid against the common `junit-10.xsd` (checked with `xmllint --schema`),
//! and every report path checked before anything is sent.

use std::path::Path;

use redrive::apply::State;
use redrive::report::{Summary, Tally};

use crate::apply::{examples_copy, redrive, text};
use crate::markdown::result;

const XSD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/xsd/junit-10.xsd"
);

/// Whether a tool the test needs is there; outside CI a missing one skips loudly, in CI
/// (`CI=true`) it fails: `.ci/run` installs it.
pub(crate) fn tool(name: &str, probe: &[&str]) -> bool {
    let found = std::process::Command::new(name)
        .args(probe)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{name}` is missing in CI: .ci/run must install it"
        );
        #[expect(clippy::print_stderr, reason = "a skipped check must be seen")]
        {
            eprintln!("SKIPPED: `{name}` is not installed; run .ci/run to install it");
        }
    }
    found
}

fn xmllint(file: &Path) {
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", XSD])
        .arg(file)
        .output()
        .expect("xmllint");
    assert!(
        out.status.success(),
        "{} is not valid against junit-10.xsd:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn junit_is_valid_against_the_common_xsd() {
    if !tool("xmllint", &["--version"]) {
        return;
    }
    let results = vec![
        result("venafi-retry", r"\VED\Policy\a & <b>", State::Succeeded, ""),
        result(
            "venafi-retry",
            "b",
            State::Failed,
            "400: \"no\" \u{1} 'quote'",
        ),
        result("vcf", "task 1", State::Unknown, "timeout after send"),
        result("vcf", "task 2", State::Skipped, "converged"),
    ];
    let summary = Summary {
        runbook: "runbook.yaml",
        name: "outage <&>",
        run: "1",
        started_at: "2026-12-01T10:00:00.123Z",
        duration_ms: 1234,
        interrupted: false,
        tally: Tally::of(&results),
        results: &results,
        throttled: &[],
    };
    let xml = redrive::report::junit::render(&summary);
    assert!(xml.contains("<error type=\"Unknown\""), "{xml}");
    assert!(xml.contains("<failure type=\"Failed\""), "{xml}");
    assert!(
        xml.contains(
            "<testsuites name=\"outage &lt;&amp;&gt;\" tests=\"4\" failures=\"1\" errors=\"1\""
        ),
        "{xml}"
    );
    let dir = crate::apply::temp_dir("junit-xsd");
    std::fs::write(dir.join("r.xml"), &xml).expect("write");
    xmllint(&dir.join("r.xml"));

    // And a real apply's report.
    let dir = examples_copy("junit-real");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "outage-remediation.yaml",
            "--report-junit",
            "r.xml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    xmllint(&dir.join("r.xml"));
}

#[test]
fn an_unwritable_report_path_fails_before_anything_is_sent() {
    let dir = examples_copy("report-path");
    for args in [
        &["--report-junit", "missing/dir/r.xml"][..],
        &["--report-json", "ok.json", "--report-markdown", "."][..],
    ] {
        let mut all = vec![
            "apply",
            "--sandbox",
            "--auto-approve",
            "outage-remediation.yaml",
        ];
        all.extend_from_slice(args);
        let out = redrive(&dir, &all, &[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        let bad = args[args.len() - 1];
        assert!(
            shown.contains(&format!("cannot write the report {bad}")),
            "{shown}"
        );
        assert!(shown.contains("nothing was planned or sent"), "{shown}");
        assert!(out.stdout.is_empty(), "no plan, no results: {shown}");
        // Nothing was journaled, so nothing was sent.
        let journal = dir.join(".redrive/sandbox/outage-remediation.journal.jsonl");
        let lines = std::fs::read_to_string(&journal).unwrap_or_default();
        assert!(!lines.contains("\"sent\""), "{lines}");
        // A good report path opened before the bad one is not left behind empty.
        assert!(!dir.join("ok.json").exists());
    }
}
