//! Re-runs that converge, across processes: apply, apply again (with and without `--refresh`,
//! and through a saved plan) against one sandbox that counts every mutation; rotated tokens
//! kept for the next run; "could not find out" exits non-zero and names the provider.

use std::process::Output;

use serde_json::Value;

use super::apply::{Live, SECRETS, apply_live, live, provider_stats, redrive, text};

const TASK: &str = "7b9e2c1a-3d4f-4e5a-8b6c-1d2e3f4a5b6c";

/// One target of each non-idempotent provider (NCP reissue, VCF re-run, DigiCert bulk retry)
/// and one convergent one (Venafi).
pub(crate) async fn mixed(name: &str) -> Live {
    live(
        name,
        &format!(
            "venafi_tpp:\n  certificates: [{{dn: '\\VED\\Policy\\A\\a.example.com'}}]\nncloud:\n  processing: 10ms\n  certificates:\n    - {{certificate_no: 1, name: one, common_name: one.example.co.kr}}\nvcf:\n  tasks:\n    - {{id: {TASK}, operation_type: ROTATE, resources: [{{name: esx1.example.com}}], outcome: succeeds}}\ndigicert:\n  automations:\n    - {{id: 1, ip: 10.1.1.1, port: 443}}\n"
        ),
        &format!(
            "jobs:\n  - id: venafi\n    provider: tpp\n    action: retry_certificate\n    with: {{certificate_dn: '\\VED\\Policy\\A\\a.example.com'}}\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    with: {{certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: one, common_name: one.example.co.kr}}\n  - id: rotate\n    provider: sddc\n    action: retry_credentials_task\n    with: {{task_id: {TASK}, operation_type: ROTATE, elements: [{{resource_type: ESXI, credentials: [{{username: root}}]}}]}}\n    wait: {{interval: 50ms, timeout: 20s}}\n  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, targets: [{{ip: 10.1.1.1, port: 443}}]}}\n"
        ),
    )
    .await
}

/// The mutations each non-idempotent provider has seen so far.
pub(crate) fn mutations(live: &Live) -> [u64; 3] {
    ["ncloud", "vcf", "digicert"].map(|k| {
        provider_stats(live, k)["mutations"]
            .as_u64()
            .unwrap_or_default()
    })
}

async fn run(live: &Live, args: &[&str]) -> Output {
    let dir = live.dir.clone();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redrive(&dir, &args, &SECRETS)
    })
    .await
    .expect("the binary ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_again_sends_no_non_idempotent_request_twice() {
    let live = mixed("again").await;
    let first = apply_live(&live, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&first));

    // Again, reading the state: done in an earlier run, nothing sent.
    let again = apply_live(&live, &[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("done in an earlier run at"),
        "{}",
        text(&again)
    );
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&again));

    // Without reading the state: the journal alone keeps them back.
    let blind = apply_live(&live, &["--refresh=false"]).await;
    assert_eq!(blind.status.code(), Some(0), "{}", text(&blind));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&blind));

    // Through a saved plan.
    let saved = run(&live, &["plan", "live.yaml", "--out", "plan.json"]).await;
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved));
    let applied = run(&live, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&applied));

    // Asked for by name, it is sent again.
    let replaced = apply_live(&live, &["--replace", "reissue"]).await;
    assert_eq!(replaced.status.code(), Some(0), "{}", text(&replaced));
    assert_eq!(mutations(&live), [2, 1, 1], "{}", text(&replaced));
    assert_eq!(provider_stats(&live, "ncloud")["duplicate_mutations"], 1);
    live.running.stop().await;
}

/// kill -9 while a reissue is on the wire: the journal ends at "sent". The next plan does not
/// resend it blindly: without reading it is held back, and reading shows the certificate
/// changed after the send, so it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_off_by_kill_9_is_reconciled_before_anything_is_sent() {
    let live = live(
        "killed",
        "ncloud:\n  processing: 10ms\n  certificates:\n    - {certificate_no: 1, name: one, common_name: one.example.co.kr}\n  faults:\n    outcome_after_timeout: {rate: 1.0, duration: 4s, endpoints: ['POST /api/v2/certificate/{certificate_no}/reissue']}\n",
        "jobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    with: {certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: one, common_name: one.example.co.kr}\n",
    )
    .await;
    let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
    std::fs::write(
        live.dir.join("live.yaml"),
        // Longer than the sandbox holds the answer; the next apply waits twice this after the
        // send for the cut-off request to land.
        runbook.replace("timeout: 1s", "timeout: 6s"),
    )
    .expect("runbook");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
        .current_dir(&live.dir)
        .args(["apply", "--auto-approve", "live.yaml"])
        .envs(SECRETS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start apply");
    // Until the reissue has reached the server (bounded: 10 s).
    for _ in 0..200 {
        if provider_stats(&live, "ncloud")["mutations"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(provider_stats(&live, "ncloud")["mutations"], 1);
    child.kill().expect("kill -9");
    let _ = child.wait();
    let history = redrive::state::journal::history(&live.dir.join(".redrive/live.journal.jsonl"))
        .expect("journal");
    assert!(
        history
            .actions
            .values()
            .all(|p| p.last.state == redrive::apply::State::Sent),
        "{history:?}"
    );

    let status = run(&live, &["status", "live.yaml"]).await;
    assert_eq!(status.status.code(), Some(4), "{}", text(&status));
    assert!(
        text(&status).contains("1 sent, no answer"),
        "{}",
        text(&status)
    );

    let blind = run(&live, &["plan", "live.yaml", "--refresh=false"]).await;
    assert_eq!(blind.status.code(), Some(0), "{}", text(&blind));
    assert!(
        text(&blind).contains("outcome is unknown"),
        "{}",
        text(&blind)
    );

    let again = apply_live(&live, &[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("the provider shows it took effect"),
        "{}",
        text(&again)
    );
    assert_eq!(provider_stats(&live, "ncloud")["mutations"], 1);
    live.running.stop().await;
}

/// A sandbox with two Venafi certificates in error and a runbook (`live.yaml`) that holds seed
/// tokens only: the access token is no good, the refresh token (returned, fresh from the
/// sandbox) is.
pub(crate) async fn seeded_tokens(name: &str) -> (super::apply::Live, String) {
    let live = live(
        name,
        "venafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}, {dn: '\\VED\\Policy\\A\\b.example.com'}]\n",
        "jobs: []\n",
    )
    .await;
    let base = live.running.url(redrive::sandbox::Kind::VenafiTpp);
    redrive::providers::http::install_crypto();
    let pair: Value = reqwest::Client::new()
        .post(format!("{base}/vedauth/authorize/oauth"))
        .json(&serde_json::json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox", "scope": "certificate:manage"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let refresh = pair["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
    let runbook = runbook
        .replace(
            "auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}",
            "auth: {client_id: redrive, access_token: {env: TPP_ACCESS}, refresh_token: {env: TPP_REFRESH}}",
        )
        .replace(
            "jobs: []\n",
            "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [a, b]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n",
        );
    std::fs::write(live.dir.join("live.yaml"), runbook).expect("runbook");
    (live, refresh)
}

/// Venafi refresh tokens work once: the rotated pair is stored (owner-only) and the next run
/// authenticates with it, not with the consumed seed token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_kept_for_the_next_run() {
    let (live, refresh) = seeded_tokens("tokens").await;
    let env = [
        ("TPP_ACCESS", "not-a-token".to_owned()),
        ("TPP_REFRESH", refresh.clone()),
    ];
    let apply = |args: Vec<&'static str>| {
        let dir = live.dir.clone();
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            redrive(&dir, &args, &env)
        })
    };
    let first = apply(vec!["apply", "--auto-approve", "live.yaml"])
        .await
        .expect("ran");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = apply(vec![
        "apply",
        "--auto-approve",
        "--refresh=false",
        "live.yaml",
    ])
    .await
    .expect("ran");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        !text(&second).contains("invalid_grant"),
        "{}",
        text(&second)
    );
    // Stored owner-only, and never in the journal.
    // The pairs; a renewal's lock file (`<pair>.lock`) stays beside its pair.
    let tokens: Vec<_> = std::fs::read_dir(live.dir.join(".redrive/tokens"))
        .expect("a token store")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(tokens.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = tokens[0].metadata().expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let journal =
        std::fs::read_to_string(live.dir.join(".redrive/live.journal.jsonl")).expect("journal");
    let stored = std::fs::read_to_string(tokens[0].path()).expect("stored");
    let stored: Value = serde_json::from_str(&stored).expect("json");
    for secret in [
        refresh.as_str(),
        stored["refresh"].as_str().expect("rotated"),
    ] {
        assert!(!journal.contains(secret));
        assert!(!text(&first).contains(secret));
    }
    live.running.stop().await;
}

/// "Could not find out" is an error naming the provider: wrong password, a refused connection,
/// an unset secret. Nothing is sent and neither plan nor apply exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn could_not_find_out_is_an_error_not_nothing_to_do() {
    let live = mixed("broken").await;
    // The case, the secrets it sets besides the others, and what the error must name.
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            "wrong password",
            vec![("TPP_PASSWORD", "wrong")],
            "provider `tpp`",
        ),
        ("unset secret", vec![], "TPP_PASSWORD"),
        (
            "refused connection",
            vec![("TPP_PASSWORD", "sandbox")],
            "provider `tpp`",
        ),
    ];
    for (case, env, named) in cases {
        let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
        let url = live.running.url(redrive::sandbox::Kind::VenafiTpp);
        let runbook = if case == "refused connection" {
            // Nothing listens on port 9 of loopback.
            runbook.replace(&url, "http://127.0.0.1:9")
        } else {
            runbook
        };
        std::fs::write(
            live.dir.join(format!("{}.yaml", case.replace(' ', "-"))),
            runbook,
        )
        .expect("runbook");
        let file = format!("{}.yaml", case.replace(' ', "-"));
        for command in ["plan", "apply"] {
            let dir = live.dir.clone();
            let (env, file) = (env.clone(), file.clone());
            let out = tokio::task::spawn_blocking(move || {
                let mut all: Vec<(&str, &str)> = SECRETS
                    .iter()
                    .filter(|(k, _)| *k != "TPP_PASSWORD")
                    .copied()
                    .collect();
                all.extend(env);
                let args: Vec<&str> = if command == "plan" {
                    vec!["plan", &file]
                } else {
                    vec!["apply", "--auto-approve", &file]
                };
                redrive(&dir, &args, &all)
            })
            .await
            .expect("ran");
            assert_eq!(
                out.status.code(),
                Some(1),
                "{case}, {command}: {}",
                text(&out)
            );
            assert!(
                text(&out).contains(named),
                "{case}, {command}: {}",
                text(&out)
            );
        }
    }
    assert_eq!(mutations(&live), [0, 0, 0]);
    live.running.stop().await;
}

/// `--target` plans the jobs the target needs, and says so.
#[test]
fn a_target_brings_the_jobs_it_needs() {
    let dir = super::apply::examples_copy("target");
    let out = redrive(
        &dir,
        &[
            "plan",
            "--sandbox",
            "--target",
            "vcf-rotate",
            "outage-remediation.yaml",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("needed by the targets"), "{all}");
}

/// Two `http` actions to one URL with different bodies are two actions, not one.
#[test]
fn http_actions_differing_only_in_body_are_distinct() {
    let dir = super::apply::temp_dir("http-identity");
    std::fs::write(
        dir.join("tickets.yaml"),
        "version: 1\nname: tickets\nproviders:\n  itsm:\n    type: http\n    url: http://127.0.0.1:9\njobs:\n  - id: open\n    provider: itsm\n    action: http\n    for_each: [a, b, c]\n    with: {method: POST, url: /tickets, body: {summary: '{{ item }}'}}\n",
    )
    .expect("runbook");
    let out = redrive(&dir, &["plan", "--format", "json", "tickets.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan["summary"]["run"], 3, "{plan}");
    let ids: std::collections::HashSet<&str> = plan["jobs"][0]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 3);
}

/// A 429 was not processed: it never uses up an attempt, so `attempts: 1` still ends every
/// action succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_not_an_attempt_that_failed() {
    let live = live(
        "throttled",
        "venafi_tpp:\n  generate: [{count: 10, parent: '\\VED\\Policy\\T'}]\n  faults:\n    errors: [{status: 429, rate: 0.3, endpoints: ['POST /vedsdk/certificates/retry']}]\n",
        "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{ range(1, 11) | list }}\"\n    with: {certificate_dn: '\\VED\\Policy\\T\\cert-{{ item }}.example.com'}\n    retry: {attempts: 1, initial_delay: 10ms, max_delay: 50ms}\n",
    )
    .await;
    let out = apply_live(&live, &["--refresh=false"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Apply: 10 succeeded"), "{}", text(&out));
    let stats = provider_stats(&live, "venafi_tpp");
    assert!(
        stats["by_endpoint"]["POST /vedsdk/certificates/retry"]
            .as_u64()
            .unwrap_or_default()
            > 10,
        "no 429 was injected: {stats}"
    );
    live.running.stop().await;
}

/// SIGTERM (how CI runners and Kubernetes stop a job) is handled like the first Ctrl-C: no new
/// sends, requests in flight finish, results printed, exit 130; `status` then says exactly how
/// far each action got and exits 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_like_an_interrupt_and_status_tells_how_far_it_got() {
    let (live, out) = super::apply::slow_apply_stopped_by("sigterm", "-TERM").await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(all.contains("not sent: apply was interrupted"), "{all}");
    let sent =
        provider_stats(&live, "venafi_tpp")["by_endpoint"]["POST /vedsdk/certificates/retry"]
            .as_u64()
            .unwrap_or(0);
    assert!(sent > 0 && sent < 40, "{sent}");
    let status = run(&live, &["status", "live.yaml"]).await;
    let shown = text(&status);
    assert_eq!(status.status.code(), Some(4), "{shown}");
    assert!(
        shown.contains(&format!("{} planned, not sent", 40 - sent))
            && shown.contains(&format!("{sent} succeeded")),
        "{shown}"
    );
    live.running.stop().await;
}

/// Half of all NAVER answers are lost after the reissue happened: every action still ends
/// succeeded (reconciled by reading), and no certificate is reissued twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_the_answers_lost_no_reissue_twice() {
    let live = live(
        "half-lost",
        "ncloud:\n  processing: 10ms\n  generate: [{count: 40, first_no: 1000}]\n  faults:\n    outcome_after_timeout: {rate: 0.5, duration: 3s, endpoints: ['POST /api/v2/certificate/{certificate_no}/reissue']}\n",
        "jobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{ range(1000, 1040) | list }}\"\n    with: {certificate_no: '{{ item }}', csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: 'cert-{{ item }}', common_name: 'c{{ item }}.example.co.kr'}\n    retry: {attempts: 3, initial_delay: 10ms}\n",
    )
    .await;
    let out = apply_live(&live, &["--refresh=false", "--parallelism", "16"]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Apply: 40 succeeded"), "{all}");
    let stats = provider_stats(&live, "ncloud");
    assert_eq!(stats["mutations"], 40, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    assert!(
        stats["faults"]["outcome_after_timeout"]
            .as_u64()
            .unwrap_or(0)
            >= 5,
        "too few lost answers to prove anything: {stats}"
    );
    live.running.stop().await;
}

/// 20 % 5xx on every endpoint: reads are retried, so nothing ends `unknown` that a retried read
/// could settle, and nothing is reissued twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_all_requests_failing_leaves_nothing_unknown() {
    let live = live(
        "flaky",
        "ncloud:\n  processing: 10ms\n  generate: [{count: 40, first_no: 1000}]\n  faults:\n    errors: [{status: 503, rate: 0.2}]\n",
        "jobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{ range(1000, 1040) | list }}\"\n    with: {certificate_no: '{{ item }}', csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: 'cert-{{ item }}', common_name: 'c{{ item }}.example.co.kr'}\n    retry: {attempts: 12, initial_delay: 10ms, max_delay: 50ms}\n",
    )
    .await;
    let out = apply_live(&live, &["--parallelism", "16"]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("0 unknown"), "{all}");
    let stats = provider_stats(&live, "ncloud");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    live.running.stop().await;
}

/// The shipped GitHub workflow hands secrets only to the gated job, and its plan step there
/// fails the job when the plan could not be made (exit 1) — run as GitHub runs it (`bash -e`).
#[test]
fn the_github_plan_step_fails_when_the_state_cannot_be_read() {
    let dir = super::apply::examples_copy("github");
    let workflow: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("github/redrive.yml")).expect("workflow"),
    )
    .expect("yaml");
    // Untrusted pull requests get no credentials: nothing of `secrets` outside the gated job.
    let jobs = workflow["jobs"].as_object().expect("jobs");
    for (name, job) in jobs {
        let gated = job["environment"].as_str().is_some();
        assert!(
            gated || !job.to_string().contains("secrets."),
            "job `{name}` is not behind an environment but reads secrets"
        );
    }
    assert!(!workflow["env"].to_string().contains("secrets."));
    let steps = workflow["jobs"]["apply"]["steps"]
        .as_array()
        .expect("steps");
    let script = steps
        .iter()
        .find(|s| s["name"] == "Plan")
        .and_then(|s| s["run"].as_str())
        .expect("a Plan step");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_redrive"))
        .parent()
        .expect("a folder")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let step = |runbook: &str, extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-e", "-c", script])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("RUNBOOK", runbook);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("bash")
    };
    // Nothing listens at the endpoint: the plan cannot be made, and the job must fail.
    let runbook = std::fs::read_to_string(dir.join("venafi-retry.yaml")).expect("runbook");
    std::fs::write(
        dir.join("broken.yaml"),
        runbook.replace("https://tpp.example.com", "http://127.0.0.1:9"),
    )
    .expect("runbook");
    let broken = step("broken.yaml", &[("TPP_PASSWORD", "x")]);
    assert!(!broken.status.success(), "{}", text(&broken));
    assert!(text(&broken).contains("could not"), "{}", text(&broken));
}

/// The README's quick start, then `plan --sandbox` on the same runbook: nothing to do (exit 0),
/// and a second apply sends nothing — the rehearsal remembers its world. `--sandbox-reset`
/// starts it over.
#[test]
fn the_quick_start_converges() {
    let dir = super::apply::examples_copy("quick-start");
    let runbook = "outage-remediation.yaml";
    let first = redrive(
        &dir,
        &["apply", "--sandbox", "--auto-approve", runbook],
        &[],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let journal = dir.join(".redrive/sandbox/outage-remediation.journal.jsonl");
    let sent = || {
        std::fs::read_to_string(&journal)
            .expect("journal")
            .lines()
            .filter(|l| l.contains("\"state\":\"sent\""))
            .count()
    };
    let sent_first = sent();
    assert!(sent_first >= 20, "{sent_first}");

    let plan = redrive(&dir, &["plan", "--sandbox", runbook], &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("Plan: 0 to run"), "{}", text(&plan));

    let again = redrive(
        &dir,
        &["apply", "--sandbox", "--auto-approve", runbook],
        &[],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("Nothing to send"), "{}", text(&again));
    assert_eq!(sent(), sent_first);

    let reset = redrive(
        &dir,
        &["plan", "--sandbox", "--sandbox-reset", runbook],
        &[],
    );
    assert_eq!(reset.status.code(), Some(2), "{}", text(&reset));
    assert!(
        text(&reset).contains("starts from the scenario again"),
        "{}",
        text(&reset)
    );
}

/// A proxy set in the shell does not break a rehearsal: loopback endpoints are reached directly.
#[test]
fn a_shell_proxy_does_not_break_a_rehearsal() {
    let dir = super::apply::examples_copy("proxy");
    let dead = "http://127.0.0.1:9";
    let out = redrive(
        &dir,
        &["plan", "--sandbox", "venafi-retry.yaml"],
        &[
            ("HTTP_PROXY", dead),
            ("HTTPS_PROXY", dead),
            ("http_proxy", dead),
            ("https_proxy", dead),
            ("ALL_PROXY", dead),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `--var` and `--var-file` set runbook vars (read as YAML), the plan shows them, a saved plan
/// carries them to apply, and apply of a saved plan refuses new ones.
#[test]
fn command_line_vars_are_shown_and_pinned() {
    let dir = super::apply::examples_copy("vars");
    let runbook = "digicert-bulk-retry.yaml";
    std::fs::write(dir.join("more.yaml"), "division_id: 677793\n").expect("var file");
    let out = redrive(
        &dir,
        &[
            "plan",
            "--sandbox",
            "--var",
            "account_id=5153184",
            "--var-file",
            "more.yaml",
            "--out",
            "plan.json",
            runbook,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("vars set on the command line: division_id=677793, account_id=5153184"),
        "{}",
        text(&out)
    );
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("plan"))
            .expect("json");
    assert_eq!(
        plan["vars"]["account_id"], 5_153_184,
        "a number, read as YAML"
    );

    let refused = redrive(
        &dir,
        &[
            "apply",
            "--auto-approve",
            "--var",
            "account_id=1",
            "plan.json",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let applied = redrive(&dir, &["apply", "--auto-approve", "plan.json"], &[]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));

    let bad = redrive(
        &dir,
        &["plan", "--sandbox", "--var", "no-equals", runbook],
        &[],
    );
    assert_eq!(bad.status.code(), Some(3), "{}", text(&bad));
}

/// A long plan says how far its reads got (plain lines without a terminal), and a quick one
/// says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_plan_reports_its_reads() {
    let live = live(
        "reads",
        "venafi_tpp:\n  generate: [{count: 30, parent: '\\VED\\Policy\\R', in_error: false}]\n  faults:\n    latency: {fixed: 300ms, endpoints: ['GET /vedsdk/certificates/{guid}']}\n",
        "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    limits: {}\n    for_each: \"{{ range(1, 31) | list }}\"\n    with: {certificate_dn: '\\VED\\Policy\\R\\cert-{{ item }}.example.com'}\n",
    )
    .await;
    let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
    // One read at a time: 30 × 300 ms.
    std::fs::write(
        live.dir.join("live.yaml"),
        runbook
            .replacen(
                "    auth: {client_id: redrive",
                "    limits: {concurrency: 1}\n    auth: {client_id: redrive",
                1,
            )
            .replace("    limits: {}\n", ""),
    )
    .expect("runbook");
    // None is in error, so the search settles nothing and each gets its own check.
    let out = run(&live, &["plan", "live.yaml"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Reading the providers' state: "),
        "{stderr}"
    );
    live.running.stop().await;
}
