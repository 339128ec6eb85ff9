//! The shared state in PostgreSQL, end to end: the real binary, a sandbox on loopback as the
//! real endpoints, and a throw-away PostgreSQL cluster (`pg_cluster`). Applies from fresh folders
//! (fresh CI runners) share history, lock and tokens; the DSN's password is never shown.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::apply::{Live, SECRETS, live, provider_stats, temp_dir, text};
use super::converge::{mixed, mutations};
use super::pg_cluster::{ADMIN_PASSWORD, Db, database};

/// `redrive ARGS…` in `dir` with the sandbox's secrets and `env`.
async fn run_in(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"));
        cmd.current_dir(&dir)
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("REDRIVE_STATE")
            .envs(SECRETS);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run redrive")
    })
    .await
    .expect("the binary ran")
}

/// A folder with nothing but the runbook of `live`: a fresh CI runner's checkout.
fn fresh_checkout(live: &Live, name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    std::fs::copy(live.dir.join("live.yaml"), dir.join("live.yaml")).expect("copy the runbook");
    dir
}

/// Every text column of the journal rows, for searching.
fn journal_text(db: &Db) -> String {
    db.query("SELECT concat_ws(' ', state_key, run, action, job, target, state, detail, at, runner) FROM redrive.journal")
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_from_another_folder_sends_no_non_idempotent_request_again() {
    let Some(db) = database("again") else { return };
    let live = mixed("pg-again").await;
    let first = run_in(
        &live.dir,
        &["apply", "--auto-approve", "--state", &db.dsn(), "live.yaml"],
        &[],
    )
    .await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&first));
    // Nothing local: the state is in the database.
    assert!(!live.dir.join(".redrive").exists());
    assert!(
        db.scalar("SELECT count(*) FROM redrive.journal WHERE state_key = 'live'")
            .parse::<u32>()
            .unwrap_or(0)
            >= 8
    );

    // A fresh runner, the DSN from the environment.
    let runner = fresh_checkout(&live, "pg-again-2");
    let again = run_in(
        &runner,
        &["apply", "--auto-approve", "live.yaml"],
        &[("REDRIVE_STATE", db.dsn())],
    )
    .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("done in an earlier run at"),
        "{}",
        text(&again)
    );
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&again));
    for kind in ["ncloud", "vcf", "digicert"] {
        assert_eq!(
            provider_stats(&live, kind)["duplicate_mutations"],
            0,
            "{kind}"
        );
    }
    // And without reading the providers: the shared journal alone holds them back.
    let blind = run_in(
        &runner,
        &["apply", "--auto-approve", "--refresh=false", "live.yaml"],
        &[("REDRIVE_STATE", db.dsn())],
    )
    .await;
    assert_eq!(blind.status.code(), Some(0), "{}", text(&blind));
    assert_eq!(mutations(&live), [1, 1, 1], "{}", text(&blind));

    // `status` from a third folder: the host and database, never the password.
    let elsewhere = fresh_checkout(&live, "pg-again-3");
    let status = run_in(
        &elsewhere,
        &["status", "--state", &db.dsn(), "live.yaml"],
        &[],
    )
    .await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains(&db.location()), "{}", text(&status));
    assert!(text(&status).contains("4 action(s)"), "{}", text(&status));
    assert!(!text(&status).contains(ADMIN_PASSWORD), "{}", text(&status));
    assert!(!runner.join(".redrive").exists() && !elsewhere.join(".redrive").exists());
    live.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_state_block_names_the_database_and_flags_win_over_it() {
    let Some(db) = database("block") else { return };
    let live = mixed("pg-block").await;
    let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
    let runbook = runbook.replacen(
        "providers:",
        "state: {dsn: {env: TEAM_STATE}}\nproviders:",
        1,
    );
    std::fs::write(live.dir.join("live.yaml"), runbook).expect("runbook");
    let validate = run_in(&live.dir, &["validate", "live.yaml"], &[]).await;
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    // The secret is missing: an error naming it, not a silent fall back to local files.
    let missing = run_in(&live.dir, &["plan", "live.yaml"], &[]).await;
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(text(&missing).contains("TEAM_STATE"), "{}", text(&missing));

    let env = [("TEAM_STATE", db.dsn())];
    let first = run_in(&live.dir, &["apply", "--auto-approve", "live.yaml"], &env).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(!live.dir.join(".redrive").exists());
    assert_eq!(
        db.scalar("SELECT count(DISTINCT action) FROM redrive.journal"),
        "4"
    );
    // `--state-dir` wins over the block: local files, empty, so everything is planned.
    let local = run_in(
        &live.dir,
        &[
            "plan",
            "--no-refresh",
            "--state-dir",
            "local-state",
            "live.yaml",
        ],
        &env,
    )
    .await;
    assert_eq!(local.status.code(), Some(2), "{}", text(&local));
    // `REDRIVE_STATE` wins over the block: another (empty) database.
    let Some(other) = database("block_other") else {
        return;
    };
    let plan = run_in(
        &live.dir,
        &["plan", "--no-refresh", "live.yaml"],
        &[("TEAM_STATE", db.dsn()), ("REDRIVE_STATE", other.dsn())],
    )
    .await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert_eq!(other.scalar("SELECT count(*) FROM redrive.journal"), "0");
    // And `--state` wins over `REDRIVE_STATE`: the first database, where all is done.
    let plan = run_in(
        &live.dir,
        &["plan", "--no-refresh", "--state", &db.dsn(), "live.yaml"],
        &[("REDRIVE_STATE", other.dsn())],
    )
    .await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    live.running.stop().await;
}

/// The slow NCP reissue of `a_send_cut_off_by_kill_9…`: it takes effect at once, its answer
/// comes `hold` later, and the runbook waits `timeout` for it. An apply after a kill waits twice
/// `timeout` after the send for the cut-off request to land.
async fn slow_reissue(name: &str, hold: &str, timeout: &str) -> Live {
    let live = live(
        name,
        &format!(
            "ncloud:\n  processing: 10ms\n  certificates:\n    - {{certificate_no: 1, name: one, common_name: one.example.co.kr}}\n  faults:\n    outcome_after_timeout: {{rate: 1.0, duration: {hold}, endpoints: ['POST /api/v2/certificate/{{certificate_no}}/reissue']}}\n"
        ),
        "jobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    with: {certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: one, common_name: one.example.co.kr}\n",
    )
    .await;
    let runbook = std::fs::read_to_string(live.dir.join("live.yaml")).expect("runbook");
    std::fs::write(
        live.dir.join("live.yaml"),
        runbook.replace("timeout: 1s", &format!("timeout: {timeout}")),
    )
    .expect("runbook");
    live
}

fn spawn_apply(dir: &Path, dsn: &str, lease: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
        .current_dir(dir)
        .args(["apply", "--auto-approve", "live.yaml"])
        .envs(SECRETS)
        .env("REDRIVE_STATE", dsn)
        .env("REDRIVE_STATE_LEASE", lease)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start apply")
}

/// Until the reissue has reached the sandbox (bounded: 10 s).
async fn until_sent(live: &Live) {
    for _ in 0..200 {
        if provider_stats(live, "ncloud")["mutations"] == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reissue never reached the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_of_the_runbook_from_another_runner_exits_5_while_the_first_runs() {
    let Some(db) = database("locked") else { return };
    let live = slow_reissue("pg-locked", "20s", "60s").await;
    let mut first = spawn_apply(&live.dir, &db.dsn(), "30s");
    until_sent(&live).await;
    let runner = fresh_checkout(&live, "pg-locked-2");
    let second = run_in(
        &runner,
        &["apply", "--auto-approve", "live.yaml"],
        &[("REDRIVE_STATE", db.dsn())],
    )
    .await;
    let all = text(&second);
    assert_eq!(second.status.code(), Some(5), "{all}");
    assert!(
        all.contains("another apply of this runbook is running"),
        "{all}"
    );
    assert!(
        all.contains(&db.location()) && all.contains("runbook") && all.contains("hint:"),
        "{all}"
    );
    assert!(!all.contains(ADMIN_PASSWORD), "{all}");
    // Another runbook in the same database is not held up by it.
    assert_eq!(db.scalar("SELECT count(*) FROM redrive.locks"), "1");
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(provider_stats(&live, "ncloud")["mutations"], 1);
    live.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_next_apply_takes_the_lock_over_once_its_lease_expired_and_reconciles() {
    let Some(db) = database("killed") else { return };
    let live = slow_reissue("pg-killed", "4s", "6s").await;
    let mut child = spawn_apply(&live.dir, &db.dsn(), "6s");
    until_sent(&live).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert_eq!(
        db.scalar("SELECT state FROM redrive.journal ORDER BY seq DESC LIMIT 1"),
        "sent"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM redrive.locks"),
        "1",
        "the dead runner's lock is still there"
    );

    // At once: the lease has not run out, the lock holds.
    let runner = fresh_checkout(&live, "pg-killed-2");
    let env = [
        ("REDRIVE_STATE", db.dsn()),
        ("REDRIVE_STATE_LEASE", "6s".to_owned()),
    ];
    let early = run_in(&runner, &["apply", "--auto-approve", "live.yaml"], &env).await;
    assert_eq!(early.status.code(), Some(5), "{}", text(&early));
    assert!(text(&early).contains("leased until"), "{}", text(&early));

    // Once it has, the next apply takes it over, with no one touching the table (bounded: 20 s).
    let mut again = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = run_in(&runner, &["apply", "--auto-approve", "live.yaml"], &env).await;
        if out.status.code() != Some(5) {
            again = Some(out);
            break;
        }
    }
    let again = again.expect("the lock was never taken over");
    let all = text(&again);
    assert_eq!(again.status.code(), Some(0), "{all}");
    assert!(all.contains("Took over the apply lock of process"), "{all}");
    // The cut-off reissue was observed, not sent again.
    assert!(all.contains("the provider shows it took effect"), "{all}");
    let stats = provider_stats(&live, "ncloud");
    assert_eq!(stats["mutations"], 1, "{stats}");
    assert_eq!(stats["duplicate_mutations"], 0, "{stats}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM redrive.locks"),
        "0",
        "released at the end"
    );
    live.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_venafi_refresh_token_survives_in_the_database_for_a_fresh_runner() {
    let Some(db) = database("tokens") else { return };
    let (live, refresh) = crate::converge::seeded_tokens("pg-tokens").await;
    let env = [
        ("REDRIVE_STATE", db.dsn()),
        ("TPP_ACCESS", "not-a-token".to_owned()),
        ("TPP_REFRESH", refresh.clone()),
    ];
    let first = run_in(&live.dir, &["apply", "--auto-approve", "live.yaml"], &env).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(db.scalar("SELECT count(*) FROM redrive.tokens"), "1");
    let stored: Value =
        serde_json::from_str(&db.scalar("SELECT pair FROM redrive.tokens")).expect("a pair");
    let rotated = stored["refresh"].as_str().expect("rotated").to_owned();
    assert_ne!(rotated, refresh);
    // A fresh runner with the consumed seed token in its environment: the stored pair is used.
    let runner = fresh_checkout(&live, "pg-tokens-2");
    let second = run_in(
        &runner,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--replace",
            "retry",
            "live.yaml",
        ],
        &env,
    )
    .await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        !text(&second).contains("invalid_grant"),
        "{}",
        text(&second)
    );
    assert!(!runner.join(".redrive").exists());
    let journal = journal_text(&db);
    for secret in [refresh.as_str(), rotated.as_str()] {
        assert!(!journal.contains(secret));
        assert!(!text(&first).contains(secret) && !text(&second).contains(secret));
    }
    live.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dsn_password_never_reaches_stdout_stderr_the_journal_the_plan_or_the_reports() {
    let Some(db) = database("redacted") else {
        return;
    };
    let live = mixed("pg-redacted").await;
    let dsn = db.dsn();
    let outputs = [
        run_in(
            &live.dir,
            &["plan", "--state", &dsn, "live.yaml", "--out", "plan.json"],
            &[],
        )
        .await,
        run_in(
            &live.dir,
            &["plan", "--state", &dsn, "--format", "json", "live.yaml"],
            &[],
        )
        .await,
        run_in(
            &live.dir,
            &["plan", "--state", &dsn, "--format", "markdown", "live.yaml"],
            &[],
        )
        .await,
        run_in(
            &live.dir,
            &[
                "apply",
                "plan.json",
                "--auto-approve",
                "--state",
                &dsn,
                "--format",
                "json",
                "--report-json",
                "r.json",
                "--report-junit",
                "r.xml",
                "--report-markdown",
                "r.md",
                "--report-html",
                "r.html",
            ],
            &[],
        )
        .await,
        run_in(
            &live.dir,
            &["status", "--state", &dsn, "--format", "json", "live.yaml"],
            &[],
        )
        .await,
        // A failing one prints the location and the error, still without the password.
        run_in(
            &live.dir,
            &[
                "status",
                "--state",
                &dsn.replace(&db.name, "missing_db"),
                "live.yaml",
            ],
            &[],
        )
        .await,
    ];
    assert_eq!(outputs[3].status.code(), Some(0), "{}", text(&outputs[3]));
    assert_eq!(outputs[5].status.code(), Some(1), "{}", text(&outputs[5]));
    for out in &outputs {
        assert!(!text(out).contains(ADMIN_PASSWORD), "{}", text(out));
    }
    for file in ["plan.json", "r.json", "r.xml", "r.md", "r.html"] {
        let body = std::fs::read_to_string(live.dir.join(file)).expect(file);
        assert!(!body.contains(ADMIN_PASSWORD), "{file}");
        assert!(!body.contains("postgres://admin"), "{file}");
    }
    assert!(!journal_text(&db).contains(ADMIN_PASSWORD));
    let status: Value = serde_json::from_slice(&outputs[4].stdout).expect("status json");
    assert_eq!(status["journal"], db.location().as_str());
    live.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_unreachable_database_exits_1_saying_what_where_and_what_to_do() {
    let live = mixed("pg-wrong").await;
    // Nothing listens on that port: no PostgreSQL needed for this one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let cases: Vec<(String, &str, &str)> = {
        let mut cases = vec![(
            format!("postgres://ops:unreach-Pw9@127.0.0.1:{port}/state"),
            "Connection refused",
            "pg_isready",
        )];
        cases.push((
            "postgres://ops:bad-url-Pw9@127.0.0.1:notaport/state".to_owned(),
            "cannot read the connection string",
            "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ));
        if let Some(db) = database("wrong") {
            cases.push((
                db.dsn().replace(ADMIN_PASSWORD, "wrong-Pw9"),
                "password authentication failed",
                "check the user and password",
            ));
            cases.push((
                db.dsn().replace(&db.name, "no_such_db"),
                "does not exist",
                "createdb",
            ));
        }
        cases
    };
    for (dsn, what, hint) in &cases {
        for command in ["plan", "apply", "status"] {
            let mut args = vec![command, "--state", dsn.as_str(), "live.yaml"];
            if command == "apply" {
                args.insert(1, "--auto-approve");
            }
            let out = run_in(&live.dir, &args, &[]).await;
            let all = text(&out);
            assert_eq!(out.status.code(), Some(1), "{command} {all}");
            assert!(
                all.contains(what) && all.contains(hint) && all.contains("hint:"),
                "{command} {all}"
            );
            assert!(
                !all.contains("Pw9") && !all.contains(ADMIN_PASSWORD),
                "{command} {all}"
            );
        }
    }
    // Nothing was sent to any provider.
    assert_eq!(mutations(&live), [0, 0, 0]);
    live.running.stop().await;
}

#[test]
fn a_database_migrated_by_a_newer_redrive_is_refused() {
    let Some(db) = database("newer") else { return };
    let dir = super::apply::examples_copy("pg-newer");
    let status = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
            .current_dir(dir)
            .args(["status", "--state", &db.dsn(), "venafi-retry.yaml"])
            .output()
            .expect("run")
    };
    let fresh = status(&dir);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));
    assert_eq!(
        db.scalar("SELECT max(version) FROM redrive.schema_version"),
        redrive::state::postgres::SUPPORTED.to_string()
    );
    db.query(
        "INSERT INTO redrive.schema_version (version, description) VALUES (99, 'from the future')",
    );
    let refused = status(&dir);
    let all = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{all}");
    assert!(
        all.contains("schema version 99, newer than this redrive knows"),
        "{all}"
    );
    assert!(all.contains("never downgrades"), "{all}");
}

/// Group commit: 20,000 `sent` records from 64 writers at once share a few hundred commits, and
/// every one is read back. Prints appends/s for PostgreSQL and for the local journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_group_commits_a_burst_and_reads_every_record_back() {
    use redrive::state::{Journal, LocalStore, Record, State, Store as _};
    let Some(db) = database("burst") else { return };
    const RECORDS: usize = 20_000;
    const WRITERS: usize = 64;
    async fn burst(journal: &Journal) -> f64 {
        let clock = std::time::Instant::now();
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..WRITERS {
            let journal = journal.clone();
            writers.spawn(async move {
                for i in (w..RECORDS).step_by(WRITERS) {
                    let record = Record {
                        at: "2026-12-01T00:00:00Z".into(),
                        run: "r1".into(),
                        action: format!("a{i}"),
                        job: "j".into(),
                        target: format!("t{i}"),
                        state: State::Sent,
                        attempt: 1,
                        http_status: None,
                        detail: String::new(),
                    };
                    journal
                        .submit(&record)
                        .expect("queued")
                        .wait()
                        .await
                        .expect("durable");
                }
            });
        }
        while let Some(w) = writers.join_next().await {
            w.expect("writer");
        }
        RECORDS as f64 / clock.elapsed().as_secs_f64()
    }
    let shared = {
        let dsn = redrive::state::postgres::Dsn::parse(&db.dsn()).expect("dsn");
        tokio::task::spawn_blocking(move || {
            redrive::state::postgres::PgStore::connect(&dsn, "burst", "the burst test")
                .expect("connect")
        })
        .await
        .expect("connected")
    };
    let journal = shared.journal().expect("journal");
    let pg_rate = burst(&journal).await;
    let syncs = journal.syncs();
    assert!(
        syncs < (RECORDS / 8) as u64,
        "{RECORDS} records took {syncs} commits"
    );
    let history = tokio::task::spawn_blocking(move || shared.history().expect("history"))
        .await
        .expect("read");
    assert_eq!(history.actions.len(), RECORDS);
    assert!(history.damaged.is_empty());

    let dir = temp_dir("pg-burst-local");
    let local = LocalStore::new(&dir, "burst")
        .journal()
        .expect("local journal");
    let local_rate = burst(&local).await;
    #[expect(clippy::print_stderr, reason = "the figures for BENCHMARKS.md")]
    {
        eprintln!(
            "journal, {RECORDS} synced appends from {WRITERS} writers: PostgreSQL {pg_rate:.0}/s in {syncs} commits, local {local_rate:.0}/s in {} syncs",
            local.syncs()
        );
    }
}
