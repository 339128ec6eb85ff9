//! Discovery sources against the sandbox: each type reads every page and yields the typed items
//! the README documents, which a `for_each` feeds straight into the matching action.

use serde_json::Value;

use crate::apply::{examples_copy, redrive, text};

/// The plan of a runbook in the examples folder (so the sandbox's default world answers), as
/// JSON: (job id, target, decision, params) of every action.
fn planned(name: &str, runbook: &str) -> Vec<(String, String, String, Value)> {
    let dir = examples_copy(name);
    std::fs::write(dir.join("sources.yaml"), runbook).expect("runbook");
    let out = redrive(
        &dir,
        &["plan", "--sandbox", "--format", "json", "sources.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("a JSON plan");
    let _ = std::fs::remove_dir_all(&dir);
    plan["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .flat_map(|j| {
            j["actions"].as_array().expect("actions").iter().map(|a| {
                (
                    j["id"].as_str().unwrap_or_default().to_owned(),
                    a["target"].as_str().unwrap_or_default().to_owned(),
                    a["decision"]["decision"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["params"].clone(),
                )
            })
        })
        .collect()
}

const PROVIDERS: &str = r#"version: 1
name: sources
providers:
  ncp:
    type: ncloud
    url: https://certificatemanager.apigw.ntruss.com
    auth: {access_key: {env: NCLOUD_ACCESS_KEY}, secret_key: {env: NCLOUD_SECRET_KEY}}
  sddc:
    type: vcf
    url: https://sddc.example.com
    auth: {username: administrator@vsphere.local, password: {env: VCF_PASSWORD}}
"#;

#[test]
fn ncp_certificates_by_status_feed_reissues() {
    let runbook = format!(
        "{PROVIDERS}sources:\n  expired:\n    provider: ncp\n    type: ncp_certificates\n    with: {{status_code: [-2, -3, -4]}}\njobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{{{ sources.expired }}}}\"\n    with:\n      certificate_no: \"{{{{ item.certificate_no }}}}\"\n      certificate_name: \"{{{{ item.certificate_name }}}}\"\n      common_name: \"{{{{ item.common_name }}}}\"\n      dns_name: \"{{{{ item.dns_name }}}}\"\n      csr: {{file: inputs/csr/shop.example.co.kr.csr}}\n"
    );
    let actions = planned("src-ncp", &runbook);
    let targets: Vec<&str> = actions.iter().map(|a| a.1.as_str()).collect();
    // The default world's VALIDATION_FAILED, VALIDATION_EXPIRE and EXPIRE certificates; not the
    // ONGOING one.
    assert_eq!(
        targets,
        [
            "certificate 55882",
            "certificate 55907",
            "certificate 56140"
        ],
        "{actions:?}"
    );
    assert!(actions.iter().all(|a| a.2 == "run"), "{actions:?}");
    assert_eq!(actions[2].3["dns_name"][1], "mobile.example.co.kr");
}

#[test]
fn vcf_sources_list_failed_tasks_with_their_spec() {
    let runbook = format!(
        "{PROVIDERS}sources:\n  rotations:\n    provider: sddc\n    type: credentials_tasks\n    with: {{status: [FAILED], operation_type: [ROTATE]}}\n  failed:\n    provider: sddc\n    type: tasks\n    with: {{status: FAILED, retryable: true}}\njobs:\n  - id: rerun\n    provider: sddc\n    action: retry_credentials_task\n    for_each: \"{{{{ sources.rotations }}}}\"\n    with: {{task_id: \"{{{{ item.id }}}}\", operation_type: \"{{{{ item.operation_type }}}}\", elements: \"{{{{ item.elements }}}}\"}}\n  - id: by-task\n    provider: sddc\n    action: retry_credentials_task\n    for_each: \"{{{{ sources.failed }}}}\"\n    with:\n      task_id: \"{{{{ item.id }}}}\"\n      operation_type: ROTATE\n      elements: [{{resource_type: ESXI, resource_name: h1, credentials: [{{username: root}}]}}]\n"
    );
    let actions = planned("src-vcf", &runbook);
    let failed = "5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903";
    // The default world has one failed ROTATE and one UPDATE in progress: only the first.
    let rerun: Vec<_> = actions.iter().filter(|a| a.0 == "rerun").collect();
    assert_eq!(rerun.len(), 1, "{actions:?}");
    assert_eq!((rerun[0].1.as_str(), rerun[0].2.as_str()), (failed, "run"));
    // The failed task's spec, one element per resource, as its sub-tasks name it.
    let elements = rerun[0].3["elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 4, "{elements:?}");
    assert_eq!(elements[0]["resource_type"], "ESXI");
    assert_eq!(elements[0]["credentials"][0]["username"], "root");
    assert_eq!(elements[0]["credentials"][0]["credential_type"], "SSH");
    let by_task: Vec<&str> = actions
        .iter()
        .filter(|a| a.0 == "by-task")
        .map(|a| a.1.as_str())
        .collect();
    assert_eq!(by_task, [failed], "{actions:?}");
}

#[test]
fn a_source_of_another_provider_type_names_the_types_it_offers() {
    let dir = examples_copy("src-wrong");
    std::fs::write(
        dir.join("wrong.yaml"),
        format!("{PROVIDERS}sources:\n  x: {{provider: sddc, type: tpp_certificates, with: {{folder: '\\VED\\Policy\\A'}}}}\njobs:\n  - {{id: j, provider: sddc, action: retry_credentials_task, for_each: \"{{{{ sources.x }}}}\", with: {{task_id: \"{{{{ item.guid }}}}\", operation_type: ROTATE, elements: [{{resource_type: ESXI, credentials: [{{username: root}}]}}]}}}}\n"),
    )
    .expect("runbook");
    let out = redrive(&dir, &["validate", "wrong.yaml"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("offers: type `credentials_tasks`, `tasks`")
            && text(&out).contains("wrong.yaml:"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A list that keeps failing fails the plan (exit 1, naming the provider): thousands of single
/// reads would not help a server that cannot list, and "could not find out" is never "blocked".
#[test]
fn a_failing_bulk_list_fails_the_plan() {
    let dir = examples_copy("src-list-503");
    std::fs::write(
        dir.join("scenario.yaml"),
        "venafi_tpp:\n  generate: [{count: 8, parent: '\\VED\\Policy\\L', name: 'c{n}'}]\n  faults:\n    errors: [{status: 503, rate: 1.0, endpoints: ['GET /vedsdk/certificates/']}]\n",
    )
    .expect("scenario");
    std::fs::write(
        dir.join("hand.yaml"),
        "version: 1\nname: hand\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{ range(1, 9) | list }}\"\n    with: {certificate_dn: '\\VED\\Policy\\L\\c{{ item }}'}\n",
    )
    .expect("runbook");
    let out = redrive(
        &dir,
        &[
            "plan",
            "--sandbox",
            "--scenario",
            "scenario.yaml",
            "hand.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("provider `tpp`") && text(&out).contains("503"),
        "{}",
        text(&out)
    );
    // Without the lists, the same world plans: each target is read on its own.
    let out = redrive(
        &dir,
        &[
            "plan",
            "--sandbox",
            "--scenario",
            "scenario.yaml",
            "--no-bulk-reads",
            "hand.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("Plan: 8 to run"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
