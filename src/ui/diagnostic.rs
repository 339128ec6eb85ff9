//! Draws diagnostics like rustc: `file:line:col`, the source line, a caret and a `help:` line.

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::manifest::diagnostic::{Diagnostic, Label, Severity};
use crate::manifest::secrets;
use crate::manifest::source::{SourceFile, Span};

/// Renders one diagnostic as text; colour is a parameter so tests see the plain form.
///
/// Only the lines the labels touch are handed to the renderer, not the whole file: the cost
/// of one diagnostic stays independent of the file's size, so a runbook with many problems
/// prints in linear time. Secret values on those lines are masked, and any quoted in the
/// messages are scrubbed.
#[must_use]
pub fn render(d: &Diagnostic, color: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let clean = |text: &str| -> String {
        match &d.primary {
            Some(p) => secrets::scrub(&p.file, &d.mask, text).into_owned(),
            None => text.to_owned(),
        }
    };
    let message = clean(&d.message);
    let mut title = level.primary_title(message.as_str());
    title = title.id(d.code);
    let mut group = Group::with_title(title);
    let labels: Vec<String>;
    let window;
    if let Some(primary) = &d.primary {
        let file = &primary.file;
        let same: Vec<&Label> = std::iter::once(primary)
            .chain(
                d.secondary
                    .iter()
                    .filter(|s| std::sync::Arc::ptr_eq(&s.file, file)),
            )
            .collect();
        labels = same.iter().map(|l| clean(&l.text)).collect();
        window = Window::new(file, &same, &d.mask);
        let mut snippet = Snippet::source(window.text.as_str())
            .path(file.name.as_str())
            .line_start(window.first_line);
        for (n, (label, text)) in same.iter().zip(&labels).enumerate() {
            let kind = if n == 0 {
                AnnotationKind::Primary
            } else {
                AnnotationKind::Context
            };
            snippet = snippet.annotation(kind.span(window.local(label.span)).label(text.as_str()));
        }
        group = group.element(snippet);
    }
    let notes: Vec<String> = d.notes.iter().map(|n| clean(n)).collect();
    for note in &notes {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    let help = d.help.as_deref().map(clean);
    if let Some(help) = &help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
    .decor_style(DecorStyle::Ascii);
    let mut text = renderer.render(&[group]);
    text.push('\n');
    text
}

/// The lines of a file that a diagnostic's labels touch, with secrets masked.
struct Window {
    text: String,
    /// Byte offset of the window in the file.
    start: usize,
    first_line: usize,
}

impl Window {
    fn new(file: &SourceFile, labels: &[&Label], mask: &[Span]) -> Self {
        let spans = labels.iter().map(|l| range(file, l.span));
        let (lo, hi) = spans.fold((usize::MAX, 0), |(lo, hi), r| {
            (lo.min(r.start), hi.max(r.end))
        });
        // The end of a file that ends with a newline belongs to the last line, as the
        // renderer shows it, not to an empty line after it.
        let line = |at: usize| {
            let at = if at == file.text.len() && file.text.ends_with('\n') {
                at - 1
            } else {
                at
            };
            file.line_of(at)
        };
        let first_line = line(lo);
        let last_line = line(hi);
        let lines = file.lines_range(first_line, last_line);
        let mut text = file.text[lines.clone()].to_owned();
        let secrets = file.secret_spans();
        // Secret spans are sorted by start: skip to the first one that may reach the window.
        let from = secrets.partition_point(|s| s.end <= lines.start);
        let inside = secrets[from..].iter().take_while(|s| s.start < lines.end);
        for span in inside.chain(mask) {
            let r = range(file, *span);
            let (a, b) = (r.start.max(lines.start), r.end.min(lines.end));
            if a >= b {
                continue;
            }
            // `*` is one byte: repeat it per byte so every later offset stays valid.
            let padded: String = file.text[a..b]
                .chars()
                .map(|c| {
                    if c.is_whitespace() {
                        c.to_string()
                    } else {
                        "*".repeat(c.len_utf8())
                    }
                })
                .collect();
            text.replace_range(a - lines.start..b - lines.start, &padded);
        }
        Self {
            text,
            start: lines.start,
            first_line,
        }
    }

    fn local(&self, span: Span) -> std::ops::Range<usize> {
        let start = span.start.saturating_sub(self.start).min(self.text.len());
        let end = span
            .end
            .saturating_sub(self.start)
            .clamp(start, self.text.len());
        start..end
    }
}

fn range(file: &SourceFile, span: Span) -> std::ops::Range<usize> {
    let start = file.clamp(span.start);
    let end = file.clamp(span.end.max(start));
    start..end
}

/// A diagnostic for machines (`--format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl From<&Diagnostic> for JsonDiagnostic {
    fn from(d: &Diagnostic) -> Self {
        let clean = |text: &str| -> String {
            match &d.primary {
                Some(p) => secrets::scrub(&p.file, &d.mask, text).into_owned(),
                None => text.to_owned(),
            }
        };
        let (file, start, end, label) = match &d.primary {
            Some(l) => (
                Some(l.file.name.clone()),
                Some(l.file.line_col(l.span.start)),
                Some(l.file.line_col(l.span.end)),
                Some(clean(&l.text)),
            ),
            None => (None, None, None, None),
        };
        Self {
            severity: d.severity,
            code: d.code,
            message: clean(&d.message),
            file,
            line: start.map(|s| s.0),
            column: start.map(|s| s.1),
            end_line: end.map(|e| e.0),
            end_column: end.map(|e| e.1),
            pointer: d.pointer.clone(),
            label,
            help: d.help.as_deref().map(clean),
            notes: d.notes.iter().map(|n| clean(n)).collect(),
        }
    }
}
