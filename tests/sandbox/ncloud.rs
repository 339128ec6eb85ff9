//! NCP Certificate Manager against providers.md §5 and the reissue doc (seed 004): signature v2
//! with the documented vectors, the ±5 min window, gateway errors, lists and reissue.

use std::time::Duration;

use redrive::sandbox::Kind;
use reqwest::Method;
use serde_json::json;

use super::support::{
    NCP_ACCESS_KEY, NCP_CLOCK_MS, NCP_REISSUE_BODY, NCP_SECRET_KEY, client, eventually,
    ncp_request, ncp_request_signed_as, ncp_signature, ncp_status_code, provider_stats, send,
    start,
};

/// The gateway clock pinned to the vectors' timestamp; reissues stay ONGOING for the test.
const SCENARIO: &str = r"
seed: 13
ncloud:
  clock_ms: 1700000000000
  processing: 30s
  keys:
    - {access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}
    - {access_key: SUBACCOUNTKEY0000001, secret_key: SUBACCOUNTSECRET000000000000000000000001, sub_account: true}
  certificates:
    - {certificate_no: 55882, name: ncloudcertificate, common_name: '*.ncloud.com', dns_names: [ncloud.com, ncloud-docs.com], status_code: -3}
    - {certificate_no: 55907, name: api-example-co-kr, common_name: api.example.co.kr, status_code: 1}
    - {certificate_no: 56013, name: pay-example-co-kr, common_name: pay.example.co.kr, status_code: 0}
";

const VECTOR_A: &str = "9lWpoarE2tTpLjDPMfURlwW/pg0v7+Na6rnAH45y5pY=";
const VECTOR_B: &str = "JmzhEFvAlP5Wg4tfCutwNXyqOYl1MiAMASQRQnLEv/k=";
const VECTOR_C: &str = "MqOO0VyUq7L3LAwtPQOUqtjrwNUctPjRLCdWk7kYWvI=";
const REISSUE_55882: &str = "/api/v2/certificate/55882/reissue";

/// The helper first, so the requests below are signed by something known to be right.
#[test]
fn ncp_signature_helper_reproduces_vectors_a_to_d() {
    let ts = "1700000000000";
    assert_eq!(
        ncp_signature("POST", REISSUE_55882, ts, NCP_ACCESS_KEY, NCP_SECRET_KEY),
        VECTOR_A
    );
    assert_eq!(
        ncp_signature(
            "GET",
            "/api/v1/certificates?certificateNo=55882",
            ts,
            NCP_ACCESS_KEY,
            NCP_SECRET_KEY
        ),
        VECTOR_B
    );
    assert_eq!(
        ncp_signature(
            "GET",
            "/api/v2/certificate/certificates?page=1&pageSize=20",
            ts,
            NCP_ACCESS_KEY,
            NCP_SECRET_KEY
        ),
        VECTOR_C
    );
    assert_eq!(
        ncp_signature(
            "GET",
            "/vserver/v2/getServerInstanceList?responseFormatType=json",
            "1234567890123",
            "TestAccessKey",
            "TestSecretKey"
        ),
        "FPsYYX8fuMAgi+cue3eACOW0dNtIwu1LYWfg/megA2M="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_requests_signed_as_in_the_vectors_are_accepted() {
    let sb = start(SCENARIO).await;
    let c = client();
    // The signatures are the documented strings, not recomputed.
    let c_reply = send(ncp_request_signed_as(
        &c,
        &sb,
        Method::GET,
        "/api/v2/certificate/certificates?page=1&pageSize=20",
        NCP_CLOCK_MS,
        VECTOR_C,
    ))
    .await;
    assert_eq!(c_reply.status, 200, "vector C: {}", c_reply.text);
    assert_eq!(
        c_reply.body["returnCode"], "0",
        "vector C: {}",
        c_reply.text
    );

    let b_reply = send(ncp_request_signed_as(
        &c,
        &sb,
        Method::GET,
        "/api/v1/certificates?certificateNo=55882",
        NCP_CLOCK_MS,
        VECTOR_B,
    ))
    .await;
    assert_eq!(b_reply.status, 200, "vector B: {}", b_reply.text);
    let list = b_reply.body["sslCertificateList"]
        .as_array()
        .expect("sslCertificateList");
    assert_eq!(list.len(), 1, "vector B: {}", b_reply.text);
    assert_eq!(
        list[0]["certificateNo"], 55882,
        "vector B: {}",
        b_reply.text
    );
    // providers.md §5.3, getcertificatelist.
    for field in [
        "certificateNo",
        "certificateType",
        "certificateName",
        "memberNo",
        "dnInfo",
        "domainAddress",
        "subDomainAddress",
        "regDate",
        "validStartDate",
        "validEndDate",
    ] {
        assert!(list[0].get(field).is_some(), "{field} in {}", list[0]);
    }

    let a_reply = send(
        ncp_request_signed_as(&c, &sb, Method::POST, REISSUE_55882, NCP_CLOCK_MS, VECTOR_A)
            .body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(a_reply.status, 200, "vector A: {}", a_reply.text);
    assert_eq!(
        a_reply.body["returnCode"], "0",
        "vector A: {}",
        a_reply.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_wrong_signature_is_401_with_gateway_code_200() {
    let sb = start(SCENARIO).await;
    let c = client();
    // Vector A with one character changed.
    let tampered = VECTOR_A.replacen('9', "8", 1);
    assert_ne!(tampered, VECTOR_A);
    let reply = send(
        ncp_request_signed_as(
            &c,
            &sb,
            Method::POST,
            REISSUE_55882,
            NCP_CLOCK_MS,
            &tampered,
        )
        .body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    // The table types errorCode as Integer, the examples as a string: accept both.
    let code = &reply.body["error"]["errorCode"];
    assert!(
        code == "200" || code == 200,
        "errorCode {code}: {}",
        reply.text
    );
    assert!(reply.body["error"]["message"].is_string(), "{}", reply.text);

    // An unknown access key fails the same way.
    let stranger = send(
        c.get(format!(
            "{}/api/v2/certificate/certificates?page=1&pageSize=20",
            sb.url(Kind::Ncloud)
        ))
        .header("x-ncp-apigw-timestamp", NCP_CLOCK_MS.to_string())
        .header("x-ncp-iam-access-key", "UNKNOWNACCESSKEY0001")
        .header("x-ncp-apigw-signature-v2", VECTOR_C),
    )
    .await;
    assert_eq!(stranger.status, 401, "{}", stranger.text);

    assert_eq!(
        ncp_status_code(&c, &sb, 55882).await,
        -3,
        "a refused reissue changed nothing"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_timestamp_more_than_5_minutes_off_is_401() {
    let sb = start(SCENARIO).await;
    let c = client();
    let target = "/api/v2/certificate/certificates?page=1&pageSize=20";
    let five_minutes = 5 * 60 * 1000;
    for off in [
        NCP_CLOCK_MS - five_minutes - 1000,
        NCP_CLOCK_MS + five_minutes + 1000,
    ] {
        let reply = send(ncp_request(&c, &sb, Method::GET, target, off)).await;
        assert_eq!(reply.status, 401, "timestamp {off}: {}", reply.text);
        assert!(
            reply.body["error"]["errorCode"].is_string()
                || reply.body["error"]["errorCode"].is_number(),
            "{}",
            reply.text
        );
    }
    for near in [NCP_CLOCK_MS - 4 * 60 * 1000, NCP_CLOCK_MS + 4 * 60 * 1000] {
        let reply = send(ncp_request(&c, &sb, Method::GET, target, near)).await;
        assert_eq!(reply.status, 200, "timestamp {near}: {}", reply.text);
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_unknown_path_is_404_with_gateway_code_300() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = send(ncp_request(
        &c,
        &sb,
        Method::GET,
        "/api/v2/certificate/no-such-resource",
        NCP_CLOCK_MS,
    ))
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    let code = &reply.body["error"]["errorCode"];
    assert!(
        code == "300" || code == 300,
        "errorCode {code}: {}",
        reply.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_v2_list_shows_status_codes() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = send(ncp_request(
        &c,
        &sb,
        Method::GET,
        "/api/v2/certificate/certificates?page=1&pageSize=20",
        NCP_CLOCK_MS,
    ))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["returnCode"], "0", "{}", reply.text);
    assert_eq!(reply.body["totalCount"], 3, "{}", reply.text);
    let names = [(0, "ONGOING"), (1, "NORMAL"), (-3, "VALIDATION_FAILED")];
    for cert in reply.body["sslCertificateList"].as_array().expect("list") {
        let code = cert["statusCode"].as_i64().expect("statusCode is a number");
        let expected = names
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("unexpected statusCode in {cert}"));
        assert_eq!(cert["statusName"], expected, "{cert}");
        // providers.md §5.3, ListCertificates.
        for field in [
            "certificateNo",
            "certificateName",
            "memberNo",
            "commonName",
            "dnsName",
            "statusCode",
            "statusName",
            "certificateType",
            "domainCode",
            "updateDate",
            "issueType",
        ] {
            assert!(cert.get(field).is_some(), "{field} in {cert}");
        }
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_reissue_of_the_doc_example_completes_and_goes_ongoing() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = send(
        ncp_request(&c, &sb, Method::POST, REISSUE_55882, NCP_CLOCK_MS).body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"returnCode": "0", "returnMessage": "Certificate reissuance has been completed.", "totalRows": 0}),
    );
    assert_eq!(
        ncp_status_code(&c, &sb, 55882).await,
        0,
        "ONGOING after a reissue"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_second_reissue_while_ongoing_is_refused_and_counted() {
    let sb = start(SCENARIO).await;
    let c = client();
    let first = send(
        ncp_request(&c, &sb, Method::POST, REISSUE_55882, NCP_CLOCK_MS).body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(first.body["returnCode"], "0", "{}", first.text);
    let second = send(
        ncp_request(&c, &sb, Method::POST, REISSUE_55882, NCP_CLOCK_MS).body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(
        second.status, 200,
        "service errors are HTTP 200: {}",
        second.text
    );
    let code = second.body["returnCode"].as_str().unwrap_or("0");
    assert_ne!(code, "0", "a reissue while ONGOING: {}", second.text);
    let stats = provider_stats(&sb, Kind::Ncloud).await;
    assert_eq!(stats["mutations"], 1, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 1, "{stats}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_reissue_of_an_unknown_certificate_is_a_service_error() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = send(
        ncp_request(
            &c,
            &sb,
            Method::POST,
            "/api/v2/certificate/99999/reissue",
            NCP_CLOCK_MS,
        )
        .body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "service errors are HTTP 200: {}",
        reply.text
    );
    let code = reply.body["returnCode"].as_str().unwrap_or("0");
    assert_ne!(code, "0", "{}", reply.text);
    assert!(reply.body["returnMessage"].is_string(), "{}", reply.text);
    assert_eq!(provider_stats(&sb, Kind::Ncloud).await["mutations"], 0);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_sub_account_key_is_forbidden_on_v2_only() {
    let sb = start(SCENARIO).await;
    let c = client();
    let (access, secret) = (
        "SUBACCOUNTKEY0000001",
        "SUBACCOUNTSECRET000000000000000000000001",
    );
    let base = sb.url(Kind::Ncloud);
    for (target, expected) in [
        ("/api/v2/certificate/certificates?page=1&pageSize=20", 403),
        ("/api/v1/certificates?certificateNo=55882", 200),
    ] {
        let signature = ncp_signature("GET", target, &NCP_CLOCK_MS.to_string(), access, secret);
        let reply = send(
            c.get(format!("{base}{target}"))
                .header("x-ncp-apigw-timestamp", NCP_CLOCK_MS.to_string())
                .header("x-ncp-iam-access-key", access)
                .header("x-ncp-apigw-signature-v2", signature)
                .header("content-type", "application/json"),
        )
        .await;
        assert_eq!(reply.status, expected, "GET {target}: {}", reply.text);
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_v1_list_of_an_unknown_certificate_is_empty() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = send(ncp_request(
        &c,
        &sb,
        Method::GET,
        "/api/v1/certificates?certificateNo=1",
        NCP_CLOCK_MS,
    ))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["returnCode"], "0", "{}", reply.text);
    assert_eq!(reply.body["totalRows"], 0, "{}", reply.text);
    assert_eq!(
        reply.body["sslCertificateList"],
        json!([]),
        "{}",
        reply.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_reissue_ends_normal_or_validation_failed_per_outcome() {
    let sb = start(
        r"
ncloud:
  clock_ms: 1700000000000
  processing: 100ms
  keys: [{access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}]
  certificates:
    - {certificate_no: 70001, name: heals, common_name: heals.example.co.kr, status_code: -2, outcome: succeeds}
    - {certificate_no: 70002, name: stays, common_name: stays.example.co.kr, status_code: -4, outcome: fails}
",
    )
    .await;
    let c = client();
    for no in [70001, 70002] {
        let reply = send(
            ncp_request(
                &c,
                &sb,
                Method::POST,
                &format!("/api/v2/certificate/{no}/reissue"),
                NCP_CLOCK_MS,
            )
            .body(NCP_REISSUE_BODY),
        )
        .await;
        assert_eq!(
            reply.body["returnCode"], "0",
            "reissue {no}: {}",
            reply.text
        );
    }
    let ended = eventually("both reissues end", Duration::from_secs(3), async || {
        let heals = ncp_status_code(&c, &sb, 70001).await;
        let stays = ncp_status_code(&c, &sb, 70002).await;
        (heals != 0 && stays != 0).then_some((heals, stays))
    })
    .await;
    assert_eq!(ended, (1, -3), "NORMAL and VALIDATION_FAILED");
    // A failed validation may be reissued again.
    let again = send(
        ncp_request(
            &c,
            &sb,
            Method::POST,
            "/api/v2/certificate/70002/reissue",
            NCP_CLOCK_MS,
        )
        .body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(again.body["returnCode"], "0", "{}", again.text);
    sb.stop().await;
}
