//! Provider limits that hold exactly, checked against servers written from the docs
//! (`tests/fake/`): DigiCert's rolling windows per key (zero 429s, close to the shortest time
//! the limits allow, also with two jobs sharing the key, and a real limit lower than declared),
//! VCF's one credential operation at a time (across jobs, and with a foreign task running), and
//! SNI targets matched by documented fields only.

use std::time::Duration;

use super::apply::{redrive, temp_dir, text};
use super::fake::digicert::{Automation, DOCUMENTED_LIMITS, DigicertFake};
use super::fake::limiter::Window;
use super::fake::vcf::VcfFake;
use super::fake::vcf_api::CredTask;

const KEY: (&str, &str) = ("DC_KEY", "test-devkey");

/// A runbook with one DigiCert provider at `url` and the given jobs.
fn digicert_runbook(dir: &std::path::Path, url: &str, limits: &str, jobs: &str) {
    std::fs::write(
        dir.join("dc.yaml"),
        format!(
            "version: 1\nname: dc\nproviders:\n  dc:\n    type: digicert\n    url: {url}\n    auth: {{api_key: {{env: DC_KEY}}}}\n{limits}jobs:\n{jobs}"
        ),
    )
    .expect("runbook");
}

fn targets(ips: std::ops::Range<u32>) -> String {
    ips.map(|n| format!("{{ip: 10.2.{}.{}, port: 443}}", n / 250, n % 250))
        .collect::<Vec<_>>()
        .join(", ")
}

fn automations(n: u32) -> super::fake::digicert::Builder {
    let mut b = DigicertFake::builder().limits(&DOCUMENTED_LIMITS);
    for i in 0..n {
        b = b.automation(Automation::new(
            u64::from(i) + 1,
            &format!("10.2.{}.{}", i / 250, i % 250),
            443,
        ));
    }
    b
}

/// The span from the first to the last request the server admitted, against the shortest span
/// the documented windows allow for that many requests.
fn span_vs_minimum(fake: &DigicertFake) -> (Duration, Duration, usize) {
    let times = fake.admitted_times();
    let span = times[times.len() - 1] - times[0];
    // With 100 per 5 s, request 101 can start 5 s after the first, request 201 10 s after.
    let windows = u32::try_from((times.len() - 1) / 100).expect("small");
    (span, Duration::from_secs(5) * windows, times.len())
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "prints the figure BENCHMARKS.md reports"
)]
fn digicert_150_automations_get_no_429_and_finish_near_the_shortest_time() {
    let fake = automations(150).spawn_thread();
    let dir = temp_dir("limits-150");
    let jobs = format!(
        "  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, division_id: 677793, batch_size: 1, targets: [{}]}}\n",
        targets(0..150)
    );
    digicert_runbook(&dir, &fake.base_url(), "", &jobs);
    let out = redrive(&dir, &["apply", "--auto-approve", "dc.yaml"], &[KEY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("150 succeeded"), "{}", text(&out));
    assert_eq!(fake.rate_limited(), 0, "429s from a strict rolling window");
    let (span, minimum, requests) = span_vs_minimum(&fake);
    assert!(
        span.as_secs_f64() <= minimum.as_secs_f64() * 1.15,
        "{requests} requests took {span:?}; the limits allow {minimum:?}"
    );
    assert!(fake.max_admitted_in(Duration::from_secs(5)) <= 100);
    eprintln!(
        "digicert 150: {requests} requests, 0 429s, span {span:?} vs minimum {minimum:?} ({:.3}x)",
        span.as_secs_f64() / minimum.as_secs_f64()
    );
}

#[test]
fn two_jobs_on_one_key_share_its_limits() {
    let fake = automations(150).spawn_thread();
    let dir = temp_dir("limits-two-jobs");
    let jobs = format!(
        "  - id: first\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, division_id: 677793, batch_size: 1, targets: [{}]}}\n  - id: second\n    provider: dc2\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, division_id: 677793, batch_size: 1, targets: [{}]}}\n",
        targets(0..75),
        targets(75..150)
    );
    // Two providers of the runbook with the same endpoint and key: one set of limits.
    let url = fake.base_url();
    digicert_runbook(
        &dir,
        &url,
        &format!(
            "  dc2:\n    type: digicert\n    url: {url}\n    auth: {{api_key: {{env: DC_KEY}}}}\n"
        ),
        &jobs,
    );
    let out = redrive(&dir, &["apply", "--auto-approve", "dc.yaml"], &[KEY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("150 succeeded"), "{}", text(&out));
    assert_eq!(fake.rate_limited(), 0);
    let (span, minimum, requests) = span_vs_minimum(&fake);
    assert!(
        span.as_secs_f64() <= minimum.as_secs_f64() * 1.15,
        "{requests} requests took {span:?}; the limits allow {minimum:?}"
    );
}

/// The server allows less than the runbook declares, and says nothing of when to come back:
/// the run still completes with every action final, and the 429s stay few.
#[test]
#[expect(
    clippy::print_stderr,
    reason = "prints the figure BENCHMARKS.md reports"
)]
fn a_limit_lower_than_declared_still_completes() {
    let mut b = DigicertFake::builder().limits(&[Window::new(10, Duration::from_secs(1))]);
    for i in 0..40_u32 {
        b = b.automation(Automation::new(
            u64::from(i) + 1,
            &format!("10.2.{}.{}", i / 250, i % 250),
            443,
        ));
    }
    let fake = b.retry_after(None).spawn_thread();
    let dir = temp_dir("limits-lower");
    let jobs = format!(
        "  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, division_id: 677793, batch_size: 1, targets: [{}]}}\n    retry: {{attempts: 3, initial_delay: 100ms}}\n",
        targets(0..40)
    );
    digicert_runbook(
        &dir,
        &fake.base_url(),
        "    limits: {rate: [\"100/5s\"]}\n",
        &jobs,
    );
    let out = redrive(
        &dir,
        &[
            "apply",
            "--auto-approve",
            "--report-json",
            "r.json",
            "dc.yaml",
        ],
        &[KEY],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("40 succeeded"), "{}", text(&out));
    let refused = fake.rate_limited();
    assert!(refused <= 15, "{refused} requests were refused with 429");
    // Counted where they happened, planning included, and shown in the summary and the report.
    assert!(refused > 0, "the server's lower limit was never hit");
    assert!(
        text(&out).contains(&format!(
            "Rate limited (429 answers, planning included): `dc` {refused}"
        )),
        "{}",
        text(&out)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).expect("report"))
            .expect("json");
    assert_eq!(report["throttled"]["dc"], refused, "{report}");
    eprintln!("lower limit: 49 requests needed, {refused} refused with 429");
}

/// An SNI target on a shared `ip:port` is matched by the automation's certificate CN (a
/// documented field) and retried; one that names no domain there is held back with the reason.
#[test]
fn sni_targets_are_matched_by_documented_fields() {
    let fake = DigicertFake::builder()
        .automation(Automation::new(1, "10.3.0.1", 443).cn("a.example.com"))
        .automation(Automation::new(2, "10.3.0.1", 443).cn("b.example.com"))
        .spawn_thread();
    let dir = temp_dir("limits-sni");
    digicert_runbook(
        &dir,
        &fake.base_url(),
        "",
        "  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {account_id: 5153184, division_id: 677793, targets: [{ip: 10.3.0.1, port: 443, domain_name: a.example.com}, {ip: 10.3.0.1, port: 443}]}\n",
    );
    let out = redrive(&dir, &["apply", "--auto-approve", "dc.yaml"], &[KEY]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(fake.retries_initiated(1), 1, "{all}");
    assert_eq!(fake.retries_initiated(2), 0, "{all}");
    assert!(
        all.contains("several automations share 10.3.0.1:443"),
        "{all}"
    );
}

fn vcf_runbook(dir: &std::path::Path, url: &str, jobs: &str) {
    std::fs::write(
        dir.join("vcf.yaml"),
        format!(
            "version: 1\nname: vcf\nproviders:\n  sddc:\n    type: vcf\n    url: {url}\n    auth: {{username: administrator@vsphere.local, password: {{env: VCF_PASSWORD}}}}\n  sddc2:\n    type: vcf\n    url: {url}\n    auth: {{username: administrator@vsphere.local, password: {{env: VCF_PASSWORD}}}}\njobs:\n{jobs}"
        ),
    )
    .expect("runbook");
}

fn vcf_job(id: &str, provider: &str, task: &str) -> String {
    format!(
        "  - id: {id}\n    provider: {provider}\n    action: retry_credentials_task\n    with: {{task_id: {task}, operation_type: ROTATE, elements: [{{resource_type: ESXI, credentials: [{{username: root}}]}}]}}\n    wait: {{interval: 100ms, timeout: 30s}}\n"
    )
}

const T1: &str = "11111111-1111-4111-8111-111111111111";
const T2: &str = "22222222-2222-4222-8222-222222222222";

#[test]
fn vcf_operations_on_one_sddc_manager_never_overlap_across_jobs() {
    let fake = VcfFake::builder()
        .task_duration(Duration::from_millis(500))
        .task(CredTask::failed(T1))
        .task(CredTask::failed(T2))
        .spawn_thread();
    let dir = temp_dir("limits-vcf");
    let jobs = vcf_job("one", "sddc", T1) + &vcf_job("two", "sddc2", T2);
    vcf_runbook(&dir, &fake.base_url(), &jobs);
    let out = redrive(
        &dir,
        &["apply", "--auto-approve", "vcf.yaml"],
        &[("VCF_PASSWORD", "sandbox")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.operations().len(), 2, "{}", text(&out));
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    assert_eq!(fake.refused_busy(), 0);
}

#[test]
fn a_running_foreign_credential_task_makes_the_send_wait() {
    let foreign = "33333333-3333-4333-8333-333333333333";
    let fake = VcfFake::builder()
        .task_duration(Duration::from_millis(300))
        .task(CredTask::foreign_running(
            foreign,
            Duration::from_millis(1500),
        ))
        .task(CredTask::failed(T1))
        .spawn_thread();
    let dir = temp_dir("limits-vcf-foreign");
    vcf_runbook(&dir, &fake.base_url(), &vcf_job("one", "sddc", T1));
    let out = redrive(
        &dir,
        &["apply", "--auto-approve", "vcf.yaml"],
        &[("VCF_PASSWORD", "sandbox")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.refused_busy(), 0, "sent while the foreign task ran");
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    assert_eq!(fake.retries(T1), 1);

    // A foreign task that outlasts the wait: the send is held back with the reason.
    let fake = VcfFake::builder()
        .task(CredTask::foreign_running(foreign, Duration::from_secs(30)))
        .task(CredTask::failed(T1))
        .spawn_thread();
    let jobs = vcf_job("one", "sddc", T1).replace("timeout: 30s", "timeout: 1s");
    vcf_runbook(&dir, &fake.base_url(), &jobs);
    let out = redrive(
        &dir,
        &["apply", "--auto-approve", "vcf.yaml"],
        &[("VCF_PASSWORD", "sandbox")],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("blocked while credential task"),
        "{}",
        text(&out)
    );
    assert_eq!(fake.retries(T1), 0);
}
