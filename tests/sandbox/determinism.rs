//! Determinism: one scenario and seed give the same objects, tokens and fault decisions on every
//! run, and another seed gives other fault decisions.

use redrive::sandbox::{Kind, Running};
use serde_json::Value;

use super::support::{client, send, start, state, stats, venafi_oauth};

fn scenario(seed: u64) -> String {
    format!(
        r"
seed: {seed}
venafi_tpp:
  generate: [{{count: 20, parent: '\VED\Policy\Generated'}}]
  faults: {{errors: [{{status: 500, rate: 0.3, endpoints: ['GET /vedauth/authorize/isauthserver']}}]}}
digicert:
  generate: [{{count: 10}}]
vcf:
  generate: [{{count: 5}}]
otc_waf:
  generate: [{{count: 30, expires_in_days: 10, spread_days: 60, bound: true}}]
ncloud:
  generate: [{{count: 10}}]
"
    )
}

/// The state without wall-clock values (expiry instants are computed from the start time).
fn timeless(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "expire_time")
                .map(|(k, v)| (k.clone(), timeless(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(timeless).collect()),
        other => other.clone(),
    }
}

/// Statuses of 200 sequential requests to the route with the 30 % error fault.
async fn fault_sequence(sb: &Running) -> Vec<u16> {
    let c = client();
    let url = format!("{}/vedauth/authorize/isAuthServer", sb.url(Kind::VenafiTpp));
    let mut statuses = Vec::with_capacity(200);
    for _ in 0..200 {
        statuses.push(send(c.get(&url)).await.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_the_same_state_and_tokens() {
    let (a, b) = (start(&scenario(42)).await, start(&scenario(42)).await);
    let (state_a, state_b) = (timeless(&state(&a).await), timeless(&state(&b).await));
    assert_eq!(state_a, state_b, "two sandboxes of one scenario and seed");
    assert_eq!(stats(&a).await["seed"], 42, "the stats name the seed");
    assert_eq!(
        state_a["venafi_tpp"]["certificates"]
            .as_array()
            .map(Vec::len),
        Some(20)
    );

    let c = client();
    let token_a = venafi_oauth(&c, &a, "certificate:manage").await.body;
    let token_b = venafi_oauth(&c, &b, "certificate:manage").await.body;
    assert_eq!(
        token_a["access_token"], token_b["access_token"],
        "the first token of each sandbox"
    );
    assert_eq!(token_a["refresh_token"], token_b["refresh_token"]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_the_same_fault_decisions_and_another_seed_others() {
    let (a, b, other) = (
        start(&scenario(42)).await,
        start(&scenario(42)).await,
        start(&scenario(43)).await,
    );
    let seq_a = fault_sequence(&a).await;
    let seq_b = fault_sequence(&b).await;
    let seq_other = fault_sequence(&other).await;
    assert_eq!(seq_a, seq_b, "one seed, one sequence of fault decisions");
    assert_ne!(seq_a, seq_other, "another seed draws other faults");
    for seq in [&seq_a, &seq_other] {
        assert!(
            seq.iter().all(|s| [202, 500].contains(s)),
            "only the route's answer or the fault: {seq:?}"
        );
        let errors = seq.iter().filter(|s| **s == 500).count();
        assert!(
            (30..=90).contains(&errors),
            "{errors} of 200 requests failed with a 30 % rate"
        );
    }
    assert_eq!(
        timeless(&state(&a).await),
        timeless(&state(&b).await),
        "the same requests leave the same state"
    );
    a.stop().await;
    b.stop().await;
    other.stop().await;
}
