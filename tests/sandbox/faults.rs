//! Fault injection seen from a client: latency, 429 bursts, error statuses in each provider's
//! envelope, resets, stalls, outcome-after-timeout and the `endpoints:` filter.

use std::time::{Duration, Instant};

use redrive::sandbox::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    NCP_CLOCK_MS, NCP_REISSUE_BODY, client, client_with_timeout, ncp_request, otc_token,
    provider_stats, send, start, state, vcf_token, venafi_guid, venafi_processing, venafi_retry,
    venafi_token,
};

const DIGICERT_DETAILS: &str = "/automation/viewAutomationDetails";

fn digicert_details_body() -> String {
    json!({"accountId": 5_153_184, "automationId": 2001, "divisionId": 677_793}).to_string()
}

/// The Venafi certificate the fault tests retry.
const DN: &str = r"\VED\Policy\Web\one.example.com";

fn venafi_with(faults: &str) -> String {
    format!(
        r"
venafi_tpp:
  processing: 100ms
  certificates:
    - {{dn: '\VED\Policy\Web\one.example.com'}}
  faults: {faults}
"
    )
}

/// The Venafi certificate's `/_sandbox/state` entry.
async fn venafi_cert_state(sb: &redrive::sandbox::Running) -> Value {
    state(sb).await["venafi_tpp"]["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .find(|c| c["dn"] == DN)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_delays_every_answer() {
    let sb = start(
        r"
digicert:
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
  faults: {latency: {fixed: 50ms}}
",
    )
    .await;
    let c = client();
    let url = format!("{}{DIGICERT_DETAILS}", sb.url(Kind::Digicert));
    for n in 0..3 {
        let started = Instant::now();
        let reply = send(
            c.post(&url)
                .header("X-DC-DEVKEY", "sandbox-digicert-api-key")
                .header("content-type", "application/json")
                .body(digicert_details_body()),
        )
        .await;
        let elapsed = started.elapsed();
        assert_eq!(reply.status, 200, "request {n}: {}", reply.text);
        assert!(
            elapsed >= Duration::from_millis(50),
            "request {n} answered after {elapsed:?}, before the 50 ms latency"
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_bursts_with_retry_after() {
    let sb = start(
        r"
digicert:
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
  faults: {throttle: {every: 2, burst: 2, retry_after: 3s}}
",
    )
    .await;
    let c = client();
    let url = format!("{}{DIGICERT_DETAILS}", sb.url(Kind::Digicert));
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let reply = send(
            c.post(&url)
                .header("X-DC-DEVKEY", "sandbox-digicert-api-key")
                .header("content-type", "application/json")
                .body(digicert_details_body()),
        )
        .await;
        if reply.status == 429 {
            assert_eq!(
                reply.header("retry-after"),
                Some("3"),
                "{:?}",
                reply.headers
            );
            assert_eq!(
                reply.body["errors"][0]["code"], "request_limit_exceeded",
                "{}",
                reply.text
            );
        } else {
            assert!(reply.header("retry-after").is_none(), "{:?}", reply.headers);
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429, 200, 200, 429, 429]);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_bursts_without_retry_after_in_gateway_envelopes() {
    let sb = start(
        r#"
otc_waf:
  certificates: [{name: demo, expires_in_days: 90}]
  faults: {throttle: {every: 1, burst: 1, endpoints: ["GET /v1/{project_id}/waf/certificate"]}}
ncloud:
  clock_ms: 1700000000000
  keys: [{access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}]
  faults: {throttle: {every: 1, burst: 1}}
"#,
    )
    .await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let url = format!(
        "{}/v1/0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c/waf/certificate?page=1&pagesize=10",
        sb.url(Kind::OtcWaf)
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = send(c.get(&url).header("X-Auth-Token", &token)).await;
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_none(), "{:?}", reply.headers);
            assert_eq!(reply.body["error_code"], "APIG.0308", "{}", reply.text);
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 429, 200, 429], "OTC WAF");

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = send(ncp_request(
            &c,
            &sb,
            Method::GET,
            "/api/v2/certificate/certificates?page=1&pageSize=20",
            NCP_CLOCK_MS,
        ))
        .await;
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_none(), "{:?}", reply.headers);
            // providers.md §5.4: 429 carries gateway code 400, 410 or 420.
            let code = reply.body["error"]["errorCode"].clone();
            assert!(
                ["400", "410", "420"].iter().any(|c| code == *c)
                    || [400, 410, 420].iter().any(|c| code == *c),
                "errorCode {code}: {}",
                reply.text
            );
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 429, 200, 429], "NCP");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_one_answers_503_in_each_providers_envelope() {
    let sb = start(
        r"
venafi_tpp:
  certificates: [{dn: '\VED\Policy\Web\one.example.com'}]
  faults: {errors: [{status: 503, rate: 1.0, endpoints: ['POST /vedsdk/certificates/retry']}]}
digicert:
  automations: [{id: 2001, ip: 10.100.193.54, port: 55084}]
  faults: {errors: [{status: 503, rate: 1.0}]}
vcf:
  tasks: [{id: 11111111-1111-4111-8111-111111111111, resources: [{name: esx01.sfo.rainpole.io}]}]
  faults: {errors: [{status: 503, rate: 1.0, endpoints: ['GET /v1/tasks/{id}']}]}
otc_waf:
  faults: {errors: [{status: 503, rate: 1.0, endpoints: ['GET /v1/{project_id}/waf/certificate']}]}
ncloud:
  clock_ms: 1700000000000
  keys: [{access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}]
  faults: {errors: [{status: 503, rate: 1.0}]}
",
    )
    .await;
    let c = client();

    let token = venafi_token(&c, &sb).await;
    let venafi = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": DN})).await;
    assert_eq!(venafi.status, 503, "{}", venafi.text);
    assert!(
        venafi.body["Error"].is_string(),
        "Venafi {{\"Error\"}}: {}",
        venafi.text
    );
    assert_eq!(
        venafi_cert_state(&sb).await["in_error"],
        true,
        "no retry happened"
    );

    let digicert = send(
        c.post(format!("{}{DIGICERT_DETAILS}", sb.url(Kind::Digicert)))
            .header("X-DC-DEVKEY", "sandbox-digicert-api-key")
            .header("content-type", "application/json")
            .body(digicert_details_body()),
    )
    .await;
    assert_eq!(digicert.status, 503, "{}", digicert.text);
    let error = &digicert.body["errors"][0];
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "CertCentral errors[]: {}",
        digicert.text
    );

    let token = vcf_token(&c, &sb).await;
    let vcf = send(
        c.get(format!(
            "{}/v1/tasks/11111111-1111-4111-8111-111111111111",
            sb.url(Kind::Vcf)
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(vcf.status, 503, "{}", vcf.text);
    assert!(
        vcf.body["errorCode"].is_string() && vcf.body["message"].is_string(),
        "VCF Error: {}",
        vcf.text
    );

    let token = otc_token(&c, &sb, "eu-de").await;
    let otc = send(
        c.get(format!(
            "{}/v1/0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c/waf/certificate",
            sb.url(Kind::OtcWaf)
        ))
        .header("X-Auth-Token", &token),
    )
    .await;
    assert_eq!(otc.status, 503, "{}", otc.text);
    let code = otc.body["error_code"].as_str().unwrap_or_default();
    assert!(
        (code.starts_with("WAF.") || code.starts_with("APIG."))
            && otc.body["error_msg"].is_string(),
        "WAF error_code/error_msg: {}",
        otc.text
    );

    let ncp = send(ncp_request(
        &c,
        &sb,
        Method::GET,
        "/api/v2/certificate/certificates?page=1&pageSize=20",
        NCP_CLOCK_MS,
    ))
    .await;
    assert_eq!(ncp.status, 503, "{}", ncp.text);
    // Gateway table: 503 is code 500, "Endpoint Error".
    let code = ncp.body["error"]["errorCode"].clone();
    assert!(
        code == "500" || code == 500,
        "errorCode {code}: {}",
        ncp.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_a_transport_error() {
    let sb = start(&venafi_with(
        "{reset: {rate: 1.0, endpoints: ['POST /vedsdk/certificates/retry']}}",
    ))
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let result = c
        .post(format!(
            "{}/vedsdk/Certificates/Retry",
            sb.url(Kind::VenafiTpp)
        ))
        .bearer_auth(&token)
        .json(&json!({"CertificateDN": DN}))
        .send()
        .await;
    match result {
        Ok(response) => panic!("a reset answered HTTP {}", response.status()),
        Err(e) => assert!(e.status().is_none() && !e.is_timeout(), "{e:?}"),
    }
    let cert = venafi_cert_state(&sb).await;
    assert_eq!(
        cert["in_error"], true,
        "a reset happens before any work: {cert}"
    );
    assert_eq!(cert["retries_accepted"], 0, "{cert}");
    assert_eq!(
        provider_stats(&sb, Kind::VenafiTpp).await["faults"]["reset"],
        1
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_outlasts_the_client_timeout_and_changes_nothing() {
    let sb = start(&venafi_with(
        "{stall: {rate: 1.0, duration: 2s, endpoints: ['POST /vedsdk/certificates/retry']}}",
    ))
    .await;
    let token = venafi_token(&client(), &sb).await;
    let impatient = client_with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = impatient
        .post(format!(
            "{}/vedsdk/Certificates/Retry",
            sb.url(Kind::VenafiTpp)
        ))
        .bearer_auth(&token)
        .json(&json!({"CertificateDN": DN}))
        .send()
        .await;
    let elapsed = started.elapsed();
    match result {
        Ok(response) => panic!("a stall answered HTTP {}", response.status()),
        Err(e) => assert!(e.is_timeout(), "the client times out: {e:?}"),
    }
    assert!(
        elapsed < Duration::from_millis(1500),
        "the client gave up after its own timeout, not the stall: {elapsed:?}"
    );
    let cert = venafi_cert_state(&sb).await;
    assert_eq!(cert["in_error"], true, "a stall does nothing: {cert}");
    assert_eq!(cert["retries_accepted"], 0, "{cert}");
    let stats = provider_stats(&sb, Kind::VenafiTpp).await;
    assert_eq!(stats["mutations"], 0, "{stats}");
    assert_eq!(stats["faults"]["stall"], 1, "{stats}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_after_timeout_takes_effect_although_the_client_timed_out() {
    let sb = start(
        r"
ncloud:
  clock_ms: 1700000000000
  processing: 30s
  keys: [{access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}]
  certificates:
    - {certificate_no: 55882, name: ncloudcertificate, common_name: '*.ncloud.com', status_code: -3}
  faults:
    outcome_after_timeout: {rate: 1.0, duration: 2s, endpoints: ['POST /api/v2/certificate/{certificate_no}/reissue']}
",
    )
    .await;
    let impatient = client_with_timeout(Duration::from_millis(300));
    let result = ncp_request(
        &impatient,
        &sb,
        Method::POST,
        "/api/v2/certificate/55882/reissue",
        NCP_CLOCK_MS,
    )
    .body(NCP_REISSUE_BODY)
    .send()
    .await;
    match result {
        Ok(response) => panic!("outcome-after-timeout answered HTTP {}", response.status()),
        Err(e) => assert!(e.is_timeout(), "the client times out: {e:?}"),
    }
    let certs = state(&sb).await["ncloud"]["certificates"].clone();
    let cert = certs
        .as_array()
        .expect("certificates")
        .iter()
        .find(|c| c["certificateNo"] == 55882)
        .cloned()
        .unwrap_or_default();
    assert_eq!(cert["statusCode"], 0, "the reissue took effect: {cert}");
    let stats = provider_stats(&sb, Kind::Ncloud).await;
    assert_eq!(stats["mutations"], 1, "{stats}");
    assert_eq!(stats["faults"]["outcome_after_timeout"], 1, "{stats}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_filter_limits_a_fault_to_one_route() {
    let sb = start(&venafi_with(
        "{errors: [{status: 500, rate: 1.0, endpoints: ['POST /vedsdk/certificates/retry']}]}",
    ))
    .await;
    let c = client();
    // oauth and DnToGuid are outside the filter and work.
    let token = venafi_token(&c, &sb).await;
    let guid = venafi_guid(&c, &sb, &token, DN).await;
    let details = venafi_processing(&c, &sb, &token, &guid).await;
    assert_eq!(details["InError"], true, "{details}");
    for n in 0..3 {
        let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": DN})).await;
        assert_eq!(reply.status, 500, "retry {n}: {}", reply.text);
    }
    let stats = provider_stats(&sb, Kind::VenafiTpp).await;
    assert_eq!(
        stats["faults"]["error"], 3,
        "only the retries failed: {stats}"
    );
    sb.stop().await;
}
