//! Benchmarks of the pipeline's parts: `validate` of a 1,000-line runbook, `render` of a
//! `for_each` over 100,000 items, plan `resolve` of 10,000 actions, and journal appends
//! (64 concurrent writers sharing group-committed syncs).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use redrive::manifest::runbook;

/// A runbook of about `lines` lines: one provider and many small Venafi jobs.
fn long_runbook(lines: usize) -> String {
    let mut text = String::from(
        "version: 1\nname: bench\nvars:\n  root: '\\VED\\Policy\\Bench'\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth:\n      username: bench\n      password: {env: TPP_PASSWORD}\njobs:\n",
    );
    let mut i = 0;
    while text.lines().count() < lines {
        let _ = write!(
            text,
            "  - id: job-{i}\n    provider: tpp\n    action: retry_certificate\n    needs: [{}]\n    for_each: [a{i}, b{i}, c{i}]\n    when: item != 'skip'\n    with:\n      certificate_dn: '{{{{ vars.root }}}}\\{{{{ item }}}}'\n      work_to_do_timeout: 30\n",
            if i == 0 {
                String::new()
            } else {
                format!("job-{}", i - 1)
            }
        );
        i += 1;
    }
    text
}

fn bench_validate(c: &mut Criterion) {
    let text = long_runbook(1_000);
    let path = PathBuf::from("bench.yaml");
    c.bench_function("validate 1000-line runbook", |b| {
        b.iter(|| {
            let result = runbook::validate(runbook::load_text(&path, black_box(text.clone())));
            assert!(result.is_ok());
        });
    });
}

fn bench_render(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("redrive-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut dns = String::new();
    for i in 0..100_000 {
        let _ = writeln!(dns, "\\VED\\Policy\\Bench\\host-{i}.example.com");
    }
    std::fs::write(dir.join("dns.txt"), dns).expect("input written");
    let text = "version: 1\nname: bench\ninputs:\n  dns: {file: dns.txt}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {username: bench, password: {env: TPP_PASSWORD}}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: '{{ inputs.dns }}'\n    with:\n      certificate_dn: '{{ item }}'\n      work_to_do_timeout: 60\n";
    let path = dir.join("bench.yaml");
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("for_each over 100000 items", |b| {
        b.iter(|| {
            let rb = runbook::load_text(&path, text.to_owned()).expect("valid");
            let jobs = rb.render(None, &[]).expect("renders");
            assert_eq!(jobs[0].actions.len(), 100_000);
            black_box(jobs);
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn bench_resolve(c: &mut Criterion) {
    use redrive::plan::{items, resolve};
    let dir = std::env::temp_dir().join(format!("redrive-bench-resolve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut dns = String::new();
    for i in 0..10_000 {
        let _ = writeln!(dns, "\\VED\\Policy\\Bench\\host-{i}.example.com");
    }
    std::fs::write(dir.join("dns.txt"), dns).expect("input written");
    let text = "version: 1\nname: bench\ninputs:\n  dns: {file: dns.txt}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {username: bench, password: {env: TPP_PASSWORD}}\njobs:\n  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: '{{ inputs.dns }}'\n    with:\n      certificate_dn: '{{ item }}'\n";
    let rb = runbook::load_text(&dir.join("bench.yaml"), text.to_owned()).expect("valid");
    let mut jobs = rb.render(None, &[]).expect("renders");
    let (name, provider) = rb.manifest.providers.first().expect("a provider");
    let client = redrive::providers::build(
        name,
        provider,
        "https://tpp.example.com",
        rb.dir(),
        None,
        std::sync::Arc::new(redrive::state::tokens::MemoryTokens::default()),
        std::sync::Arc::new(redrive::limits::Limiter::unlimited()),
    )
    .expect("a client");
    let all = items::expand(&mut jobs, |_, work| client.target(work));
    let meta = resolve::Meta {
        created_at: String::new(),
        runbook: redrive::plan::FileDigest {
            name: None,
            path: "bench.yaml".into(),
            sha256: String::new(),
        },
        inputs: Vec::new(),
        sandbox: false,
        refreshed: false,
        targets: Vec::new(),
        pulled_in: Vec::new(),
        vars: indexmap::IndexMap::new(),
    };
    let history = redrive::state::History::default();
    let rules = resolve::Rules {
        history: &history,
        replace: &[],
        new_need: &|_| false,
        took_effect: &|_, _, _| false,
        simulated: &|_| true,
        approved: None,
    };
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.bench_function("resolve 10000 actions", |b| {
        b.iter(|| {
            let plan = resolve::resolve(
                meta.clone(),
                &rb.manifest,
                &jobs,
                all.clone(),
                Vec::new(),
                &rules,
                |item| client.preview(&item.what),
            );
            assert_eq!(plan.summary.run, 10_000);
            black_box(plan);
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn bench_journal(c: &mut Criterion) {
    use redrive::state::{Journal, Record, State};
    let dir = std::env::temp_dir().join(format!("redrive-bench-journal-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let journal = runtime
        .block_on(async { Journal::open(&dir.join("bench.journal.jsonl")).expect("a journal") });
    let record = Record {
        at: "2026-11-24T00:00:00Z".into(),
        run: "1".into(),
        action: "0123456789abcdef".into(),
        job: "retry".into(),
        target: "\\VED\\Policy\\Bench\\host-1.example.com".into(),
        state: State::Succeeded,
        attempt: 1,
        http_status: Some(200),
        detail: "retry started".into(),
    };
    let mut group = c.benchmark_group("journal");
    group.sample_size(20);
    group.bench_function("1000 synced appends from 64 writers", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for w in 0..64 {
                    let (journal, record) = (journal.clone(), record.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in (w..1000).step_by(64) {
                            journal.append(&record).await.expect("append");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("writer");
                }
            });
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(
    benches,
    bench_validate,
    bench_render,
    bench_resolve,
    bench_journal
);
criterion_main!(benches);
