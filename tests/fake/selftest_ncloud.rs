//! Self-tests of the NAVER fake: the documented signature vectors, rejection, reissue, faults.

use std::time::Duration;

use serde_json::{Value, json};

use super::ncloud::{Certificate, NcloudFake, sign};
use super::selftest_support::client;

const AK: &str = "EXAMPLEACCESSKEY0001";
const SK: &str = "EXAMPLESECRETKEY000000000000000000000001";

#[test]
fn the_signature_matches_the_documented_worked_examples() {
    let ts = "1700000000000";
    let cases = [
        (
            "POST",
            "/api/v2/certificate/55882/reissue",
            "9lWpoarE2tTpLjDPMfURlwW/pg0v7+Na6rnAH45y5pY=",
        ),
        (
            "GET",
            "/api/v1/certificates?certificateNo=55882",
            "JmzhEFvAlP5Wg4tfCutwNXyqOYl1MiAMASQRQnLEv/k=",
        ),
        (
            "GET",
            "/api/v2/certificate/certificates?page=1&pageSize=20",
            "MqOO0VyUq7L3LAwtPQOUqtjrwNUctPjRLCdWk7kYWvI=",
        ),
    ];
    for (method, uri, want) in cases {
        assert_eq!(sign(method, uri, ts, AK, SK), want, "{method} {uri}");
    }
    let d = sign(
        "GET",
        "/vserver/v2/getServerInstanceList?responseFormatType=json",
        "1234567890123",
        "TestAccessKey",
        "TestSecretKey",
    );
    assert_eq!(d, "FPsYYX8fuMAgi+cue3eACOW0dNtIwu1LYWfg/megA2M=");
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Sends a signed request (timestamp shifted by `skew_ms`; `secret` may be wrong on purpose).
async fn send(
    http: &reqwest::Client,
    fake: &NcloudFake,
    method: &str,
    target: &str,
    body: Option<Value>,
    (secret, skew_ms): (&str, i64),
) -> Result<(u16, Value), reqwest::Error> {
    let ts = (now_ms() + skew_ms).to_string();
    let method_ = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = http
        .request(method_, format!("{}{target}", fake.url()))
        .header("x-ncp-apigw-timestamp", &ts)
        .header("x-ncp-iam-access-key", AK)
        .header(
            "x-ncp-apigw-signature-v2",
            sign(method, target, &ts, AK, secret),
        )
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn reissue_body() -> Value {
    json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
        "certificateName": "ncloudcertificate", "commonName": "*.ncloud.com",
        "dnsName": ["ncloud.com"], "validationMethod": "D"})
}

fn fake(delay: Duration) -> NcloudFake {
    NcloudFake::builder()
        .certificate(Certificate::new(55882, "ncloudcertificate", "*.ncloud.com").status(-4))
        .certificate(Certificate::new(55883, "other", "other.example.com").status(-2))
        .issue_delay(delay)
        .start()
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused_with_the_gateway_error() {
    let (fake, http) = (fake(Duration::ZERO), client());
    let target = "/api/v2/certificate/certificates?page=1&pageSize=20";
    let ok = send(&http, &fake, "GET", target, None, (SK, 0))
        .await
        .expect("answers");
    assert_eq!(ok.0, 200, "{}", ok.1);
    for auth in [
        ("WRONGSECRET", 0),
        (SK, -6 * 60 * 1000),
        (SK, 6 * 60 * 1000),
    ] {
        let (status, body) = send(&http, &fake, "GET", target, None, auth)
            .await
            .expect("answers");
        assert_eq!(status, 401);
        assert_eq!(body["error"]["errorCode"], "200");
        assert_eq!(body["error"]["message"], "Authentication Failed");
    }
    // A bare `?` is part of the signed target: signing without it fails.
    let resp = http
        .get(format!("{}/api/v1/certificates?", fake.url()))
        .header("x-ncp-apigw-timestamp", now_ms().to_string())
        .header("x-ncp-iam-access-key", AK)
        .header(
            "x-ncp-apigw-signature-v2",
            sign("GET", "/api/v1/certificates", &now_ms().to_string(), AK, SK),
        )
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 401);
    assert_eq!(fake.auth_failures(), 4);
}

#[tokio::test]
async fn a_reissue_goes_ongoing_then_normal_and_refuses_a_second_call_while_ongoing() {
    let (fake, http) = (fake(Duration::from_millis(300)), client());
    let path = "/api/v2/certificate/55882/reissue";
    let (status, body) = send(&http, &fake, "POST", path, Some(reissue_body()), (SK, 0))
        .await
        .expect("answers");
    assert_eq!((status, body["returnCode"].clone()), (200, json!("0")));
    let list = "/api/v2/certificate/certificates?certificateName=ncloudcertificate";
    let (_, page) = send(&http, &fake, "GET", list, None, (SK, 0))
        .await
        .expect("answers");
    assert_eq!(page["sslCertificateList"][0]["statusCode"], 0);
    assert_eq!(page["sslCertificateList"][0]["statusName"], "ONGOING");
    let (status, again) = send(&http, &fake, "POST", path, Some(reissue_body()), (SK, 0))
        .await
        .expect("answers");
    assert_eq!(status, 200);
    assert_ne!(again["returnCode"], "0");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, page) = send(&http, &fake, "GET", list, None, (SK, 0))
        .await
        .expect("answers");
    assert_eq!(page["sslCertificateList"][0]["statusCode"], 1);
    assert_eq!((fake.reissues(55882), fake.reissue_requests(55882)), (1, 2));
    let missing = "/api/v2/certificate/1/reissue";
    let (_, nf) = send(&http, &fake, "POST", missing, Some(reissue_body()), (SK, 0))
        .await
        .expect("answers");
    assert_eq!(nf["returnCode"], "2200");
    let v1 = "/api/v1/certificates?certificateNo=55882";
    let (_, v1) = send(&http, &fake, "GET", v1, None, (SK, 0))
        .await
        .expect("answers");
    assert_eq!(v1["totalRows"], 1);
    assert!(v1["sslCertificateList"][0]["validEndDate"].is_string());
}

#[tokio::test]
async fn the_lost_answer_fault_performs_the_reissue_then_drops_the_connection() {
    let fake = NcloudFake::builder()
        .certificate(Certificate::new(1, "a", "a.example.com"))
        .certificate(Certificate::new(2, "b", "b.example.com"))
        .lose_every_nth(2)
        .start();
    let http = client();
    let first = send(
        &http,
        &fake,
        "POST",
        "/api/v2/certificate/1/reissue",
        Some(reissue_body()),
        (SK, 0),
    )
    .await;
    assert_eq!(first.expect("the first answer arrives").0, 200);
    let second = send(
        &http,
        &fake,
        "POST",
        "/api/v2/certificate/2/reissue",
        Some(reissue_body()),
        (SK, 0),
    )
    .await;
    let err = second.expect_err("the second answer is lost");
    assert!(
        !err.is_status() && !err.is_timeout(),
        "a transport error: {err}"
    );
    assert_eq!(
        (fake.reissues(1), fake.reissues(2)),
        (1, 1),
        "both were performed"
    );
    assert_eq!(fake.lost_answers(), [2]);
    assert_eq!(
        fake.status_code(2),
        Some(1),
        "done: instant issuance by default"
    );
    assert!(fake.reissued_twice().is_empty());
}
