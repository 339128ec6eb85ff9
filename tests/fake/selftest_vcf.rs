//! Self-tests of the VCF fake: tokens, 202 + Task, progress over time, one at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::selftest_support::client;
use super::vcf::VcfFake;
use super::vcf_api::{CredTask, TaskStatus};

async fn call(
    http: &reqwest::Client,
    fake: &VcfFake,
    m: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let mut req = http
        .request(m, format!("{}{path}", fake.url()))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("the fake answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(http: &reqwest::Client, fake: &VcfFake) -> (String, String) {
    let body = json!({"username": "administrator@vsphere.local", "password": "sandbox"});
    let (status, pair) = call(
        http,
        fake,
        reqwest::Method::POST,
        "/v1/tokens",
        None,
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{pair}");
    let access = pair["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned();
    (
        access,
        pair["refreshToken"]["id"]
            .as_str()
            .expect("a refresh id")
            .to_owned(),
    )
}

fn spec() -> String {
    json!({"operationType": "ROTATE", "elements": [{"resourceName": "sfo01-m01-esx01.sfo.rainpole.io",
        "resourceType": "ESXI", "credentials": [{"credentialType": "SSH", "accountType": "USER", "username": "root"}]}]})
    .to_string()
}

#[tokio::test]
async fn tokens_refresh_with_a_raw_or_quoted_id_and_expire_to_401() {
    let (fake, http) = (
        VcfFake::builder().task(CredTask::failed("t1")).start(),
        client(),
    );
    let (access, id) = login(&http, &fake).await;
    assert_eq!(access.split('.').count(), 3, "a JWT");
    let (status, _) = call(
        &http,
        &fake,
        reqwest::Method::GET,
        "/v1/tasks/t1",
        Some(&access),
        None,
    )
    .await;
    assert_eq!(status, 200);
    fake.expire_access_tokens();
    let (status, _) = call(
        &http,
        &fake,
        reqwest::Method::GET,
        "/v1/tasks/t1",
        Some(&access),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let path = "/v1/tokens/access-token/refresh";
    for body in [id.clone(), format!("\"{id}\""), id] {
        let (status, fresh) =
            call(&http, &fake, reqwest::Method::PATCH, path, None, Some(body)).await;
        assert_eq!(status, 200, "a refresh id is reusable");
        let (ok, _) = call(
            &http,
            &fake,
            reqwest::Method::GET,
            "/v1/tasks/t1",
            fresh.as_str(),
            None,
        )
        .await;
        assert_eq!(ok, 200);
    }
}

#[tokio::test]
async fn a_retry_is_202_then_runs_to_a_terminal_status_and_only_failed_tasks_retry() {
    let fake = VcfFake::builder()
        .task_duration(Duration::from_millis(150))
        .task(CredTask::failed("t1"))
        .start();
    let http = client();
    let (token, _) = login(&http, &fake).await;
    let (_, before) = call(
        &http,
        &fake,
        reqwest::Method::GET,
        "/v1/tasks/t1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (before["status"].clone(), before["isRetryable"].clone()),
        (json!("FAILED"), json!(true))
    );
    let patch = reqwest::Method::PATCH;
    let (status, task) = call(
        &http,
        &fake,
        patch.clone(),
        "/v1/credentials/tasks/t1",
        Some(&token),
        Some(spec()),
    )
    .await;
    assert_eq!(
        (status, task["id"].clone(), task["status"].clone()),
        (202, json!("t1"), json!("IN_PROGRESS"))
    );
    let (status, _) = call(
        &http,
        &fake,
        patch,
        "/v1/credentials/tasks/t1",
        Some(&token),
        Some(spec()),
    )
    .await;
    assert_eq!(status, 400, "not FAILED any more");
    let (_, running) = call(
        &http,
        &fake,
        reqwest::Method::GET,
        "/v1/tasks?taskStatus=IN_PROGRESS",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(running["pageMetadata"]["totalElements"], 1);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = call(
            &http,
            &fake,
            reqwest::Method::GET,
            "/v1/credentials/tasks/t1",
            Some(&token),
            None,
        )
        .await
        .1;
        if last["status"] != "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], "SUCCESSFUL");
    assert!(last.get("isRetryable").is_none());
    let (status, _) = call(
        &http,
        &fake,
        reqwest::Method::GET,
        "/v1/tasks/nope",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(fake.retries("t1"), 1);
}

#[tokio::test]
async fn credential_operations_run_one_at_a_time_and_a_foreign_task_blocks() {
    // Seconds, not milliseconds: on a loaded CI runner a login can take longer than a short
    // foreign task lasts, and the refusal this checks would never be seen.
    let fake = VcfFake::builder()
        .task_duration(Duration::from_secs(2))
        .task(CredTask::foreign_running("foreign", Duration::from_secs(2)))
        .task(CredTask::failed("a"))
        .task(CredTask::failed("b").outcomes(&[TaskStatus::Failed]))
        .start();
    // The foreign task started with the fake: it has ended 2 s from here at the latest.
    let began = tokio::time::Instant::now();
    let http = client();
    let (token, _) = login(&http, &fake).await;
    let patch = |id: &'static str| {
        let (http, fake, token) = (&http, &fake, &token);
        async move {
            call(
                http,
                fake,
                reqwest::Method::PATCH,
                &format!("/v1/credentials/tasks/{id}"),
                Some(token),
                Some(spec()),
            )
            .await
        }
    };
    let (status, body) = patch("a").await;
    assert_eq!(status, 400, "the foreign task is running: {body}");
    tokio::time::sleep_until(began + Duration::from_millis(2100)).await;
    assert_eq!(patch("a").await.0, 202);
    assert_eq!(patch("b").await.0, 400, "a is running");
    assert_eq!(fake.refused_busy(), 2);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    let overlapping = VcfFake::builder()
        .one_at_a_time(false)
        .task(CredTask::failed("x"))
        .task(CredTask::failed("y"))
        .start();
    let (t2, _) = login(&http, &overlapping).await;
    for id in ["x", "y"] {
        let path = format!("/v1/credentials/tasks/{id}");
        assert_eq!(
            call(
                &http,
                &overlapping,
                reqwest::Method::PATCH,
                &path,
                Some(&t2),
                Some(spec())
            )
            .await
            .0,
            202
        );
    }
    assert_eq!(
        overlapping.overlaps().len(),
        1,
        "the overlap is recorded when allowed"
    );
}
