//! Self-tests of the fakes' list endpoints: Venafi's search filters and paging, VCF's paged
//! `/v1/tasks`, DigiCert's and NAVER's paged lists; the per-endpoint counters; and the hooks
//! that change one target between two page requests.

use serde_json::{Value, json};

use super::digicert::{self, DigicertFake, Status};
use super::ncloud::{self, Certificate, NcloudFake, sign};
use super::selftest_support::client;
use super::vcf::{self, VcfFake};
use super::vcf_api::{CredTask, TaskStatus};
use super::venafi::{self, VenafiFake};
use super::venafi_api::Cert;

async fn get_json(req: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
    let resp = req.send().await.expect("the fake answers");
    let status = resp.status().as_u16();
    let count = resp
        .headers()
        .get("x-record-count")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, resp.json().await.unwrap_or(Value::Null), count)
}

async fn venafi_token(http: &reqwest::Client, fake: &VenafiFake) -> String {
    let body = json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox",
        "scope": "certificate:manage"});
    let url = format!("{}/vedauth/authorize/oauth", fake.url());
    let (_, token, _) = get_json(http.post(url).json(&body)).await;
    token["access_token"].as_str().expect("a token").to_owned()
}

fn dns(body: &Value) -> Vec<String> {
    body["Certificates"]
        .as_array()
        .expect("Certificates")
        .iter()
        .map(|c| c["DN"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn venafi_search_filters_page_and_count() {
    let (a, b, c) = (
        r"\VED\Policy\X\a",
        r"\VED\Policy\X\Sub\b",
        r"\VED\Policy\X\c",
    );
    let fake = VenafiFake::builder()
        .certificate(
            Cert::new(a)
                .error_at(800, "Install failed")
                .valid_for_days(3),
        )
        .certificate(
            Cert::new(b)
                .error_at(400, "CA down")
                .disabled()
                .pending_workflow(),
        )
        .certificate(Cert::new(c).healthy().valid_for_days(200))
        .certificate(Cert::new(r"\VED\Policy\Y\d"))
        .start();
    let http = client();
    let token = venafi_token(&http, &fake).await;
    let search = async |query: &str| {
        let url = format!("{}/vedsdk/Certificates/?{query}", fake.url());
        get_json(http.get(url).bearer_auth(&token)).await
    };
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 10))
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let cases = [
        (
            "InError=true&ParentDnRecursive=%5CVED%5CPolicy%5CX".to_owned(),
            vec![a, b],
        ),
        ("inerror=0".to_owned(), vec![c]),
        ("ParentDn=%5CVED%5CPolicy%5CX".to_owned(), vec![a, c]),
        ("Disabled=1".to_owned(), vec![b]),
        ("PendingWorkflow=true".to_owned(), vec![b]),
        ("StageGreater=500".to_owned(), vec![a]),
        ("StageLess=500&InError=1".to_owned(), vec![b]),
        ("Stage=500".to_owned(), vec![r"\VED\Policy\Y\d"]),
        (format!("ValidToLess={soon}"), vec![a]),
    ];
    for (query, want) in &cases {
        let (status, body, count) = search(query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(dns(&body), *want, "{query}");
        assert_eq!(
            count,
            Some(want.len().to_string()),
            "{query}: X-Record-Count"
        );
    }
    for bad in ["InError=perhaps", "Stage=x", "ValidToLess=soon", "Limit=-3"] {
        let (status, body, _) = search(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["Error"].is_string(), "{bad}: {body}");
    }
    let (_, last, _) = search("Limit=3&Offset=3").await;
    assert_eq!((dns(&last).len(), &last["TotalCount"]), (1, &json!(4)));
    let (_, past, _) = search("Limit=3&Offset=9").await;
    assert_eq!((dns(&past).len(), &past["TotalCount"]), (0, &json!(4)));
    let searches = cases.len() + 4 + 2;
    assert_eq!(fake.requests(venafi::SEARCH), searches);
    assert_eq!(fake.requests(venafi::OAUTH), 1);
    assert_eq!(fake.requests(venafi::RETRY), 0);
}

#[tokio::test]
async fn venafi_hook_takes_a_certificate_out_of_error_between_two_pages() {
    let names: Vec<String> = (1..=4).map(|n| format!(r"\VED\Policy\P\c{n}")).collect();
    let mut builder = VenafiFake::builder();
    for dn in &names {
        builder = builder.certificate(Cert::new(dn));
    }
    let fake = builder.start();
    fake.fix_after_page(1, &names[3]);
    let http = client();
    let token = venafi_token(&http, &fake).await;
    let page = async |offset: usize| {
        let url = format!(
            "{}/vedsdk/certificates/?InError=1&Limit=2&Offset={offset}",
            fake.url()
        );
        get_json(http.get(url).bearer_auth(&token)).await.1
    };
    let first = page(0).await;
    assert_eq!(first["TotalCount"], 4, "page 1 was made before the change");
    assert_eq!(fake.pending_changes(), 0, "the change ran after page 1");
    let second = page(2).await;
    assert_eq!(second["TotalCount"], 3);
    assert_eq!(
        dns(&second),
        vec![names[2].clone()],
        "c4 left the error list"
    );
    assert_eq!(fake.processing(&names[3]), Some((false, 0, String::new())));
    assert_eq!(fake.requests(venafi::SEARCH), 2);
}

async fn vcf_token(http: &reqwest::Client, fake: &VcfFake) -> String {
    let body = json!({"username": "administrator@vsphere.local", "password": "sandbox"});
    let (_, pair, _) = get_json(http.post(format!("{}/v1/tokens", fake.url())).json(&body)).await;
    pair["accessToken"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn vcf_tasks_pages_from_zero_and_a_hook_re_runs_a_task_between_pages() {
    let mut builder = VcfFake::builder();
    for n in 0..5 {
        builder = builder.task(CredTask::failed(&format!("task-{n}")));
    }
    let fake = builder
        .task(CredTask::failed("not-retryable").not_retryable())
        .task(CredTask::failed("done").status(TaskStatus::Successful))
        .start();
    fake.set_status_after_page(1, "task-4", TaskStatus::InProgress);
    let http = client();
    let token = vcf_token(&http, &fake).await;
    let list = async |query: &str| {
        let url = format!("{}/v1/tasks?{query}", fake.url());
        get_json(http.get(url).bearer_auth(&token)).await
    };
    let (status, first, _) = list("taskStatus=FAILED&pageNumber=0&pageSize=4").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["elements"].as_array().map(Vec::len), Some(4));
    assert_eq!(first["pageMetadata"]["totalElements"], 6);
    assert_eq!(first["pageMetadata"]["totalPages"], 2);
    let (_, second, _) = list("taskStatus=FAILED&pageNumber=1&pageSize=4").await;
    let ids: Vec<&str> = second["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["not-retryable"], "task-4 left FAILED after page 1");
    assert_eq!(second["elements"][0]["isRetryable"], false);
    assert_eq!(second["pageMetadata"]["totalElements"], 5);
    let (_, past, _) = list("pageNumber=7&pageSize=4").await;
    assert_eq!(past["elements"], json!([]));
    for bad in ["pageSize=101", "pageSize=0", "pageNumber=one"] {
        assert_eq!(list(bad).await.0, 400, "{bad}");
    }
    let url = format!("{}/v1/credentials/tasks?limit=2", fake.url());
    let (_, creds, _) = get_json(http.get(url).bearer_auth(&token)).await;
    assert_eq!(creds["elements"].as_array().map(Vec::len), Some(2));
    assert_eq!(fake.requests(vcf::TASKS), 6);
    assert_eq!(fake.requests(vcf::CREDENTIALS_TASKS), 1);
    assert_eq!(fake.requests(vcf::TOKENS), 1);
    let unauthenticated = http.get(format!("{}/v1/tasks", fake.url()));
    assert_eq!(get_json(unauthenticated).await.0, 401);
    assert_eq!(fake.requests(vcf::TASKS), 7, "a refused request counts too");
}

#[tokio::test]
async fn digicert_list_pages_counts_and_changes_a_status_between_pages() {
    let mut builder = DigicertFake::builder().api_key("k").limits(&[]);
    for id in 1..=5 {
        let a = digicert::Automation::new(id, &format!("10.0.0.{id}"), 443);
        builder = builder.automation(a.status(Status::AutomationFailed));
    }
    let fake = builder.start();
    fake.set_status_after_page(1, 4, Status::AutomationScheduled);
    let http = client();
    let list = async |start: u64| {
        let body = json!({"accountId": 5153184, "pageSize": 2, "startIndex": start,
            "searchCriteriaList": [{"key": "AUTOMATION_STATUS", "operation": "EQUALS", "value": ["AUTOMATION_FAILED"]}]});
        let url = format!("{}/automatedips/list", fake.base_url());
        get_json(http.post(url).header("X-DC-DEVKEY", "k").json(&body))
            .await
            .1
    };
    let first = list(1).await;
    assert_eq!(first["data"]["totalCount"], 5);
    let second = list(3).await;
    assert_eq!(
        second["data"]["totalCount"], 4,
        "automation 4 left AUTOMATION_FAILED"
    );
    let ids: Vec<u64> = second["data"]["automatedIps"]
        .as_array()
        .expect("automatedIps")
        .iter()
        .filter_map(|a| a["automationId"].as_u64())
        .collect();
    assert_eq!(ids, [3, 5]);
    let url = format!("{}/automatedips/list", fake.base_url());
    let refused = http.post(url).json(&json!({"accountId": 5153184}));
    assert_eq!(get_json(refused).await.0, 401);
    assert_eq!(
        fake.requests(digicert::LIST),
        3,
        "the refused request counts"
    );
    assert_eq!(fake.requests(digicert::BULK_RETRY), 0);
    assert_eq!(fake.status(4), Some(Status::AutomationScheduled));
}

#[tokio::test]
async fn ncloud_v2_list_pages_counts_and_changes_a_status_between_pages() {
    let mut builder = NcloudFake::builder();
    for no in 1..=5 {
        builder = builder
            .certificate(Certificate::new(no, &format!("c{no}"), "x.example.com").status(-3));
    }
    let fake = builder.start();
    fake.set_status_after_page(1, 2, 0);
    let http = client();
    let page = async |n: u32| {
        let target = format!("/api/v2/certificate/certificates?page={n}&pageSize=2");
        let ts = jiff::Timestamp::now().as_millisecond().to_string();
        let key = "EXAMPLEACCESSKEY0001";
        let signature = sign(
            "GET",
            &target,
            &ts,
            key,
            "EXAMPLESECRETKEY000000000000000000000001",
        );
        let req = http
            .get(format!("{}{target}", fake.url()))
            .header("x-ncp-apigw-timestamp", &ts)
            .header("x-ncp-iam-access-key", key)
            .header("x-ncp-apigw-signature-v2", signature)
            .header("Content-Type", "application/json");
        get_json(req).await.1
    };
    let first = page(1).await;
    assert_eq!(first["totalCount"], 5);
    assert_eq!(
        first["sslCertificateList"][1]["statusCode"], -3,
        "made before the change"
    );
    assert_eq!(fake.status_code(2), Some(0), "ONGOING after page 1");
    let last = page(3).await;
    assert_eq!(
        last["sslCertificateList"].as_array().map(Vec::len),
        Some(1),
        "a short last page"
    );
    let past = page(4).await;
    assert_eq!(past["sslCertificateList"], json!([]));
    assert_eq!(fake.requests(ncloud::LIST_V2), 3);
    assert_eq!(fake.requests(ncloud::REISSUE), 0);
}
