//! `/_sandbox/stats` and `/_sandbox/state`: what tests and benchmarks read to prove how a client
//! behaved (requests per endpoint, mutations, duplicates, concurrency, 429s) and what it changed.

use std::time::Duration;

use redrive::sandbox::Kind;
use serde_json::{Value, json};

use super::support::{
    DOC_RETRY_DN, client, provider_stats, root, send, start, start_builtin, state, stats,
    venafi_guid, venafi_retry, venafi_token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_mutations_and_duplicates() {
    let sb = start(
        r"
venafi_tpp:
  processing: 10s
  certificates:
    - {dn: '\VED\Policy\test_retry122017141215963\cert_122017141215969'}
",
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    venafi_guid(&c, &sb, &token, DOC_RETRY_DN).await;
    venafi_guid(&c, &sb, &token, DOC_RETRY_DN).await;
    let body = json!({"CertificateDN": DOC_RETRY_DN});
    let first = venafi_retry(&c, &sb, &token, &body).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Still processing: a second retry is what a client must never send.
    let second = venafi_retry(&c, &sb, &token, &body).await;
    assert_eq!(second.status, 400, "{}", second.text);

    let venafi = provider_stats(&sb, Kind::VenafiTpp).await;
    assert_eq!(venafi["requests"], 5, "{venafi}");
    assert_eq!(
        venafi["by_endpoint"]["POST /vedauth/authorize/oauth"], 1,
        "{venafi}"
    );
    assert_eq!(
        venafi["by_endpoint"]["POST /vedsdk/config/dntoguid"], 2,
        "{venafi}"
    );
    assert_eq!(
        venafi["by_endpoint"]["POST /vedsdk/certificates/retry"], 2,
        "{venafi}"
    );
    assert_eq!(venafi["mutations"], 1, "{venafi}");
    assert_eq!(venafi["duplicate_mutations"], 1, "{venafi}");
    let target = &venafi["targets"][DOC_RETRY_DN];
    assert_eq!(target["mutations"], 1, "{venafi}");
    assert_eq!(target["duplicate_mutations"], 1, "{venafi}");
    assert_eq!(provider_stats(&sb, Kind::Digicert).await["requests"], 0);

    let lean = send(c.get(format!(
        "{}/_sandbox/stats?targets=false",
        root(&sb, Kind::Digicert)
    )))
    .await;
    assert_eq!(lean.status, 200, "{}", lean.text);
    let lean = &lean.body["providers"]["venafi_tpp"];
    assert!(lean.get("targets").is_none(), "targets=false: {lean}");
    assert_eq!(lean["mutations"], 1, "{lean}");

    // The in-process view agrees with the HTTP one, but for the gauges, which count the
    // `/_sandbox/stats` request itself while it is served.
    let without_gauges = |mut all: Value| {
        for provider in all["providers"]
            .as_object_mut()
            .expect("providers")
            .values_mut()
        {
            let provider = provider.as_object_mut().expect("a provider's stats");
            provider.remove("in_flight");
            provider.remove("max_in_flight");
        }
        all["providers"].take()
    };
    assert_eq!(
        without_gauges(sb.stats()),
        without_gauges(stats(&sb).await),
        "Running::stats() and /_sandbox/stats agree"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_record_peak_concurrency() {
    let sb = start(
        r"
digicert:
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
  faults: {latency: {fixed: 100ms}}
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
    let requests: Vec<_> = (0..16)
        .map(|_| {
            let request = c
                .post(&url)
                .header("X-DC-DEVKEY", "sandbox-digicert-api-key")
                .header("content-type", "application/json")
                .body(body.clone());
            tokio::spawn(async move { send(request).await.status })
        })
        .collect();
    for request in requests {
        let status = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .expect("a concurrent request ends")
            .expect("the request task does not panic");
        assert_eq!(status, 200);
    }
    let digicert = provider_stats(&sb, Kind::Digicert).await;
    assert_eq!(digicert["requests"], 16, "{digicert}");
    assert!(
        digicert["max_in_flight"].as_u64() >= Some(8),
        "16 concurrent requests of 100 ms overlap: {digicert}"
    );
    assert_eq!(digicert["in_flight"], 0, "{digicert}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_429s() {
    let sb = start(
        r"
digicert:
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
  faults: {throttle: {every: 1, burst: 1}}
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
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = send(
            c.post(&url)
                .header("X-DC-DEVKEY", "sandbox-digicert-api-key")
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 429, 200, 429]);
    let digicert = provider_stats(&sb, Kind::Digicert).await;
    assert_eq!(digicert["throttled_429"], 2, "{digicert}");
    sb.stop().await;
}

fn find<'a>(list: &'a Value, key: &str, value: &Value) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .find(|item| item[key] == *value)
        .unwrap_or_else(|| panic!("{key} = {value} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_reflects_the_objects_and_their_changes() {
    let sb = start_builtin().await;
    let before = state(&sb).await;
    let counts = [
        ("venafi_tpp", "certificates", 13),
        ("digicert", "automations", 13),
        ("vcf", "tasks", 2),
        ("otc_waf", "certificates", 7),
        ("ncloud", "certificates", 4),
    ];
    for (provider, list, count) in counts {
        let items = before[provider][list].as_array().map(Vec::len);
        assert_eq!(
            items,
            Some(count),
            "{provider}.{list} of the default scenario"
        );
    }
    let cert = find(
        &before["venafi_tpp"]["certificates"],
        "dn",
        &json!(DOC_RETRY_DN),
    );
    assert_eq!(cert["in_error"], true, "{cert}");
    assert_eq!(cert["retries_accepted"], 0, "{cert}");

    let c = client();
    let token = venafi_token(&c, &sb).await;
    let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": DOC_RETRY_DN})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let after = state(&sb).await;
    let cert = find(
        &after["venafi_tpp"]["certificates"],
        "dn",
        &json!(DOC_RETRY_DN),
    );
    assert_eq!(cert["retries_accepted"], 1, "{cert}");
    assert_eq!(cert["in_error"], false, "{cert}");
    assert_eq!(after["venafi_tpp"]["tokens"], 1, "{}", after["venafi_tpp"]);

    // The in-process view is the same document.
    assert_eq!(
        sb.state()["ncloud"],
        after["ncloud"],
        "Running::state() and /_sandbox/state agree"
    );
    sb.stop().await;
}
