//! OTC IAM and WAF against providers.md §4 and the ListCertificates doc (seed 003): password
//! tokens, the token/project check, paging limits, `host=true` gating and the filters.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use redrive::sandbox::{Kind, Running};
use reqwest::Client;
use serde_json::Value;

use super::support::{Reply, client, otc_auth_body, otc_token, send, start};

const PROJECT_A: &str = "0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c";
const PROJECT_B: &str = "9f8e7d6c5b4a4f3e8d2c1b0a9f8e7d6c";
const DAY_MS: i64 = 86_400_000;

const SCENARIO: &str = r"
seed: 9
otc_waf:
  projects:
    - {id: 0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c, name: eu-de}
    - {id: 9f8e7d6c5b4a4f3e8d2c1b0a9f8e7d6c, name: eu-nl}
  certificates:
    - {name: shop-example-2025, expires_in_days: 5, bind_hosts: [shop.example.com, www.shop.example.com]}
    - {name: api-example-2025, expires_in_days: 20, bind_hosts: [api.example.com]}
    - {name: portal-2026, expires_in_days: 200, bind_hosts: [portal.example.de]}
    - {name: old-campaign-2023, expires_in_days: -30}
    - {name: nl-only, expires_in_days: 10, project: eu-nl}
";

fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis();
    i64::try_from(ms).expect("milliseconds fit i64")
}

async fn list(c: &Client, sb: &Running, token: &str, project: &str, query: &str) -> Reply {
    send(
        c.get(format!(
            "{}/v1/{project}/waf/certificate?{query}",
            sb.url(Kind::OtcWaf)
        ))
        .header("X-Auth-Token", token)
        .header("content-type", "application/json;charset=utf8"),
    )
    .await
}

fn items(reply: &Reply) -> &Vec<Value> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items is a list: {}", reply.text))
}

fn names(reply: &Reply) -> BTreeSet<String> {
    items(reply)
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_password_token_is_201_with_x_subject_token() {
    let sb = start(SCENARIO).await;
    let c = client();
    let url = format!("{}/auth/tokens", sb.iam_url());
    let reply = send(
        c.post(&url)
            .header("content-type", "application/json;charset=utf8")
            .json(&otc_auth_body("sandbox", "eu-de")),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.header("x-subject-token").unwrap_or_default();
    assert!(token.starts_with("MII"), "X-Subject-Token {token:.20}…");
    let body = &reply.body["token"];
    assert_eq!(body["project"]["id"], PROJECT_A, "{body}");
    let at = |field: &str| -> jiff::Timestamp {
        body[field]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("token.{field} is a timestamp: {body}"))
    };
    let lifetime = at("expires_at").as_second() - at("issued_at").as_second();
    assert!(
        (lifetime - 24 * 3600).abs() <= 1,
        "an IAM token lives 24 h, not {lifetime} s"
    );

    let wrong = send(
        c.post(&url)
            .header("content-type", "application/json;charset=utf8")
            .json(&otc_auth_body("wrong", "eu-de")),
    )
    .await;
    assert_eq!(wrong.status, 401, "a wrong password: {}", wrong.text);
    assert!(
        wrong.header("x-subject-token").is_none(),
        "no token for a wrong password"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_waf_list_requires_x_auth_token() {
    let sb = start(SCENARIO).await;
    let c = client();
    let url = format!("{}/v1/{PROJECT_A}/waf/certificate", sb.url(Kind::OtcWaf));
    let missing = send(c.get(&url)).await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    assert_eq!(missing.body["error_code"], "APIG.0301", "{}", missing.text);
    assert!(missing.body["error_msg"].is_string(), "{}", missing.text);
    let garbage = send(c.get(&url).header("X-Auth-Token", "MIInot-a-token")).await;
    assert_eq!(garbage.status, 401, "{}", garbage.text);
    assert_eq!(garbage.body["error_code"], "APIG.0301", "{}", garbage.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_token_of_another_project_is_invalid_project() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let own = list(&c, &sb, &token, PROJECT_A, "page=1&pagesize=10").await;
    assert_eq!(own.status, 200, "{}", own.text);
    let other = list(&c, &sb, &token, PROJECT_B, "page=1&pagesize=10").await;
    assert_eq!(other.status, 400, "{}", other.text);
    assert_eq!(other.body["error_code"], "WAF.00012002", "{}", other.text);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_pages_through_a_thousand_certificates() {
    let sb = start("otc_waf: {generate: [{count: 1000, expires_in_days: 90}]}").await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let mut ids = BTreeSet::new();
    for page in 1..=10 {
        let reply = list(
            &c,
            &sb,
            &token,
            PROJECT_A,
            &format!("page={page}&pagesize=100"),
        )
        .await;
        assert_eq!(reply.status, 200, "page {page}: {}", reply.text);
        assert_eq!(reply.body["total"], 1000, "page {page}");
        assert_eq!(items(&reply).len(), 100, "page {page}");
        for item in items(&reply) {
            ids.insert(item["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(ids.len(), 1000, "ten pages hold a thousand distinct ids");
    let beyond = list(&c, &sb, &token, PROJECT_A, "page=11&pagesize=100").await;
    assert_eq!(beyond.status, 200, "{}", beyond.text);
    assert!(
        items(&beyond).is_empty(),
        "past the last page: {}",
        beyond.text
    );
    // On the OTC profile, pagesize -1 lists everything whatever the page.
    let all = list(&c, &sb, &token, PROJECT_A, "page=3&pagesize=-1").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(items(&all).len(), 1000, "pagesize=-1");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_pagesize_over_100_is_refused() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let ok = list(&c, &sb, &token, PROJECT_A, "page=1&pagesize=100").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let too_big = list(&c, &sb, &token, PROJECT_A, "page=1&pagesize=101").await;
    assert_eq!(too_big.status, 400, "{}", too_big.text);
    assert_eq!(
        too_big.body["error_code"], "WAF.00011011",
        "{}",
        too_big.text
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_expiry_and_hosts_only_with_host_true() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let gated = ["expire_time", "exp_status", "bind_host"];

    for query in ["page=1&pagesize=100", "page=1&pagesize=100&host=false"] {
        let plain = list(&c, &sb, &token, PROJECT_A, query).await;
        assert_eq!(plain.status, 200, "{}", plain.text);
        assert_eq!(items(&plain).len(), 4, "{}", plain.text);
        for item in items(&plain) {
            for field in ["id", "name", "timestamp"] {
                assert!(item.get(field).is_some(), "{field} in {item}");
            }
            for field in gated {
                assert!(
                    item.get(field).is_none(),
                    "{field} without host=true: {item}"
                );
            }
        }
    }

    let hosts = list(&c, &sb, &token, PROJECT_A, "page=1&pagesize=100&host=true").await;
    assert_eq!(hosts.status, 200, "{}", hosts.text);
    for item in items(&hosts) {
        for field in gated {
            assert!(item.get(field).is_some(), "{field} with host=true: {item}");
        }
        let expire = item["expire_time"]
            .as_i64()
            .expect("expire_time is a number");
        assert!(expire > 1_000_000_000_000, "expire_time {expire} is in ms");
        for host in item["bind_host"].as_array().expect("bind_host is a list") {
            for field in ["id", "hostname", "waf_type"] {
                assert!(host.get(field).is_some(), "{field} in {host}");
            }
        }
    }
    let shop = items(&hosts)
        .iter()
        .find(|i| i["name"] == "shop-example-2025")
        .expect("shop-example-2025 is listed");
    let bound: BTreeSet<&str> = shop["bind_host"]
        .as_array()
        .expect("bind_host")
        .iter()
        .filter_map(|h| h["hostname"].as_str())
        .collect();
    assert_eq!(
        bound,
        BTreeSet::from(["shop.example.com", "www.shop.example.com"])
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_exp_status_2_lists_only_certificates_expiring_within_a_month() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let reply = list(
        &c,
        &sb,
        &token,
        PROJECT_A,
        "page=1&pagesize=100&host=true&exp_status=2",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        names(&reply),
        BTreeSet::from([
            "api-example-2025".to_owned(),
            "shop-example-2025".to_owned()
        ]),
        "{}",
        reply.text
    );
    assert_eq!(reply.body["total"], 2, "{}", reply.text);
    let now = now_ms();
    for item in items(&reply) {
        assert_eq!(item["exp_status"], 2, "{item}");
        let expire = item["expire_time"].as_i64().expect("expire_time");
        assert!(
            expire > now && expire - now <= 31 * DAY_MS,
            "{} expires within a month: {item}",
            item["name"]
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otc_name_filter_is_fuzzy() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = otc_token(&c, &sb, "eu-de").await;
    let example = list(
        &c,
        &sb,
        &token,
        PROJECT_A,
        "page=1&pagesize=100&name=example",
    )
    .await;
    assert_eq!(example.status, 200, "{}", example.text);
    assert_eq!(
        names(&example),
        BTreeSet::from([
            "api-example-2025".to_owned(),
            "shop-example-2025".to_owned()
        ]),
    );
    assert_eq!(example.body["total"], 2, "{}", example.text);
    let portal = list(&c, &sb, &token, PROJECT_A, "page=1&pagesize=100&name=rtal").await;
    assert_eq!(names(&portal), BTreeSet::from(["portal-2026".to_owned()]));
    sb.stop().await;
}
