//! Venafi TPP against providers.md §1 and the Certificates/Retry doc (seed 000): OAuth with
//! single-use refresh, DnToGuid, details, search, Retry and its documented 400 answers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redrive::sandbox::Kind;
use serde_json::{Value, json};

use super::support::{
    DOC_RETRY_DN, client, eventually, pct, raw_get, send, start, start_builtin, state, venafi_guid,
    venafi_oauth, venafi_processing, venafi_retry, venafi_token,
};

const SCENARIO: &str = r#"
seed: 11
venafi_tpp:
  processing: 100ms
  certificates:
    - {dn: '\VED\Policy\test_retry122017141215963\cert_122017141215969', stage: 500, status: "Post processing failed"}
    - {dn: '\VED\Policy\Web\one.example.com', stage: 400, status: "Failed to install"}
    - {dn: '\VED\Policy\Web\two.example.com', stage: 500, status: "Post processing failed"}
    - {dn: '\VED\Policy\Web\three.example.com', stage: 500, status: "Post processing failed"}
    - {dn: '\VED\Policy\Web\four.example.com', stage: 500, status: "Post processing failed"}
    - {dn: '\VED\Policy\Web\five.example.com', stage: 500, status: "Post processing failed"}
    - {dn: '\VED\Policy\Web\fine.example.com', in_error: false}
"#;

const ONE: &str = r"\VED\Policy\Web\one.example.com";
const TWO: &str = r"\VED\Policy\Web\two.example.com";
const THREE: &str = r"\VED\Policy\Web\three.example.com";
const FOUR: &str = r"\VED\Policy\Web\four.example.com";
const FIVE: &str = r"\VED\Policy\Web\five.example.com";

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit i64")
}

fn error_text(body: &Value) -> &str {
    body["Error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_oauth_token_has_the_documented_fields() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = venafi_oauth(&c, &sb, "certificate:manage").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    let access = body["access_token"].as_str().unwrap_or_default();
    let refresh = body["refresh_token"].as_str().unwrap_or_default();
    assert!(!access.is_empty(), "access_token: {body}");
    assert!(!refresh.is_empty(), "refresh_token: {body}");
    assert_ne!(access, refresh, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    // `expires` is Unix seconds: in the future, and not milliseconds.
    let expires = body["expires"].as_i64().expect("expires is an integer");
    let now = unix_now();
    assert!(
        expires > now && expires < now + 10 * 365 * 86_400,
        "expires {expires} is not Unix seconds after now ({now})"
    );

    let wrong = send(
        c.post(format!(
            "{}/vedauth/authorize/oauth",
            sb.url(Kind::VenafiTpp)
        ))
        .json(&json!({"client_id": "redrive", "username": "svc-redrive", "password": "nope", "scope": "certificate:manage"})),
    )
    .await;
    assert_eq!(wrong.status, 400, "a wrong password: {}", wrong.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_refresh_token_is_single_use() {
    let sb = start(SCENARIO).await;
    let c = client();
    let first = venafi_oauth(&c, &sb, "certificate:manage").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let (access1, refresh1) = (
        first.body["access_token"].as_str().expect("access_token"),
        first.body["refresh_token"].as_str().expect("refresh_token"),
    );
    let url = format!("{}/vedauth/authorize/token", sb.url(Kind::VenafiTpp));

    let second = send(
        c.post(&url)
            .json(&json!({"client_id": "redrive", "refresh_token": refresh1})),
    )
    .await;
    assert_eq!(second.status, 200, "first refresh: {}", second.text);
    let access2 = second.body["access_token"].as_str().expect("access_token");
    let refresh2 = second.body["refresh_token"]
        .as_str()
        .expect("refresh_token");
    assert_ne!(access2, access1, "a refresh gives a new access token");
    assert_ne!(refresh2, refresh1, "a refresh rotates the refresh token");
    assert_eq!(second.body["token_type"], "Bearer", "{}", second.text);
    assert!(second.body["expires"].is_i64(), "{}", second.text);
    // The new access token works.
    venafi_guid(&c, &sb, access2, DOC_RETRY_DN).await;

    let again = send(
        c.post(&url)
            .json(&json!({"client_id": "redrive", "refresh_token": refresh1})),
    )
    .await;
    assert_eq!(again.status, 400, "reusing a refresh token: {}", again.text);
    assert!(
        again.text.contains("Grant has been revoked"),
        "reusing a refresh token: {}",
        again.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_invalid_or_expired_token_is_401() {
    let sb =
        start(&SCENARIO.replace("processing: 100ms", "processing: 100ms\n  token_ttl: 1s")).await;
    let c = client();
    let url = format!("{}/vedsdk/Config/DnToGuid", sb.url(Kind::VenafiTpp));
    let body = json!({"ObjectDN": DOC_RETRY_DN});

    let missing = send(c.post(&url).json(&body)).await;
    assert_eq!(missing.status, 401, "no token: {}", missing.text);
    let garbage = send(c.post(&url).bearer_auth("bm90LWEtdG9rZW4=").json(&body)).await;
    assert_eq!(garbage.status, 401, "unknown token: {}", garbage.text);

    let token = venafi_token(&c, &sb).await;
    let fresh = send(c.post(&url).bearer_auth(&token).json(&body)).await;
    assert_eq!(fresh.status, 200, "a fresh token: {}", fresh.text);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = send(c.post(&url).bearer_auth(&token).json(&body)).await;
    assert_eq!(
        expired.status, 401,
        "a token past token_ttl: {}",
        expired.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_auth_server_verify_and_revoke() {
    let sb = start(SCENARIO).await;
    let c = client();
    let base = sb.url(Kind::VenafiTpp);
    let probe = send(c.get(format!("{base}/vedauth/authorize/isAuthServer"))).await;
    assert_eq!(probe.status, 202, "isAuthServer: {}", probe.text);
    assert!(
        probe.text.contains("Venafi Authentication Server"),
        "isAuthServer: {}",
        probe.text
    );

    let token = venafi_token(&c, &sb).await;
    let verify = send(
        c.get(format!("{base}/vedauth/authorize/verify"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(verify.status, 200, "verify: {}", verify.text);
    assert!(verify.body.get("identity").is_some(), "{}", verify.text);
    assert!(verify.body.get("scope").is_some(), "{}", verify.text);

    let revoke = send(
        c.get(format!("{base}/vedauth/revoke/token"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(revoke.status, 200, "revoke: {}", revoke.text);
    let after = send(
        c.get(format!("{base}/vedauth/authorize/verify"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(after.status, 401, "a revoked token: {}", after.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_dn_to_guid_answers_result_codes_at_http_200() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let url = format!("{}/vedsdk/Config/DnToGuid", sb.url(Kind::VenafiTpp));

    let known = send(
        c.post(&url)
            .bearer_auth(&token)
            .json(&json!({"ObjectDN": DOC_RETRY_DN})),
    )
    .await;
    assert_eq!(known.status, 200, "{}", known.text);
    assert_eq!(known.body["Result"], 1, "{}", known.text);
    let guid = known.body["GUID"].as_str().unwrap_or_default();
    assert!(
        guid.starts_with('{') && guid.ends_with('}') && guid.len() == 38,
        "GUID {guid:?} is a braced GUID"
    );
    // The doc example says "X509 Certificate"; TPP also has the "X509 Server Certificate" class.
    let class = known.body["ClassName"].as_str().unwrap_or_default();
    assert!(
        ["X509 Certificate", "X509 Server Certificate"].contains(&class),
        "ClassName {class:?}"
    );

    let unknown = send(
        c.post(&url)
            .bearer_auth(&token)
            .json(&json!({"ObjectDN": r"\VED\Policy\Web\nobody.example.com"})),
    )
    .await;
    assert_eq!(
        unknown.status, 200,
        "ObjectDoesNotExist is HTTP 200: {}",
        unknown.text
    );
    assert_eq!(unknown.body["Result"], 400, "{}", unknown.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_certificate_details_take_braced_encoded_and_bare_guids() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let guid = venafi_guid(&c, &sb, &token, ONE).await;
    let bare = guid
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_owned();
    let base = sb.url(Kind::VenafiTpp);

    let mut answers = Vec::new();
    for target in [format!("%7B{bare}%7D"), bare.clone()] {
        let reply = send(
            c.get(format!("{base}/vedsdk/Certificates/{target}"))
                .bearer_auth(&token),
        )
        .await;
        answers.push((target, reply.status, reply.body));
    }
    // reqwest would encode the braces, so the literal form goes over a bare socket.
    let braced = format!("/vedsdk/Certificates/{{{bare}}}");
    let (status, text) = raw_get(
        sb.addr(Kind::VenafiTpp),
        &braced,
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    answers.push((
        braced,
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ));

    for (target, status, body) in answers {
        assert_eq!(status, 200, "GET Certificates/{target}: {body}");
        assert_eq!(body["DN"], ONE, "GET Certificates/{target}: {body}");
        assert_eq!(
            body["Guid"].as_str().map(str::to_ascii_lowercase),
            Some(guid.to_ascii_lowercase()),
            "GET Certificates/{target}: {body}"
        );
        let details = &body["ProcessingDetails"];
        assert_eq!(details["InError"], true, "{target}: {body}");
        assert_eq!(details["Stage"], 400, "{target}: {body}");
        assert_eq!(details["Status"], "Failed to install", "{target}: {body}");
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_search_of_error_certificates_pages_with_total_count() {
    let sb = start(
        r#"
venafi_tpp:
  generate:
    - {count: 7, parent: '\VED\Policy\Search\Deep', name: 'err-{n}.example.com'}
    - {count: 2, parent: '\VED\Policy\Search', name: 'ok-{n}.example.com', in_error: false}
    - {count: 3, parent: '\VED\Policy\Searchlight', name: 'other-{n}.example.com'}
"#,
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let parent = r"\VED\Policy\Search";
    let mut seen = std::collections::BTreeSet::new();
    for (offset, expected) in [(0, 3), (3, 3), (6, 1)] {
        let url = format!(
            "{}/vedsdk/Certificates/?InError=true&ParentDnRecursive={}&Limit=3&Offset={offset}",
            sb.url(Kind::VenafiTpp),
            pct(parent)
        );
        let reply = send(c.get(&url).bearer_auth(&token)).await;
        assert_eq!(reply.status, 200, "offset {offset}: {}", reply.text);
        assert_eq!(
            reply.body["TotalCount"], 7,
            "offset {offset}: {}",
            reply.text
        );
        assert_eq!(
            reply.header("x-record-count"),
            Some("7"),
            "X-Record-Count at offset {offset}"
        );
        let page = reply.body["Certificates"]
            .as_array()
            .expect("Certificates is a list");
        assert_eq!(page.len(), expected, "offset {offset}: {}", reply.text);
        for cert in page {
            let dn = cert["DN"].as_str().unwrap_or_default();
            assert!(
                dn.starts_with(r"\VED\Policy\Search\Deep\err-"),
                "{dn} is an error certificate under {parent}"
            );
            assert!(cert["Guid"].is_string(), "{cert}");
            seen.insert(dn.to_owned());
        }
    }
    assert_eq!(seen.len(), 7, "the pages cover every match once: {seen:?}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_retry_of_the_documented_example_succeeds_then_is_canceled() {
    let sb = start_builtin().await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    // The request body of the documentation, byte for byte.
    let doc_body =
        r#"{ "CertificateDN":"\\VED\\Policy\\test_retry122017141215963\\cert_122017141215969" }"#;
    let url = format!("{}/vedsdk/Certificates/Retry", sb.url(Kind::VenafiTpp));
    let retry = async || {
        send(
            c.post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(doc_body),
        )
        .await
    };

    let first = retry().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body, json!({"Success": true}), "{}", first.text);

    let second = retry().await;
    assert_eq!(second.status, 400, "a second retry: {}", second.text);
    assert!(
        error_text(&second.body)
            .starts_with("Retry canceled. No retry is required for the certificate."),
        "a second retry: {}",
        second.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_retry_refuses_a_blank_dn_and_an_unknown_dn() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    for dn in [json!(""), json!("   "), Value::Null] {
        let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": dn})).await;
        assert_eq!(reply.status, 400, "CertificateDN {dn}: {}", reply.text);
        assert!(
            error_text(&reply.body).starts_with(
                "Invalid CertificateDN format. The Certificate DN contained null or white spaces for ["
            ),
            "CertificateDN {dn}: {}",
            reply.text
        );
    }
    let unknown = venafi_retry(
        &c,
        &sb,
        &token,
        &json!({"CertificateDN": r"\VED\Policy\Web\nobody.example.com"}),
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    assert!(
        error_text(&unknown.body)
            .ends_with("does not exist or you do not have sufficient rights to the object."),
        "{}",
        unknown.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_work_to_do_timeout_is_bounded_to_0_through_120() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    for timeout in [json!(121), json!(-1)] {
        let reply = venafi_retry(
            &c,
            &sb,
            &token,
            &json!({"CertificateDN": ONE, "WorkToDoTimeout": timeout}),
        )
        .await;
        assert_eq!(
            reply.status, 400,
            "WorkToDoTimeout {timeout}: {}",
            reply.text
        );
        assert!(reply.body["Error"].is_string(), "{}", reply.text);
    }
    // A refused request starts no work.
    let guid = venafi_guid(&c, &sb, &token, ONE).await;
    let details = venafi_processing(&c, &sb, &token, &guid).await;
    assert_eq!(details["InError"], true, "after refused retries: {details}");
    assert_eq!(details["Stage"], 400, "after refused retries: {details}");

    for (timeout, dn) in [(0, ONE), (1, TWO), (60, THREE), (120, FOUR)] {
        let reply = venafi_retry(
            &c,
            &sb,
            &token,
            &json!({"CertificateDN": dn, "WorkToDoTimeout": timeout}),
        )
        .await;
        assert!(
            [200, 202].contains(&reply.status),
            "WorkToDoTimeout {timeout}: {} {}",
            reply.status,
            reply.text
        );
        if reply.status == 200 {
            assert_eq!(reply.body, json!({"Success": true}), "{}", reply.text);
        }
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_paths_match_case_insensitively() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let base = sb.url(Kind::VenafiTpp);
    for (path, dn) in [
        ("/VEDSDK/CERTIFICATES/RETRY", ONE),
        ("/vedsdk/certificates/retry", TWO),
        ("/VedSdk/Certificates/Retry", THREE),
    ] {
        let reply = send(
            c.post(format!("{base}{path}"))
                .bearer_auth(&token)
                .json(&json!({"CertificateDN": dn})),
        )
        .await;
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.text);
        assert_eq!(reply.body, json!({"Success": true}), "POST {path}");
    }
    for path in ["/VEDSDK/CONFIG/DNTOGUID", "/vedsdk/config/dntoguid"] {
        let reply = send(
            c.post(format!("{base}{path}"))
                .bearer_auth(&token)
                .json(&json!({"ObjectDN": FIVE})),
        )
        .await;
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.text);
        assert_eq!(reply.body["Result"], 1, "POST {path}: {}", reply.text);
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_retried_certificates_end_fixed_or_in_error_per_outcome() {
    let sb = start(
        r#"
venafi_tpp:
  processing: 100ms
  certificates:
    - {dn: '\VED\Policy\Web\heals.example.com', stage: 500, status: "Post processing failed", outcome: succeeds}
    - {dn: '\VED\Policy\Web\stays.example.com', stage: 800, status: "Failed to push", outcome: fails}
"#,
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let (heals, stays) = (
        r"\VED\Policy\Web\heals.example.com",
        r"\VED\Policy\Web\stays.example.com",
    );
    let heals_guid = venafi_guid(&c, &sb, &token, heals).await;
    let stays_guid = venafi_guid(&c, &sb, &token, stays).await;
    for dn in [heals, stays] {
        let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": dn})).await;
        assert_eq!(reply.status, 200, "retry {dn}: {}", reply.text);
    }

    // Stage 0 with an empty Status means nothing is processing any more (providers.md §1.3).
    let fixed = eventually(
        "the retried certificate ends fixed",
        Duration::from_secs(3),
        async || {
            let d = venafi_processing(&c, &sb, &token, &heals_guid).await;
            (d["InError"] == false && d["Stage"] == 0 && d["Status"] == "").then_some(d)
        },
    )
    .await;
    assert_eq!(fixed["InError"], false, "{fixed}");
    let failed = eventually(
        "the retried certificate fails again",
        Duration::from_secs(3),
        async || {
            let d = venafi_processing(&c, &sb, &token, &stays_guid).await;
            (d["InError"] == true).then_some(d)
        },
    )
    .await;
    assert_ne!(
        failed["Stage"], 0,
        "a failed certificate names its stage: {failed}"
    );
    assert!(
        !failed["Status"].as_str().unwrap_or_default().is_empty(),
        "a failed certificate says why: {failed}"
    );

    // Converged: no retry required. Failed again: eligible again.
    let again = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": heals})).await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert!(
        error_text(&again.body).starts_with("Retry canceled. No retry is required"),
        "{}",
        again.text
    );
    let again = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": stays})).await;
    assert_eq!(
        again.status, 200,
        "a certificate in error again: {}",
        again.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_retry_errors_use_the_documented_messages() {
    let sb = start(
        r#"
venafi_tpp:
  certificates:
    - {dn: '\VED\Policy\Web\locked.example.com', retry_error: access_denied}
    - {dn: '\VED\Policy\Web\busy.example.com', retry_error: add_work_failed}
    - {dn: '\VED\Policy\Web\f5.example.com', retry_error: application_add_work_failed, consumers: ['\VED\Policy\Applications\F5\vip']}
"#,
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let locked = r"\VED\Policy\Web\locked.example.com";
    let busy = r"\VED\Policy\Web\busy.example.com";
    let f5 = r"\VED\Policy\Web\f5.example.com";
    let consumer = r"\VED\Policy\Applications\F5\vip";
    // pytpp's "Certificates WorkToDo result codes".
    let documented_codes = [0, 1, 2, 99, 100, 101, 102, 103, 200, 300, 301];
    let result_code = |message: &str| -> u32 {
        let (_, code) = message
            .rsplit_once("Result Code: ")
            .unwrap_or_else(|| panic!("{message:?} names a Result Code"));
        code.trim()
            .trim_end_matches('.')
            .parse()
            .unwrap_or_else(|_| panic!("{message:?} ends in a numeric Result Code"))
    };

    let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": locked})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        error_text(&reply.body),
        format!(
            "Access error. Certificates/Retry requires write permissions for certificate [{locked}]."
        ),
    );

    let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": busy})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let message = error_text(&reply.body);
    assert!(
        message.starts_with(&format!(
            "Failed to add work for certificate [{busy}]. Retry for this cert and any associate applications will not occur. Failure details: "
        )),
        "{message}"
    );
    assert!(
        documented_codes.contains(&result_code(message)),
        "{message}"
    );

    let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": f5})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let message = error_text(&reply.body);
    assert!(
        message.starts_with(&format!(
            "Failed to add work for application [{consumer}]. Retry for this application will not occur. Failure details: "
        )),
        "{message}"
    );
    assert!(
        documented_codes.contains(&result_code(message)),
        "{message}"
    );

    for dn in [locked, busy, f5] {
        let guid = venafi_guid(&c, &sb, &token, dn).await;
        let details = venafi_processing(&c, &sb, &token, &guid).await;
        assert_eq!(details["InError"], true, "{dn} stays in error: {details}");
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_retry_without_manage_scope_is_refused() {
    let sb = start(SCENARIO).await;
    let c = client();
    let reply = venafi_oauth(&c, &sb, "certificate").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.body["access_token"].as_str().expect("access_token");
    let retry = venafi_retry(&c, &sb, token, &json!({"CertificateDN": ONE})).await;
    assert!(
        [401, 403].contains(&retry.status),
        "Retry needs certificate:manage: {} {}",
        retry.status,
        retry.text
    );
    let state = state(&sb).await;
    let one = state["venafi_tpp"]["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .find(|c| c["dn"] == ONE)
        .cloned()
        .unwrap_or_default();
    assert_eq!(one["in_error"], true, "{one}");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_injected_500_asks_to_rerun_the_transaction() {
    let sb = start(
        r#"
venafi_tpp:
  certificates:
    - {dn: '\VED\Policy\Web\one.example.com'}
  faults:
    errors: [{status: 500, rate: 1.0, endpoints: ["POST /vedsdk/certificates/retry"]}]
"#,
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let reply = venafi_retry(&c, &sb, &token, &json!({"CertificateDN": ONE})).await;
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert!(
        reply.text.to_lowercase().contains("rerun the transaction"),
        "pytpp retries a 500 whose body matches 'rerun the transaction': {}",
        reply.text
    );
    let guid = venafi_guid(&c, &sb, &token, ONE).await;
    let details = venafi_processing(&c, &sb, &token, &guid).await;
    assert_eq!(
        details["InError"], true,
        "the failed transaction changed nothing: {details}"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_certificate_details_carry_the_documented_fields() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let guid = venafi_guid(&c, &sb, &token, ONE).await;
    let reply = send(
        c.get(format!(
            "{}/vedsdk/Certificates/{}",
            sb.url(Kind::VenafiTpp),
            pct(&guid)
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    // providers.md §1.3 (from pytpp `models/certificate.py`).
    let top = [
        "Approver",
        "CertificateAuthorityDN",
        "CertificateDetails",
        "Consumers",
        "Contact",
        "CreatedBy",
        "CreatedOn",
        "CustomFields",
        "Disabled",
        "DN",
        "Guid",
        "ManagementType",
        "Name",
        "ProcessingDetails",
        "RenewalDetails",
        "SchemaClass",
        "ValidationDetails",
    ];
    let missing: Vec<&str> = top.into_iter().filter(|f| body.get(f).is_none()).collect();
    assert!(missing.is_empty(), "missing {missing:?}: {body}");
    // providers.md spells it ParentDN; pytpp, which it cites, reads ParentDn.
    assert!(
        body.get("ParentDn").is_some() || body.get("ParentDN").is_some(),
        "the parent DN: {body}"
    );
    let details = &body["CertificateDetails"];
    let missing: Vec<&str> = ["ValidFrom", "ValidTo", "Thumbprint", "Serial", "CN"]
        .into_iter()
        .filter(|f| details.get(f).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "CertificateDetails lacks {missing:?}: {details}"
    );
    for field in ["LastValidationStateUpdate", "ValidationState"] {
        assert!(
            body["ValidationDetails"].get(field).is_some(),
            "ValidationDetails.{field}: {body}"
        );
    }
    sb.stop().await;
}
