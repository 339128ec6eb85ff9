//! A saved plan is an approval, not a program: every edit of the plan file, and every change
//! of a file it was rendered from, is refused (exit 5) before anything is sent.

use serde_json::Value;

use super::apply::{examples_copy, redrive, text};

const RUNBOOK: &str = "outage-remediation.yaml";

fn saved(dir: &std::path::Path) -> Value {
    let out = redrive(
        dir,
        &["plan", "--sandbox", RUNBOOK, "--out", "plan.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("plan"))
        .expect("json")
}

fn apply(dir: &std::path::Path) -> std::process::Output {
    redrive(dir, &["apply", "plan.json", "--auto-approve"], &[])
}

/// The first NCP reissue action of the plan.
fn ncp_action(plan: &mut Value) -> &mut Value {
    let job = plan["jobs"]
        .as_array_mut()
        .expect("jobs")
        .iter_mut()
        .find(|j| j["provider_type"] == "ncloud")
        .expect("an ncloud job");
    &mut job["actions"][0]
}

#[test]
fn every_tampered_plan_is_refused() {
    let dir = examples_copy("tamper");
    let pristine = saved(&dir);
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit, &str); 6] = [
        (
            "another certificate number",
            |p| {
                let a = ncp_action(p);
                let params = a["params"].as_object_mut().expect("params");
                params.insert("certificate_no".into(), Value::from(200_000));
            },
            "parameters differs",
        ),
        (
            "a harmless preview",
            |p| {
                let a = ncp_action(p);
                a["request"]["url"] = Value::from("https://example.com/harmless");
            },
            "request line differs",
        ),
        (
            "an action copied",
            |p| {
                let copy = ncp_action(p).clone();
                let job = p["jobs"]
                    .as_array_mut()
                    .expect("jobs")
                    .iter_mut()
                    .find(|j| j["provider_type"] == "ncloud")
                    .expect("job");
                job["actions"].as_array_mut().expect("actions").push(copy);
            },
            "appears more than once",
        ),
        (
            "idempotency flipped",
            |p| {
                ncp_action(p)["idempotency"] = Value::from("idempotent");
            },
            "idempotency differs",
        ),
        (
            "an id that the runbook does not render",
            |p| {
                ncp_action(p)["id"] = Value::from("00000000deadbeef");
            },
            "is not one the runbook renders",
        ),
        (
            "a decision turned to run",
            |p| {
                for job in p["jobs"].as_array_mut().expect("jobs") {
                    for a in job["actions"].as_array_mut().expect("actions") {
                        if a["decision"]["decision"] != "run" {
                            a["decision"] = serde_json::json!({"decision": "run"});
                        }
                    }
                }
                // A summary that agrees, as a careful forger would write it.
                p["summary"]["run"] = Value::from(22);
            },
            "",
        ),
    ];
    for (case, edit, says) in edits {
        let mut plan = pristine.clone();
        edit(&mut plan);
        std::fs::write(dir.join("plan.json"), plan.to_string()).expect("write");
        let out = apply(&dir);
        let all = text(&out);
        if says.is_empty() {
            // Approving what the runbook blocks cannot make it run: the fresh decision wins.
            assert!(all.contains("! "), "{case}: {all}");
            continue;
        }
        assert_eq!(out.status.code(), Some(5), "{case}: {all}");
        assert!(all.contains(says), "{case}: {all}");
        assert!(!all.contains("Results:"), "{case}: sent something: {all}");
    }
}

#[test]
fn a_changed_csr_file_makes_the_saved_plan_stale() {
    let dir = examples_copy("tamper-csr");
    let plan = saved(&dir);
    let csr = plan["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|f| f["name"] == "csr")
        .expect("a pinned CSR")["path"]
        .as_str()
        .expect("a path")
        .to_owned();
    let path = dir.join(&csr);
    let mut text_of = std::fs::read_to_string(&path).expect("csr");
    text_of.push('\n');
    std::fs::write(&path, text_of).expect("edit the CSR");
    let out = apply(&dir);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("changed"), "{}", text(&out));
}
