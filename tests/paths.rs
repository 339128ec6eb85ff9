//! Files a runbook names stay inside its folder and are regular files: traversal, absolute
//! paths, symlinks that lead out and FIFOs are refused by `validate` with exit 3 and a
//! location, for inputs, secret files, CSR files and CA bundles alike. A FIFO must be refused
//! at once (the test would hang if it were opened for reading).

use std::path::{Path, PathBuf};

use redrive::exit::ExitStatus;

use crate::support::redrive;

fn scratch(name: &str) -> PathBuf {
    let root = crate::support::scratch(&format!("paths-{name}"));
    std::fs::create_dir_all(root.join("book/inputs")).expect("a scratch folder");
    std::fs::write(root.join("outside.txt"), "outside\n").expect("write");
    std::fs::write(root.join("book/inputs/dns.txt"), "web01\n").expect("write");
    std::fs::write(root.join("book/inputs/TARGETS.CSV"), "dn\nweb01\n").expect("write");
    root
}

/// Runbooks that read `PATH` as an input, a secret file, a CSR file and a CA bundle.
fn runbooks(path: &str) -> Vec<(&'static str, String)> {
    let tpp = "  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n";
    let job = "  - id: j\n    provider: tpp\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\x'}\n";
    vec![
        (
            "input",
            format!(
                "version: 1\nname: t\ninputs:\n  dns: {{file: {path}}}\nproviders:\n{tpp}    auth: {{access_token: {{env: T}}}}\njobs:\n{job}"
            ),
        ),
        (
            "secret",
            format!(
                "version: 1\nname: t\nproviders:\n{tpp}    auth: {{username: u, password: {{file: {path}}}}}\njobs:\n{job}"
            ),
        ),
        (
            "ca_file",
            format!(
                "version: 1\nname: t\nproviders:\n{tpp}    auth: {{access_token: {{env: T}}}}\n    tls: {{ca_file: {path}}}\njobs:\n{job}"
            ),
        ),
        (
            "csr",
            format!(
                "version: 1\nname: t\nproviders:\n  ncp:\n    type: ncloud\n    url: https://ncp.example.com\n    auth: {{access_key: {{env: A}}, secret_key: {{env: S}}}}\njobs:\n  - id: j\n    provider: ncp\n    action: reissue_certificate\n    with:\n      certificate_no: 1\n      csr: {{file: {path}}}\n      certificate_name: n\n      common_name: c.example.com\n"
            ),
        ),
    ]
}

fn refused(root: &Path, path: &str, expect: &str) {
    for (what, text) in runbooks(path) {
        let file = root.join("book").join(format!("{what}.yaml"));
        std::fs::write(&file, text).expect("write the runbook");
        let file = file.to_str().expect("UTF-8");
        let run = redrive(&["validate", file]);
        assert_eq!(
            run.status,
            ExitStatus::Invalid,
            "{what} `{path}` must be refused:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(expect) && run.stderr.contains(&format!("{what}.yaml:")),
            "{what} `{path}`: expected `{expect}` with a location:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("outside\n"), "{}", run.stderr);
    }
}

#[test]
fn traversal_is_refused() {
    let root = scratch("traversal");
    refused(&root, "../outside.txt", "leaves the runbook's folder");
    refused(
        &root,
        "inputs/../../outside.txt",
        "leaves the runbook's folder",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn absolute_paths_are_refused() {
    let root = scratch("absolute");
    let outside = root.join("outside.txt");
    refused(
        &root,
        outside.to_str().expect("UTF-8"),
        "is an absolute path",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_folder_are_refused() {
    let root = scratch("symlink");
    std::os::unix::fs::symlink(root.join("outside.txt"), root.join("book/inputs/link.txt"))
        .expect("a symlink");
    refused(&root, "inputs/link.txt", "outside the runbook's folder");
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(unix)]
#[test]
fn fifos_and_directories_are_refused_at_once() {
    let root = scratch("fifo");
    let fifo = root.join("book/inputs/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        refused(&root, "inputs/pipe", "FIFO");
    }
    refused(&root, "inputs", "directory");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn files_inside_the_folder_pass_and_extensions_ignore_case() {
    let root = scratch("inside");
    let book = root.join("book");
    std::fs::write(book.join("inputs/ca.pem"), "not checked until plan\n").expect("write");
    let text = "version: 1\nname: t\ninputs:\n  rows: {file: inputs/TARGETS.CSV}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {username: u, password: {file: secrets/not-yet-provisioned}}\n    tls: {ca_file: inputs/ca.pem}\njobs:\n  - id: j\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{ inputs.rows }}\"\n    with: {certificate_dn: '\\VED\\Policy\\{{ item.dn }}'}\n";
    let file = book.join("ok.yaml");
    std::fs::write(&file, text).expect("write");
    let run = redrive(&["validate", file.to_str().expect("UTF-8")]);
    // `.CSV` reads as CSV: `item.dn` exists only if the rows are objects.
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    assert!(run.stderr.contains("1 action"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&root);
}
