//! The shape the code promises (README, "Adding a provider"): providers and the sandbox never
//! import each other, no provider or action kind is matched outside the registry, the manifest
//! model and the CLI's rehearsal wiring, and no source file passes 500 lines.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a source file");
            (p.display().to_string(), text)
        })
        .collect()
}

/// The text before a file's unit tests.
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

#[test]
fn only_the_cli_brings_the_sandbox_and_the_providers_together() {
    for (path, text) in all() {
        let code = code(&text);
        if !path.starts_with("src/sandbox") && !path.starts_with("src/cli") {
            assert!(
                !code.contains("crate::sandbox"),
                "{path} imports the sandbox"
            );
        }
        if path.starts_with("src/sandbox") {
            assert!(
                !code.contains("crate::providers"),
                "{path} imports the clients"
            );
        }
    }
}

#[test]
fn no_provider_or_action_kind_is_matched_outside_the_registry_and_the_model() {
    let allowed = ["src/manifest/", "src/providers/registry.rs", "src/sandbox/"];
    for (path, text) in all() {
        if allowed.iter().any(|a| path.starts_with(a)) {
            continue;
        }
        let code = code(&text);
        for kind in [
            "ProviderType::",
            "ActionKind::",
            "ActionParams::",
            "Client::",
        ] {
            // `reqwest::Client::builder()` is the HTTP client, not ours.
            let ours = code
                .match_indices(kind)
                .any(|(i, _)| !code[..i].ends_with("reqwest::"));
            assert!(
                !ours,
                "{path} matches on `{kind}`: add a method to the provider seam instead"
            );
        }
    }
}

#[test]
fn no_source_file_passes_500_lines() {
    for (path, text) in all() {
        let lines = text.lines().count();
        assert!(
            lines <= 500,
            "{path} has {lines} lines: split it along a seam"
        );
    }
}
