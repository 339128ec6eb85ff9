//! Self-tests of the DigiCert fake: documented requests in, documented answers out.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::digicert::{Automation, DigicertFake, Status};
use super::limiter::Window;
use super::selftest_support::client;

const KEY: &str = "test-devkey";

/// The fake and one client for the whole test (building a client per request is too slow for
/// the window tests).
struct Api {
    fake: DigicertFake,
    http: reqwest::Client,
}

impl std::ops::Deref for Api {
    type Target = DigicertFake;
    fn deref(&self) -> &DigicertFake {
        &self.fake
    }
}

fn fake_with_limits(limits: &[Window]) -> Api {
    let fake = DigicertFake::builder()
        .api_key(KEY)
        .limits(limits)
        .automation(
            Automation::new(1, "10.100.193.54", 55085)
                .cn("a.example.com")
                .status(Status::AutomationFailed),
        )
        .automation(Automation::new(2, "10.100.193.54", 55084).status(Status::Configured))
        .automation(Automation::new(3, "10.0.0.9", 443).cn("sni-one.example.com"))
        .automation(
            Automation::new(4, "10.0.0.9", 443)
                .cn("sni-two.example.com")
                .alias("two"),
        )
        .start();
    Api {
        fake,
        http: client(),
    }
}

async fn post(fake: &Api, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = fake
        .http
        .post(format!("{}{path}", fake.base_url()))
        .json(&body);
    if let Some(key) = key {
        req = req.header("X-DC-DEVKEY", key);
    }
    let resp = req.send().await.expect("the fake answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused_with_the_certcentral_envelope() {
    let fake = fake_with_limits(&[]);
    for key in [None, Some("wrong")] {
        let (status, body) = post(
            &fake,
            "/automatedips/list",
            key,
            json!({"accountId": 5153184}),
        )
        .await;
        assert_eq!(status, 401);
        assert!(body["errors"][0]["code"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn the_list_has_only_documented_fields_and_no_domain_name() {
    let fake = fake_with_limits(&[]);
    let body = json!({"accountId": 5153184, "divisionIds": [677793],
        "searchCriteriaList": [{"key": "AUTOMATION_STATUS", "operation": "EQUALS", "value": ["AUTOMATION_FAILED"]}],
        "pageSize": 2, "startIndex": 1, "sorting": {"commonName": "DESC"}});
    let (status, page) = post(&fake, "/automatedips/list", Some(KEY), body.clone()).await;
    assert_eq!(status, 200);
    let items = page["data"]["automatedIps"].as_array().expect("a list");
    assert_eq!(items.len(), 2);
    assert_eq!(page["data"]["totalCount"], 3);
    assert_eq!(items[0]["certificateCn"], "sni-two.example.com");
    for item in items {
        assert!(item.get("domainName").is_none(), "{item}");
        assert_eq!(item["automationStatus"], "AUTOMATION_FAILED");
    }
    let mut next = body;
    next["startIndex"] = json!(3);
    let (_, page) = post(&fake, "/automatedips/list", Some(KEY), next).await;
    assert_eq!(
        page["data"]["automatedIps"].as_array().map(Vec::len),
        Some(1)
    );
    let odd = json!({"accountId": 5153184,
        "searchCriteriaList": [{"key": "DOMAIN_NAME", "operation": "EQUALS", "value": ["x"]}]});
    assert_eq!(
        post(&fake, "/automatedips/list", Some(KEY), odd).await.0,
        400
    );
}

#[tokio::test]
async fn bulk_retry_gives_per_ip_port_partial_results_and_is_not_repeatable() {
    let fake = fake_with_limits(&[]);
    let item = |ip: &str, port: u16, domain: Value| json!({"ip": ip, "port": port, "accountId": 5153184, "divisionId": 677793, "domainName": domain});
    let body = json!({"accountId": "5153184", "retryAutomationTaskRequests": [
        item("10.100.193.54", 55085, Value::Null), item("10.100.193.54", 55084, Value::Null),
        item("10.0.0.9", 443, json!("sni-two.example.com"))]});
    let (status, answer) = post(
        &fake,
        "/automation/bulkretryautomationtask",
        Some(KEY),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let data = &answer["data"];
    assert_eq!(
        data["retryMessages"]["10.100.193.54:55085"],
        "Successfully initiated retry."
    );
    assert_eq!(
        data["retryMessages"]["10.0.0.9:443"],
        "Successfully initiated retry."
    );
    assert_eq!(
        data["failedRetries"]["10.100.193.54:55084"]["errors"][0]["errorCode"],
        "1028"
    );
    assert_eq!(data["message"], "2 of 3 automations submitted for retry.");
    assert_eq!(
        (fake.retries_initiated(4), fake.retries_initiated(3)),
        (1, 0)
    );
    let (_, again) = post(
        &fake,
        "/automation/bulkretryautomationtask",
        Some(KEY),
        body,
    )
    .await;
    assert_eq!(
        again["data"]["message"],
        "0 of 3 automations submitted for retry."
    );
    assert_eq!(fake.retries_initiated(1), 1);
    assert_eq!(fake.retry_items_received("10.100.193.54", 55085), 2);
    let details = json!({"accountId": 5153184, "automationId": 1, "divisionId": 677793});
    let (_, d) = post(
        &fake,
        "/automation/viewAutomationDetails",
        Some(KEY),
        details,
    )
    .await;
    assert_eq!(
        d["data"]["autoStatusResponse"]["automationStatus"],
        "AUTOMATION_SCHEDULED"
    );
    assert_eq!(
        d["data"]["autoOrderProgressResponse"]["isRetryApplicable"],
        false
    );
}

/// Sends `n` list requests as fast as possible; returns the status codes.
async fn burst(fake: &Api, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            post(
                fake,
                "/automatedips/list",
                Some(KEY),
                json!({"accountId": 5153184}),
            )
            .await
            .0,
        );
    }
    out
}

#[tokio::test]
async fn the_rolling_window_admits_exactly_count_per_period() {
    // Long enough for a burst of 15 requests on a loaded runner: at 500 ms it once did not fit.
    let period = Duration::from_secs(2);
    let fake = fake_with_limits(&[Window::new(10, period)]);
    let started = Instant::now();
    let codes = burst(&fake, 15).await;
    assert!(
        started.elapsed() < period,
        "the burst must fit in one window"
    );
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 10);
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 5);
    assert_eq!(fake.rate_limited(), 5);
    // Half a period later the window still holds the ten: still refused (no refill).
    tokio::time::sleep(period / 2).await;
    if started.elapsed() < period {
        assert_eq!(burst(&fake, 1).await, [429]);
    }
    tokio::time::sleep(period).await;
    let codes = burst(&fake, 12).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 10, "{codes:?}");
    assert_eq!(fake.max_admitted_in(period), 10);
}

#[tokio::test]
async fn a_429_has_the_documented_body_and_optional_retry_after() {
    let fake = DigicertFake::builder()
        .limits(&[Window::new(1, Duration::from_secs(5))])
        .retry_after(Some(3))
        .start();
    let mut codes = Vec::new();
    for _ in 0..2 {
        let resp = client()
            .post(format!("{}/automatedips/list", fake.base_url()))
            .header("X-DC-DEVKEY", KEY)
            .json(&json!({"accountId": 5153184}))
            .send()
            .await
            .expect("answers");
        codes.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "3");
            let body: Value = resp.json().await.expect("json");
            assert_eq!(body["errors"][0]["code"], "request_limit_exceeded");
        }
    }
    assert_eq!(codes, [200, 429]);
}

#[tokio::test]
async fn the_documented_short_window_holds_at_one_hundred() {
    let fake = fake_with_limits(&super::digicert::DOCUMENTED_LIMITS);
    let started = Instant::now();
    let codes = burst(&fake, 105).await;
    if started.elapsed() < Duration::from_secs(5) {
        assert_eq!(codes.iter().filter(|c| **c == 200).count(), 100);
        assert_eq!(fake.rate_limited(), 5);
    }
}
