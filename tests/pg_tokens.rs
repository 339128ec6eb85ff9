//! Venafi's single-use refresh tokens shared by cooperative runners (docs/state.md, "Token
//! rotation across runners"): several `redrive apply PLAN --state DSN` processes on one token row,
//! access tokens that need renewing every few seconds, a runbook with a seed pair and no
//! password to fall back on. Every refresh token must be presented once: a second presentation
//! is `invalid_grant`, and with no password that fails the runner's actions.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::apply::temp_dir;
use super::pg_cluster::database;
use super::processes::{Ended, Runner, Sandbox, redrive};

/// `POST path` with a JSON body to the sandbox's Venafi host, over plain HTTP/1.0.
fn post(sandbox: &Sandbox, path: &str, body: &Value) -> (u16, Value) {
    exchange(sandbox, &format!("POST {path}"), Some(body))
}

fn exchange(sandbox: &Sandbox, request: &str, body: Option<&Value>) -> (u16, Value) {
    let base = sandbox.url("venafi_tpp");
    let authority = base.trim_start_matches("http://").split('/').next();
    let authority = authority.expect("authority").to_owned();
    let mut stream = TcpStream::connect(&authority).expect("connect to the sandbox");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{request} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("ask");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A secret file beside the runbook, owner-only.
fn secret_file(dir: &std::path::Path, name: &str, value: &str) {
    let path = dir.join(name);
    std::fs::write(&path, value).expect("write a secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

#[test]
fn runners_sharing_one_venafi_token_present_each_refresh_token_once() {
    let Some(db) = database("pg_tokens_race") else {
        return;
    };
    const N: usize = 4_000;
    let dir = temp_dir("pg-tokens-race");
    // Access tokens live 62 s and are renewed 60 s before they expire: every 2 s all runners
    // find the shared pair due at the same moment. Retries take 50 ms, so 4 runners at 8 need
    // about 6 s: several renewals during the run, each one a race.
    let sandbox = Sandbox::start(
        &dir,
        &format!(
            "seed: 11\nvenafi_tpp:\n  processing: 1h\n  token_ttl: 62s\n  generate: [{{count: {N}, parent: '\\VED\\Policy\\Tok', name: 'c{{n}}'}}]\n  faults:\n    latency: {{fixed: 50ms, endpoints: ['POST /vedsdk/certificates/retry']}}\n"
        ),
    );
    let (status, seed) = post(
        &sandbox,
        "/vedauth/authorize/oauth",
        &json!({"client_id": "redrive", "username": "svc-redrive", "password": "sandbox", "scope": "certificate:manage"}),
    );
    assert_eq!(status, 200, "{seed}");
    // The seed access token is refused at once (as a stale one would be): every runner that
    // starts before the first renewal is stored presents the seed refresh token, together.
    secret_file(&dir, "access.txt", "not-a-token");
    secret_file(
        &dir,
        "refresh.txt",
        seed["refresh_token"].as_str().expect("a refresh token"),
    );
    let dns: String = (1..=N)
        .map(|n| format!("\\VED\\Policy\\Tok\\c{n}\n"))
        .collect();
    std::fs::write(dir.join("dns.txt"), dns).expect("write the input");
    std::fs::write(
        dir.join("tok.yaml"),
        format!(
            "version: 1\nname: tok\ninputs:\n  dns: {{file: dns.txt}}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: {}\n    auth: {{client_id: redrive, access_token: {{file: access.txt}}, refresh_token: {{file: refresh.txt}}}}\n    limits: {{concurrency: 8}}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{{{ inputs.dns }}}}\"\n    with: {{certificate_dn: \"{{{{ item }}}}\"}}\n",
            sandbox.url("venafi_tpp")
        ),
    )
    .expect("write the runbook");
    let dsn = db.dsn();
    let plan = redrive(
        &dir,
        &[
            "plan",
            "--refresh=false",
            "--out",
            "plan.json",
            "--state",
            &dsn,
            "tok.yaml",
        ],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(plan.code, Some(2), "{}", plan.all);
    let runners: Vec<Runner> = (0..4)
        .map(|_| {
            redrive(
                &dir,
                &[
                    "apply",
                    "--auto-approve",
                    "--refresh=false",
                    "--quiet",
                    "--state",
                    &dsn,
                    "plan.json",
                ],
            )
        })
        .collect();
    let ended: Vec<Ended> = runners
        .into_iter()
        .map(|r| r.wait_for(Duration::from_secs(300)))
        .collect();
    for e in &ended {
        assert_eq!(e.code, Some(0), "{}", e.all);
        assert!(!e.all.contains("invalid_grant"), "{}", e.all);
    }
    let finals = db.scalar(
        "SELECT count(DISTINCT action) FROM redrive.journal WHERE state_key = 'tok' AND state = 'succeeded'",
    );
    assert_eq!(finals, N.to_string());
    let senders: usize = db
        .scalar("SELECT count(DISTINCT runner) FROM redrive.journal WHERE state_key = 'tok' AND state = 'sent'")
        .parse()
        .unwrap_or(0);
    let (_, state) = exchange(&sandbox, "GET /_sandbox/state", None);
    let venafi = &state["venafi_tpp"];
    let stats = sandbox.provider("venafi_tpp");
    let refreshes = stats["by_endpoint"]["POST /vedauth/authorize/token"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(venafi["refresh_refused"], 0, "{stats}");
    // The test's own password grant, then only refreshes: nobody fell back to a new grant.
    assert_eq!(
        stats["by_endpoint"]["POST /vedauth/authorize/oauth"], 1,
        "{stats}"
    );
    assert_eq!(venafi["tokens_issued"], refreshes + 1, "{stats}");
    // Renewals happened during the run, not only the seed's.
    assert!(refreshes >= 2, "{refreshes} refreshes: {stats}");
    // The stored pair is the last one issued: the only grant alive, and its refresh token
    // is accepted (once).
    assert_eq!(venafi["grants"], 1, "{venafi}");
    let stored: Value =
        serde_json::from_str(&db.scalar("SELECT pair FROM redrive.tokens")).expect("a pair");
    let (status, _) = post(
        &sandbox,
        "/vedauth/authorize/token",
        &json!({"client_id": "redrive", "refresh_token": stored["refresh"]}),
    );
    assert_eq!(status, 200, "the stored refresh token was not the live one");
    #[expect(
        clippy::print_stderr,
        reason = "the figures of the run, for docs/state.md"
    )]
    {
        eprintln!(
            "pg_tokens: 4 runners ({senders} sent), {N} actions, {refreshes} refreshes, 0 refused"
        );
    }
}
