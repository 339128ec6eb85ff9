//! Self-tests of the Venafi fake: token rotation, reuse → invalid_grant, expiry, Retry.

use serde_json::{Value, json};

use super::selftest_support::client;
use super::venafi::VenafiFake;
use super::venafi_api::Cert;

const DN: &str = r"\VED\Policy\Certificates\Web\web01.example.com";

fn fake() -> VenafiFake {
    VenafiFake::builder()
        .certificate(Cert::new(DN).error_at(500, "Install failed"))
        .certificate(Cert::new(r"\VED\Policy\Certificates\Web\ok.example.com").healthy())
        .certificate(Cert::new(r"\VED\Policy\Other\x.example.com"))
        .start()
}

async fn call(
    http: &reqwest::Client,
    fake: &VenafiFake,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, format!("{}{path}", fake.url()));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("the fake answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(http: &reqwest::Client, fake: &VenafiFake) -> Value {
    let body = json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox",
        "scope": "certificate:manage"});
    let (status, token) = call(
        http,
        fake,
        reqwest::Method::POST,
        "/vedauth/authorize/oauth",
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    token
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_used_one_gets_invalid_grant() {
    let (fake, http) = (fake(), client());
    let first = login(&http, &fake).await;
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires"].as_u64().is_some());
    let r1 = first["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let refresh = |token: &str| json!({"client_id": "redrive", "refresh_token": token});
    let path = "/vedauth/authorize/token";
    let (status, second) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        None,
        Some(refresh(&r1)),
    )
    .await;
    assert_eq!(status, 200);
    let r2 = second["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    assert_ne!(r1, r2);
    let (status, reused) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        None,
        Some(refresh(&r1)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reused["error"], "invalid_grant");
    let (status, _) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        None,
        Some(refresh(&r2)),
    )
    .await;
    assert_eq!(status, 200, "the newest one still works");
    let uses: Vec<bool> = fake.refresh_uses().iter().map(|u| u.accepted).collect();
    assert_eq!(uses, [true, false, true]);
    assert_eq!(fake.refresh_tokens_reused(), [r1]);
}

#[tokio::test]
async fn expired_access_tokens_get_401_and_uses_are_recorded() {
    let (fake, http) = (fake(), client());
    let token = login(&http, &fake).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let body = json!({"ObjectDN": DN});
    let path = "/vedsdk/Config/DnToGuid";
    let (status, found) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, found["Result"].clone()), (200, json!(1)));
    let (_, missing) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        Some(&token),
        Some(json!({"ObjectDN": r"\VED\Policy\nope"})),
    )
    .await;
    assert_eq!(missing["Result"], 400);
    fake.expire_access_tokens();
    let (status, _) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        path,
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(status, 401);
    let accepted: Vec<bool> = fake.access_uses().iter().map(|u| u.accepted).collect();
    assert_eq!(accepted, [true, true, false]);
    assert!(
        fake.access_uses()
            .iter()
            .all(|u| u.token.as_deref() == Some(token.as_str()))
    );
}

#[tokio::test]
async fn retry_succeeds_once_then_converges_and_details_show_processing() {
    let (fake, http) = (fake(), client());
    let token = login(&http, &fake).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let get = reqwest::Method::GET;
    let search =
        r"/vedsdk/certificates/?InError=true&ParentDnRecursive=%5CVED%5CPolicy%5CCertificates";
    let (_, found) = call(&http, &fake, get.clone(), search, Some(&token), None).await;
    assert_eq!(found["TotalCount"], 1);
    let guid = found["Certificates"][0]["Guid"]
        .as_str()
        .expect("a guid")
        .to_owned();
    let bare = guid.trim_matches(|c| c == '{' || c == '}');
    for path in [
        format!("/vedsdk/Certificates/{guid}"),
        format!("/vedsdk/certificates/%7B{bare}%7D"),
        format!("/VEDSDK/Certificates/{bare}"),
    ] {
        let (status, d) = call(&http, &fake, get.clone(), &path, Some(&token), None).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(d["ProcessingDetails"]["InError"], true);
    }
    let body = json!({"CertificateDN": DN, "WorkToDoTimeout": 60});
    let (status, ok) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        "/vedsdk/Certificates/Retry",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, ok), (200, json!({"Success": true})));
    let (status, again) = call(
        &http,
        &fake,
        reqwest::Method::POST,
        "/vedsdk/certificates/retry",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        again["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Retry canceled. No retry is required"))
    );
    assert_eq!((fake.retries(DN), fake.retry_requests(DN)), (1, 2));
    assert_eq!(fake.processing(DN).map(|p| p.0), Some(false));
}
