//! `apply --format json` and `status --format json`: versioned lines, each valid against its
//! committed schema; the committed schemas are what the types generate.

use std::path::Path;

use serde_json::Value;

use crate::apply::{examples_copy, redrive, text};

/// Compares a committed schema with the generated one; `REDRIVE_BLESS=1` rewrites it.
pub(crate) fn check_committed(file: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    if std::env::var_os("REDRIVE_BLESS").is_some() {
        std::fs::write(&path, generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/{file} is stale; regenerate it with `REDRIVE_BLESS=1 cargo test --test integration events::`"
    );
}

#[test]
fn committed_events_schema_is_current() {
    check_committed(
        "events.schema.json",
        &redrive::report::events::schema_text(),
    );
}

#[test]
fn committed_status_schema_is_current() {
    check_committed(
        "status.schema.json",
        &redrive::report::status::schema_text(),
    );
}

fn validator(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    assert!(jsonschema::meta::is_valid(&schema));
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn check_lines(validator: &jsonschema::Validator, stdout: &str, example: &str) -> Vec<Value> {
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{example}: {e}: {l}")))
        .collect();
    for line in &lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{example}: {line}: {errors:?}");
        assert_eq!(line["format_version"], 1, "{line}");
    }
    lines
}

/// `status --format json` of what the examples applied: valid against its schema.
fn status_is_valid_json(dir: &Path) {
    let status_validator = validator("status.schema.json");
    let out = redrive(
        dir,
        &[
            "status",
            "--sandbox",
            "--format",
            "json",
            "outage-remediation.yaml",
        ],
        &[],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let errors: Vec<String> = status_validator
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{doc}: {errors:?}");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["exit_code"].as_i64(), out.status.code().map(i64::from));
    assert!(
        doc["jobs"]
            .as_array()
            .is_some_and(|j| j.iter().any(|j| j["job"] == "venafi-retry")),
        "{doc}"
    );
}

/// Every example, rehearsed with `--format json`: every line valid against the schema, the
/// plan first and the summary last, one `action_final` per planned action, and the summary's
/// exit code the process's.
#[test]
fn every_example_streams_valid_events() {
    let events = validator("events.schema.json");
    let dir = examples_copy("events");
    let mut examples: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Path::new(&name)
                .extension()
                .is_some_and(|x| x == "yaml")
                .then_some(name)
        })
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    let mut kinds = std::collections::BTreeSet::new();
    for example in &examples {
        let out = redrive(
            &dir,
            &[
                "apply",
                "--sandbox",
                "--auto-approve",
                "--format",
                "json",
                example,
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = check_lines(&events, &stdout, example);
        assert!(!lines.is_empty(), "{example}: {}", text(&out));
        assert_eq!(lines[0]["type"], "plan", "{example}");
        let last = lines.last().expect("a line");
        assert_eq!(last["type"], "summary", "{example}");
        assert_eq!(
            last["exit_code"].as_i64(),
            out.status.code().map(i64::from),
            "{example}: {}",
            text(&out)
        );
        let planned = lines[0]["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| {
                j["run"].as_u64().unwrap_or(0)
                    + j["unchanged"].as_u64().unwrap_or(0)
                    + j["blocked"].as_u64().unwrap_or(0)
            })
            .sum::<u64>();
        let finals = lines.iter().filter(|l| l["type"] == "action_final").count() as u64;
        if lines[0]["run"].as_u64() > Some(0) {
            assert_eq!(finals, planned, "{example}");
        }
        let mut t = 0;
        for l in &lines {
            let now = l["t_ms"].as_u64().expect("t_ms");
            assert!(now >= t, "{example}: time goes back at {l}");
            t = now;
            kinds.insert(l["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    for kind in [
        "plan",
        "apply_started",
        "job_started",
        "wave_started",
        "action_sent",
        "action_final",
        "job_finished",
        "summary",
    ] {
        assert!(
            kinds.contains(kind),
            "no `{kind}` event in any example: {kinds:?}"
        );
    }

    status_is_valid_json(&dir);
}

/// Retries and 429s appear as events: a scenario that fails and throttles now and then.
#[test]
fn retries_and_throttling_are_events() {
    let events = validator("events.schema.json");
    let dir = crate::apply::temp_dir("events-faults");
    std::fs::write(
        dir.join("faulty.yaml"),
        "seed: 1\nvenafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}, {dn: '\\VED\\Policy\\A\\b.example.com'}, {dn: '\\VED\\Policy\\A\\c.example.com'}, {dn: '\\VED\\Policy\\A\\d.example.com'}]\n  faults:\n    errors: [{status: 500, rate: 0.5, endpoints: ['POST /vedsdk/certificates/retry']}]\n    throttle: {every: 3, burst: 1, endpoints: ['POST /vedsdk/certificates/retry']}\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("runbook.yaml"),
        "version: 1\nname: faulty\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [a, b, c, d]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n    retry: {attempts: 60, initial_delay: 10ms, max_delay: 20ms}\n",
    )
    .expect("write");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--scenario",
            "faulty.yaml",
            "--auto-approve",
            "--format",
            "json",
            "runbook.yaml",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = check_lines(&events, &stdout, "runbook.yaml");
    let has = |kind: &str| lines.iter().any(|l| l["type"] == kind);
    assert!(has("action_retried"), "{}", text(&out));
    assert!(has("throttled"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
