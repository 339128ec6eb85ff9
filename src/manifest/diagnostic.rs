//! A problem found in a runbook, with where it is and how to fix it.

use std::sync::Arc;

use super::source::{SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled place in a file.
#[derive(Debug, Clone)]
pub struct Label {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable kebab-case name for machines, e.g. `unknown-provider`.
    pub code: &'static str,
    pub message: String,
    /// Where the problem is; `None` for a problem with the file as a whole.
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    /// The JSON pointer of the offending node, when there is one.
    pub pointer: Option<String>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    /// Spans whose text must not be shown (an inline secret), masked when quoted.
    pub mask: Vec<Span>,
}

impl Diagnostic {
    #[must_use]
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            pointer: None,
            help: None,
            notes: Vec::new(),
            mask: Vec::new(),
        }
    }

    #[must_use]
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.primary = Some(Label {
            file: Arc::clone(file),
            span,
            text: label.into(),
        });
        self
    }

    #[must_use]
    pub fn also(mut self, file: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push(Label {
            file: Arc::clone(file),
            span,
            text: label.into(),
        });
        self
    }

    #[must_use]
    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// `file:line:col` of the primary label, if any.
    #[must_use]
    pub fn location(&self) -> Option<(String, usize, usize)> {
        self.primary.as_ref().map(|l| {
            let (line, col) = l.file.line_col(l.span.start);
            (l.file.name.clone(), line, col)
        })
    }
}

/// Every problem found in one file, in source order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Source order, so a reader can fix the file top to bottom; exact duplicates are dropped.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|d| {
            d.primary
                .as_ref()
                .map_or((0, 0), |l| (l.span.start, l.span.end))
        });
        self.0.dedup_by(|a, b| {
            a.message == b.message
                && a.primary.as_ref().map(|l| l.span) == b.primary.as_ref().map(|l| l.span)
        });
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

/// A JSON value quoted in a message, cut to about `max` characters.
#[must_use]
pub fn quote_value(v: &serde_json::Value, max: usize) -> String {
    let text = v.to_string();
    if text.chars().count() > max {
        format!(
            "{}…",
            text.chars().take(max.saturating_sub(3)).collect::<String>()
        )
    } else {
        text
    }
}
