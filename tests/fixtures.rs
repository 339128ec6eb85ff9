//! Every broken runbook under `tests/fixtures/invalid/` is rejected with exit 3, and its
//! diagnostics match the reviewed snapshot exactly.

use std::path::PathBuf;

use redrive::exit::ExitStatus;

use crate::support::redrive;

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/invalid")
        .expect("tests/fixtures/invalid exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_runbooks_have_located_diagnostics() {
    let files = fixtures();
    assert!(
        files.len() >= 40,
        "at least 40 invalid runbooks, found {}",
        files.len()
    );
    for file in files {
        let path = file.to_str().expect("a UTF-8 path");
        let run = redrive(&["validate", path]);
        assert_eq!(
            run.status,
            ExitStatus::Invalid,
            "{path} must be rejected:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("error["),
            "{path}: no error printed:\n{}",
            run.stderr
        );
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_owned();
        insta::with_settings!({ snapshot_path => "snapshots/invalid", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, run.stderr);
        });
    }
}

#[test]
fn json_diagnostics_carry_positions() {
    let run = redrive(&[
        "validate",
        "--format",
        "json",
        "tests/fixtures/invalid/schema-sample.yaml.txt",
    ]);
    // A missing file is reported in the JSON too, without a position.
    assert_eq!(run.status, ExitStatus::Invalid);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"][0]["diagnostics"][0]["code"], "io");
}
