//! VCF SDDC Manager against providers.md §3 and the retryCredentialsTask doc (seed 002): token
//! pairs and JWTs, refresh ids, bearer checks, and the credentials-task retry lifecycle.

use std::time::Duration;

use base64::Engine;
use redrive::sandbox::{Kind, Running};
use reqwest::Client;
use serde_json::{Value, json};

use super::support::{
    Reply, client, eventually, provider_stats, send, start, vcf_token, vcf_token_pair,
};

const HEALS: &str = "11111111-1111-4111-8111-111111111111";
const STAYS: &str = "22222222-2222-4222-8222-222222222222";
const DONE: &str = "33333333-3333-4333-8333-333333333333";

const SCENARIO: &str = r#"
seed: 3
vcf:
  pending: 200ms
  running: 250ms
  tasks:
    - id: 11111111-1111-4111-8111-111111111111
      operation_type: ROTATE
      outcome: succeeds
      resources: [{name: esx01.sfo.rainpole.io}]
    - id: 22222222-2222-4222-8222-222222222222
      operation_type: ROTATE
      outcome: fails
      resources: [{name: esx02.sfo.rainpole.io}, {name: esx03.sfo.rainpole.io}]
      error:
        code: PASSWORD_ROTATE_FAILED
        message: "Failed to rotate the password of root on esx03.sfo.rainpole.io: host unreachable"
        remediation: Check the management network connectivity of the host, then retry the task.
    - id: 33333333-3333-4333-8333-333333333333
      operation_type: ROTATE
      status: SUCCESSFUL
      resources: [{name: esx04.sfo.rainpole.io}]
"#;

/// A `CredentialsUpdateSpec` with the fields the spec requires.
fn rotate_spec(resource: &str) -> Value {
    json!({
        "operationType": "ROTATE",
        "elements": [{
            "resourceName": resource,
            "resourceType": "ESXI",
            "credentials": [{"credentialType": "SSH", "accountType": "USER", "username": "root"}],
        }],
    })
}

/// Task statuses come in two casings (`In Progress`, `IN_PROGRESS`): compare them normalised.
fn normalised(status: &Value) -> String {
    status
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase()
        .replace(' ', "_")
}

async fn get_task(c: &Client, sb: &Running, token: &str, id: &str) -> Reply {
    send(
        c.get(format!("{}/v1/tasks/{id}", sb.url(Kind::Vcf)))
            .bearer_auth(token),
    )
    .await
}

async fn retry(c: &Client, sb: &Running, token: &str, id: &str, spec: &Value) -> Reply {
    send(
        c.patch(format!("{}/v1/credentials/tasks/{id}", sb.url(Kind::Vcf)))
            .bearer_auth(token)
            .json(spec),
    )
    .await
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("JWT part {index} is base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part {index} is JSON: {e}"))
}

/// Polls `GET /v1/tasks/{id}` until the task leaves PENDING/IN_PROGRESS; answers the statuses
/// seen (consecutive repeats folded) and the last task body.
async fn follow(c: &Client, sb: &Running, token: &str, id: &str) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    let last = eventually(
        &format!("task {id} ends"),
        Duration::from_secs(5),
        async || {
            let reply = get_task(c, sb, token, id).await;
            assert_eq!(reply.status, 200, "GET /v1/tasks/{id}: {}", reply.text);
            assert!(
                reply.body["isRetryable"].is_boolean(),
                "isRetryable is present: {}",
                reply.text
            );
            let status = normalised(&reply.body["status"]);
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            (!matches!(status.as_str(), "PENDING" | "IN_PROGRESS")).then_some(reply.body)
        },
    )
    .await;
    (seen, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_token_pair_is_201_with_a_one_hour_jwt() {
    let sb = start(SCENARIO).await;
    let reply = vcf_token_pair(&client(), &sb).await;
    assert_eq!(reply.status, 201, "the spec says 201: {}", reply.text);
    let access = reply.body["accessToken"].as_str().expect("accessToken");
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    assert_eq!(jwt_part(access, 0)["alg"], "HS256");
    let claims = jwt_part(access, 1);
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(iat.is_some() && exp.is_some(), "iat and exp: {claims}");
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(3600), "{claims}");
    let refresh = reply.body["refreshToken"]["id"]
        .as_str()
        .unwrap_or_default();
    assert!(!refresh.is_empty(), "refreshToken.id: {}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_token_status_200_when_the_scenario_asks_for_it() {
    let sb =
        start(&SCENARIO.replace("  pending: 200ms", "  token_status: 200\n  pending: 200ms")).await;
    let reply = vcf_token_pair(&client(), &sb).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.body["accessToken"].is_string(), "{}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_refresh_takes_a_bare_or_quoted_id_and_answers_a_string() {
    let sb = start(SCENARIO).await;
    let c = client();
    let pair = vcf_token_pair(&c, &sb).await;
    let id = pair.body["refreshToken"]["id"]
        .as_str()
        .expect("refreshToken.id")
        .to_owned();
    let url = format!("{}/v1/tokens/access-token/refresh", sb.url(Kind::Vcf));
    // The refresh id is reusable, so the same id serves both encodings.
    for body in [id.clone(), format!("\"{id}\"")] {
        let reply = send(
            c.patch(&url)
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert_eq!(reply.status, 200, "refresh with {body}: {}", reply.text);
        let token = reply
            .body
            .as_str()
            .unwrap_or_else(|| panic!("a JSON string: {}", reply.text));
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        let task = get_task(&c, &sb, token, DONE).await;
        assert_eq!(task.status, 200, "the refreshed token works: {}", task.text);
    }
    let unknown = send(
        c.patch(&url)
            .header("content-type", "application/json")
            .body("\"3c6b3c30-3bf2-480b-9539-8483699ab911\""),
    )
    .await;
    assert_eq!(
        unknown.status, 404,
        "an unknown refresh id: {}",
        unknown.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_bearer_is_required() {
    let sb = start(SCENARIO).await;
    let c = client();
    let url = format!("{}/v1/tasks/{DONE}", sb.url(Kind::Vcf));
    let missing = send(c.get(&url)).await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"] {
        let reply = send(c.get(&url).bearer_auth(garbage)).await;
        assert_eq!(reply.status, 401, "Bearer {garbage}: {}", reply.text);
        assert!(
            reply.body["errorCode"].is_string(),
            "an Error body: {}",
            reply.text
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_unknown_task_is_404() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let reply = get_task(&c, &sb, &token, "99999999-9999-4999-8999-999999999999").await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_failed_task_reads_as_retryable() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let task = get_task(&c, &sb, &token, STAYS).await;
    assert_eq!(task.status, 200, "{}", task.text);
    for field in ["id", "name", "status", "creationTimestamp"] {
        assert!(
            task.body.get(field).is_some(),
            "Task.{field} is required: {}",
            task.text
        );
    }
    assert_eq!(normalised(&task.body["status"]), "FAILED", "{}", task.text);
    assert_eq!(task.body["isRetryable"], true, "{}", task.text);

    // The credentials view has sub-task detail but no isRetryable.
    let credentials = send(
        c.get(format!(
            "{}/v1/credentials/tasks/{STAYS}",
            sb.url(Kind::Vcf)
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(credentials.status, 200, "{}", credentials.text);
    let status = normalised(&credentials.body["status"]);
    assert!(
        [
            "PENDING",
            "IN_PROGRESS",
            "SUCCESSFUL",
            "FAILED",
            "USER_CANCELLED",
            "INCONSISTENT"
        ]
        .contains(&status.as_str()),
        "CredentialsTask.status {status}"
    );
    assert!(
        credentials.body.get("isRetryable").is_none(),
        "{}",
        credentials.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_retried_task_runs_pending_in_progress_successful() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let accepted = retry(
        &c,
        &sb,
        &token,
        HEALS,
        &rotate_spec("esx01.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(
        accepted.status, 202,
        "the 9.x spec answers 202: {}",
        accepted.text
    );
    assert_eq!(
        accepted.body["id"], HEALS,
        "the same task id: {}",
        accepted.text
    );
    for field in ["name", "status", "creationTimestamp"] {
        assert!(
            accepted.body.get(field).is_some(),
            "Task.{field}: {}",
            accepted.text
        );
    }
    let first = normalised(&accepted.body["status"]);
    assert!(
        ["PENDING", "IN_PROGRESS"].contains(&first.as_str()),
        "a re-run task starts running: {first}"
    );

    let (seen, last) = follow(&c, &sb, &token, HEALS).await;
    assert_eq!(seen, ["PENDING", "IN_PROGRESS", "SUCCESSFUL"], "{last}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_retried_task_can_fail_again_with_remediation() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let accepted = retry(
        &c,
        &sb,
        &token,
        STAYS,
        &rotate_spec("esx03.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);

    let (seen, last) = follow(&c, &sb, &token, STAYS).await;
    assert_eq!(seen, ["PENDING", "IN_PROGRESS", "FAILED"], "{last}");
    assert_eq!(
        last["isRetryable"], true,
        "failed again, retryable again: {last}"
    );
    let remediations: Vec<String> = last["subTasks"]
        .as_array()
        .expect("subTasks is a list")
        .iter()
        .flat_map(|s| s["errors"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["remediationMessage"].as_str().map(str::to_owned))
        .collect();
    assert!(
        remediations.iter().any(|r| !r.is_empty()),
        "a failed sub-task carries a remediationMessage: {last}"
    );

    let again = retry(
        &c,
        &sb,
        &token,
        STAYS,
        &rotate_spec("esx03.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(
        again.status, 202,
        "a failed task can be retried again: {}",
        again.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_patch_of_a_task_that_is_not_failed_is_400() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let reply = retry(&c, &sb, &token, DONE, &rotate_spec("esx04.sfo.rainpole.io")).await;
    assert_eq!(reply.status, 400, "a SUCCESSFUL task: {}", reply.text);
    assert!(
        reply.body["errorCode"].is_string(),
        "an Error body: {}",
        reply.text
    );
    assert_eq!(provider_stats(&sb, Kind::Vcf).await["mutations"], 0);
    sb.stop().await;

    let sb = start(
        r"
vcf:
  running: 30s
  tasks:
    - {id: 44444444-4444-4444-8444-444444444444, status: IN_PROGRESS, resources: [{name: esx05.sfo.rainpole.io}]}
",
    )
    .await;
    let token = vcf_token(&c, &sb).await;
    let reply = retry(
        &c,
        &sb,
        &token,
        "44444444-4444-4444-8444-444444444444",
        &rotate_spec("esx05.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(reply.status, 400, "an IN_PROGRESS task: {}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_runs_one_credentials_operation_at_a_time() {
    let sb = start(
        r"
vcf:
  pending: 50ms
  running: 400ms
  tasks:
    - {id: 55555555-5555-4555-8555-555555555555, outcome: succeeds, resources: [{name: esx06.sfo.rainpole.io}]}
    - {id: 66666666-6666-4666-8666-666666666666, outcome: succeeds, resources: [{name: esx07.sfo.rainpole.io}]}
",
    )
    .await;
    let (first, second) = (
        "55555555-5555-4555-8555-555555555555",
        "66666666-6666-4666-8666-666666666666",
    );
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let a = retry(
        &c,
        &sb,
        &token,
        first,
        &rotate_spec("esx06.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let b = retry(
        &c,
        &sb,
        &token,
        second,
        &rotate_spec("esx07.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(
        b.status, 400,
        "a second operation while one runs: {}",
        b.text
    );
    let task = get_task(&c, &sb, &token, second).await;
    assert_eq!(
        normalised(&task.body["status"]),
        "FAILED",
        "untouched: {}",
        task.text
    );

    let (_, last) = follow(&c, &sb, &token, first).await;
    assert_eq!(normalised(&last["status"]), "SUCCESSFUL", "{last}");
    let b = retry(
        &c,
        &sb,
        &token,
        second,
        &rotate_spec("esx07.sfo.rainpole.io"),
    )
    .await;
    assert_eq!(b.status, 202, "once the first has ended: {}", b.text);
    assert_eq!(provider_stats(&sb, Kind::Vcf).await["mutations"], 2);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_deleted_refresh_token_no_longer_refreshes() {
    let sb = start(SCENARIO).await;
    let c = client();
    let pair = vcf_token_pair(&c, &sb).await;
    let id = pair.body["refreshToken"]["id"]
        .as_str()
        .expect("refreshToken.id")
        .to_owned();
    let base = sb.url(Kind::Vcf);
    let deleted = send(
        c.delete(format!("{base}/v1/tokens/refresh-token"))
            .header("content-type", "application/json")
            .body(id.clone()),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let refresh = send(
        c.patch(format!("{base}/v1/tokens/access-token/refresh"))
            .header("content-type", "application/json")
            .body(id),
    )
    .await;
    assert_eq!(
        refresh.status, 404,
        "a deleted refresh id: {}",
        refresh.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_delete_cancels_a_failed_credentials_task() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    // providers.md §3.3 and the §6 checklist: DELETE /v1/credentials/tasks/{id} → 202 Task.
    let reply = send(
        c.delete(format!(
            "{}/v1/credentials/tasks/{STAYS}",
            sb.url(Kind::Vcf)
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.body["id"], STAYS, "{}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_generic_task_retry_is_409_unless_failed_and_404_when_unknown() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = vcf_token(&c, &sb).await;
    let base = sb.url(Kind::Vcf);
    let done = send(
        c.patch(format!("{base}/v1/tasks/{DONE}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        done.status, 409,
        "Only a failed Task can be retried: {}",
        done.text
    );
    let unknown = send(
        c.patch(format!(
            "{base}/v1/tasks/99999999-9999-4999-8999-999999999999"
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    sb.stop().await;
}
