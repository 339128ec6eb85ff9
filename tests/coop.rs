//! The cooperative apply (issue 18, step 2) end to end: several `redrive apply PLAN --state DSN`
//! processes share one saved plan against one `redrive sandbox` process on loopback and a
//! throw-away PostgreSQL cluster (`pg_cluster`); runners are killed with SIGKILL mid-run. The
//! sandbox's own counts say what was sent; the shared journal says what is final.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::apply::temp_dir;
use super::pg_cluster::{Db, database};
use super::processes::{Ended, Runner, Sandbox, redrive};

/// How many actions of each provider a fixture plans.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    venafi: usize,
    digicert: usize,
    ncloud: usize,
    vcf: usize,
}

impl Sizes {
    fn total(self) -> usize {
        self.venafi + self.digicert + self.ncloud + self.vcf
    }
}

/// The DigiCert automations' addresses: the generator counts up from `10.50.0.1`.
fn ip(n: usize) -> String {
    let v = (10u32 << 24 | 50 << 16) + u32::try_from(n).expect("small");
    format!(
        "{}.{}.{}.{}",
        v >> 24,
        (v >> 16) & 255,
        (v >> 8) & 255,
        v & 255
    )
}

fn task_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A sandbox with `sizes` objects in need, and a runbook over all five providers in `dir` (the
/// OTC WAF as a read-only source), planned into `plan.json` against `db`.
fn fixture(name: &str, sizes: Sizes, db: &Db) -> (Sandbox, PathBuf) {
    let dir = temp_dir(name);
    let tasks: String = (1..=sizes.vcf)
        .map(|n| format!("    - {{id: {}, operation_type: ROTATE, resources: [{{name: esx{n}.example.com}}], outcome: succeeds}}\n", task_id(n)))
        .collect();
    let tasks = if tasks.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{tasks}")
    };
    let scenario = format!(
        "seed: 7\nvenafi_tpp:\n  processing: 1h\n  token_ttl: 24h\n  generate: [{{count: {}, parent: '\\VED\\Policy\\Coop', name: 'c{{n}}'}}]\ndigicert:\n  generate: [{{count: {}, first_ip: 10.50.0.1}}]\nncloud:\n  processing: 10ms\n  generate: [{{count: {}, first_no: 1000}}]\nvcf:\n  tasks:{tasks}otc_waf:\n  generate: [{{count: 5}}]\n",
        sizes.venafi, sizes.digicert, sizes.ncloud
    );
    let sandbox = Sandbox::start(&dir, &scenario);
    let lines = |items: Vec<String>| items.join("\n") + "\n";
    let write = |file: &str, items: Vec<String>| {
        std::fs::write(dir.join(file), lines(items)).expect("write an input");
    };
    write(
        "dns.txt",
        (1..=sizes.venafi)
            .map(|n| format!("\\VED\\Policy\\Coop\\c{n}"))
            .collect(),
    );
    write("ips.txt", (0..sizes.digicert).map(|n| ip(n + 1)).collect());
    write(
        "nos.txt",
        (0..sizes.ncloud).map(|n| (1000 + n).to_string()).collect(),
    );
    write("tasks.txt", (1..=sizes.vcf).map(task_id).collect());
    let iam = sandbox.urls["otc_iam_url"]
        .as_str()
        .expect("the OTC IAM url")
        .to_owned();
    // Non-idempotent providers time out in 10 s: a takeover of a request that was on its way
    // when its runner died waits that long twice (token and request) before it looks.
    let runbook = format!(
        "version: 1\nname: coop\ninputs:\n  dns: {{file: dns.txt}}\n  ips: {{file: ips.txt}}\n  nos: {{file: nos.txt}}\n  tasks: {{file: tasks.txt}}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: {}\n    auth: {{client_id: redrive, username: svc-redrive, password: {{env: TPP_PASSWORD}}, scope: 'certificate:manage'}}\n    limits: {{concurrency: 16}}\n  ncp:\n    type: ncloud\n    url: {}\n    auth: {{access_key: {{env: NCP_AK}}, secret_key: {{env: NCP_SK}}}}\n    limits: {{concurrency: 16}}\n    timeout: 10s\n  sddc:\n    type: vcf\n    url: {}\n    auth: {{username: administrator@vsphere.local, password: {{env: VCF_PASSWORD}}}}\n    limits: {{concurrency: 1}}\n    timeout: 10s\n  dc:\n    type: digicert\n    url: {}\n    auth: {{api_key: {{env: DC_KEY}}}}\n    limits: {{concurrency: 4}}\n    timeout: 10s\n  waf:\n    type: otc_waf\n    url: {}\n    auth: {{iam_url: '{iam}', project_id: 0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c, project_name: eu-de, domain: OTC-EU-DE-00000000001000045678, username: svc-redrive-readonly, password: {{env: TPP_PASSWORD}}}}\nsources:\n  waf:\n    provider: waf\n    type: certificates\njobs:\n  - id: venafi\n    provider: tpp\n    action: retry_certificate\n    for_each: \"{{{{ inputs.dns }}}}\"\n    with: {{certificate_dn: \"{{{{ item }}}}\"}}\n  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    for_each: \"{{{{ inputs.ips }}}}\"\n    with: {{account_id: 5153184, batch_size: 5, targets: [{{ip: \"{{{{ item }}}}\", port: 443}}]}}\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{{{ inputs.nos }}}}\"\n    with: {{certificate_no: \"{{{{ item | int }}}}\", csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: \"n{{{{ item }}}}\", common_name: \"c{{{{ item }}}}.example.co.kr\"}}\n  - id: rotate\n    provider: sddc\n    action: retry_credentials_task\n    for_each: \"{{{{ inputs.tasks }}}}\"\n    with: {{task_id: \"{{{{ item }}}}\", operation_type: ROTATE, elements: [{{resource_type: ESXI, credentials: [{{username: root}}]}}]}}\n    wait: {{interval: 50ms, timeout: 60s}}\n",
        sandbox.url("venafi_tpp"),
        sandbox.url("ncloud"),
        sandbox.url("vcf"),
        sandbox.url("digicert"),
        sandbox.url("otc_waf"),
    );
    std::fs::write(dir.join("coop.yaml"), runbook).expect("write the runbook");
    let out = redrive(
        &dir,
        &[
            "plan",
            "--refresh=false",
            "--out",
            "plan.json",
            "--state",
            &db.dsn(),
            "coop.yaml",
        ],
    )
    .wait_for(Duration::from_secs(300));
    assert_eq!(out.code, Some(2), "{}", out.all);
    (sandbox, dir)
}

fn apply(dir: &Path, db: &Db, extra: &[&str]) -> Runner {
    let dsn = db.dsn();
    // The saved plan was made without reading the providers; so are the applies (20,000 reads
    // per runner would be the test's whole time).
    let mut args = vec![
        "apply",
        "--auto-approve",
        "--refresh=false",
        "--state",
        &dsn,
    ];
    args.extend_from_slice(extra);
    args.push("plan.json");
    redrive(dir, &args)
}

/// How many actions of the runbook are final in the shared journal (any run).
fn finals(db: &Db) -> usize {
    db.scalar("SELECT count(DISTINCT action) FROM redrive.journal WHERE state_key = 'coop' AND state NOT IN ('planned', 'sent')")
        .parse()
        .unwrap_or(0)
}

/// The summary line every runner prints (`N succeeded, …`), for comparing runners.
fn summary(e: &Ended) -> String {
    e.stdout
        .lines()
        .rev()
        .find(|l| l.contains("succeeded"))
        .unwrap_or("")
        .to_owned()
}

/// The `N word` pairs of a summary line (`Apply: 3 succeeded, 1 converged, …`).
fn counts(line: &str) -> Vec<(String, usize)> {
    let words: Vec<&str> = line
        .split([' ', ',', '.', ':'])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter_map(|w| Some((w[1].to_owned(), w[0].parse().ok()?)))
        .collect()
}

/// A pseudo-random moment from the clock, within `range` ms: not the same in every run.
fn moment(range: std::ops::Range<u64>) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    Duration::from_millis(range.start + u64::from(nanos) % (range.end - range.start))
}

/// The non-idempotent providers: every target changed once, none twice.
fn assert_sent_once(sandbox: &Sandbox, sizes: Sizes) {
    for (kind, want) in [
        ("ncloud", sizes.ncloud),
        ("vcf", sizes.vcf),
        ("digicert", sizes.digicert),
    ] {
        let stats = sandbox.provider(kind);
        assert_eq!(stats["mutations"], want as u64, "{kind}: {stats}");
        assert_eq!(stats["duplicate_mutations"], 0, "{kind}: {stats}");
    }
}

#[test]
fn four_runners_share_twenty_thousand_actions_while_one_is_killed() {
    let Some(db) = database("coop_four") else {
        return;
    };
    let sizes = Sizes {
        venafi: 14_780,
        digicert: 1_500,
        ncloud: 3_700,
        vcf: 20,
    };
    assert_eq!(sizes.total(), 20_000);
    let (sandbox, dir) = fixture("coop-four", sizes, &db);
    let started = Instant::now();
    let mut runners: Vec<Runner> = (0..4).map(|_| apply(&dir, &db, &["--quiet"])).collect();
    // One of them dies at a random moment while the run is under way: once a random share of
    // the actions is final (bounded in time).
    let victim = runners.remove(usize::try_from(started.elapsed().as_nanos() % 4).unwrap_or(0));
    let target = usize::try_from(moment(1_000..12_000).as_millis()).unwrap_or(5_000);
    let until = Instant::now() + Duration::from_secs(300);
    // And only while it holds leases (its owner is `host/pid/nonce`): a runner still starting
    // up when the others reach the target holds none, and its death would test nothing.
    let held = format!(
        "SELECT count(*) FROM redrive.leases WHERE state_key = 'coop' AND status = 'leased' AND owner LIKE '%/{}/%'",
        victim.pid()
    );
    let holds = || db.scalar(&held).parse::<usize>().unwrap_or(0) > 0;
    let mut at_kill = finals(&db);
    while (at_kill < target || !holds()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        at_kill = finals(&db);
    }
    let when = started.elapsed();
    victim.kill_9();
    let ended: Vec<Ended> = runners
        .into_iter()
        .map(|r| r.wait_for(Duration::from_secs(600)))
        .collect();
    let took = started.elapsed();
    for e in &ended {
        assert_eq!(e.code, Some(0), "{}", e.all);
    }
    // The shared summary: every survivor prints the same tally, over all 20,000 actions.
    let line = summary(&ended[0]);
    let tally = counts(&line);
    assert_eq!(
        tally.iter().map(|(_, n)| n).sum::<usize>(),
        sizes.total(),
        "{line}"
    );
    for bad in ["skipped", "failed", "unknown"] {
        assert!(tally.contains(&(bad.to_owned(), 0)), "{line}");
    }
    for e in &ended[1..] {
        assert_eq!(summary(e), line, "{}", e.all);
    }
    assert_eq!(finals(&db), sizes.total());
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM redrive.leases WHERE state_key = 'coop' AND status <> 'done'"
        ),
        "0"
    );
    assert_sent_once(&sandbox, sizes);
    let digicert = sandbox.provider("digicert");
    assert_eq!(digicert["throttled_429"], 0, "{digicert}");
    // Every Venafi certificate was retried (convergent: a resend is harmless, none is lost).
    let venafi = sandbox.provider("venafi_tpp");
    let retried = venafi["by_endpoint"]["POST /vedsdk/certificates/retry"]
        .as_u64()
        .unwrap_or(0);
    assert!(retried >= sizes.venafi as u64, "{venafi}");
    // The work was shared: more than one runner wrote `sent` records.
    let writers: usize = db
        .scalar("SELECT count(DISTINCT runner) FROM redrive.journal WHERE state_key = 'coop' AND state = 'sent'")
        .parse()
        .unwrap_or(0);
    assert!(writers >= 3, "{writers} runner(s) sent");
    // The killed runner held leases: they were claimed again after they expired.
    let again: usize = db
        .scalar("SELECT count(*) FROM redrive.leases WHERE state_key = 'coop' AND claims > 1")
        .parse()
        .unwrap_or(0);
    assert!(
        again > 0,
        "no lease was taken over (killed at {at_kill} final)"
    );
    let observed = db.scalar(
        "SELECT count(*) FROM redrive.journal WHERE state_key = 'coop' AND detail LIKE 'taken over from%'",
    );
    #[expect(
        clippy::print_stderr,
        reason = "the figures of the run, for BENCHMARKS.md"
    )]
    {
        eprintln!(
            "coop: 4 runners, 20000 actions, runner killed after {when:?} ({at_kill} final then), all final in {took:?}; {again} leases taken over, {observed} sent actions reconciled by observation; venafi retries {retried}, digicert {} requests {} 429s",
            digicert["requests"], digicert["throttled_429"]
        );
    }
}

#[test]
fn a_different_apply_of_the_runbook_is_refused_while_a_cooperative_run_lasts() {
    let Some(db) = database("coop_other") else {
        return;
    };
    let sizes = Sizes {
        venafi: 2_000,
        digicert: 0,
        ncloud: 0,
        vcf: 0,
    };
    let (_sandbox, dir) = fixture("coop-other", sizes, &db);
    // Another plan of the same runbook: made later, so another file.
    let other = redrive(
        &dir,
        &[
            "plan",
            "--refresh=false",
            "--out",
            "other.json",
            "--state",
            &db.dsn(),
            "coop.yaml",
        ],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(other.code, Some(2), "{}", other.all);
    let first = apply(&dir, &db, &["--quiet", "--parallelism", "2"]);
    // Bounded: until the run holds the lock.
    let until = Instant::now() + Duration::from_secs(60);
    while db.scalar("SELECT count(*) FROM redrive.locks WHERE run IS NOT NULL") != "1" {
        assert!(
            Instant::now() < until,
            "the first apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dsn = db.dsn();
    let second = redrive(
        &dir,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--state",
            &dsn,
            "other.json",
        ],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(second.code, Some(5), "{}", second.all);
    assert!(
        second
            .all
            .contains("another apply of this runbook is running"),
        "{}",
        second.all
    );
    // Nor a plain apply of the runbook.
    let plain = redrive(
        &dir,
        &["apply", "--auto-approve", "--state", &dsn, "coop.yaml"],
    )
    .wait_for(Duration::from_secs(120));
    assert_eq!(plain.code, Some(5), "{}", plain.all);
    let first = first.wait_for(Duration::from_secs(300));
    assert_eq!(first.code, Some(0), "{}", first.all);
}

#[test]
fn after_every_runner_is_killed_the_next_apply_recovers_without_manual_steps() {
    let Some(db) = database("coop_all_killed") else {
        return;
    };
    let sizes = Sizes {
        venafi: 1_000,
        digicert: 200,
        ncloud: 1_000,
        vcf: 5,
    };
    let (sandbox, dir) = fixture("coop-all-killed", sizes, &db);
    let runners: Vec<Runner> = (0..2)
        .map(|_| apply(&dir, &db, &["--quiet", "--parallelism", "4"]))
        .collect();
    // Bounded: until some actions are final, then both die at once.
    let until = Instant::now() + Duration::from_secs(120);
    while finals(&db) < 50 {
        assert!(Instant::now() < until, "nothing became final");
        std::thread::sleep(Duration::from_millis(10));
    }
    for r in runners {
        r.kill_9();
    }
    let at_kill = finals(&db);
    assert!(
        at_kill < sizes.total(),
        "the runners finished before the kill"
    );
    // The next apply takes the expired lock and leases over, reconciles what was sent without
    // an answer, and finishes the rest.
    let next = apply(&dir, &db, &[]).wait_for(Duration::from_secs(600));
    assert_eq!(next.code, Some(0), "{}", next.all);
    assert_eq!(finals(&db), sizes.total());
    assert_sent_once(&sandbox, sizes);
}
