//! Every example runbook validates with the real binary.

use std::path::PathBuf;

use assert_cmd::Command;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "examples/ holds runbooks");
    files
}

#[test]
fn every_example_validates() {
    for file in examples() {
        let out = Command::cargo_bin("redrive")
            .unwrap()
            .arg("validate")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_example_has_the_schema_modeline() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/redrive.schema.json\n"),
            "{} must start with the yaml-language-server modeline",
            file.display()
        );
    }
}
