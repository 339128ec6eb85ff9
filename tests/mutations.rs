//! Property test: random edits of the valid examples never panic, and every outcome is either
//! a valid runbook or at least one located error (what `validate` turns into exit 0 or 3).

use std::path::PathBuf;

use proptest::prelude::*;
use redrive::manifest::diagnostic::Severity;
use redrive::manifest::runbook;

fn examples() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir("examples")
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p, text)
        })
        .collect();
    out.sort();
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop_oneof![
        Just(": ".to_owned()),
        Just("\n  - ".to_owned()),
        Just("{{ item }}".to_owned()),
        Just("{{ ".to_owned()),
        Just("{% for".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("\t".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("---\n".to_owned()),
        Just("password: hunter2\n".to_owned()),
        Just("? [x]\n: 1\n".to_owned()),
        Just("999999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("~".to_owned()),
        Just("ü€".to_owned()),
        "[a-z_{}%:\\- \n]{1,12}",
    ];
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), fragment).prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, e: &Edit) -> String {
    let mut s = text.to_owned();
    match e {
        Edit::Delete { at, len } => {
            let a = boundary(&s, *at);
            let b = boundary(&s, (a + len).min(s.len()));
            s.replace_range(a..b.max(a), "");
        }
        Edit::Insert { at, text } => {
            let a = boundary(&s, *at);
            s.insert_str(a, text);
        }
        Edit::DuplicateLine { line } => {
            let mut lines: Vec<&str> = s.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i]);
            }
            s = lines.join("\n");
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<&str> = s.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a % lines.len(), b % lines.len());
                lines.swap(a, b);
            }
            s = lines.join("\n");
        }
        Edit::Truncate { at } => {
            let a = boundary(&s, *at);
            s.truncate(a);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..4)) {
        let all = examples();
        let (path, text) = &all[which % all.len()];
        let mut mutated = text.clone();
        for e in &edits {
            mutated = apply(&mutated, e);
        }
        match runbook::validate(runbook::load_text(path, mutated)) {
            Ok(_) => {}
            Err(problems) => {
                prop_assert!(problems.0.iter().any(|d| d.severity == Severity::Error), "rejected without an error");
                for d in &problems.0 {
                    let text = redrive::ui::diagnostic::render(d, false);
                    prop_assert!(text.contains("error[") || text.contains("warning["));
                }
            }
        }
    }
}
