//! Secrets written into a runbook never reach the output of `validate`: canary values are
//! planted in every place a secret can hide, and neither the text nor the JSON diagnostics may
//! contain one, whatever went wrong with the runbook (a syntax error, a duplicate key, a schema
//! error, an inline secret found by key or by shape).

use std::path::PathBuf;

use redrive::exit::ExitStatus;

use crate::support::redrive;

fn scratch(name: &str) -> PathBuf {
    crate::support::scratch(&format!("secrets-{name}"))
}

const HEAD: &str = "version: 1\nname: canaries\n";
const JOB: &str = "jobs:\n  - id: j\n    provider: tpp\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\x'}\n";
const TPP: &str = "providers:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n";

/// Runbooks that each plant canaries (every canary contains `Canary`).
fn cases() -> Vec<(&'static str, String)> {
    vec![
        (
            "syntax-error-on-password-line",
            format!(
                "{HEAD}{TPP}    auth:\n      username: u\n      password: \"CanaryA1-unterminated\n{JOB}"
            ),
        ),
        (
            "syntax-error-in-flow-mapping",
            format!("{HEAD}{TPP}    auth: {{username: u, password: CanaryA2pw, ]\n{JOB}"),
        ),
        (
            "duplicate-key",
            format!(
                "{HEAD}{TPP}    auth:\n      username: u\n      password: CanaryB1pw\n      password: CanaryB2pw\n{JOB}"
            ),
        ),
        (
            "duplicate-key-after-secret",
            format!(
                "{HEAD}{TPP}    auth: {{username: u, access_token: CanaryB3tok}}\n    url: https://again.example.com\n{JOB}"
            ),
        ),
        (
            "schema-error-beside-secret",
            format!(
                "{HEAD}{TPP}    auth:\n      username: u\n      password: CanaryC1pw\n      colour: blue\n{JOB}"
            ),
        ),
        (
            "block-scalar-secret",
            format!(
                "{HEAD}{TPP}    auth:\n      username: u\n      password: |\n        CanaryC2block\n{JOB}"
            ),
        ),
        (
            "headers-and-vars",
            format!(
                "{HEAD}vars:\n  api_token: CanaryD1tok\n  jwt: eyJhbGciOiJIUzI1NiJ9.eyJDYW5hcnkiOiJEMiJ9.CanaryD2sig\nproviders:\n  api:\n    type: http\n    url: https://svc:CanaryD3pw@api.example.com\n    headers: {{X-Api-Key: CanaryD4key}}\njobs:\n  - id: j\n    provider: api\n    action: http\n    with:\n      url: /x?token=CanaryD5tok\n      headers:\n        Authorization: Bearer CanaryD6-0123456789\n      body: {{password: CanaryD7pw}}\n"
            ),
        ),
        (
            "unknown-key-beside-secret-key",
            format!(
                "{HEAD}{TPP}    auth: {{username: u, password: {{env: CanaryE1}}, scope: certificate:manage}}\n    colour: blue\n    token: CanaryE4tok\n{JOB}"
            ),
        ),
    ]
}

#[test]
fn canaries_never_reach_the_output() {
    let dir = scratch("canaries");
    for (name, text) in cases() {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, &text).expect("write the runbook");
        let path = path.to_str().expect("a UTF-8 path");
        for format in ["text", "json"] {
            let run = redrive(&["validate", "--format", format, path]);
            assert_eq!(
                run.status,
                ExitStatus::Invalid,
                "{name} ({format}) must be refused:\n{}",
                run.stderr
            );
            let both = format!("{}{}", run.stdout, run.stderr);
            assert!(
                !both.contains("Canary") || canaries_are_references(&both),
                "{name} ({format}) leaks a canary:\n{both}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `{env: CanaryE1}` names a variable: a reference, which may be shown.
fn canaries_are_references(output: &str) -> bool {
    output
        .match_indices("Canary")
        .all(|(i, _)| output[i..].starts_with("CanaryE1"))
}

#[test]
fn the_fixtures_secrets_never_reach_the_output() {
    let planted = [
        ("35-secret-inline-venafi-password", "Winter2026!tpp"),
        ("39-secret-inline-http-bearer", "eyJhbGciOiJIUzI1NiJ9"),
        ("67-secret-yaml-error-on-password-line", "Canary"),
        ("68-secret-duplicate-password-key", "Canary"),
        ("69-secret-http-job-headers", "Canary"),
        ("70-secret-provider-headers", "Q2FuYXJ5"),
        ("70-secret-provider-headers", "Canary"),
        ("71-secret-vars-token", "Canary"),
        ("71-secret-vars-token", "eyJhbGciOiJIUzI1NiJ9"),
        ("72-secret-url-credentials", "Canary"),
    ];
    for (fixture, secret) in planted {
        let path = format!("tests/fixtures/invalid/{fixture}.yaml");
        let text = std::fs::read_to_string(&path).expect("the fixture");
        assert!(text.contains(secret), "{fixture} plants `{secret}`");
        for format in ["text", "json"] {
            let run = redrive(&["validate", "--format", format, &path]);
            assert_eq!(run.status, ExitStatus::Invalid);
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{fixture} ({format}) leaks `{secret}`:\n{}{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[test]
fn references_and_ordinary_values_pass() {
    let dir = scratch("ordinary");
    let text = format!(
        "{HEAD}vars:\n  region: eu-de\n  note: Basic authentication is off here\n  task: 5f0c6a2e-1b7d-4c1e-9a53-2f8e7d6c5b4a\nproviders:\n  api:\n    type: http\n    url: https://api.example.com\n    headers: {{Accept: application/json, Idempotency-Key: run-1}}\n    auth: {{bearer: {{env: API_TOKEN}}}}\njobs:\n  - id: j\n    provider: api\n    action: http\n    with:\n      url: /x?state=failed&page=1\n      headers:\n        Authorization: {{env: API_AUTH}}\n        X-Request-Id: r-1\n"
    );
    let path = dir.join("ok.yaml");
    std::fs::write(&path, text).expect("write");
    let run = redrive(&["validate", path.to_str().expect("UTF-8")]);
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A broken sandbox scenario is reported without its credentials: a syntax error, a duplicate
/// key or an unknown field on a secret's line quotes the line, masked.
#[test]
fn a_broken_scenario_never_prints_its_secrets() {
    let dir = crate::support::scratch("scenario-secrets");
    let canary = "Scen4rioCanaryPw";
    let cases = [
        format!("venafi_tpp:\n  users:\n    - {{username: u, password: {canary}, extra: [}}\n"),
        format!(
            "vcf:\n  users:\n    - username: u\n      password: {canary}\n      password: {canary}\n"
        ),
        format!("ncloud:\n  keys:\n    - {{access_key: AK, secret_key: {canary}, bogus: 1}}\n"),
    ];
    for (i, case) in cases.iter().enumerate() {
        let path = dir.join(format!("s{i}.yaml"));
        std::fs::write(&path, case).expect("scenario");
        let run = super::support::redrive(&[
            "plan",
            "--sandbox",
            "--scenario",
            path.to_str().expect("utf-8"),
            "examples/venafi-retry.yaml",
        ]);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert_ne!(
            run.status,
            redrive::exit::ExitStatus::Success,
            "case {i}: {all}"
        );
        assert!(!all.contains(canary), "case {i} printed the secret: {all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
