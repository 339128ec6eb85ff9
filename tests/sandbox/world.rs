//! A world that persists: the sandbox restores what an earlier run did (objects, statuses,
//! tasks in progress, tokens, per-target counters) from its world file, starts afresh for another
//! scenario, and reports a damaged file as an error the caller can recover from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redrive::sandbox::{
    self, Kind, Running, Scenario, StartError, WorldError, WorldOrigin, WorldSave,
};
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    NCP_CLOCK_MS, NCP_REISSUE_BODY, client, eventually, ncp_request, provider_stats, send, state,
    vcf_token, venafi_retry, venafi_token,
};

const DN: &str = r"\VED\Policy\Web\shop.example.com";
const TASK: &str = "44444444-4444-4444-8444-444444444444";
const SCENARIO: &str = r#"
seed: 21
venafi_tpp:
  processing: 1h
  certificates:
    - {dn: '\VED\Policy\Web\shop.example.com', outcome: succeeds}
vcf:
  pending: 300ms
  running: 300ms
  tasks:
    - id: 44444444-4444-4444-8444-444444444444
      operation_type: ROTATE
      outcome: succeeds
      resources: [{name: esx01.sfo.rainpole.io}]
ncloud:
  clock_ms: 1700000000000
  processing: 1h
  keys:
    - {access_key: EXAMPLEACCESSKEY0001, secret_key: EXAMPLESECRETKEY000000000000000000000001}
  certificates:
    - {certificate_no: 55882, name: ncloudcertificate, common_name: '*.ncloud.com', status_code: -3}
"#;

/// A fresh directory per test, so parallel tests never share a world file.
fn dir(name: &str) -> PathBuf {
    crate::support::scratch(&format!("world-{name}"))
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::parse(yaml, "test scenario").expect("the test scenario parses")
}

async fn start_with(yaml: &str, world: &Path) -> Result<Running, StartError> {
    let options = sandbox::Options {
        world: Some(world.to_owned()),
        ..sandbox::Options::default()
    };
    sandbox::start(&scenario(yaml), options).await
}

async fn stop_saved(sb: Running, world: &Path) {
    match sb.stop().await {
        WorldSave::Saved(path) => assert_eq!(path, world),
        other => panic!("the world was not saved: {other:?}"),
    }
}

fn entry<'a>(list: &'a Value, key: &str, value: &Value) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|e| &e[key] == value)
        .unwrap_or_else(|| panic!("no entry with {key} = {value} in {list}"))
}

async fn reissue(sb: &Running) -> Value {
    let c = client();
    let reply = send(
        ncp_request(
            &c,
            sb,
            Method::POST,
            "/api/v2/certificate/55882/reissue",
            NCP_CLOCK_MS,
        )
        .header("content-type", "application/json")
        .body(NCP_REISSUE_BODY),
    )
    .await;
    assert_eq!(reply.status, 200, "reissue: {}", reply.text);
    reply.body
}

/// The three mutations of the brief, one per non-trivial provider.
async fn mutate(sb: &Running) -> String {
    let c = client();
    let token = venafi_token(&c, sb).await;
    let reply = venafi_retry(&c, sb, &token, &json!({"CertificateDN": DN})).await;
    assert_eq!(reply.status, 200, "Venafi retry: {}", reply.text);
    assert_eq!(reissue(sb).await["returnCode"], "0");
    let vcf = vcf_token(&c, sb).await;
    let spec = json!({
        "operationType": "ROTATE",
        "elements": [{"resourceName": "esx01.sfo.rainpole.io", "resourceType": "ESXI",
                      "credentials": [{"credentialType": "SSH", "username": "root"}]}],
    });
    let reply = send(
        c.patch(format!("{}/v1/credentials/tasks/{TASK}", sb.url(Kind::Vcf)))
            .bearer_auth(&vcf)
            .json(&spec),
    )
    .await;
    assert_eq!(reply.status, 202, "VCF PATCH: {}", reply.text);
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sandbox_remembers_mutations_tokens_and_counters() {
    let world = dir("restart").join("world.json");
    let sb = start_with(SCENARIO, &world).await.expect("starts");
    assert_eq!(
        sb.world_origin(),
        &WorldOrigin::New {
            path: world.clone()
        }
    );
    let venafi_token = mutate(&sb).await;
    stop_saved(sb, &world).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&world)
            .expect("the world file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the world file is owner-only");
    }

    let sb = start_with(SCENARIO, &world).await.expect("restarts");
    assert!(
        matches!(sb.world_origin(), WorldOrigin::Restored { path, .. } if *path == world),
        "{:?}",
        sb.world_origin()
    );
    let s = state(&sb).await;
    let cert = entry(&s["venafi_tpp"]["certificates"], "dn", &json!(DN));
    assert_eq!(cert["in_error"], false, "{cert}");
    assert_eq!(cert["processing"], true, "{cert}");
    assert_eq!(cert["retries_accepted"], 1, "{cert}");
    let ncp = entry(&s["ncloud"]["certificates"], "certificateNo", &json!(55882));
    assert_eq!(ncp["statusName"], "ONGOING", "{ncp}");
    assert_eq!(ncp["reissues_accepted"], 1, "{ncp}");
    assert_eq!(
        entry(&s["vcf"]["tasks"], "id", &json!(TASK))["retries_accepted"],
        1
    );

    // The rotated Venafi token of the first run still works: a retry is refused as converged,
    // not as unauthorized.
    let c = client();
    let reply = venafi_retry(&c, &sb, &venafi_token, &json!({"CertificateDN": DN})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.text.contains("No retry is required"),
        "{}",
        reply.text
    );

    // The VCF re-run goes on from where it was, by the wall clock.
    eventually(
        "the restored VCF task ends",
        Duration::from_secs(10),
        async || {
            let s = state(&sb).await;
            let task = entry(&s["vcf"]["tasks"], "id", &json!(TASK)).clone();
            (task["status"] == "SUCCESSFUL").then_some(())
        },
    )
    .await;

    // Counters went on too, duplicate detection included: a second reissue of an ONGOING
    // certificate is a duplicate of the first run's.
    assert_eq!(reissue(&sb).await["returnCode"], "2301");
    let ncp = provider_stats(&sb, Kind::Ncloud).await;
    assert_eq!(ncp["targets"]["55882"]["mutations"], 1, "{ncp}");
    assert_eq!(ncp["targets"]["55882"]["duplicate_mutations"], 1, "{ncp}");
    assert_eq!(ncp["mutations"], 1, "{ncp}");
    let venafi = provider_stats(&sb, Kind::VenafiTpp).await;
    assert_eq!(venafi["targets"][DN]["mutations"], 1, "{venafi}");
    assert_eq!(
        venafi["by_endpoint"]["POST /vedsdk/certificates/retry"], 2,
        "{venafi}"
    );
    stop_saved(sb, &world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_scenario_starts_from_the_scenario() {
    let world = dir("other").join("world.json");
    let sb = start_with(SCENARIO, &world).await.expect("starts");
    mutate(&sb).await;
    stop_saved(sb, &world).await;

    let other = SCENARIO.replace("seed: 21", "seed: 22");
    let sb = start_with(&other, &world).await.expect("starts");
    assert_eq!(
        sb.world_origin(),
        &WorldOrigin::Replaced {
            path: world.clone()
        }
    );
    let note = sb.world_origin().note().expect("a note to print");
    assert!(note.contains("another scenario"), "{note}");
    let s = state(&sb).await;
    assert_eq!(
        entry(&s["venafi_tpp"]["certificates"], "dn", &json!(DN))["retries_accepted"],
        0
    );
    assert_eq!(provider_stats(&sb, Kind::Ncloud).await["mutations"], 0);
    stop_saved(sb, &world).await;

    // The file now holds the new scenario's world.
    let sb = start_with(&other, &world).await.expect("starts");
    assert!(matches!(sb.world_origin(), WorldOrigin::Restored { .. }));
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_world_file_is_an_error_and_a_reset_starts_afresh() {
    let d = dir("damaged");
    let world = d.join("world.json");
    let sb = start_with(SCENARIO, &world).await.expect("starts");
    mutate(&sb).await;
    stop_saved(sb, &world).await;
    let whole = std::fs::read(&world).expect("the world file");

    let torn = &whole[..whole.len() / 2];
    for (content, expected) in [
        (torn, "ends early"),
        (&b"\x00\x17garbage"[..], "not JSON"),
        (
            &b"{\"format\": \"something else\", \"version\": 1, \"scenario\": \"x\"}"[..],
            "not a sandbox world",
        ),
    ] {
        std::fs::write(&world, content).expect("damage the file");
        let error = match start_with(SCENARIO, &world).await {
            Err(StartError::World(e @ WorldError::Damaged { .. })) => e,
            Err(other) => panic!("another error: {other}"),
            Ok(_) => panic!("a damaged world file was accepted"),
        };
        let text = error.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("world.json"),
            "the message names the file: {text}"
        );
        assert_eq!(error.path(), world);
        // Nothing of the file's content (it holds tokens) is quoted.
        assert!(!text.contains("garbage") && !text.contains("MII"), "{text}");
    }

    sandbox::world::reset(&world).expect("reset");
    let sb = start_with(SCENARIO, &world)
        .await
        .expect("starts after a reset");
    assert!(matches!(sb.world_origin(), WorldOrigin::New { .. }));
    let s = state(&sb).await;
    assert_eq!(
        entry(&s["venafi_tpp"]["certificates"], "dn", &json!(DN))["retries_accepted"],
        0
    );
    stop_saved(sb, &world).await;
}

/// What a `kill -9` leaves: the background save has written the change without any stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_file_while_the_sandbox_runs() {
    let d = dir("background");
    let world = d.join("world.json");
    let copy = d.join("copy.json");
    let sb = start_with(SCENARIO, &world).await.expect("starts");
    mutate(&sb).await;
    eventually(
        "the reissue reaches the file",
        Duration::from_secs(5),
        async || {
            let text = std::fs::read_to_string(&world).ok()?;
            let file: Value = serde_json::from_str(&text).ok()?;
            let saved = file["ncloud"]["stats"]["counters"]["mutations"].as_u64()?;
            (saved == 1 && text.contains("REISSUE")).then_some(())
        },
    )
    .await;
    std::fs::copy(&world, &copy).expect("copy the world as a crash would leave it");
    let second = start_with(SCENARIO, &copy)
        .await
        .expect("starts from the copy");
    let s = state(&second).await;
    assert_eq!(
        entry(&s["ncloud"]["certificates"], "certificateNo", &json!(55882))["statusName"],
        "ONGOING"
    );
    second.stop().await;
    sb.stop().await;
}
