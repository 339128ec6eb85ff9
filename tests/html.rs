//! `--report-html`: one self-contained file whose script draws the charts, checked in headless
//! Chromium (the DOM after the script ran).

use std::path::Path;
use std::process::Command;

use crate::apply::{examples_copy, redrive, text};
use crate::reports::tool;

/// Chromium as the test runs it: no network services, no profile of its own, no GPU.
pub(crate) fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

#[test]
fn html_report_is_self_contained_and_its_charts_are_drawn() {
    let dir = examples_copy("html");
    let out = redrive(
        &dir,
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "outage-remediation.yaml",
            "--report-html",
            "report.html",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(dir.join("report.html")).expect("the report");
    // Self-contained: nothing loaded from anywhere, and a policy that forbids it.
    assert!(html.contains("default-src 'none'"), "no CSP");
    for attr in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(attr), "the report references `{attr}`");
    }
    let without_svg_ns = html.replace("\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_svg_ns.contains("http://") && !without_svg_ns.contains("https://"),
        "the report names a URL"
    );
    assert!(html.contains("Results by job") && html.contains("Results by reason"));
    assert!(html.contains("<code>venafi-retry</code>"));

    if !tool("chromium", &["--version"]) {
        return;
    }
    let profile = dir.join("chromium-profile");
    let dom = chromium(&profile)
        .arg("--dump-dom")
        .arg(dir.join("report.html"))
        .output()
        .expect("chromium");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("data-charts=\"drawn\""),
        "the script did not finish: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for id in [
        "in-flight",
        "throughput",
        "latency",
        "retries",
        "throttled",
        "waves",
    ] {
        assert!(
            dom_text.contains(&format!("<figure id=\"{id}\"")),
            "no {id} chart"
        );
    }
    assert!(count(&dom_text, "class=\"series\"") >= 4, "lines drawn");
    assert!(
        count(&dom_text, "class=\"bar\"") >= 1,
        "throughput bars drawn"
    );
    // The outage runbook's Venafi job rolls out in three waves: three bars on its row, and
    // wave markers on the charts.
    assert!(count(&dom_text, "class=\"wave-bar\"") >= 6, "waves drawn");
    assert!(dom_text.contains("wave 3/3"), "waves labelled");
    assert!(count(&dom_text, "class=\"wave\"") >= 2, "wave markers");

    // A screenshot renders too (what `docs/report.png` is made with).
    let png = dir.join("report.png");
    let shot = chromium(&profile)
        .arg("--window-size=1000,1900")
        .arg(format!("--screenshot={}", png.display()))
        .arg(dir.join("report.html"))
        .output()
        .expect("chromium");
    let bytes = std::fs::read(&png).unwrap_or_default();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    // `REDRIVE_BLESS=1` refreshes the README's screenshot of this report.
    if std::env::var_os("REDRIVE_BLESS").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).expect("docs/");
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.png"),
            &bytes,
        )
        .expect("docs/report.png");
    }
}

#[test]
fn the_readme_shows_the_report() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    assert!(readme.contains("![The HTML report of the quick start](docs/report.png)"));
    let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.png"))
        .expect("docs/report.png");
    assert!(png.starts_with(b"\x89PNG"));
}
