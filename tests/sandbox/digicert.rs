//! DigiCert Automation against providers.md §2 and the bulk-retry doc (seed 001): the API key,
//! the doc's three example requests and answers, details, paging and the rate limiter.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redrive::sandbox::{Kind, Running};
use reqwest::Client;
use serde_json::{Value, json};

use super::support::{Reply, client, provider_stats, send, start};

const KEY: &str = "sandbox-digicert-api-key";

/// The automations of the doc's examples; a resubmitted one stays scheduled for the whole test.
const SCENARIO: &str = r"
seed: 5
digicert:
  processing: 10s
  automations:
    - {id: 2001, ip: 10.100.193.54, port: 55084}
    - {id: 2002, ip: 10.100.193.54, port: 55085}
    - {id: 2003, ip: 10.100.197.150, port: 1900, status: SUCCESSFULLY_RENEWED}
    - {id: 2004, ip: 10.100.196.228, port: 30005, status: SUCCESSFULLY_RENEWED}
    - {id: 2005, ip: 10.100.196.228, port: 30013, status: SUCCESSFULLY_RENEWED}
";

const MIXED_REQUEST: &str = r#"{
    "retryAutomationTaskRequests": [{
        "ip": "10.100.193.54",
        "port": 55085,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "agentLicenseKey": "58C5D9FD5BC95FAA"
    }, {
        "ip": "10.100.193.54",
        "port": 55084,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "agentLicenseKey": "58C5D9FD5BC95FAA"
    }, {
        "ip": "10.100.197.150",
        "managementIp": "10.100.192.246",
        "port": 1900,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "virtualServerName": "/Common/ManualDigi",
        "sensorLicenseKey": "2F88E69451FAE5C8"
    }],
    "accountId": 5153184
}"#;

const MIXED_RESPONSE: &str = r#"{
   "error": null,
    "data": {
        "retryMessages": {
            "10.100.193.54:55084": "Successfully initiated retry.",
            "10.100.193.54:55085": "Successfully initiated retry."
        },
        "failedRetries": {
            "10.100.197.150:1900": {
                "errors": [{
                    "errorCode": "1028",
                    "errorField": "10.100.197.150:1900",
                    "errorMessage": "Automated IP/Port is not eligible for retry."
                }],
                "status": {}
            }
        },
        "message": "2 of 3 automations submitted for retry.",
        "errors": [],
        "status": {}
    }
}"#;

const ELIGIBLE_REQUEST: &str = r#"{
    "retryAutomationTaskRequests": [{
        "ip": "10.100.193.54",
        "port": 55084,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "agentLicenseKey": "58C5D9FD5BC95FAA"
    }, {
        "ip": "10.100.193.54",
        "port": 55085,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "agentLicenseKey": "58C5D9FD5BC95FAA"
    }],
    "accountId": 5153184
}"#;

const ELIGIBLE_RESPONSE: &str = r#"{
   "error": null,
    "data": {
        "retryMessages": {
            "10.100.193.54:55084": "Successfully initiated retry.",
            "10.100.193.54:55085": "Successfully initiated retry."
        },
        "failedRetries": {},
        "message": "2 of 2 automations submitted for retry.",
        "errors": [],
        "status": {}
    }
}"#;

const INELIGIBLE_REQUEST: &str = r#" {
    "retryAutomationTaskRequests": [{
        "ip": "10.100.196.228",
        "managementIp": "10.100.192.227",
        "port": 30005,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "virtualServerName": "/Zpartition/Per5",
        "sensorLicenseKey": "D08D879E57304FFB"
    }, {
        "ip": "10.100.196.228",
        "managementIp": "10.100.192.227",
        "port": 30013,
        "accountId": 5153184,
        "divisionId": 677793,
        "domainName": null,
        "virtualServerName": "/partition1/per13",
        "sensorLicenseKey": "D08D879E57304FFB"
    }],
    "accountId": 5153184
}"#;

const INELIGIBLE_RESPONSE: &str = r#"{
   "error": null,
    "data": {
        "retryMessages": {},
        "failedRetries": {
            "10.100.196.228:30013": {
                "errors": [{
                    "errorCode": "1028",
                    "errorField": "10.100.196.228:30013",
                    "errorMessage": "Automated IP/Port is not eligible for retry."
                }],
                "status": {}
            },
            "10.100.196.228:30005": {
                "errors": [{
                    "errorCode": "1028",
                    "errorField": "10.100.196.228:30005",
                    "errorMessage": "Automated IP/Port is not eligible for retry."
                }],
                "status": {}
            }
        },
        "message": "0 of 2 automations submitted for retry.",
        "errors": [],
        "status": {}
    }
}"#;

/// `automationStatus` values of the viewAutomationDetails doc (both spellings of RENEWED).
const STATUSES: [&str; 10] = [
    "ACTION_REQUIRED",
    "SUCCESFULLY_RENEWED",
    "SUCCESSFULLY_RENEWED",
    "AUTO_RENEW_SCHEDULED",
    "AUTOMATION_FAILED",
    "AUTOMATION_SCHEDULED",
    "CONFIGURED",
    "INSTALL_VALIDATION_FAILED",
    "INSTALL_FAILED",
    "ERROR",
];

async fn post(c: &Client, sb: &Running, path: &str, body: &str) -> Reply {
    send(
        c.post(format!("{}{path}", sb.url(Kind::Digicert)))
            .header("X-DC-DEVKEY", KEY)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

async fn bulk_retry(c: &Client, sb: &Running, body: &str) -> Reply {
    post(c, sb, "/automation/bulkretryautomationtask", body).await
}

async fn details(c: &Client, sb: &Running, automation_id: u64) -> Value {
    let body =
        json!({"accountId": 5_153_184, "automationId": automation_id, "divisionId": 677_793});
    let reply = post(
        c,
        sb,
        "/automation/viewAutomationDetails",
        &body.to_string(),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "details of {automation_id}: {}",
        reply.text
    );
    reply.body["data"].clone()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the doc's JSON parses")
}

/// A refusal in either envelope the docs allow: CertCentral `errors[]` or automation `error`.
fn is_error_envelope(body: &Value) -> bool {
    body["errors"].as_array().is_some_and(|e| !e.is_empty()) || !body["error"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_requires_a_valid_devkey() {
    let sb = start(SCENARIO).await;
    let c = client();
    let url = format!(
        "{}/automation/bulkretryautomationtask",
        sb.url(Kind::Digicert)
    );
    let missing = send(
        c.post(&url)
            .header("content-type", "application/json")
            .body(ELIGIBLE_REQUEST),
    )
    .await;
    assert!(
        [401, 403].contains(&missing.status),
        "no X-DC-DEVKEY: {} {}",
        missing.status,
        missing.text
    );
    assert!(is_error_envelope(&missing.body), "{}", missing.text);
    let wrong = send(
        c.post(&url)
            .header("X-DC-DEVKEY", "not-a-key")
            .header("content-type", "application/json")
            .body(ELIGIBLE_REQUEST),
    )
    .await;
    assert!(
        [401, 403].contains(&wrong.status),
        "a wrong X-DC-DEVKEY: {} {}",
        wrong.status,
        wrong.text
    );
    assert!(is_error_envelope(&wrong.body), "{}", wrong.text);
    // Refused requests submitted nothing.
    assert_eq!(
        details(&c, &sb, 2001).await["autoOrderProgressResponse"]["isRetryApplicable"],
        true
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_bulk_retry_mixed_example_answers_as_documented() {
    let sb = start(SCENARIO).await;
    let reply = bulk_retry(&client(), &sb, MIXED_REQUEST).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, parse(MIXED_RESPONSE), "{}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_bulk_retry_all_eligible_example_answers_as_documented() {
    let sb = start(SCENARIO).await;
    let reply = bulk_retry(&client(), &sb, ELIGIBLE_REQUEST).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, parse(ELIGIBLE_RESPONSE), "{}", reply.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_bulk_retry_all_ineligible_example_answers_as_documented() {
    let sb = start(SCENARIO).await;
    let reply = bulk_retry(&client(), &sb, INELIGIBLE_REQUEST).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, parse(INELIGIBLE_RESPONSE), "{}", reply.text);
    assert_eq!(
        provider_stats(&sb, Kind::Digicert).await["mutations"],
        0,
        "nothing was submitted"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_account_id_is_accepted_as_number_and_as_string() {
    let sb = start(SCENARIO).await;
    let c = client();
    for (port, account, division) in [
        (55084, json!(5_153_184), json!(677_793)),
        (55085, json!("5153184"), json!("677793")),
    ] {
        let body = json!({
            "retryAutomationTaskRequests": [{"ip": "10.100.193.54", "port": port, "accountId": account, "divisionId": division, "domainName": null}],
            "accountId": account,
        });
        let reply = bulk_retry(&c, &sb, &body.to_string()).await;
        assert_eq!(reply.status, 200, "accountId {account}: {}", reply.text);
        let key = format!("10.100.193.54:{port}");
        assert_eq!(
            reply.body["data"]["retryMessages"][&key], "Successfully initiated retry.",
            "accountId {account}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["data"]["message"], "1 of 1 automations submitted for retry.",
            "{}",
            reply.text
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_resubmission_is_1028_and_counted_as_a_duplicate() {
    let sb = start(SCENARIO).await;
    let c = client();
    let body = json!({
        "retryAutomationTaskRequests": [{"ip": "10.100.193.54", "port": 55084, "accountId": 5_153_184, "divisionId": 677_793, "domainName": null}],
        "accountId": 5_153_184,
    })
    .to_string();
    let first = bulk_retry(&c, &sb, &body).await;
    assert_eq!(
        first.body["data"]["message"], "1 of 1 automations submitted for retry.",
        "{}",
        first.text
    );
    let second = bulk_retry(&c, &sb, &body).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(
        second.body["data"]["message"], "0 of 1 automations submitted for retry.",
        "{}",
        second.text
    );
    let error = &second.body["data"]["failedRetries"]["10.100.193.54:55084"]["errors"][0];
    assert_eq!(error["errorCode"], "1028", "{}", second.text);
    assert_eq!(
        error["errorField"], "10.100.193.54:55084",
        "{}",
        second.text
    );

    let stats = provider_stats(&sb, Kind::Digicert).await;
    assert_eq!(stats["mutations"], 1, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 1, "{stats}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_view_automation_details_shows_status_and_retry_applicability() {
    let sb = start(SCENARIO).await;
    let c = client();
    let failed = details(&c, &sb, 2001).await;
    assert_eq!(
        failed["autoStatusResponse"]["automationStatus"], "AUTOMATION_FAILED",
        "{failed}"
    );
    assert_eq!(
        failed["autoOrderProgressResponse"]["isRetryApplicable"], true,
        "{failed}"
    );
    // The doc's timestamps are epoch milliseconds, written as strings.
    for field in ["requestedOn", "lastRunTime"] {
        let ms: i64 = failed["autoStatusResponse"][field]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{field} is epoch ms as a string: {failed}"));
        assert!(ms > 1_000_000_000_000, "{field} {ms} is in milliseconds");
    }

    let renewed = details(&c, &sb, 2003).await;
    let status = renewed["autoStatusResponse"]["automationStatus"]
        .as_str()
        .unwrap_or_default();
    assert!(status.contains("RENEWED"), "{renewed}");
    assert_eq!(
        renewed["autoOrderProgressResponse"]["isRetryApplicable"], false,
        "{renewed}"
    );

    let reply = bulk_retry(&c, &sb, ELIGIBLE_REQUEST).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let submitted = details(&c, &sb, 2001).await;
    let status = submitted["autoStatusResponse"]["automationStatus"]
        .as_str()
        .unwrap_or_default();
    assert!(
        STATUSES.contains(&status),
        "a documented status: {submitted}"
    );
    assert_ne!(status, "AUTOMATION_FAILED", "{submitted}");
    assert_eq!(
        submitted["autoOrderProgressResponse"]["isRetryApplicable"], false,
        "a submitted automation is not retryable again: {submitted}"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_automated_ips_list_pages_from_start_index_1() {
    let sb = start("digicert: {generate: [{count: 23, first_ip: 10.30.0.1}]}").await;
    let c = client();
    let mut seen = BTreeSet::new();
    for (start_index, expected) in [(1, 5), (6, 5), (11, 5), (16, 5), (21, 3), (26, 0)] {
        let body = json!({"accountId": 5_153_184, "divisionIds": [677_793], "pageSize": 5, "startIndex": start_index});
        let reply = post(&c, &sb, "/automatedips/list", &body.to_string()).await;
        assert_eq!(
            reply.status, 200,
            "startIndex {start_index}: {}",
            reply.text
        );
        let data = &reply.body["data"];
        assert_eq!(data["totalCount"], 23, "startIndex {start_index}: {data}");
        let page = data["automatedIps"]
            .as_array()
            .expect("automatedIps is a list");
        assert_eq!(page.len(), expected, "startIndex {start_index}: {data}");
        for item in page {
            for field in [
                "automationId",
                "automatedIp",
                "automatedPort",
                "automationStatus",
                "certificateCn",
            ] {
                assert!(item.get(field).is_some(), "{field} in {item}");
            }
            assert!(
                seen.insert(item["automationId"].to_string()),
                "automation {} on two pages",
                item["automationId"]
            );
        }
    }
    assert_eq!(seen.len(), 23, "the pages cover every automation");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_rate_limit_answers_429_then_recovers() {
    let sb = start(
        r"
digicert:
  rate_limits: [{requests: 5, per: 1s}]
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
",
    )
    .await;
    let c = client();
    let body =
        json!({"accountId": 5_153_184, "automationId": 2001, "divisionId": 677_793}).to_string();
    let window_start = Instant::now();
    for n in 1..=5 {
        let reply = post(&c, &sb, "/automation/viewAutomationDetails", &body).await;
        assert_eq!(reply.status, 200, "request {n} of 5: {}", reply.text);
    }
    let over = post(&c, &sb, "/automation/viewAutomationDetails", &body).await;
    assert!(
        window_start.elapsed() < Duration::from_secs(1),
        "the six requests did not fit in the window; the machine is too slow for this test"
    );
    assert_eq!(over.status, 429, "the 6th request in 1s: {}", over.text);
    assert_eq!(
        over.body["errors"][0]["code"], "request_limit_exceeded",
        "{}",
        over.text
    );

    // Once the window has rolled past, requests pass again.
    tokio::time::sleep_until((window_start + Duration::from_millis(1100)).into()).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let recovered = loop {
        let reply = post(&c, &sb, "/automation/viewAutomationDetails", &body).await;
        if reply.status == 200 || Instant::now() >= deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        recovered.status, 200,
        "after the window: {}",
        recovered.text
    );
    let stats = provider_stats(&sb, Kind::Digicert).await;
    assert!(stats["throttled_429"].as_u64() >= Some(1), "{stats}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_automated_ips_carry_the_documented_fields() {
    let sb = start(SCENARIO).await;
    let body =
        json!({"accountId": 5_153_184, "divisionIds": [677_793], "pageSize": 50, "startIndex": 1});
    let reply = post(&client(), &sb, "/automatedips/list", &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // The field list of providers.md §2.3 (get-automation-ips-list).
    let documented = [
        "automationId",
        "automatedIp",
        "automatedPort",
        "managementIp",
        "agentName",
        "automationStatus",
        "certificateCn",
        "certificateExpiresOn",
        "certificateId",
        "certificateSerialNumber",
        "alias",
        "appInfo",
        "appPartition",
    ];
    let items = reply.body["data"]["automatedIps"]
        .as_array()
        .expect("automatedIps is a list");
    assert_eq!(items.len(), 5, "{}", reply.text);
    for item in items {
        let missing: Vec<&str> = documented
            .into_iter()
            .filter(|f| item.get(f).is_none())
            .collect();
        assert!(missing.is_empty(), "missing {missing:?} in {item}");
    }
    sb.stop().await;
}

/// providers.md §2.4: by default 100 requests / 5 s per key. A burst of 130 gets exactly 100
/// answers and 30 documented 429s without `Retry-After`; another key has its own windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_default_limits_accept_exactly_100_of_a_burst() {
    let sb = start(
        r"
digicert:
  api_keys: [sandbox-digicert-api-key, second-key]
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
",
    )
    .await;
    let c = client();
    let url = format!(
        "{}/automation/viewAutomationDetails",
        sb.url(Kind::Digicert)
    );
    let body =
        json!({"accountId": 5_153_184, "automationId": 2001, "divisionId": 677_793}).to_string();
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..130 {
        let (c, url, body) = (c.clone(), url.clone(), body.clone());
        requests.spawn(async move {
            send(
                c.post(url)
                    .header("X-DC-DEVKEY", KEY)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(reply) = requests.join_next().await {
        answers.push(reply.expect("a request task"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the burst did not fit in the 5 s window; the machine is too slow for this test"
    );
    let accepted = answers.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!((accepted, refused.len()), (100, 30));
    for r in refused {
        assert_eq!(
            r.body["errors"][0]["code"], "request_limit_exceeded",
            "{}",
            r.text
        );
        assert_eq!(
            r.header("retry-after"),
            None,
            "no Retry-After is documented"
        );
    }
    let other = send(
        c.post(&url)
            .header("X-DC-DEVKEY", "second-key")
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(other.status, 200, "another key: {}", other.text);
    let stats = provider_stats(&sb, Kind::Digicert).await;
    assert_eq!(stats["throttled_429"], 30, "{stats}");
    sb.stop().await;
}
