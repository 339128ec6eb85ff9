//! DigiCert's `automatedips/list` (providers.md §2.3: `searchCriteriaList`, 1-based
//! `startIndex`, `pageSize` 0–512) and NCP's v2 certificate list (§5.3: `page`, `pageSize`,
//! `totalCount`, `statusCode`/`statusName`) over HTTP, on generated outages.

use std::collections::BTreeSet;

use redrive::sandbox::{Kind, Running};
use reqwest::{Client, Method};
use serde_json::{Value, json};

use super::support::{NCP_CLOCK_MS, Reply, client, ncp_request, send, start};

const KEY: &str = "sandbox-digicert-api-key";
const ACCOUNT: u64 = 5_153_184;

/// 500 failed automations on distinct `ip:port`, two statuses in turn, and 20 renewed ones.
const DIGICERT: &str = r"
digicert:
  rate_limits: []
  generate:
    - {count: 500, first_ip: 10.30.0.1, port: 443, statuses: [AUTOMATION_FAILED, INSTALL_FAILED]}
    - {count: 20, first_ip: 10.40.0.1, port: 8443, status: SUCCESSFULLY_RENEWED}
";

async fn list(c: &Client, sb: &Running, body: &Value) -> Reply {
    send(
        c.post(format!("{}/automatedips/list", sb.url(Kind::Digicert)))
            .header("X-DC-DEVKEY", KEY)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn failed_criteria() -> Value {
    json!([{"key": "AUTOMATION_STATUS", "operation": "EQUALS", "value": ["AUTOMATION_FAILED", "INSTALL_FAILED"]}])
}

fn items(reply: &Reply, what: &str) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    reply.body["data"]["automatedIps"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: automatedIps is a list: {}", reply.text))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_list_finds_500_failed_automations_on_distinct_addresses_page_by_page() {
    let sb = start(DIGICERT).await;
    let c = client();
    let mut addresses = BTreeSet::new();
    for (start_index, expected) in [
        (1, 150),
        (151, 150),
        (301, 150),
        (451, 50),
        (501, 0),
        (9999, 0),
    ] {
        let body = json!({"accountId": ACCOUNT, "searchCriteriaList": failed_criteria(),
            "pageSize": 150, "startIndex": start_index});
        let reply = list(&c, &sb, &body).await;
        let page = items(&reply, &format!("startIndex {start_index}"));
        assert_eq!(page.len(), expected, "startIndex {start_index}");
        assert_eq!(reply.body["data"]["totalCount"], 500);
        assert_eq!(reply.body["data"]["totalPages"], 4);
        for a in &page {
            let status = a["automationStatus"].as_str().unwrap_or_default();
            assert!(
                ["AUTOMATION_FAILED", "INSTALL_FAILED"].contains(&status),
                "{a}"
            );
            assert!(
                a.get("domainName").is_none(),
                "no undocumented domainName: {a}"
            );
            assert!(
                addresses.insert(format!("{}:{}", a["automatedIp"], a["automatedPort"])),
                "{a}"
            );
        }
    }
    assert_eq!(
        addresses.len(),
        500,
        "every failed automation once, each on its own ip:port"
    );
    let one_status = json!({"accountId": ACCOUNT, "pageSize": 512,
        "searchCriteriaList": [{"key": "AUTOMATION_STATUS", "operation": "EQUALS", "value": ["INSTALL_FAILED"]}]});
    assert_eq!(
        items(&list(&c, &sb, &one_status).await, "INSTALL_FAILED").len(),
        250
    );
    let everything = json!({"accountId": ACCOUNT, "pageSize": 0});
    let reply = list(&c, &sb, &everything).await;
    assert_eq!(
        items(&reply, "pageSize 0").len(),
        50,
        "pageSize 0 is the default 50"
    );
    assert_eq!(reply.body["data"]["totalCount"], 520);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_list_refuses_bad_paging_and_undocumented_criteria() {
    let sb = start(DIGICERT).await;
    let c = client();
    let criterion = |key: &str, op: &str, value: Value| json!({"accountId": ACCOUNT, "searchCriteriaList": [{"key": key, "operation": op, "value": value}]});
    let bad = [
        json!({"accountId": ACCOUNT, "pageSize": 513}),
        json!({"accountId": ACCOUNT, "pageSize": "lots"}),
        json!({"accountId": ACCOUNT, "startIndex": 0}),
        criterion("DOMAIN_NAME", "EQUALS", json!(["www.example.com"])),
        criterion("AUTOMATION_STATUS", "CONTAINS", json!(["FAILED"])),
        criterion("AUTOMATION_STATUS", "EQUALS", json!("AUTOMATION_FAILED")),
    ];
    for body in bad {
        let reply = list(&c, &sb, &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    let max = list(&c, &sb, &json!({"accountId": ACCOUNT, "pageSize": 512})).await;
    assert_eq!(items(&max, "pageSize 512").len(), 512);
    sb.stop().await;
}

/// 20 certificates with statuses dealt in turn: VALIDATION_FAILED, EXPIRE, NORMAL, ONGOING.
const NCLOUD: &str = r"
ncloud:
  clock_ms: 1700000000000
  keys:
    - {access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}
  generate:
    - {count: 20, first_no: 700001, name: 'web-{n}', status_codes: [-3, -2, 1, 0]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncloud_v2_list_pages_from_one_with_total_count_and_status_names() {
    let sb = start(NCLOUD).await;
    let c = client();
    let names = [
        (-3, "VALIDATION_FAILED"),
        (-2, "EXPIRE"),
        (1, "NORMAL"),
        (0, "ONGOING"),
    ];
    let mut seen = BTreeSet::new();
    for (page, expected) in [(1, 7), (2, 7), (3, 6), (4, 0)] {
        let target = format!("/api/v2/certificate/certificates?page={page}&pageSize=7");
        let reply = send(ncp_request(&c, &sb, Method::GET, &target, NCP_CLOCK_MS)).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text);
        assert_eq!(reply.body["returnCode"], "0", "{target}");
        assert_eq!(reply.body["totalCount"], 20, "{target}");
        let list = reply.body["sslCertificateList"]
            .as_array()
            .expect("a list")
            .clone();
        assert_eq!(list.len(), expected, "{target}");
        for cert in list {
            let no = cert["certificateNo"].as_u64().expect("certificateNo");
            let code = cert["statusCode"].as_i64().expect("statusCode");
            let want = names[usize::try_from(no - 700_001).unwrap_or(0) % 4];
            assert_eq!(
                (code, cert["statusName"].as_str()),
                (want.0, Some(want.1)),
                "{cert}"
            );
            assert!(seen.insert(no), "{no} on two pages");
        }
    }
    assert_eq!(seen.len(), 20);
    let target = "/api/v2/certificate/certificates?page=1&pageSize=20&certificateName=web-1";
    let reply = send(ncp_request(&c, &sb, Method::GET, target, NCP_CLOCK_MS)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let listed = reply.body["sslCertificateList"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        reply.body["totalCount"], listed,
        "totalCount counts the filtered list"
    );
    sb.stop().await;
}
