//! Input files next to the runbook (`inputs.<name>`): lines, CSV with a header, JSON or YAML.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::MessageFormatter;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::input_values::{Input, Strings};
use super::load::{Document, ReadError, read_limited};
use super::model::{InputFormat, InputSpec};
use super::node::push_pointer;
use super::paths;
use super::source::{SourceFile, Span};

/// Large target lists belong in inputs, but not unbounded ones.
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

/// Resolves a path written in the runbook against the runbook's folder, refusing escapes.
///
/// # Errors
/// A message saying why the path is refused.
pub fn resolve_path(dir: &Path, written: &str) -> Result<PathBuf, String> {
    paths::confine(dir, written)
}

/// Loads every declared input; problems are reported per input, and the rest still load.
#[must_use]
pub fn load_all(
    doc: &Document,
    inputs: &IndexMap<String, InputSpec>,
) -> (IndexMap<String, Input>, Diagnostics) {
    let mut values = IndexMap::with_capacity(inputs.len());
    let mut problems = Diagnostics::default();
    for (name, spec) in inputs {
        let pointer = push_pointer(&push_pointer("/inputs", name), "file");
        match load_one(doc, name, spec, &pointer) {
            Ok(v) => {
                values.insert(name.clone(), v);
            }
            Err(d) => problems.push(d),
        }
    }
    (values, problems)
}

/// Reads an input's text: a confined path, a size limit, UTF-8.
fn read_text(
    doc: &Document,
    name: &str,
    spec: &InputSpec,
    pointer: &str,
) -> Result<(PathBuf, String), Diagnostic> {
    let at = |d: Diagnostic, label: &str| {
        d.at(&doc.file, doc.value_span(pointer), label)
            .pointer(pointer)
    };
    let path = resolve_path(doc.file.dir(), &spec.file).map_err(|m| {
        at(
            Diagnostic::error("input-path", format!("input `{name}`: {m}")),
            "refused path",
        )
        .help("keep input files in the runbook's folder or below it")
    })?;
    let bytes = read_limited(&path, MAX_INPUT_BYTES).map_err(|e| match e {
        ReadError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => at(
            Diagnostic::error(
                "input-missing",
                format!("input `{name}`: `{}` does not exist", spec.file),
            ),
            "file not found",
        )
        .help(format!(
            "paths are relative to the runbook's folder (`{}`)",
            doc.file.dir().display()
        )),
        ReadError::Io(io) => at(
            Diagnostic::error(
                "input-read",
                format!("input `{name}`: cannot read `{}`: {io}", spec.file),
            ),
            "unreadable",
        ),
        ReadError::TooLarge(size) => at(
            Diagnostic::error(
                "input-too-large",
                format!(
                    "input `{name}`: `{}` is {size} bytes; inputs are limited to {MAX_INPUT_BYTES}",
                    spec.file
                ),
            ),
            "too large",
        ),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        at(
            Diagnostic::error(
                "input-not-utf8",
                format!(
                    "input `{name}`: `{}` is not UTF-8 (byte {} is invalid)",
                    spec.file,
                    e.utf8_error().valid_up_to()
                ),
            ),
            "not UTF-8",
        )
        .help("save the input file as UTF-8")
    })?;
    Ok((path, text))
}

fn load_one(
    doc: &Document,
    name: &str,
    spec: &InputSpec,
    pointer: &str,
) -> Result<Input, Diagnostic> {
    let (path, text) = read_text(doc, name, spec, pointer)?;
    let format = spec
        .format
        .unwrap_or_else(|| InputFormat::from_path(&spec.file));
    let (line, col) = doc.file.line_col(doc.value_span(pointer).start);
    let declared = format!(
        "input `{name}` is declared at {}:{line}:{col}",
        doc.file.name
    );
    let input_file = || SourceFile::new(&path, text.clone());
    let located = |file: Arc<SourceFile>, line: usize, col: usize, message: String| {
        let start = file.offset_of(line, col);
        let end = file.clamp(start + 1);
        Diagnostic::error("input-parse", message)
            .at(&file, Span::new(start, end), "here")
            .note(declared.clone())
    };
    let value = match format {
        InputFormat::Lines => return Ok(Input::Lines(Strings::of(lines(&text)))),
        InputFormat::Json => serde_json::from_str(&text).map_err(|e| {
            located(
                input_file(),
                e.line(),
                e.column(),
                format!("input `{name}` is not valid JSON: {e}"),
            )
        }),
        InputFormat::Yaml => {
            let options = serde_saphyr::options! {
                strict_booleans: true,
                budget: serde_saphyr::budget! { max_aliases: 1_000, max_depth: 64 },
            };
            serde_saphyr::from_str_with_options::<Value>(&text, options).map_err(|e| {
                let (l, c) = e.location().map_or((1, 1), |l| {
                    (
                        usize::try_from(l.line()).unwrap_or(1),
                        usize::try_from(l.column()).unwrap_or(1),
                    )
                });
                let msg = serde_saphyr::UserMessageFormatter
                    .format_message(e.without_snippet())
                    .into_owned();
                located(
                    input_file(),
                    l.max(1),
                    c.max(1),
                    format!("input `{name}` is not valid YAML: {msg}"),
                )
            })
        }
        InputFormat::Csv => parse_csv(&text).map_err(|(line, message)| {
            located(
                input_file(),
                line,
                1,
                format!("input `{name}` is not valid CSV: {message}"),
            )
            .help("the first row names the columns; every row needs the same number of fields")
        }),
    };
    value.map(Input::Value)
}

/// A `lines` input's items: each line trimmed, without blank lines and `#` comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// CSV with a header row: a list of objects whose values are strings.
fn parse_csv(text: &str) -> Result<Value, (usize, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| (1, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if let Some(i) = headers.iter().position(String::is_empty) {
        return Err((1, format!("column {} of the header is empty", i + 1)));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err((1, format!("the header names `{h}` twice")));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e
                .position()
                .map_or(1, |p| usize::try_from(p.line()).unwrap_or(1));
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("this row has {len} fields, the header has {expected_len}")
                }
                _ => e.to_string(),
            };
            (line, message)
        })?;
        let mut row = Map::with_capacity(headers.len());
        for (h, v) in headers.iter().zip(record.iter()) {
            row.insert(h.clone(), Value::String(v.to_owned()));
        }
        rows.push(Value::Object(row));
    }
    Ok(Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_without_blanks_and_comments() {
        let text = "  a \r\n\n# note\n\t\\VED\\c1\r\n  # indented note\na#b\nü";
        let held = Strings::of(lines(text));
        assert_eq!(held.to_vec(), ["a", "\\VED\\c1", "a#b", "ü"]);
        assert!(Strings::of(lines("\n# only\n")).to_vec().is_empty());
    }

    #[test]
    fn csv_rows_become_objects() {
        let v = parse_csv("ip,port\n10.0.0.1, 443\n").unwrap();
        assert_eq!(v, serde_json::json!([{"ip": "10.0.0.1", "port": "443"}]));
        let (line, msg) = parse_csv("ip,port\n10.0.0.1\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("1 fields"), "{msg}");
    }
}
