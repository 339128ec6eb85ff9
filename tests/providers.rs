//! The provider clients' auth flows against the sandbox: Venafi's single-use refresh tokens
//! under concurrency, VCF's token status and refresh, and each observe verdict.

use std::time::Duration;

use indexmap::IndexMap;
use redrive::manifest::model::{ActionParams, ProviderType, RetryCertificate, Work};
use redrive::providers::{self, Client, SandboxEndpoints, Verdict};
use redrive::sandbox::{self, Kind, Running, Scenario};
use serde_json::{Value, json};

async fn start(yaml: &str) -> (Running, Scenario) {
    let scenario = Scenario::parse(yaml, "test").expect("scenario");
    let running = sandbox::start(&scenario, sandbox::Options::default())
        .await
        .expect("sandbox");
    (running, scenario)
}

fn client(running: &Running, scenario: &Scenario, provider: Value) -> Client {
    let provider: redrive::manifest::model::Provider =
        serde_json::from_value(provider).expect("a provider");
    let endpoints = SandboxEndpoints {
        urls: [
            (ProviderType::VenafiTpp, running.url(Kind::VenafiTpp)),
            (ProviderType::Vcf, running.url(Kind::Vcf)),
        ]
        .into_iter()
        .collect::<IndexMap<_, _>>(),
        demo: redrive::cli::rehearsal::demo(scenario, running.iam_url()),
    };
    providers::build(
        "p",
        &provider,
        "",
        std::path::Path::new("."),
        Some(&endpoints),
        std::sync::Arc::new(redrive::state::tokens::MemoryTokens::default()),
        std::sync::Arc::new(redrive::limits::Limiter::unlimited()),
    )
    .expect("a client")
}

/// The read-only check of a work, which these providers have.
async fn observe(client: &Client, work: &Work) -> redrive::providers::Observed {
    client
        .observe(work)
        .await
        .expect("a read-only check")
        .expect("observe")
}

fn endpoint_count(running: &Running, kind: &str, endpoint: &str) -> u64 {
    running.stats()["providers"][kind]["by_endpoint"][endpoint]
        .as_u64()
        .unwrap_or(0)
}

/// Twenty observations race past an expired token: exactly one refresh may be sent, because the
/// refresh token works once and a second refresh would lose the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venafi_refreshes_once_when_many_calls_find_the_token_expired() {
    // The margin before expiry is 60 s, so a 63 s token is "about to expire" after 3 s, and a
    // refreshed one stays good for 3 s: enough for twenty calls on a loaded machine.
    let (running, scenario) = start(
        r"venafi_tpp:
  token_ttl: 63s
  certificates: [{dn: '\VED\Policy\A\a.example.com'}]
",
    )
    .await;
    let venafi = client(
        &running,
        &scenario,
        json!({"type": "venafi_tpp", "url": "https://unused", "auth": {"client_id": "x", "username": "u", "password": {"env": "UNUSED"}, "scope": "certificate:manage"}}),
    );
    let action = Work::Single(ActionParams::RetryCertificate(RetryCertificate {
        certificate_dn: r"\VED\Policy\A\a.example.com".into(),
        work_to_do_timeout: None,
    }));
    let first = observe(&venafi, &action).await;
    assert_eq!(first.verdict, Verdict::Run);
    assert_eq!(
        endpoint_count(&running, "venafi_tpp", "POST /vedauth/authorize/oauth"),
        1
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let venafi: std::sync::Arc<dyn redrive::providers::Provider> = std::sync::Arc::from(venafi);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (v, a) = (venafi.clone(), action.clone());
        tasks.push(tokio::spawn(async move {
            v.observe(&a).await.expect("a check").expect("observe")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").verdict, Verdict::Run);
    }
    assert_eq!(
        endpoint_count(&running, "venafi_tpp", "POST /vedauth/authorize/token"),
        1
    );
    assert_eq!(
        endpoint_count(&running, "venafi_tpp", "POST /vedauth/authorize/oauth"),
        1
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcf_accepts_200_tokens_and_reads_task_verdicts() {
    let (running, scenario) = start(
        "vcf:\n  token_status: 200\n  tasks:\n    - {id: failed-1}\n    - {id: done-1, status: SUCCESSFUL}\n    - {id: stuck-1, retryable: false}\n",
    )
    .await;
    let vcf = client(
        &running,
        &scenario,
        json!({"type": "vcf", "url": "https://unused", "auth": {"username": "u", "password": {"env": "UNUSED"}}}),
    );
    let task = |id: &str| -> Work {
        Work::Single(ActionParams::RetryCredentialsTask(
            serde_json::from_value(json!({"task_id": id, "operation_type": "ROTATE", "elements": [{"resource_type": "ESXI", "credentials": [{"username": "root"}]}]}))
                .expect("params"),
        ))
    };
    assert_eq!(observe(&vcf, &task("failed-1")).await.verdict, Verdict::Run);
    assert!(matches!(
        observe(&vcf, &task("done-1")).await.verdict,
        Verdict::Converged(_)
    ));
    assert!(matches!(
        observe(&vcf, &task("stuck-1")).await.verdict,
        Verdict::Blocked(_)
    ));
    let unknown = observe(&vcf, &task("nope")).await.verdict;
    assert!(
        matches!(&unknown, Verdict::Blocked(why) if why.contains("no task")),
        "{unknown:?}"
    );
    // One token pair for all four calls.
    assert_eq!(endpoint_count(&running, "vcf", "POST /v1/tokens"), 1);
    running.stop().await;
}
