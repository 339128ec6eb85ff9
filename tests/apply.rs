//! `redrive apply` end to end: the binary against the sandbox, as `--sandbox` and as real
//! endpoints (a sandbox started here, the runbook pointing at it, secrets from the
//! environment), with its journal, reports, retries, reconciliation and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use redrive::sandbox::{self, Kind, Running, Scenario};
use serde_json::Value;

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    crate::support::scratch(&format!("apply-{name}"))
}

/// A copy of `examples/` to run in, so journals do not land in the repository.
pub(crate) fn examples_copy(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/."))
        .arg(&dir)
        .status()
        .expect("cp");
    assert!(status.success());
    // A journal left by an earlier apply in the checkout (the quick start) is not this test's.
    let _ = std::fs::remove_dir_all(dir.join(".redrive"));
    dir
}

pub(crate) fn redrive(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"));
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run redrive")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn outage_runbook_applies_against_the_sandbox_with_reports_and_journal() {
    let dir = examples_copy("outage");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "outage-remediation.yaml",
            "--report-json",
            "r.json",
            "--report-junit",
            "r.xml",
            "--report-markdown",
            "r.md",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("Apply: 22 succeeded, 0 converged, 1 skipped, 0 failed, 0 unknown."),
        "{all}"
    );
    // Results in plan order, whatever order they completed in.
    let results = all.split("Results:").nth(1).expect("a results section");
    let order: Vec<usize> = [
        "venafi-retry",
        "digicert-retry",
        "ncp-reissue",
        "vcf-rotate",
    ]
    .iter()
    .map(|j| results.find(&format!("\n{j}\n")).expect("every job listed"))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{results}");
    assert!(
        all.contains("task 5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903 Successful"),
        "{all}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).expect("json report"))
            .expect("JSON");
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["summary"]["succeeded"], 22);
    assert_eq!(report["actions"].as_array().map(Vec::len), Some(23));
    let junit = std::fs::read_to_string(dir.join("r.xml")).expect("junit");
    assert!(
        junit.starts_with("<?xml")
            && junit.contains(
                "<testsuite name=\"venafi-retry\" tests=\"11\" failures=\"0\" skipped=\"0\" errors=\"0\""
            ),
        "{junit}"
    );
    let md = std::fs::read_to_string(dir.join("r.md")).expect("markdown");
    assert!(
        md.contains("| `digicert-retry` | 8 | 0 | 1 | 0 | 0 |"),
        "{md}"
    );

    // Every state change is journaled; each sent action has a sent line before its outcome.
    let journal =
        std::fs::read_to_string(dir.join(".redrive/sandbox/outage-remediation.journal.jsonl"))
            .expect("journal");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let sent = lines.iter().filter(|r| r["state"] == "sent").count();
    let succeeded = lines.iter().filter(|r| r["state"] == "succeeded").count();
    assert_eq!((sent, succeeded), (22, 22), "{journal}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let dir = examples_copy("approve");
    let out = redrive(&dir, &["apply", "--sandbox", "venafi-retry.yaml"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("--auto-approve"), "{}", text(&out));
    assert!(
        !dir.join(".redrive/venafi-retry.journal.jsonl").exists(),
        "nothing was journaled"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn saved_plans_apply_and_are_refused_when_stale() {
    let dir = examples_copy("saved");
    let out = redrive(
        &dir,
        &[
            "plan",
            "--sandbox",
            "outage-remediation.yaml",
            "--out",
            "plan.json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = redrive(&dir, &["apply", "plan.json", "--auto-approve"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Apply: 22 succeeded"), "{}", text(&out));
    // An input file changed after the review: the plan is stale.
    let inputs = dir.join("inputs/waf-ncp-certificates.yaml");
    let mut mapping = std::fs::read_to_string(&inputs).expect("inputs");
    mapping.push_str("# edited after the review\n");
    std::fs::write(&inputs, mapping).expect("write");
    let out = redrive(&dir, &["apply", "plan.json", "--auto-approve"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("is stale") && text(&out).contains("waf-ncp-certificates.yaml"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_apply_of_the_same_runbook_is_refused_while_locked() {
    let dir = examples_copy("lock");
    let store = redrive::state::LocalStore::new(&dir.join(".redrive/sandbox"), "venafi-retry");
    let _held = redrive::state::Store::lock(&store).expect("lock");
    let out = redrive(
        &dir,
        &["apply", "--sandbox", "--auto-approve", "venafi-retry.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("another apply of this runbook is running"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sandbox started here, and a runbook that talks to it as to real endpoints.
pub(crate) struct Live {
    pub(crate) running: Running,
    pub(crate) dir: PathBuf,
}

pub(crate) async fn live(name: &str, scenario: &str, jobs: &str) -> Live {
    let scenario = Scenario::parse(scenario, "test").expect("scenario");
    let running = sandbox::start(&scenario, sandbox::Options::default())
        .await
        .expect("sandbox");
    let dir = temp_dir(name);
    let runbook = format!(
        "version: 1\nname: live\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: {}\n    auth: {{client_id: redrive, username: svc-redrive, password: {{env: TPP_PASSWORD}}, scope: 'certificate:manage'}}\n  ncp:\n    type: ncloud\n    url: {}\n    auth: {{access_key: {{env: NCP_AK}}, secret_key: {{env: NCP_SK}}}}\n    timeout: 1s\n  sddc:\n    type: vcf\n    url: {}\n    auth: {{username: administrator@vsphere.local, password: {{env: VCF_PASSWORD}}}}\n    limits: {{concurrency: 1}}\n  dc:\n    type: digicert\n    url: {}\n    auth: {{api_key: {{env: DC_KEY}}}}\n    limits: {{concurrency: 4}}\n{jobs}",
        running.url(Kind::VenafiTpp),
        running.url(Kind::Ncloud),
        running.url(Kind::Vcf),
        running.url(Kind::Digicert),
    );
    std::fs::write(dir.join("live.yaml"), runbook).expect("write the runbook");
    Live { running, dir }
}

pub(crate) const SECRETS: [(&str, &str); 5] = [
    ("TPP_PASSWORD", "sandbox"),
    ("DC_KEY", "sandbox-digicert-api-key"),
    ("NCP_AK", "SANDBOXACCESSKEY0001"),
    ("NCP_SK", "SANDBOXSECRETKEY000000000000000000000001"),
    ("VCF_PASSWORD", "sandbox"),
];

pub(crate) async fn apply_live(live: &Live, extra: &[&str]) -> Output {
    let dir = live.dir.clone();
    let mut args: Vec<String> = vec!["apply".into(), "--auto-approve".into(), "live.yaml".into()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redrive(&dir, &args, &SECRETS)
    })
    .await
    .expect("the binary ran")
}

pub(crate) fn provider_stats(live: &Live, kind: &str) -> Value {
    live.running.stats()["providers"][kind].clone()
}

/// The answer to a reissue never arrives although the reissue happened: apply must find out
/// by reading the state, and must not send it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_non_idempotent_request_is_reconciled_not_resent() {
    let live = live(
        "lost",
        "ncloud:\n  processing: 1h\n  certificates:\n    - {certificate_no: 1, name: one, common_name: one.example.co.kr}\n    - {certificate_no: 2, name: two, common_name: two.example.co.kr}\n  faults:\n    outcome_after_timeout: {rate: 1.0, duration: 5s, endpoints: ['POST /api/v2/certificate/{certificate_no}/reissue']}\n",
        "jobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: [1, 2]\n    with: {certificate_no: '{{ item }}', csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: 'n{{ item }}', common_name: 'c{{ item }}.example.co.kr'}\n    retry: {attempts: 3, initial_delay: 10ms}\n",
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("observed afterwards that it took effect"),
        "{all}"
    );
    let stats = provider_stats(&live, "ncloud");
    assert_eq!(stats["mutations"], 2, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    assert_eq!(
        stats["by_endpoint"]["POST /api/v2/certificate/{certificate_no}/reissue"], 2,
        "{stats}"
    );
    live.running.stop().await;
}

/// Transient 500s of a convergent action are retried until the action converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_with_backoff() {
    let live = live(
        "retry",
        "seed: 1\nvenafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}, {dn: '\\VED\\Policy\\A\\b.example.com'}]\n  faults:\n    errors: [{status: 500, rate: 0.8, endpoints: ['POST /vedsdk/certificates/retry']}]\n",
        "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [a, b]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n    retry: {attempts: 60, initial_delay: 10ms, max_delay: 20ms}\n",
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stats = provider_stats(&live, "venafi_tpp");
    assert_eq!(stats["mutations"], 2, "{stats}");
    assert!(
        stats["faults"]["error"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    let journal =
        std::fs::read_to_string(live.dir.join(".redrive/live.journal.jsonl")).expect("journal");
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"state\":\"sent\"") && !l.contains("\"attempt\":1,")),
        "a second attempt was journaled:\n{journal}"
    );
    live.running.stop().await;
}

/// A failing VCF task fails the apply (exit 4) with its remediation, the file:line of its job
/// and a JUnit failure; a job that needs it is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_fails_the_apply_and_skips_what_needs_it() {
    let live = live(
        "failed",
        "vcf:\n  pending: 50ms\n  running: 100ms\n  tasks:\n    - {id: t1, outcome: fails, resources: [{name: esx1.example.com}], error: {code: X, message: 'host esx1.example.com unreachable', remediation: 'Check the network.'}}\nvenafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}]\n",
        "jobs:\n  - id: rotate\n    provider: sddc\n    action: retry_credentials_task\n    with: {task_id: t1, operation_type: ROTATE, elements: [{resource_type: ESXI, credentials: [{username: root}]}]}\n    wait: {interval: 100ms, timeout: 10s}\n  - id: after\n    needs: [rotate]\n    provider: tpp\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\A\\a.example.com'}\n",
    )
    .await;
    let out = apply_live(&live, &["--report-junit", "j.xml"]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("Check the network."), "{all}");
    assert!(all.contains("live.yaml:24:5"), "{all}");
    assert!(all.contains("not run: job `rotate`"), "{all}");
    let junit = std::fs::read_to_string(live.dir.join("j.xml")).expect("junit");
    assert!(junit.contains("<failure type=\"Failed\""), "{junit}");
    assert_eq!(provider_stats(&live, "venafi_tpp")["mutations"], 0);

    // The journal's view: what is not done, why, and where the job is.
    let dir = live.dir.clone();
    let status = tokio::task::spawn_blocking(move || redrive(&dir, &["status", "live.yaml"], &[]))
        .await
        .expect("ran");
    assert_eq!(status.status.code(), Some(4), "{}", text(&status));
    assert!(
        text(&status).contains("rotate                   1 failed"),
        "{}",
        text(&status)
    );
    assert!(
        text(&status).contains("live.yaml:24:5: rotate t1: failed: task t1 FAILED"),
        "{}",
        text(&status)
    );

    // The next plan marks the failed action as a re-run.
    let dir = live.dir.clone();
    let plan =
        tokio::task::spawn_blocking(move || redrive(&dir, &["apply", "live.yaml"], &SECRETS))
            .await
            .expect("ran");
    assert!(
        text(&plan).contains("~ t1") && text(&plan).contains("re-run: failed in an earlier run"),
        "{}",
        text(&plan)
    );
    live.running.stop().await;
}

/// A rollout stops at the first wave that breaks its failure budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_stops_when_a_wave_breaks_its_budget() {
    let live = live(
        "rollout",
        "venafi_tpp:\n  certificates:\n    - {dn: '\\VED\\Policy\\A\\c1.example.com', retry_error: access_denied}\n    - {dn: '\\VED\\Policy\\A\\c2.example.com'}\n    - {dn: '\\VED\\Policy\\A\\c3.example.com'}\n    - {dn: '\\VED\\Policy\\A\\c4.example.com'}\n",
        "jobs:\n  - id: canary\n    provider: tpp\n    action: retry_certificate\n    for_each: [c1, c2, c3, c4]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n    rollout: {waves: [1, '100%'], max_failures: 0}\n",
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("Access error"), "{all}");
    assert!(all.contains("rollout stopped after wave 1 of 2"), "{all}");
    assert_eq!(
        provider_stats(&live, "venafi_tpp")["by_endpoint"]["POST /vedsdk/certificates/retry"],
        1
    );
    live.running.stop().await;
}

/// 40 slow Venafi retries (400 ms each, four at a time), and `signal` sent to the apply 1.5 s
/// in: the sandbox, and what the apply printed and exited with.
pub(crate) async fn slow_apply_stopped_by(name: &str, signal: &str) -> (Live, Output) {
    let live = live(
        name,
        "venafi_tpp:\n  generate: [{count: 40, parent: '\\VED\\Policy\\Slow'}]\n  faults:\n    latency: {fixed: 400ms, endpoints: ['POST /vedsdk/certificates/retry']}\n",
        "jobs:\n  - id: slow\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{ range(1, 41) | list }}\"\n    with: {certificate_dn: '\\VED\\Policy\\Slow\\cert-{{ item }}.example.com'}\n",
    )
    .await;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
        .current_dir(&live.dir)
        .args(["apply", "--auto-approve", "--parallelism", "4", "live.yaml"])
        .envs(SECRETS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let killed = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("waited");
    (live, out)
}

/// The first Ctrl-C stops sending, lets requests in flight finish, journals, prints the summary
/// and exits 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_sending_and_exits_130() {
    let (live, out) = slow_apply_stopped_by("interrupt", "-INT").await;
    let dir = live.dir.clone();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(
        all.contains("Interrupted: no new requests are sent"),
        "{all}"
    );
    assert!(all.contains("not sent: apply was interrupted"), "{all}");
    let stats = provider_stats(&live, "venafi_tpp");
    let sent = stats["by_endpoint"]["POST /vedsdk/certificates/retry"]
        .as_u64()
        .unwrap_or(0);
    assert!(sent > 0 && sent < 40, "{stats}");
    // Every request that left was answered and journaled: nothing is left at "sent".
    let history = redrive::state::journal::history(&dir.join(".redrive/live.journal.jsonl"))
        .expect("journal");
    assert_eq!(
        history
            .actions
            .values()
            .filter(|p| p.last.state == redrive::apply::State::Succeeded)
            .count() as u64,
        sent
    );
    assert!(
        history
            .actions
            .values()
            .all(|p| p.last.state != redrive::apply::State::Sent),
        "{history:?}"
    );
    live.running.stop().await;
}

/// DigiCert's per-key limit answers 429 to a burst; apply pauses the provider, retries the
/// refused batches and sends no target twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_bulk_batches_are_paused_and_retried_without_duplicates() {
    let targets: Vec<String> = (1..=12)
        .map(|n| format!("{{ip: 10.9.0.{n}, port: 443}}"))
        .collect();
    let live = live(
        "throttle",
        "digicert:\n  rate_limits: [{requests: 3, per: 1s}]\n  generate: [{count: 12, first_ip: 10.9.0.1}]\n",
        &format!(
            "jobs:\n  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, batch_size: 2, targets: [{}]}}\n    retry: {{attempts: 20, initial_delay: 100ms, max_delay: 1s, deadline: 1m}}\n",
            targets.join(", ")
        ),
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Apply: 12 succeeded"), "{all}");
    let stats = provider_stats(&live, "digicert");
    assert!(
        stats["throttled_429"].as_u64().unwrap_or(0) > 0,
        "the burst was throttled: {stats}"
    );
    assert_eq!(stats["mutations"], 12, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    live.running.stop().await;
}

/// A poll that outlasts the access token refreshes it with the refresh id, not a new login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_refresh_the_vcf_token() {
    // Tokens are refreshed two minutes before they expire: a 121 s token lasts one second here.
    let live = live(
        "refresh",
        "vcf:\n  token_ttl: 121s\n  pending: 100ms\n  running: 2500ms\n  tasks: [{id: t1}]\n",
        "jobs:\n  - id: rotate\n    provider: sddc\n    action: retry_credentials_task\n    with: {task_id: t1, operation_type: ROTATE, elements: [{resource_type: ESXI, credentials: [{username: root}]}]}\n    wait: {interval: 300ms, timeout: 30s}\n",
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("task t1 Successful"), "{all}");
    let stats = provider_stats(&live, "vcf");
    assert_eq!(stats["by_endpoint"]["POST /v1/tokens"], 1, "{stats}");
    assert!(
        stats["by_endpoint"]["PATCH /v1/tokens/access-token/refresh"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{stats}"
    );
    live.running.stop().await;
}

/// A saved plan is applied as reviewed, but an action whose precondition changed since (here:
/// someone retried the certificate by hand) is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_rechecks_each_precondition_before_sending() {
    let live = live(
        "recheck",
        "venafi_tpp:\n  processing: 1h\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}, {dn: '\\VED\\Policy\\A\\b.example.com'}]\n",
        "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [a, b]\n    with: {certificate_dn: '\\VED\\Policy\\A\\{{ item }}.example.com'}\n",
    )
    .await;
    let dir = live.dir.clone();
    let planned = tokio::task::spawn_blocking(move || {
        redrive(&dir, &["plan", "live.yaml", "--out", "plan.json"], &SECRETS)
    })
    .await
    .expect("ran");
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));

    // By hand, between review and merge.
    let base = live.running.url(Kind::VenafiTpp);
    redrive::providers::http::install_crypto();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/vedauth/authorize/oauth"))
        .json(&serde_json::json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox", "scope": "certificate:manage"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let retried = http
        .post(format!("{base}/vedsdk/Certificates/Retry"))
        .bearer_auth(token["access_token"].as_str().expect("a token"))
        .json(&serde_json::json!({"CertificateDN": "\\VED\\Policy\\A\\b.example.com"}))
        .send()
        .await
        .expect("retry");
    assert_eq!(retried.status(), 200);

    let dir = live.dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        redrive(&dir, &["apply", "plan.json", "--auto-approve"], &SECRETS)
    })
    .await
    .expect("ran");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("changed since the plan: being processed"),
        "{all}"
    );
    assert!(
        all.contains("Apply: 1 succeeded, 0 converged, 1 skipped"),
        "{all}"
    );
    // One retry by hand, one by apply: b was not sent again.
    assert_eq!(
        provider_stats(&live, "venafi_tpp")["by_endpoint"]["POST /vedsdk/certificates/retry"],
        2
    );
    live.running.stop().await;
}

/// Every example runbook runs against the sandbox: planned, sent, and nothing fails. Generic
/// `http` actions are blocked in a rehearsal, never sent to a real endpoint.
#[test]
fn every_example_applies_against_the_sandbox() {
    let dir = examples_copy("every");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
        })
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let out = redrive(
            &dir,
            &["apply", "--sandbox", "--auto-approve", "--quiet", name],
            &[],
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name}:\n{all}");
        if name == "http-generic.yaml" {
            assert!(
                all.contains("the sandbox does not simulate this provider"),
                "{all}"
            );
            assert!(all.contains("Nothing to send"), "{all}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two SNI automations share one `ip:port`; the bulk endpoint answers per `ip:port`, so they go
/// in separate requests and each gets its own result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_targets_on_one_address_are_sent_separately() {
    let live = live(
        "sni",
        "digicert:\n  automations:\n    - {id: 1, ip: 10.1.1.1, port: 443, domain_name: a.example.com}\n    - {id: 2, ip: 10.1.1.1, port: 443, domain_name: b.example.com}\n    - {id: 3, ip: 10.1.1.2, port: 443}\n",
        "jobs:\n  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {account_id: 5153184, targets: [{ip: 10.1.1.1, port: 443, domain_name: a.example.com}, {ip: 10.1.1.1, port: 443, domain_name: b.example.com}, {ip: 10.1.1.2, port: 443}]}\n",
    )
    .await;
    let out = apply_live(&live, &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Apply: 3 succeeded"), "{all}");
    let stats = provider_stats(&live, "digicert");
    assert_eq!(
        stats["by_endpoint"]["POST /automationws/v1/automation/bulkretryautomationtask"], 2,
        "{stats}"
    );
    assert_eq!(stats["mutations"], 3, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    live.running.stop().await;
}

/// A journal that cannot be written (a full disk) stops the apply before anything is sent.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_when_the_journal_cannot_be_written() {
    let live = live(
        "journal-full",
        "seed: 1\nvenafi_tpp:\n  certificates: [{dn: '\\VED\\Policy\\A\\a.example.com'}]\n",
        "jobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\A\\a.example.com'}\n",
    )
    .await;
    let state = live.dir.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    // Every write to /dev/full fails with "no space left on device".
    std::os::unix::fs::symlink("/dev/full", state.join("live.journal.jsonl")).expect("symlink");
    let out = apply_live(&live, &["--state-dir", state.to_str().expect("utf-8")]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("cannot use the journal") && all.contains("live.journal.jsonl"),
        "{all}"
    );
    let stats = provider_stats(&live, "venafi_tpp");
    assert_eq!(stats["mutations"], 0, "{stats}");
    live.running.stop().await;
}
