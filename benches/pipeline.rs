//! Benchmarks of the offline pipeline: `validate` of a 1,000-line runbook and `render` of a
//! `for_each` over 100,000 items (targets: under 50 ms and under 2 s in release).

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

criterion_group!(benches, bench_validate, bench_render);
criterion_main!(benches);
