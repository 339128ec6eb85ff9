//! Draws diagnostics like rustc: `file:line:col`, the source line, a caret and a `help:` line.

use std::borrow::Cow;

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::manifest::diagnostic::{Diagnostic, Severity};
use crate::manifest::source::{SourceFile, Span};

/// Renders one diagnostic as text; colour is a parameter so tests see the plain form.
#[must_use]
pub fn render(d: &Diagnostic, color: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut title = level.primary_title(d.message.as_str());
    title = title.id(d.code);
    let mut group = Group::with_title(title);
    if let Some(primary) = &d.primary {
        let text = masked(&primary.file, &d.mask);
        let mut snippet = Snippet::source(text)
            .path(primary.file.name.as_str())
            .annotation(
                AnnotationKind::Primary
                    .span(range(&primary.file, primary.span))
                    .label(primary.text.as_str()),
            );
        for s in d
            .secondary
            .iter()
            .filter(|s| std::sync::Arc::ptr_eq(&s.file, &primary.file))
        {
            snippet = snippet.annotation(
                AnnotationKind::Context
                    .span(range(&s.file, s.span))
                    .label(s.text.as_str()),
            );
        }
        group = group.element(snippet);
    }
    for note in &d.notes {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    if let Some(help) = &d.help {
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

fn range(file: &SourceFile, span: Span) -> std::ops::Range<usize> {
    let start = file.clamp(span.start);
    let end = file.clamp(span.end.max(start));
    start..end
}

/// The file's text with masked spans replaced by `*`, keeping every offset valid.
fn masked<'a>(file: &'a SourceFile, mask: &[Span]) -> Cow<'a, str> {
    if mask.is_empty() {
        return Cow::Borrowed(&file.text);
    }
    let mut text = file.text.clone();
    for span in mask {
        let r = range(file, *span);
        // `*` is one byte: repeat it per byte so every later offset stays valid.
        let padded: String = file.text[r.clone()]
            .chars()
            .map(|c| {
                if c.is_whitespace() {
                    c.to_string()
                } else {
                    "*".repeat(c.len_utf8())
                }
            })
            .collect();
        text.replace_range(r, &padded);
    }
    Cow::Owned(text)
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
        let (file, start, end, label) = match &d.primary {
            Some(l) => (
                Some(l.file.name.clone()),
                Some(l.file.line_col(l.span.start)),
                Some(l.file.line_col(l.span.end)),
                Some(l.text.clone()),
            ),
            None => (None, None, None, None),
        };
        Self {
            severity: d.severity,
            code: d.code,
            message: d.message.clone(),
            file,
            line: start.map(|s| s.0),
            column: start.map(|s| s.1),
            end_line: end.map(|e| e.0),
            end_column: end.map(|e| e.1),
            pointer: d.pointer.clone(),
            label,
            help: d.help.clone(),
            notes: d.notes.clone(),
        }
    }
}
