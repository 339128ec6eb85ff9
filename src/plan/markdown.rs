//! The plan as Markdown for a pull-request comment: a hidden marker CI can find its comment by,
//! a summary table per job, non-idempotent actions called out, and folded details whose tables
//! are bounded per job ("first N … and M more") so the whole stays under GitHub's limit.
//!
//! Escaping follows GitHub Flavored Markdown, checked through a GFM renderer in the tests:
//! text is backslash-escaped (every ASCII punctuation character may be), code spans are fenced
//! with more backticks than they contain and keep backslashes as they are (a backslash escape
//! does not work inside a code span), and `|` is `\|` everywhere in a table row.

use std::fmt::Write as _;

use super::describe::{facts, key_params};
use super::{Decision, Plan, PlanAction, PlanJob};
use crate::providers::Idempotency;

/// GitHub refuses comments longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_535;
/// Room kept for the note that says details were left out.
const MARGIN: usize = 1_000;

/// Text in a table cell, shown literally: ASCII punctuation backslash-escaped, line breaks as
/// spaces.
#[must_use]
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A code span in a table cell, shown literally (backslashes stay single).
///
/// A backslash right before a `|` cannot be written inside a code span of a GFM table (the
/// table reads `\|` as an escaped pipe first), so such text falls back to escaped plain text.
#[must_use]
pub fn code(text: &str) -> String {
    code_span(text, true)
}

/// A code span; in a table row `|` is written `\|`, elsewhere it stays as it is.
#[must_use]
pub fn code_span(text: &str, in_table: bool) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    if (in_table && flat.contains("\\|")) || flat.trim().is_empty() {
        return self::text(&flat);
    }
    // One more backtick than the longest run inside.
    let mut longest = 0;
    let mut run = 0;
    for c in flat.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick, or with spaces at both ends, is padded: the
    // renderer strips one space from each end.
    let pad = flat.starts_with('`')
        || flat.ends_with('`')
        || (flat.starts_with(' ') && flat.ends_with(' '));
    let inner = if in_table {
        flat.replace('|', "\\|")
    } else {
        flat
    };
    if pad {
        format!("{fence} {inner} {fence}")
    } else {
        format!("{fence}{inner}{fence}")
    }
}

/// Text inside `<code>` or other inline HTML (the `<details>` summary).
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "&#124;")
}

/// The hidden first line CI finds its own comment by: `<!-- redrive-plan: NAME -->`.
#[must_use]
pub fn marker(name: &str) -> String {
    // A comment ends at the first `-->`, and `--` is not allowed inside one.
    let safe: String = name
        .chars()
        .map(|c| if c == '>' || c.is_control() { '_' } else { c })
        .collect::<String>()
        .replace("--", "-_");
    format!("<!-- redrive-plan: {safe} -->")
}

fn counts(job: &PlanJob) -> (usize, usize, usize) {
    job.actions
        .iter()
        .fold((0, 0, 0), |(r, u, b), a| match a.decision {
            Decision::Run => (r + 1, u, b),
            Decision::Skip(_) => (r, u + 1, b),
            Decision::Blocked(_) => (r, u, b + 1),
        })
}

fn row(plan: &Plan, job: &PlanJob, a: &PlanAction) -> String {
    let sign = match a.decision {
        Decision::Run => "➕",
        Decision::Skip(_) => "🟰",
        Decision::Blocked(_) => "⛔",
    };
    let why = match &a.decision {
        Decision::Run => facts(a),
        Decision::Skip(w) | Decision::Blocked(w) => {
            let f = facts(a);
            if f.is_empty() {
                w.clone()
            } else {
                format!("{w}; {f}")
            }
        }
    };
    format!(
        "| {sign} | {} | {} | {} |\n",
        code(&a.target),
        text(&key_params(plan, job, a)),
        text(&why)
    )
}

fn details_head(job: &PlanJob) -> String {
    format!(
        "<details><summary><code>{}</code>: {} action(s)</summary>\n\n| | target | parameters | why / observed |\n|---|---|---|---|\n",
        html(&job.id),
        job.actions.len()
    )
}

const DETAILS_END: &str = "\n</details>\n";

/// The room the longest "… and M more" row can take.
const MORE_ROW: usize = 120;

/// A job's folded table within `budget` bytes: the first rows that fit, then one row saying how
/// many more there are. `None` when not even the head fits.
fn details(plan: &Plan, job: &PlanJob, budget: usize, full_size: usize) -> Option<String> {
    let mut out = details_head(job);
    if full_size <= budget {
        for a in &job.actions {
            out.push_str(&row(plan, job, a));
        }
        out.push_str(DETAILS_END);
        return Some(out);
    }
    if out.len() + DETAILS_END.len() + MORE_ROW > budget {
        return None;
    }
    for (shown, a) in job.actions.iter().enumerate() {
        let r = row(plan, job, a);
        let rest = job.actions.len() - shown;
        // The last row needs no room for the "more" row after it.
        let reserve = if rest == 1 { 0 } else { MORE_ROW };
        if out.len() + r.len() + reserve + DETAILS_END.len() > budget {
            let _ = writeln!(
                out,
                "| … | and {rest} more | | the JSON plan (`redrive plan --format json`) has every action |"
            );
            break;
        }
        out.push_str(&r);
    }
    out.push_str(DETAILS_END);
    Some(out)
}

/// The full size of a job's table, to share the room between jobs.
fn full_size(plan: &Plan, job: &PlanJob) -> usize {
    details_head(job).len()
        + job
            .actions
            .iter()
            .map(|a| row(plan, job, a).len())
            .sum::<usize>()
        + DETAILS_END.len()
}

/// Renders the plan within `limit` bytes (so within as many characters). Every job gets an
/// equal share of the room at least; what a small job does not use goes to the larger ones.
#[must_use]
pub fn render(plan: &Plan, limit: usize) -> String {
    let mut head = format!(
        "{}\n### redrive plan: {}\n\n**{}**{}\n\n| job | provider | action | to run | unchanged | blocked |\n|---|---|---|---:|---:|---:|\n",
        marker(&plan.name),
        code_span(&plan.name, false),
        plan.summary.sentence(),
        if plan.sandbox {
            " (against the sandbox)"
        } else {
            ""
        }
    );
    for job in &plan.jobs {
        let (r, u, b) = counts(job);
        let _ = writeln!(
            head,
            "| {} | {} ({}) | {} | {r} | {u} | {b} |",
            code(&job.id),
            text(&job.provider),
            job.provider_type,
            job.action
        );
    }
    let risky: Vec<&PlanJob> = plan
        .jobs
        .iter()
        .filter(|j| {
            j.actions
                .iter()
                .any(|a| a.idempotency == Idempotency::NonIdempotent && a.decision == Decision::Run)
        })
        .collect();
    if !risky.is_empty() {
        head.push_str("\n> [!WARNING]\n> Not idempotent: every send starts new work, so these are never resent blindly:\n");
        for j in risky {
            let (r, _, _) = counts(j);
            let _ = writeln!(head, "> - {}: {r} × {}", code_span(&j.id, false), j.action);
        }
    }
    head.push('\n');
    let mut room = limit.saturating_sub(MARGIN).saturating_sub(head.len());
    // Shares: smallest tables first, each taking what it needs up to an equal share of what
    // is left.
    let sizes: Vec<usize> = plan.jobs.iter().map(|j| full_size(plan, j)).collect();
    let mut order: Vec<usize> = (0..plan.jobs.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut shares = vec![0; plan.jobs.len()];
    for (n, &i) in order.iter().enumerate() {
        let share = sizes[i].min(room / (plan.jobs.len() - n));
        shares[i] = share;
        room -= share;
    }
    let mut body = String::new();
    let mut left_out = 0;
    let mut cut = 0;
    for ((job, share), size) in plan.jobs.iter().zip(shares).zip(sizes) {
        match details(plan, job, share, size) {
            Some(d) => {
                cut += usize::from(share < size);
                body.push_str(&d);
            }
            None => left_out += 1,
        }
    }
    let mut out = head;
    out.push_str(&body);
    if left_out + cut > 0 {
        let _ = writeln!(
            out,
            "\n_Some details are left out to stay within GitHub's {GITHUB_COMMENT_LIMIT}-character comment limit ({cut} job table(s) shortened, {left_out} left out); the JSON plan (`redrive plan --format json`) has every action._"
        );
    }
    out
}
