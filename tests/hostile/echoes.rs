//! Nothing a server sends back is trusted to be clean: a server that echoes every request
//! (headers and body, as text, as a JSON `message` or inside a provider's error shape), with
//! 200, 400, 401 and 500, gets each provider type with each of its auth kinds; not one planted
//! secret may appear on stdout, stderr, in the journal, in `status` or in the three reports.

use std::path::Path;

use serde_json::json;

use super::{CASES, run, secrets, write};
use crate::apply::text;
use crate::fake::hostile::{EchoFake, EchoMode};

fn modes() -> [(&'static str, EchoMode); 3] {
    [
        ("text", EchoMode::Text),
        ("message", EchoMode::JsonMessage),
        (
            "template",
            EchoMode::Template(json!({
                "error": {"errorCode": "200", "message": "{{echo}}"},
                "Error": "{{echo}}",
                "returnMessage": "{{echo}}",
            })),
        ),
    ]
}

/// Every file redrive wrote in `dir` that is meant to be read: the journal and the reports
/// (the token store is owner-only and holds tokens on purpose).
fn written(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["r.json", "r.xml", "r.md"] {
        out.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(".redrive")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "jsonl") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

fn echoed(mode: usize) {
    let secrets = secrets();
    let (label, _) = &modes()[mode];
    let mut found = Vec::new();
    let mut runs = 0;
    for case in &CASES {
        let fake = EchoFake::spawn_thread(200, modes()[mode].1.clone());
        for status in [200, 400, 401, 500] {
            fake.set(status, modes()[mode].1.clone());
            let dir = write(
                case,
                &fake.url(),
                &format!("echo-{label}-{status}-{}", case.name),
                "r",
            );
            let plan = run(&dir, &["plan", "runbook.yaml"]);
            let apply = run(
                &dir,
                &[
                    "apply",
                    "--auto-approve",
                    "runbook.yaml",
                    "--report-json",
                    "r.json",
                    "--report-junit",
                    "r.xml",
                    "--report-markdown",
                    "r.md",
                ],
            );
            let status_run = run(&dir, &["status", "runbook.yaml"]);
            runs += 3;
            let sinks = [
                ("plan", text(&plan)),
                ("apply", text(&apply)),
                ("status", text(&status_run)),
                ("files", written(&dir)),
            ];
            for (sink, shown) in &sinks {
                for s in &secrets {
                    if shown.contains(s.as_str()) {
                        found.push(format!(
                            "{label} {status} {}: {s} in {sink}:\n{shown}",
                            case.name
                        ));
                    }
                }
            }
        }
        // The server did see the secrets: the echo is a real test.
        assert!(!fake.log().is_empty(), "{}", case.name);
    }
    assert!(runs > 0);
    assert!(
        found.is_empty(),
        "{} canaries found:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn a_text_echo_leaks_no_secret() {
    echoed(0);
}

#[test]
fn a_json_message_echo_leaks_no_secret() {
    echoed(1);
}

#[test]
fn an_echo_in_the_providers_error_shape_leaks_no_secret() {
    echoed(2);
}
