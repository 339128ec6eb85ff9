//! Reading a runbook file into JSON with spans, refusing hostile or broken input with a located message.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use serde_saphyr::MessageFormatter;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::node::{self, SpanMap};
use super::source::{SourceFile, Span};

/// Runbooks are hand-written; anything larger is a mistake or an attack.
pub const MAX_RUNBOOK_BYTES: u64 = 4 * 1024 * 1024;
/// Deeper nesting than any runbook needs; it bounds recursion everywhere after loading.
pub const MAX_DEPTH: usize = 48;

/// A runbook file parsed to JSON, with the spans of every node.
#[derive(Debug)]
pub struct Document {
    pub file: Arc<SourceFile>,
    pub value: Value,
    pub spans: SpanMap,
}

impl Document {
    /// The span to underline for `pointer`: the key of a mapping entry, or the value.
    #[must_use]
    pub fn key_span(&self, pointer: &str) -> Span {
        self.spans.key_or_value(pointer)
    }

    #[must_use]
    pub fn value_span(&self, pointer: &str) -> Span {
        self.spans.value_or_parent(pointer)
    }
}

/// Reads and parses one runbook.
///
/// # Errors
/// One diagnostic: the file cannot be read, is too large, is not UTF-8 or is not valid YAML.
pub fn read(path: &Path) -> Result<Document, Diagnostics> {
    let display = path.display();
    let bytes = read_limited(path, MAX_RUNBOOK_BYTES).map_err(|e| match e {
        ReadError::TooLarge(size) => Diagnostic::error(
            "file-too-large",
            format!(
                "`{display}` is {size} bytes; runbooks are limited to {MAX_RUNBOOK_BYTES} bytes"
            ),
        )
        .help("split the runbook, or move large target lists into `inputs` files"),
        ReadError::Io(e) => Diagnostic::error("io", format!("cannot read `{display}`: {e}")),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bad = e.as_bytes()[valid];
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let file = SourceFile::new(path, prefix);
            let (line, col) = file.line_col(valid);
            return Err(Diagnostic::error(
                "not-utf8",
                format!("`{display}` is not UTF-8: byte 0x{bad:02x} at line {line}, column {col}"),
            )
            .help("save the runbook as UTF-8")
            .into());
        }
    };
    let file = SourceFile::new(path, text);
    parse(file)
}

/// Parses text already in memory.
///
/// # Errors
/// One diagnostic when the text is not valid YAML or breaks a limit.
pub fn parse(file: Arc<SourceFile>) -> Result<Document, Diagnostics> {
    match node::parse(&file, MAX_DEPTH) {
        Ok((value, spans, complex)) => {
            if let Some(key) = complex.first() {
                return Err(
                    Diagnostic::error("complex-key", "mapping keys must be plain text")
                        .at(&file, key.span, "a list or mapping used as a key")
                        .into(),
                );
            }
            Ok(Document { file, value, spans })
        }
        Err(e) => Err(yaml_error(&file, &e).into()),
    }
}

fn yaml_error(file: &Arc<SourceFile>, e: &serde_saphyr::Error) -> Diagnostic {
    let inner = e.without_snippet();
    let raw = serde_saphyr::UserMessageFormatter
        .format_message(inner)
        .into_owned();
    let (message, label, help) = explain(&raw);
    let mut d = Diagnostic::error("yaml", message);
    if let Some(loc) = e.location().filter(|l| l.line() > 0) {
        let line = usize::try_from(loc.line()).unwrap_or(1);
        let col = usize::try_from(loc.column()).unwrap_or(1);
        let start = file.offset_of(line, col);
        let end = file.clamp(start + file.text[start..].chars().next().map_or(0, char::len_utf8));
        d = d.at(file, Span::new(start, end), label);
    }
    d.help_opt(help)
}

/// Turns the parser's wording into ours, with a hint where one helps.
fn explain(raw: &str) -> (String, String, Option<String>) {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("duplicate mapping key") {
        let key = raw.split('`').nth(1).unwrap_or("").trim();
        return (
            format!("duplicate key `{key}`"),
            "this key is already set above".to_owned(),
            Some(
                "a key may appear only once in a mapping; remove or rename one of them".to_owned(),
            ),
        );
    }
    if lower.contains("alias")
        && (lower.contains("budget") || lower.contains("limit") || lower.contains("exceed"))
    {
        return (
            "too many YAML aliases".to_owned(),
            "alias expansion stopped here".to_owned(),
            Some("redrive refuses alias-heavy documents (they can expand exponentially); write the values out".to_owned()),
        );
    }
    if lower.contains("limits breached") {
        return (
            "the YAML expands to too many nodes (an alias bomb, or a runaway document)".to_owned(),
            "expansion stopped here".to_owned(),
            Some("redrive bounds what a runbook may expand to; write repeated values out instead of nesting aliases".to_owned()),
        );
    }
    if lower.contains("depth") {
        return (
            format!("the runbook is nested too deeply (more than {MAX_DEPTH} levels)"),
            "nesting limit reached here".to_owned(),
            Some("flatten the structure; no runbook field needs this depth".to_owned()),
        );
    }
    if lower.contains("budget") || (lower.contains("nodes") && lower.contains("exceed")) {
        return (
            "the runbook is too large to load".to_owned(),
            "limit reached here".to_owned(),
            Some("move long target lists into `inputs` files".to_owned()),
        );
    }
    let message = raw.trim().trim_end_matches('.').to_owned();
    (format!("invalid YAML: {message}"), "here".to_owned(), None)
}

pub(crate) enum ReadError {
    TooLarge(u64),
    Io(std::io::Error),
}

/// Reads a whole file, refusing it before reading when it is over `limit`.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    // A FIFO or a device would block or never end: refuse anything but a regular file.
    let file = super::paths::open_regular(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The size may change under us (a pipe, a growing file): stop one byte past the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}
