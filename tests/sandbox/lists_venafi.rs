//! Venafi's certificate search over HTTP (providers.md §1.3; filter names from pytpp's
//! `CertificateFilter`): each filter, case-insensitive keys, 400 on a malformed value, and
//! `Limit`/`Offset` paging with `TotalCount` and `X-Record-Count`.

use std::collections::BTreeSet;

use redrive::sandbox::{Kind, Running};
use reqwest::Client;

use super::support::{Reply, client, pct, send, start, venafi_token};

/// One certificate per filter to tell apart; `Old` holds the expired and disabled ones.
const SCENARIO: &str = r"
venafi_tpp:
  certificates:
    - {dn: '\VED\Policy\Lists\a.example.com', stage: 800, valid_days: 200}
    - {dn: '\VED\Policy\Lists\b.example.com', stage: 400, valid_days: 5, pending_workflow: true}
    - {dn: '\VED\Policy\Lists\c.example.com', in_error: false, valid_days: 200}
    - {dn: '\VED\Policy\Lists\Old\d.example.com', stage: 500, disabled: true, valid_days: -3}
    - {dn: '\VED\Policy\Lists\Old\e.example.com', in_error: false, disabled: true, valid_days: 100}
    - {dn: '\VED\Policy\Listsmore\f.example.com', stage: 500, valid_days: 200}
";

async fn search(c: &Client, sb: &Running, token: &str, query: &str) -> Reply {
    let url = format!("{}/vedsdk/Certificates/?{query}", sb.url(Kind::VenafiTpp));
    send(c.get(url).bearer_auth(token)).await
}

/// The names (last DN part) a search answered, after checking its count headers agree.
fn names(reply: &Reply, query: &str) -> BTreeSet<String> {
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    let list = reply.body["Certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: Certificates is a list: {}", reply.text));
    let total = reply.body["TotalCount"].as_u64().expect("TotalCount");
    assert_eq!(
        reply.header("x-record-count"),
        Some(total.to_string().as_str()),
        "{query}: X-Record-Count is TotalCount"
    );
    list.iter()
        .map(|c| {
            let dn = c["DN"].as_str().expect("DN");
            dn.rsplit('\\').next().unwrap_or(dn).to_owned()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{n}.example.com")).collect()
}

/// `days` from now as Python's `isoformat()` writes a naive datetime.
fn iso_in_days(days: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days);
    at.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_search_honours_each_documented_filter() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let lists = pct(r"\VED\Policy\Lists");
    let old = pct(r"\VED\Policy\Lists\Old");
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("InError=true".into(), set(&["a", "b", "d", "f"])),
        ("InError=0".into(), set(&["c", "e"])),
        ("Disabled=1".into(), set(&["d", "e"])),
        ("Disabled=false".into(), set(&["a", "b", "c", "f"])),
        ("PendingWorkflow=1".into(), set(&["b"])),
        ("Stage=500".into(), set(&["d", "f"])),
        ("StageGreater=500".into(), set(&["a"])),
        // Healthy certificates are at stage 0.
        ("StageLess=500".into(), set(&["b", "c", "e"])),
        (format!("ParentDn={lists}"), set(&["a", "b", "c"])),
        (format!("ParentDn={old}"), set(&["d", "e"])),
        // Recursive takes sub-folders, not `Listsmore` beside it.
        (
            format!("ParentDnRecursive={lists}"),
            set(&["a", "b", "c", "d", "e"]),
        ),
        (format!("ValidToLess={}", iso_in_days(10)), set(&["b", "d"])),
        (
            format!("ValidToLess={}", pct(&format!("{}+00:00", iso_in_days(0)))),
            set(&["d"]),
        ),
        (
            format!("ValidToGreater={}", &iso_in_days(150)[..10]),
            set(&["a", "c", "f"]),
        ),
        // Filters combine; keys and boolean values are case-insensitive.
        (
            format!("inerror=TRUE&PARENTDNRECURSIVE={lists}&disabled=False"),
            set(&["a", "b"]),
        ),
    ];
    for (query, expected) in cases {
        let reply = search(&c, &sb, &token, &query).await;
        assert_eq!(names(&reply, &query), expected, "{query}: {}", reply.text);
        assert_eq!(reply.body["TotalCount"], expected.len(), "{query}");
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_search_refuses_a_malformed_filter_value_with_400_error() {
    let sb = start(SCENARIO).await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    for query in [
        "InError=maybe",
        "Disabled=yes",
        "PendingWorkflow=2",
        "Stage=eight",
        "StageGreater=1.5",
        "StageLess=",
        "ValidToLess=next-week",
        "ValidToGreater=2026-13-01",
        "Limit=-1",
        "Offset=ten",
    ] {
        let reply = search(&c, &sb, &token, query).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        let message = reply.body["Error"].as_str().unwrap_or_default();
        let key = query.split('=').next().unwrap_or_default();
        assert!(
            message.contains(key),
            "{query}: the Error names the filter: {}",
            reply.text
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_search_pages_every_page_a_short_last_one_and_past_the_end() {
    let sb = start(r"venafi_tpp: {generate: [{count: 10, parent: '\VED\Policy\Paged'}]}").await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let base = format!("InError=1&ParentDn={}&Limit=4", pct(r"\VED\Policy\Paged"));
    let mut seen = BTreeSet::new();
    for (offset, expected, range) in [
        (0, 4, "Certificates 1 to 4"),
        (4, 4, "Certificates 5 to 8"),
        (8, 2, "Certificates 9 to 10"),
    ] {
        let query = format!("{base}&Offset={offset}");
        let reply = search(&c, &sb, &token, &query).await;
        let page = names(&reply, &query);
        assert_eq!(page.len(), expected, "{query}: {}", reply.text);
        assert_eq!(reply.body["TotalCount"], 10, "{query}");
        assert_eq!(reply.body["DataRange"], range, "{query}");
        assert!(
            page.iter().all(|n| seen.insert(n.clone())),
            "{query}: no repeats"
        );
    }
    assert_eq!(seen.len(), 10, "the pages cover every certificate once");
    for query in [format!("{base}&Offset=10"), format!("{base}&Offset=500")] {
        let reply = search(&c, &sb, &token, &query).await;
        assert!(names(&reply, &query).is_empty(), "{query}: {}", reply.text);
        assert_eq!(reply.body["TotalCount"], 10, "{query}: the total stays");
    }
    let count_only = format!("{base}&Limit=0");
    let reply = search(&c, &sb, &token, &count_only).await;
    assert!(
        names(&reply, &count_only).is_empty(),
        "Limit=0 lists nothing"
    );
    assert_eq!(reply.body["TotalCount"], 10, "Limit=0 still counts");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_generator_makes_ten_thousand_error_certificates_under_one_folder() {
    let sb = start(
        r"
venafi_tpp:
  generate:
    - {count: 10000, parent: '\VED\Policy\Outage', stage: 800, status: 'Post processing failed'}
    - {count: 20, parent: '\VED\Policy\Outage', name: 'fine-{n}.example.com', in_error: false}
",
    )
    .await;
    let c = client();
    let token = venafi_token(&c, &sb).await;
    let base = format!("InError=1&ParentDnRecursive={}", pct(r"\VED\Policy\Outage"));
    let first = format!("{base}&Limit=1000");
    let reply = search(&c, &sb, &token, &first).await;
    assert_eq!(names(&reply, &first).len(), 1000);
    assert_eq!(reply.body["TotalCount"], 10_000, "{}", &reply.text[..200]);
    let last = format!("{base}&Limit=1000&Offset=9990&StageGreater=799");
    let reply = search(&c, &sb, &token, &last).await;
    assert_eq!(names(&reply, &last).len(), 10, "the last page is short");
    sb.stop().await;
}
