//! Markdown that renders right: the plan and the apply summary go through a GFM renderer
//! (comrak, a port of GitHub's cmark-gfm) and must show what they mean, backslashes single.

use std::path::PathBuf;

use redrive::exit::ExitStatus;
use redrive::plan::markdown;

use crate::support::redrive;

fn gfm(md: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    // GitHub keeps `<details>`, `<summary>` and `<code>`.
    options.render.r#unsafe = true;
    comrak::markdown_to_html(md, &options)
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text of every `<td>` of the rendered HTML, tags removed and entities decoded.
fn cells(html: &str) -> Vec<String> {
    html.split("<td>")
        .skip(1)
        .map(|rest| {
            let cell = &rest[..rest.find("</td>").expect("a closed cell")];
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            unescape(&text)
        })
        .collect()
}

const HOSTILE: &[&str] = &[
    r"\VED\Policy\Certificates\Web\shop.example.com",
    r"CN=a\,b,O=Example\\Corp",
    "a|b||c",
    r"ends with a backslash\",
    r"a\|b",
    "`tick` and ``two``",
    "`",
    " padded ",
    "*not emphasis* _nor this_ **nor** ~~this~~",
    "<script>alert(1)</script> &amp; &#124; &copy;",
    "[a link](https://example.com) ![img](x.png) <https://example.com>",
    "# not a heading",
    "line one\nline two",
    "https://example.com/a_b_c?x=1&y=2",
];

#[test]
fn cells_render_as_written() {
    for &s in HOSTILE {
        let expected = s.replace('\n', " ");
        for (kind, cell) in [("code", markdown::code(s)), ("text", markdown::text(s))] {
            let md = format!("| a | b |\n|---|---|\n| {cell} | x |\n");
            let html = gfm(&md);
            let got = cells(&html);
            let shown = if kind == "code" {
                got[0].trim().to_owned()
            } else {
                got[0].clone()
            };
            assert_eq!(
                shown,
                expected.trim(),
                "{kind} cell of {s:?}: markdown {md:?} rendered {html}"
            );
            assert_eq!(got.len(), 2, "{kind} of {s:?} split the row: {html}");
            assert!(!html.contains("<a ") && !html.contains("<em>") && !html.contains("<script"));
        }
    }
}

#[test]
fn outside_tables_code_spans_keep_pipes() {
    let html = gfm(&format!(
        "### plan {}\n",
        markdown::code_span("a|b\\c", false)
    ));
    assert!(html.contains("<code>a|b\\c</code>"), "{html}");
}

#[test]
fn marker_is_a_hidden_first_line() {
    assert_eq!(markdown::marker("outage"), "<!-- redrive-plan: outage -->");
    let m = markdown::marker("a-->b--c");
    assert!(!m[4..m.len() - 3].contains("--"), "{m}");
    let run = redrive(&[
        "plan",
        "--sandbox",
        "--format",
        "markdown",
        "examples/outage-remediation.yaml",
    ]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    let first = run.stdout.lines().next().expect("a line");
    assert!(
        first.starts_with("<!-- redrive-plan: ") && first.ends_with(" -->"),
        "{first}"
    );
    let html = gfm(&run.stdout);
    assert!(
        !html.contains("redrive-plan:") || html.contains("<!-- redrive-plan:"),
        "{html}"
    );
    assert!(
        html.contains("<h3>"),
        "the heading still renders after the marker: {html}"
    );
}

#[test]
fn venafi_dns_show_single_backslashes_on_github() {
    let run = redrive(&[
        "plan",
        "--sandbox",
        "--format",
        "markdown",
        "examples/outage-remediation.yaml",
    ]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    let html = gfm(&run.stdout);
    let cells = cells(&html);
    assert!(
        cells
            .iter()
            .any(|c| c == r"\VED\Policy\Certificates\Web\shop.example.com"),
        "{html}"
    );
    assert!(!html.contains(r"\\VED"), "{html}");
    // Every table row has as many cells as its header.
    for table in html.split("<table>").skip(1) {
        let table = &table[..table.find("</table>").expect("closed")];
        let header = table.matches("<th>").count() + table.matches("<th ").count();
        for row in table.split("<tr>").skip(2) {
            assert_eq!(row.matches("<td").count(), header, "{row}");
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    crate::support::scratch(&format!("md-{name}"))
}

/// A job of 3,500 actions next to a small one: both show rows, the big one "first N … and M
/// more", all within GitHub's 65,535 characters.
#[test]
fn a_large_job_still_shows_rows_within_the_limit() {
    let dir = temp_dir("large");
    let dns: String = (1..=3500)
        .map(|n| format!("\\VED\\Policy\\Bulk\\certificate-number-{n}.example.com\n"))
        .collect();
    std::fs::write(dir.join("dns.txt"), dns).expect("write");
    std::fs::write(
        dir.join("runbook.yaml"),
        "version: 1\nname: large\ninputs:\n  dns: {file: dns.txt}\nproviders:\n  tpp:\n    type: venafi_tpp\n    url: https://tpp.example.com\n    auth: {client_id: redrive, username: svc-redrive, password: {env: TPP_PASSWORD}, scope: 'certificate:manage'}\njobs:\n  - id: all\n    provider: tpp\n    action: retry_certificate\n    for_each: '{{ inputs.dns }}'\n    with: {certificate_dn: '{{ item }}'}\n  - id: one\n    provider: tpp\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\One\\single.example.com'}\n",
    )
    .expect("write");
    let runbook = dir.join("runbook.yaml");
    let run = redrive(&[
        "plan",
        "--refresh=false",
        "--format",
        "markdown",
        runbook.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status, ExitStatus::Changes, "{}", run.stderr);
    let md = &run.stdout;
    assert!(
        md.chars().count() <= 65_535,
        "{} characters",
        md.chars().count()
    );
    let html = gfm(md);
    let cells = cells(&html);
    assert!(
        cells
            .iter()
            .any(|c| c == r"\VED\Policy\Bulk\certificate-number-1.example.com"),
        "the big job shows its first rows"
    );
    assert!(
        cells
            .iter()
            .any(|c| c == r"\VED\Policy\One\single.example.com"),
        "the small job is shown whole"
    );
    let more = cells
        .iter()
        .find_map(|c| c.strip_prefix("and ").and_then(|r| r.strip_suffix(" more")))
        .expect("an `and M more` row");
    let more: usize = more.parse().expect("a count");
    let shown = cells
        .iter()
        .filter(|c| c.starts_with(r"\VED\Policy\Bulk\"))
        .count();
    assert_eq!(shown + more, 3500, "{shown} shown and {more} more");
    assert!(shown >= 100, "only {shown} rows shown");
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn result(
    job: &str,
    target: &str,
    state: redrive::apply::State,
    detail: &str,
) -> redrive::apply::ActionResult {
    redrive::apply::ActionResult {
        id: redrive::plan::resolve::action_id(job, "retry_certificate", target)
            .parse()
            .expect("an action id"),
        job: job.into(),
        target: target.to_owned(),
        state,
        attempts: 1,
        http_status: None,
        detail: detail.to_owned(),
        defined_at: "runbook.yaml:12:5".into(),
        duration_ms: 12,
    }
}

#[test]
fn apply_summary_renders_right() {
    use redrive::apply::State;
    use redrive::report::{Summary, Tally};
    let results = vec![
        result(
            "venafi|retry",
            r"\VED\Policy\Web\a.example.com",
            State::Succeeded,
            "",
        ),
        result(
            "venafi|retry",
            r"\VED\Policy\Web\b.example.com",
            State::Failed,
            r"400: Certificate \VED\Policy\Web\b.example.com does not exist | <b>bold</b> *x*",
        ),
    ];
    let summary = Summary {
        runbook: "runbook.yaml",
        name: "outage `2026`",
        run: "1",
        started_at: "2026-12-01T00:00:00Z",
        duration_ms: 10,
        interrupted: false,
        tally: Tally::of(&results),
        results: &results,
        throttled: &[],
    };
    let html = gfm(&redrive::report::markdown::render(&summary));
    let cells = cells(&html);
    assert!(cells.iter().any(|c| c == "venafi|retry"), "{html}");
    assert!(
        cells.iter().any(|c| c == r"\VED\Policy\Web\b.example.com"),
        "{html}"
    );
    assert!(
        cells.iter().any(|c| c
            == r"400: Certificate \VED\Policy\Web\b.example.com does not exist | <b>bold</b> *x*"),
        "{html}"
    );
    assert!(html.contains("<code>outage `2026`</code>"), "{html}");
}
