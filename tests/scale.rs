//! Many problems in one runbook are all reported, each once. The timing lives in
//! `bench/validate-scale.sh` (release build); this only checks the count, in text and JSON.

use redrive::exit::ExitStatus;

use crate::support::redrive;

#[test]
fn twenty_thousand_problems_are_all_reported() {
    const N: usize = 20_000;
    let dir = crate::support::scratch("scale");
    let mut text = String::from(
        "version: 1\nname: many\nproviders:\n  p: {type: http, url: \"https://api.example.com\"}\njobs:\n  - {id: j, provider: p, action: http, with: {url: /x}}\n",
    );
    for i in 0..N {
        text.push_str(&format!("k{i}: 1\n"));
    }
    let file = dir.join("many.yaml");
    std::fs::write(&file, text).expect("write");
    let file = file.to_str().expect("UTF-8");
    let run = redrive(&["validate", file]);
    assert_eq!(run.status, ExitStatus::Invalid);
    assert_eq!(run.stderr.matches("error[unknown-key]").count(), N);
    assert!(run.stderr.contains(&format!("{N} problems found")));
    // The last key is reported at its own line, not at the first one.
    assert!(
        run.stderr.contains(&format!("many.yaml:{}:1", N + 6)),
        "{}",
        &run.stderr[run.stderr.len() - 400..]
    );
    let run = redrive(&["validate", "--format", "json", file]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(
        v["files"][0]["diagnostics"].as_array().map(Vec::len),
        Some(N)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
