//! A journal that applies have filled with superseded lines is compacted by the next apply, and
//! nothing a later run decides changes: not a decision, not a reason, not one more mutation.

use serde_json::Value;

use super::apply::{SECRETS, apply_live, live, provider_stats, redrive, text};
use super::converge::mutations;

const TASK: &str = "7b9e2c1a-3d4f-4e5a-8b6c-1d2e3f4a5b6c";

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .expect("the journal")
        .lines()
        .count()
}

/// Each action's id, decision, reason and previous outcome in a `--refresh=false` plan.
fn decisions(dir: &std::path::Path) -> Vec<(String, String, String, String)> {
    let plan = redrive(
        dir,
        &["plan", "--refresh=false", "--format", "json", "live.yaml"],
        &SECRETS,
    );
    let v: Value = serde_json::from_slice(&plan.stdout).expect("a JSON plan");
    let field = |a: &Value, k: &str| a[k].as_str().unwrap_or_default().to_owned();
    v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .flat_map(|j| j["actions"].as_array().expect("actions").clone())
        .map(|a| {
            (
                field(&a, "id"),
                field(&a["decision"], "decision"),
                field(&a["decision"], "reason"),
                field(&a, "previous"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_superseded_lines_is_compacted_and_decides_the_same() {
    let live = live(
        "compaction",
        &format!(
            "venafi_tpp:\n  generate: [{{count: 2000, parent: '\\VED\\Policy\\Bench', name: 'c{{n}}'}}]\nncloud:\n  processing: 10ms\n  certificates:\n    - {{certificate_no: 1, name: one, common_name: one.example.co.kr}}\nvcf:\n  tasks:\n    - {{id: {TASK}, operation_type: ROTATE, resources: [{{name: esx1.example.com}}], outcome: succeeds}}\ndigicert:\n  automations:\n    - {{id: 1, ip: 10.1.1.1, port: 443}}\n"
        ),
        &format!(
            "jobs:\n  - id: venafi\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{{{ range(1, 2001) }}}}\"\n    with: {{certificate_dn: '\\VED\\Policy\\Bench\\c{{{{ item }}}}'}}\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    with: {{certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: one, common_name: one.example.co.kr}}\n  - id: rotate\n    provider: sddc\n    action: retry_credentials_task\n    with: {{task_id: {TASK}, operation_type: ROTATE, elements: [{{resource_type: ESXI, credentials: [{{username: root}}]}}]}}\n    wait: {{interval: 50ms, timeout: 20s}}\n  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: 5153184, targets: [{{ip: 10.1.1.1, port: 443}}]}}\n"
        ),
    )
    .await;
    let journal = live.dir.join(".redrive/live.journal.jsonl");
    let first = apply_live(&live, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(mutations(&live), [1, 1, 1]);
    // Without reading, every Venafi retry goes again (TPP answers that none is needed), and
    // each apply writes three more lines per certificate.
    for _ in 0..2 {
        let blind = apply_live(&live, &["--refresh=false"]).await;
        assert_eq!(blind.status.code(), Some(0), "{}", text(&blind));
        assert!(!text(&blind).contains("compacted"), "{}", text(&blind));
    }
    let before = lines(&journal);
    assert!(before > 18_000, "{before} lines");
    let decided = decisions(&live.dir);
    assert_eq!(decided.len(), 2003);
    // The journal alone holds the three non-idempotent actions back, by their earlier success.
    let held = decided
        .iter()
        .filter(|(_, d, why, _)| d == "skip" && why.starts_with("done in an earlier run at"))
        .count();
    assert_eq!(held, 3, "{decided:?}");

    // Reading the state, everything is done: nothing is sent, and the journal shrinks first.
    let again = apply_live(&live, &[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("compacted the journal"),
        "{}",
        text(&again)
    );
    let after = lines(&journal);
    assert!(after < before / 2, "{before} lines before, {after} after");
    assert_eq!(decisions(&live.dir), decided);
    assert_eq!(mutations(&live), [1, 1, 1]);
    for kind in ["ncloud", "vcf", "digicert"] {
        assert_eq!(
            provider_stats(&live, kind)["duplicate_mutations"],
            0,
            "{kind}"
        );
    }
    // And a blind apply after it still holds every non-idempotent action back.
    let blind = apply_live(&live, &["--refresh=false"]).await;
    assert_eq!(blind.status.code(), Some(0), "{}", text(&blind));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&blind));
    live.running.stop().await;
}
