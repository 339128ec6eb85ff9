//! The man page (rendered with `man -l`), `--help` examples, described arguments and the flags'
//! accepted spellings.

use clap::{CommandFactory, Parser};
use redrive::cli::args::{Args, Command};
use redrive::exit::ExitStatus;

use crate::reports::tool;
use crate::support::redrive;

#[test]
fn the_man_page_covers_every_command_with_exit_status_and_environment() {
    let run = redrive(&["man"]);
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    let page = &run.stdout;
    assert!(page.contains(".SH \"EXIT STATUS\"") && page.contains(".SH ENVIRONMENT"));
    for sub in Args::command().get_subcommands() {
        assert!(
            page.contains(&format!(".SS \"redrive {}\"", sub.get_name())),
            "no section for `{}`",
            sub.get_name()
        );
    }
    // No references to pages that do not exist.
    assert!(!page.contains("redrive\\-apply(1)") && !page.contains("redrive-apply(1)"));

    if !tool("man", &["--version"]) {
        return;
    }
    let dir = crate::apply::temp_dir("man");
    let file = dir.join("redrive.1");
    std::fs::write(&file, page).expect("write");
    let out = std::process::Command::new("man")
        .arg("--warnings")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man");
    let shown = String::from_utf8_lossy(&out.stdout);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{warnings}");
    assert!(warnings.trim().is_empty(), "man -l warned: {warnings}");
    // What a reader sees, overstrikes removed.
    let plain: String = {
        let mut s = String::new();
        for c in shown.chars() {
            if c == '\u{8}' {
                s.pop();
            } else {
                s.push(c);
            }
        }
        s
    };
    for needle in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "redrive apply [OPTIONS] <FILE|PLAN>",
        "--report-html FILE",
        "130",
        "NO_COLOR",
    ] {
        assert!(
            plain.contains(needle),
            "the rendered page lacks `{needle}`:\n{plain}"
        );
    }
}

#[test]
fn every_command_has_examples_and_described_arguments() {
    let mut cmd = Args::command();
    cmd.build();
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        let run = redrive(&[name, "--help"]);
        let help = format!("{}{}", run.stdout, run.stderr);
        assert!(
            help.contains("Examples:\n  redrive "),
            "`redrive {name} --help` has no examples:\n{help}"
        );
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            assert!(
                arg.get_help().is_some() || arg.get_long_help().is_some(),
                "`redrive {name}`: `{}` is not described",
                arg.get_id()
            );
        }
    }
}

#[test]
fn parallelism_is_at_least_one() {
    let run = redrive(&[
        "apply",
        "--parallelism",
        "0",
        "examples/outage-remediation.yaml",
    ]);
    assert_eq!(run.status, ExitStatus::Invalid);
    assert!(run.stderr.contains("--parallelism"), "{}", run.stderr);
    assert!(Args::try_parse_from(["redrive", "apply", "--parallelism", "1", "x.yaml"]).is_ok());
}

#[test]
fn refresh_false_and_no_refresh_are_the_same() {
    let refresh = |argv: &[&str]| -> (bool, bool) {
        let plan = match Args::try_parse_from(argv)
            .expect("parses")
            .normalized()
            .command
        {
            Command::Plan(a) => a.refresh,
            _ => unreachable!(),
        };
        let mut apply_argv = argv.to_vec();
        apply_argv[1] = "apply";
        let apply = match Args::try_parse_from(apply_argv)
            .expect("parses")
            .normalized()
            .command
        {
            Command::Apply(a) => a.refresh,
            _ => unreachable!(),
        };
        (plan, apply)
    };
    assert_eq!(refresh(&["redrive", "plan", "x.yaml"]), (true, true));
    assert_eq!(
        refresh(&["redrive", "plan", "--refresh", "false", "x.yaml"]),
        (false, false)
    );
    assert_eq!(
        refresh(&["redrive", "plan", "--refresh=false", "x.yaml"]),
        (false, false)
    );
    assert_eq!(
        refresh(&["redrive", "plan", "--no-refresh", "x.yaml"]),
        (false, false)
    );
    // The last spelling wins.
    assert_eq!(
        refresh(&[
            "redrive",
            "plan",
            "--no-refresh",
            "--refresh",
            "true",
            "x.yaml"
        ]),
        (true, true)
    );
}

#[test]
fn the_github_workflow_passes_actionlint() {
    if !tool("actionlint", &["-version"]) {
        return;
    }
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github/redrive.yml");
    let out = std::process::Command::new("actionlint")
        .args(["-oneline", "-no-color", workflow])
        .output()
        .expect("actionlint runs");
    assert!(
        out.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
