//! Every example runbook validates with the real binary.

use std::path::PathBuf;

use assert_cmd::Command;

/// The real binary, built by cargo for the integration tests.
fn redrive() -> Command {
    Command::cargo_bin("redrive").expect("the redrive binary is built")
}

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "examples/ holds runbooks");
    files
}

#[test]
fn every_example_validates() {
    for file in examples() {
        let out = redrive().arg("validate").arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_example_has_the_schema_modeline() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/redrive.schema.json\n"),
            "{} must start with the yaml-language-server modeline",
            file.display()
        );
    }
}

#[test]
fn every_example_renders() {
    for file in examples() {
        for format in ["yaml", "json"] {
            let out = redrive()
                .args(["render", "--format", format])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} does not render:\n{}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(
                text.contains("format_version"),
                "{}: no rendered document on stdout",
                file.display()
            );
        }
    }
}

#[test]
fn an_example_expands_its_input_file() {
    let out = redrive()
        .args([
            "render",
            "--format",
            "json",
            "examples/digicert-bulk-retry.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    let rows = std::fs::read_to_string("examples/inputs/failed-automations.csv").unwrap();
    // One action per data row (the header names the columns).
    let expected = rows
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(
        jobs[0]["actions"].as_array().unwrap().len(),
        expected,
        "one action per CSV row"
    );
}

#[test]
fn the_flagship_discovers_its_targets() {
    let runbook = std::fs::read_to_string("examples/outage-remediation.yaml").unwrap();
    // Every job reads a source: no hand-made list of DNs, automations or task ids.
    let rb: serde_json::Value = serde_saphyr::from_str(&runbook).unwrap();
    for job in rb["jobs"].as_array().unwrap() {
        let from = job["for_each"].as_str().unwrap_or_default();
        assert!(
            from.contains("sources."),
            "job {} does not discover: {from}",
            job["id"]
        );
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = redrive().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("validate"),
            "{shell} completion lists subcommands"
        );
    }
    let out = redrive().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH"), "roff output");
    assert!(man.contains("validate") && man.contains("render"));
}

#[test]
fn oversized_runbook_is_refused() {
    let dir = crate::support::scratch("big");
    let path = dir.join("big.yaml");
    let mut text = String::from("version: 1\nname: big\ndescription: |\n");
    while text.len() <= 4 * 1024 * 1024 {
        text.push_str("  padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    let out = redrive().arg("validate").arg(&path).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("file-too-large"));
}

/// `redrive sandbox` as a user runs it: the binary prints five URLs, they answer, and SIGTERM
/// stops it.
#[test]
fn sandbox_command_serves_five_providers() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;
    use std::time::Duration;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args(["sandbox", "--port", "0", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start `redrive sandbox`");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the sandbox prints one JSON line");
    let urls: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let providers = urls["providers"].as_object().expect("providers");
    assert_eq!(
        providers.keys().collect::<Vec<_>>(),
        ["venafi_tpp", "digicert", "vcf", "otc_waf", "ncloud"]
    );
    for url in providers.values() {
        let url = url.as_str().expect("a URL");
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host:port");
        assert!(authority.starts_with("127.0.0.1:"), "{url} is loopback");
        let mut stream = TcpStream::connect(authority).expect("the listener accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        stream
            .write_all(b"GET /_sandbox/stats?targets=false HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"providers\""), "{answer}");
    }
    // SIGTERM is how CI and process managers stop it; it must exit cleanly.
    let killed = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sandbox_refuses_a_bad_scenario_with_its_location() {
    let dir = crate::support::scratch("scenario");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "seed: 1\nvenafi_tpp:\n  procesing: 1s\n").expect("write");
    let out = redrive()
        .args(["sandbox", "--port", "0", "--scenario"])
        .arg(&file)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(stderr.contains("procesing"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kubernetes_example_runs_cooperating_runners_on_one_state() {
    let text = std::fs::read_to_string("examples/kubernetes/redrive-runners.yaml").unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let spec = &job["spec"];
    assert_eq!(job["kind"], "Job");
    assert_eq!(spec["completionMode"], "Indexed");
    let runners = spec["parallelism"].as_u64().unwrap();
    assert!(runners > 1 && spec["completions"].as_u64() == Some(runners));
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // Every pod applies the same saved plan: that is what makes them one cooperative run.
    assert_eq!(args[0], "apply");
    assert!(args[1].ends_with(".plan.json") && args.contains(&"--auto-approve"));
    let env = container["env"].as_array().unwrap();
    let state = env.iter().find(|e| e["name"] == "REDRIVE_STATE").unwrap();
    assert!(
        state["valueFrom"]["secretKeyRef"].is_object(),
        "the DSN comes from a Secret"
    );
    assert!(!text.contains("postgres://redrive:") || text.contains("…@"));
}
