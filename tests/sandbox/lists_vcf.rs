//! VCF's task lists over HTTP (providers.md §3.3; parameters from `vcf-sdk-go`
//! `specs/swagger.json` 9.0.2.0): `GET /v1/tasks` filters, 0-based pages of at most 100,
//! `pageMetadata`, and `GET /v1/credentials/tasks`, which documents only `limit`.

use std::collections::BTreeSet;

use redrive::sandbox::{Kind, Running};
use reqwest::Client;
use serde_json::Value;

use super::support::{Reply, client, send, start, vcf_token};

/// 255 failed ROTATEs (250 retryable), 12 failed UPDATEs on a vCenter, one running and one done.
const SCENARIO: &str = r"
vcf:
  pending: 0s
  running: 60s
  tasks:
    - {id: 11111111-1111-4111-8111-000000000001, name: 'Rotate the vault password', status: IN_PROGRESS, resources: [{name: vault01.sfo.rainpole.io}]}
    - {id: 11111111-1111-4111-8111-000000000002, status: SUCCESSFUL, resources: [{name: esx-done.sfo.rainpole.io}]}
  generate:
    - {count: 250}
    - {count: 5, retryable: false}
    - {count: 12, operation_type: UPDATE, resource_type: VCENTER}
";

/// The fields of the spec's `Task` schema; nothing else may appear.
const TASK_FIELDS: [&str; 13] = [
    "id",
    "name",
    "localizableDescriptionPack",
    "type",
    "status",
    "creationTimestamp",
    "completionTimestamp",
    "subTasks",
    "errors",
    "resources",
    "resolutionStatus",
    "isCancellable",
    "isRetryable",
];

async fn get(c: &Client, sb: &Running, token: &str, target: &str) -> Reply {
    send(
        c.get(format!("{}{target}", sb.url(Kind::Vcf)))
            .bearer_auth(token),
    )
    .await
}

fn elements(reply: &Reply, what: &str) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    reply.body["elements"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: elements is a list: {}", reply.text))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_tasks_list_pages_from_zero_with_page_metadata() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let mut seen = BTreeSet::new();
    for (page, expected) in [(0, 100), (1, 100), (2, 55)] {
        let target = format!(
            "/v1/tasks?taskStatus=FAILED&taskType=CREDENTIALS_ROTATE&pageNumber={page}&pageSize=100"
        );
        let reply = get(&c, &sb, &token, &target).await;
        let list = elements(&reply, &target);
        assert_eq!(list.len(), expected, "{target}");
        let meta = &reply.body["pageMetadata"];
        assert_eq!(meta["pageNumber"], page, "{target}: {meta}");
        assert_eq!(
            meta["pageSize"], expected,
            "{target}: the elements on this page: {meta}"
        );
        assert_eq!(meta["totalElements"], 255, "{target}: {meta}");
        assert_eq!(meta["totalPages"], 3, "{target}: {meta}");
        for task in &list {
            let fields = task.as_object().expect("a task is an object");
            for key in fields.keys() {
                assert!(
                    TASK_FIELDS.contains(&key.as_str()),
                    "{key} is not a Task field: {task}"
                );
            }
            assert_eq!(
                task["status"].as_str().map(str::to_uppercase).as_deref(),
                Some("FAILED")
            );
            assert!(
                seen.insert(task["id"].as_str().expect("id").to_owned()),
                "a task on two pages"
            );
        }
    }
    let retryable = |t: &Value| t["isRetryable"] == true;
    assert_eq!(seen.len(), 255);
    let all_failed =
        "/v1/tasks?taskStatus=FAILED&taskType=CREDENTIALS_ROTATE&pageNumber=0&pageSize=100";
    let mut count = 0;
    for page in 0..3 {
        let target = all_failed.replace("pageNumber=0", &format!("pageNumber={page}"));
        count += elements(&get(&c, &sb, &token, &target).await, &target)
            .iter()
            .filter(|t| retryable(t))
            .count();
    }
    assert_eq!(count, 250, "five of the failed tasks are not retryable");
    for page in [3, 40] {
        let target = format!("/v1/tasks?taskStatus=FAILED&pageNumber={page}&pageSize=100");
        let reply = get(&c, &sb, &token, &target).await;
        assert!(
            elements(&reply, &target).is_empty(),
            "{target}: past the end"
        );
        assert_eq!(reply.body["pageMetadata"]["totalElements"], 267, "{target}");
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_tasks_page_size_is_1_to_100_and_parameters_are_typed() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    for ok in ["pageSize=1", "pageSize=100", "pageNumber=0", ""] {
        let target = format!("/v1/tasks?{ok}");
        let reply = get(&c, &sb, &token, &target).await;
        let n = elements(&reply, &target).len();
        assert!(n <= 100, "{target}: at most 100 per page, got {n}");
    }
    let reply = get(&c, &sb, &token, "/v1/tasks").await;
    assert_eq!(
        elements(&reply, "no paging").len(),
        100,
        "without pageSize a page holds 100"
    );
    assert_eq!(reply.body["pageMetadata"]["totalPages"], 3);
    for bad in [
        "pageSize=101",
        "pageSize=0",
        "pageSize=-5",
        "pageSize=ten",
        "pageNumber=-1",
        "pageNumber=x",
        "limit=-1",
        "completedAfter=yesterday",
        "doLiveRefresh=maybe",
        "orderDirection=UP",
        "orderBy=colour",
    ] {
        let target = format!("/v1/tasks?{bad}");
        let reply = get(&c, &sb, &token, &target).await;
        assert_eq!(reply.status, 400, "{target}: {}", reply.text);
        assert!(
            reply.body["errorCode"].is_string(),
            "{target}: an Error: {}",
            reply.text
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_tasks_filters_match_as_documented() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let total = async |query: &str| {
        let target = format!("/v1/tasks?{query}&pageSize=100");
        let reply = get(&c, &sb, &token, &target).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text);
        reply.body["pageMetadata"]["totalElements"]
            .as_u64()
            .expect("totalElements")
    };
    assert_eq!(total("taskStatus=FAILED").await, 267);
    assert_eq!(
        total("taskStatus=Failed").await,
        267,
        "status in either casing"
    );
    assert_eq!(total("taskStatus=In%20Progress").await, 1);
    assert_eq!(total("taskStatus=IN_PROGRESS").await, 1);
    assert_eq!(total("taskStatus=SUCCESSFUL").await, 1);
    assert_eq!(total("taskType=CREDENTIALS_UPDATE").await, 12);
    assert_eq!(total("resourceType=VCENTER").await, 12);
    assert_eq!(total("taskName=vault").await, 1, "taskName: contains");
    assert_eq!(
        total("taskStatus=FAILED&limit=7").await,
        7,
        "limit caps the result"
    );
    assert_eq!(
        total("completedAfter=0").await,
        268,
        "completed: failed and successful"
    );
    let ordered = get(
        &c,
        &sb,
        &token,
        "/v1/tasks?orderBy=name&orderDirection=DESC&pageSize=3",
    )
    .await;
    let names: Vec<String> = elements(&ordered, "ordered")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted, "orderBy=name DESC");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_credentials_tasks_list_takes_only_limit() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let reply = get(&c, &sb, &token, "/v1/credentials/tasks?limit=3").await;
    assert_eq!(elements(&reply, "limit=3").len(), 3);
    assert_eq!(reply.body["pageMetadata"]["totalElements"], 269);
    for task in elements(&reply, "limit=3") {
        assert!(
            task.get("isRetryable").is_none(),
            "no isRetryable on a CredentialsTask: {task}"
        );
    }
    // The spec documents no paging here: the parameters are ignored, every "page" is the same.
    let first = get(
        &c,
        &sb,
        &token,
        "/v1/credentials/tasks?pageNumber=0&pageSize=2",
    )
    .await;
    let second = get(
        &c,
        &sb,
        &token,
        "/v1/credentials/tasks?pageNumber=1&pageSize=2",
    )
    .await;
    assert_eq!(elements(&first, "page 0").len(), 269);
    assert_eq!(first.body["elements"], second.body["elements"]);
    let bad = get(&c, &sb, &token, "/v1/credentials/tasks?limit=many").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    sb.stop().await;
}
