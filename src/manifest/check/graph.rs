//! The `needs` graph: every need names another job, and the graph has no cycle.

use std::collections::HashMap;

use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::model::Manifest;
use crate::suggest::did_you_mean;

pub(super) fn needs_graph(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    let ids: HashMap<&str, usize> = m
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); m.jobs.len()];
    for (i, job) in m.jobs.iter().enumerate() {
        for (k, need) in job.needs.iter().enumerate() {
            let ptr = format!("/jobs/{i}/needs/{k}");
            if need == &job.id {
                out.push(
                    Diagnostic::error("self-need", format!("job `{}` needs itself", job.id))
                        .at(
                            &doc.file,
                            doc.value_span(&ptr),
                            "a job cannot wait for itself",
                        )
                        .pointer(ptr)
                        .help("remove it from `needs`"),
                );
                continue;
            }
            match ids.get(need.as_str()) {
                Some(&j) => edges[i].push(j),
                None => {
                    let help = did_you_mean(need, m.jobs.iter().map(|j| j.id.as_str()))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "jobs in this runbook: {}",
                                m.jobs
                                    .iter()
                                    .map(|j| j.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                    out.push(
                        Diagnostic::error(
                            "unknown-need",
                            format!("job `{}` needs `{need}`, which is not a job", job.id),
                        )
                        .at(&doc.file, doc.value_span(&ptr), "no job has this id")
                        .pointer(ptr)
                        .help(help),
                    );
                }
            }
        }
    }
    // Colour-marking DFS; each cycle is reported once, at the job where it was entered.
    let mut state = vec![0u8; m.jobs.len()];
    let mut stack = Vec::new();
    for start in 0..m.jobs.len() {
        if state[start] == 0 {
            visit(start, &edges, &mut state, &mut stack, &mut |cycle| {
                let names: Vec<&str> = cycle.iter().map(|&i| m.jobs[i].id.as_str()).collect();
                let first = cycle[0];
                let ptr = format!("/jobs/{first}/needs");
                out.push(
                    Diagnostic::error("needs-cycle", format!("the `needs` of these jobs form a cycle: {} → {}", names.join(" → "), names[0]))
                        .at(&doc.file, doc.key_span(&ptr), "part of the cycle")
                        .pointer(ptr)
                        .help("jobs run after the jobs they need, so a cycle can never start; remove one of these `needs`"),
                );
            });
        }
    }
}

fn visit(
    n: usize,
    edges: &[Vec<usize>],
    state: &mut [u8],
    stack: &mut Vec<usize>,
    report: &mut dyn FnMut(Vec<usize>),
) {
    state[n] = 1;
    stack.push(n);
    for &next in &edges[n] {
        match state[next] {
            0 => visit(next, edges, state, stack, report),
            1 => {
                let pos = stack.iter().position(|&s| s == next).unwrap_or(0);
                report(stack[pos..].to_vec());
            }
            _ => {}
        }
    }
    stack.pop();
    state[n] = 2;
}
