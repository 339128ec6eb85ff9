//! `redrive plan` against the in-process sandbox: the diff, the JSON and Markdown documents,
//! stable ids, saved plans without secret values, and the exit codes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::support::redrive;
use redrive::exit::ExitStatus;
use redrive::plan::file;

const OUTAGE: &str = "examples/outage-remediation.yaml";

fn temp_dir(name: &str) -> PathBuf {
    crate::support::scratch(&format!("plan-{name}"))
}

fn json_plan(args: &[&str]) -> Value {
    let mut all = vec!["plan", "--format", "json"];
    all.extend_from_slice(args);
    let run = redrive(&all);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("JSON plan: {e}\n{}", run.stdout))
}

#[test]
fn outage_plan_against_the_sandbox_is_a_diff_with_a_summary() {
    let run = redrive(&["plan", "--sandbox", OUTAGE]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("Plan: 22 to run, 0 unchanged, 1 blocked."),
        "{out}"
    );
    assert!(
        out.contains(r"  + \VED\Policy\Certificates\Web\shop.example.com"),
        "{out}"
    );
    // Discovered, not listed by hand: the search under the folder shows only what is in error.
    assert!(!out.contains("static.example.com"), "{out}");
    assert!(
        out.contains("  ! 10.100.197.151:443") && out.contains("ACTION_REQUIRED"),
        "{out}"
    );
    // The source fed the NCP job: two WAF certificates qualify, two are filtered by `when`.
    assert!(
        out.contains("+ certificate 55882") && out.contains("+ certificate 55907"),
        "{out}"
    );
    assert!(out.contains("2 item(s) filtered out by `when`"), "{out}");
    assert!(out.contains("not idempotent"), "{out}");
    assert!(
        out.contains("examples/outage-remediation.yaml:144:5"),
        "{out}"
    );
}

#[test]
fn json_plan_is_versioned_with_digests_and_stable_ids() {
    let a = json_plan(&["--sandbox", OUTAGE]);
    let b = json_plan(&["--sandbox", OUTAGE]);
    assert_eq!(a["format_version"], 1);
    assert_eq!(a["sandbox"], true);
    assert_eq!(
        a["summary"],
        serde_json::json!({"run": 22, "unchanged": 0, "blocked": 1})
    );
    let digest = redrive::plan::file::digest(Path::new(OUTAGE)).expect("digest");
    assert_eq!(a["runbook"]["sha256"], digest);
    let inputs: Vec<&str> = a["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| i["name"].as_str().expect("a name"))
        .collect();
    // Inputs, then every other file the plan was rendered from: a CA bundle and two CSRs.
    assert_eq!(
        inputs,
        ["waf_to_ncp", "provider `sddc` CA file", "csr", "csr"]
    );
    let ids = |plan: &Value| -> Vec<String> {
        plan["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .flat_map(|j| j["actions"].as_array().expect("actions").iter())
            .map(|a| a["id"].as_str().expect("an id").to_owned())
            .collect()
    };
    assert_eq!(ids(&a), ids(&b), "re-planning keeps the ids");
    let mut unique = ids(&a);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 23);
    let retry = &a["jobs"][0]["actions"][0];
    assert_eq!(retry["decision"]["decision"], "run");
    assert_eq!(retry["idempotency"], "convergent");
    assert_eq!(retry["request"]["method"], "POST");
    assert!(
        retry["request"]["url"]
            .as_str()
            .expect("url")
            .ends_with("/vedsdk/Certificates/Retry")
    );
    assert_eq!(
        retry["request"]["body"],
        serde_json::json!({"CertificateDN": r"\VED\Policy\Certificates\Web\shop.example.com", "WorkToDoTimeout": 60})
    );
    assert_eq!(retry["observed"]["in_error"], true);
}

/// Without `--sandbox` and with `--refresh=false` nothing is sent, and the plan shows secret
/// references, never the values in the environment.
#[test]
fn saved_plan_holds_references_not_secret_values() {
    let dir = temp_dir("secrets");
    let out = dir.join("plan.json");
    let assert = Command::cargo_bin("redrive")
        .expect("the binary")
        .args(["plan", "--refresh=false", "--out"])
        .arg(&out)
        .arg("examples/ncloud-reissue.yaml")
        .env("NCLOUD_ACCESS_KEY", "AKIA-VERY-SECRET-ACCESS")
        .env("NCLOUD_SECRET_KEY", "VERY-SECRET-KEY-VALUE-0001")
        .assert();
    let output = assert.get_output();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = std::fs::read_to_string(&out).expect("the saved plan");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for text in [saved.as_str(), &stdout] {
        assert!(
            !text.contains("AKIA-VERY-SECRET-ACCESS"),
            "a secret leaked:\n{text}"
        );
        assert!(
            !text.contains("VERY-SECRET-KEY-VALUE-0001"),
            "a secret leaked:\n{text}"
        );
    }
    assert!(saved.contains("{env: NCLOUD_ACCESS_KEY}"), "{saved}");
    let plan = redrive::plan::file::load(&out).expect("the plan loads back");
    assert!(!plan.refreshed);
    assert!(redrive::plan::file::stale_files(&plan).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_converged_job_plans_nothing_and_exits_0() {
    let dir = temp_dir("converged");
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        r"venafi_tpp:
  certificates:
    - {dn: '\VED\Policy\Certificates\Web\web01.example.com', in_error: false}
    - {dn: '\VED\Policy\Certificates\Web\web02.example.com', in_error: false}
",
    )
    .expect("write");
    let run = redrive(&[
        "plan",
        "--sandbox",
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "examples/venafi-retry.yaml",
    ]);
    // The scenario knows two certificates, both converged; the third does not exist.
    assert_eq!(
        run.status,
        ExitStatus::Success,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("Plan: 0 to run, 2 unchanged, 1 blocked."),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// "Could not find out" is an error naming the provider, never "blocked" and exit 0.
#[test]
fn unreadable_state_is_an_error_naming_the_provider() {
    let dir = temp_dir("faulty");
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        "vcf:\n  tasks: [{id: 5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903, resources: [{name: h1}]}]\n  faults:\n    errors: [{status: 503, rate: 1.0, endpoints: ['GET /v1/tasks/{id}']}]\n",
    )
    .expect("write");
    let run = redrive(&[
        "plan",
        "--sandbox",
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "--target",
        "vcf-rotate",
        OUTAGE,
    ]);
    assert_eq!(
        run.status,
        ExitStatus::Failure,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains("could not read the current state")
            && run.stderr.contains("provider `sddc`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn markdown_plan_fits_a_pull_request_comment() {
    let run = redrive(&["plan", "--sandbox", "--format", "markdown", OUTAGE]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    let md = &run.stdout;
    assert!(
        md.contains("| job | provider | action | to run | unchanged | blocked |"),
        "{md}"
    );
    assert!(
        md.contains("| `venafi-retry` | tpp (venafi_tpp) | retry_certificate | 11 | 0 | 0 |"),
        "{md}"
    );
    assert!(
        md.contains("[!WARNING]") && md.contains("`ncp-reissue`: 2 × reissue_certificate"),
        "{md}"
    );
    assert!(md.contains("<details>"), "{md}");

    // A big plan is cut to GitHub's limit, with a note saying so.
    let dir = temp_dir("big");
    let dns: String = (1..=4000)
        .map(|n| format!("\\VED\\Policy\\Bulk\\certificate-number-{n}.example.com\n"))
        .collect();
    std::fs::write(dir.join("dns.txt"), dns).expect("write");
    std::fs::write(
        dir.join("runbook.yaml"),
        "version: 1\nname: big\ninputs:\n  dns: {file: dns.txt}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}\njobs:\n  - id: all\n    provider: tpp\n    action: retry_certificate\n    for_each: '{{ inputs.dns }}'\n    with: {certificate_dn: '{{ item }}'}\n  - id: again\n    provider: tpp\n    action: retry_certificate\n    for_each: '{{ inputs.dns }}'\n    with: {certificate_dn: '{{ item }}x'}\n",
    )
    .expect("write");
    let plan = dir.join("runbook.yaml");
    let run = redrive(&[
        "plan",
        "--refresh=false",
        "--format",
        "markdown",
        plan.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    assert!(
        run.stdout.chars().count() <= 65_535,
        "{} characters",
        run.stdout.chars().count()
    );
    assert!(
        run.stdout.contains("left out to stay within GitHub's"),
        "{}",
        &run.stdout[..500]
    );
    assert!(
        run.stdout.contains("Plan: 8000 to run"),
        "{}",
        &run.stdout[..500]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_target_and_stray_scenario_are_argument_errors() {
    let run = redrive(&["plan", "--sandbox", "--target", "venafi-retyr", OUTAGE]);
    assert_eq!(run.status, ExitStatus::Invalid);
    assert!(
        run.stderr.contains("did you mean `venafi-retry`"),
        "{}",
        run.stderr
    );
    let run = redrive(&["plan", "--scenario", "x.yaml", OUTAGE]);
    assert_eq!(run.status, ExitStatus::Invalid, "{}", run.stderr);
}

/// The plan's JSON format is documented by a committed schema, and real plans pass it.
#[test]
fn json_plans_follow_the_committed_schema() {
    let committed = std::fs::read_to_string("schemas/plan.schema.json").expect("the plan schema");
    assert!(
        committed == redrive::plan::schema_text(),
        "schemas/plan.schema.json is stale; regenerate it with `cargo run -- schema --plan > schemas/plan.schema.json`"
    );
    let schema: Value = serde_json::from_str(&committed).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let plan = json_plan(&["--sandbox", OUTAGE]);
    let errors: Vec<String> = validator
        .iter_errors(&plan)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_target_listed_twice_is_planned_once_and_the_repeat_names_the_first_job() {
    let dir = temp_dir("duplicates");
    let runbook = dir.join("dups.yaml");
    std::fs::write(
        &runbook,
        r#"version: 1
name: dups
providers:
  tpp:
    type: venafi_tpp
    url: https://tpp.example.com
    auth: {client_id: redrive, username: svc, password: {env: TPP_PASSWORD}}
jobs:
  - id: first
    provider: tpp
    action: retry_certificate
    for_each: ['\VED\Policy\a', '\VED\Policy\b', '\VED\Policy\a']
    with: {certificate_dn: "{{ item }}"}
  - id: second
    provider: tpp
    action: retry_certificate
    with: {certificate_dn: '\VED\Policy\b'}
"#,
    )
    .expect("write");
    // Without reading the providers' state every action would run: only the repeats do not.
    let plan = json_plan(&["--refresh=false", runbook.to_str().expect("utf-8")]);
    assert_eq!(plan["summary"]["run"], 2, "{plan:#}");
    assert_eq!(plan["summary"]["blocked"], 2, "{plan:#}");
    let first = &plan["jobs"][0]["actions"];
    let second = &plan["jobs"][1]["actions"];
    for (repeat, of) in [(&first[2], &first[0]), (&second[0], &first[1])] {
        assert_eq!(repeat["id"], of["id"], "{plan:#}");
        assert_eq!(repeat["decision"]["decision"], "blocked", "{plan:#}");
        let reason = repeat["decision"]["reason"].as_str().expect("a reason");
        assert!(reason.contains("already planned (job `first`"), "{reason}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plans are written as they are made, but only once the whole plan is: an item that fails to
/// render after others were resolved leaves stdout empty and no saved plan, in every format.
#[test]
fn a_runbook_failing_half_way_prints_no_half_plan() {
    let dir = temp_dir("half");
    let runbook = dir.join("half.yaml");
    std::fs::write(
        &runbook,
        r#"version: 1
name: half
providers:
  tpp:
    type: venafi_tpp
    url: https://tpp.example.com
    auth: {client_id: redrive, username: svc, password: {env: TPP_PASSWORD}}
jobs:
  - id: first
    provider: tpp
    action: retry_certificate
    for_each: "{{ range(1, 2000) | list }}"
    with: {certificate_dn: '\VED\Policy\c{{ 10000 // item }}'}
  - id: second
    provider: tpp
    action: retry_certificate
    for_each: [1, 2, 0]
    with: {certificate_dn: '\VED\Policy\d{{ 10 // item }}'}
"#,
    )
    .expect("write");
    let saved = dir.join("plan.json");
    for format in ["text", "json", "markdown"] {
        let out = Command::cargo_bin("redrive")
            .expect("the binary")
            .args(["plan", "--refresh=false", "--format", format, "--out"])
            .arg(&saved)
            .arg(&runbook)
            .env("TPP_PASSWORD", "x")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{format}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.contains("10 // 0"), "{format}: {stderr}");
        assert!(!saved.exists(), "{format}: a plan was saved");
        assert!(
            !file::temporary_beside(&saved).exists(),
            "{format}: the temporary file was left"
        );
    }
    half_way_into_stdouts_file(&dir, &runbook);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JSON plan goes straight into stdout's file when that is a regular file: the same
/// document as through a pipe, and cut back to nothing when the plan fails half-way. Where
/// it cannot be cut back without losing something (appended to, or shared with stderr) it is
/// written only once whole.
fn half_way_into_stdouts_file(dir: &Path, runbook: &Path) {
    let bin = assert_cmd::cargo::cargo_bin("redrive");
    let plan = |only: Option<&str>, stdout: std::fs::File, stderr: Option<std::fs::File>| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["plan", "--refresh=false", "--format", "json"]);
        if let Some(job) = only {
            cmd.args(["--target", job]);
        }
        cmd.arg(runbook).env("TPP_PASSWORD", "x").stdout(stdout);
        match stderr {
            Some(err) => cmd.stderr(err),
            None => cmd.stderr(std::process::Stdio::null()),
        };
        cmd.status().expect("runs").code()
    };
    let at = dir.join("stdout.json");
    let fresh = || std::fs::File::create(&at).expect("created");
    // Whole: the piped document, field for field.
    assert_eq!(plan(Some("first"), fresh(), None), Some(2));
    let mut in_file: Value =
        serde_json::from_str(&std::fs::read_to_string(&at).expect("read")).expect("JSON");
    let mut piped = json_plan(&[
        "--refresh=false",
        "--target",
        "first",
        runbook.to_str().expect("utf-8"),
    ]);
    in_file["created_at"] = Value::Null;
    piped["created_at"] = Value::Null;
    assert_eq!(in_file, piped);
    // Failing half-way, after the first job's actions (more than a buffer) were written: cut
    // back.
    assert_eq!(plan(None, fresh(), None), Some(3));
    let left = std::fs::metadata(&at).expect("there").len();
    assert_eq!(left, 0, "{left} bytes of a half plan were left");
    // Appended to: what was there stays, and nothing is added.
    std::fs::write(&at, "kept\n").expect("write");
    let appended = || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&at)
            .expect("opened")
    };
    assert_eq!(plan(None, appended(), None), Some(3));
    assert_eq!(std::fs::read_to_string(&at).expect("read"), "kept\n");
    // Shared with stderr (`> file 2>&1`): the error stays and no plan is added.
    let shared = fresh();
    let err = shared.try_clone().expect("cloned");
    assert_eq!(plan(None, shared, Some(err)), Some(3));
    let text = std::fs::read_to_string(&at).expect("read");
    assert!(
        text.contains("10 // 0") && !text.contains("format_version"),
        "{text}"
    );
}
