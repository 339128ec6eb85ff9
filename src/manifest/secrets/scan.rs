//! Finding secret values in a runbook's raw text, line by line, so a diagnostic can mask them
//! whatever went wrong: the text may not even parse, so this cannot use the loaded document.
//!
//! A value is secret when its key is secret-like (`password: hunter2`, also inside a flow
//! mapping and as a block scalar below the key) or when it has a credential's shape anywhere on
//! a line. References (`{env: …}`, `{file: …}`) and templates are not values and stay visible.

use super::shape::{credential_shapes, is_secret_header};
use crate::manifest::span::Span;

/// The byte spans of every secret value in `text`, in order.
#[must_use]
pub fn secret_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    // The indentation of a secret key whose value is a block scalar (`password: |`).
    let mut block: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start().len();
        if let Some(key_indent) = block {
            if content.trim().is_empty() || indent > key_indent {
                push(&mut out, start + indent, start + content.len());
                continue;
            }
            block = None;
        }
        for (r, _) in credential_shapes(content) {
            push(&mut out, start + r.start, start + r.end);
        }
        for (value, in_flow) in secret_values(content) {
            let text = &content[value.clone()];
            let trimmed = text.trim();
            if !in_flow && is_block_indicator(trimmed) {
                block = Some(indent);
            } else if !is_reference(trimmed) {
                push(&mut out, start + value.start, start + value.end);
            }
        }
    }
    out.sort_by_key(|s| (s.start, s.end));
    out
}

fn push(out: &mut Vec<Span>, start: usize, end: usize) {
    if end > start {
        out.push(Span::new(start, end));
    }
}

fn is_block_indicator(v: &str) -> bool {
    !v.is_empty()
        && (v.starts_with('|') || v.starts_with('>'))
        && v[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

/// Nothing to hide: empty, a reference, a template, an alias, or a nested block.
fn is_reference(v: &str) -> bool {
    v.is_empty()
        || v.starts_with('*')
        || v.contains("{{")
        || v.contains("{%")
        || (v.starts_with('{') && (v.contains("env:") || v.contains("file:")))
        || v == "{"
}

/// The value ranges of secret-like keys on one line, and whether each sits in a flow mapping.
fn secret_values(line: &str) -> Vec<(std::ops::Range<usize>, bool)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // A key ends at `:` followed by a space or the end of the line.
        if b[i] != b':' || !(i + 1 == b.len() || b[i + 1] == b' ' || b[i + 1] == b'\t') {
            i += 1;
            continue;
        }
        let (key, before) = key_before(line, i);
        if key.is_empty() || !is_secret_header(key) {
            i += 1;
            continue;
        }
        let in_flow = matches!(before, Some(b'{' | b','));
        let value_start = b[i + 1..]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map_or(b.len(), |n| i + 1 + n);
        let value_end = if in_flow {
            flow_value_end(b, value_start)
        } else {
            line.trim_end().len().max(value_start)
        };
        out.push((value_start..value_end, in_flow));
        i = value_end.max(i + 1);
    }
    out
}

/// The key ending just before `colon`, without quotes, and the byte before it (skipping
/// blanks): `{` or `,` means a flow mapping.
fn key_before(line: &str, colon: usize) -> (&str, Option<u8>) {
    let b = line.as_bytes();
    let mut end = colon;
    let quoted = end > 0 && matches!(b[end - 1], b'"' | b'\'');
    if quoted {
        end -= 1;
    }
    let mut start = end;
    while start > 0 {
        let c = b[start - 1];
        let ok = if quoted {
            c != b'"' && c != b'\''
        } else {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
        };
        if !ok {
            break;
        }
        start -= 1;
    }
    let key_start = if quoted && start > 0 {
        start - 1
    } else {
        start
    };
    let before = line[..key_start]
        .bytes()
        .rev()
        .find(|c| !c.is_ascii_whitespace());
    (&line[start..end], before)
}

/// Where a value in a flow mapping ends: the next `,` or `}` outside quotes and brackets.
fn flow_value_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (n, &c) in b[start..].iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'{' | b'[') => depth += 1,
            (None, b'}' | b']') if depth > 0 => depth -= 1,
            (None, b',' | b'}' | b']') => return trim_back(b, start, start + n),
            _ => {}
        }
    }
    trim_back(b, start, b.len())
}

fn trim_back(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> Vec<&str> {
        secret_spans(text)
            .into_iter()
            .map(|s| &text[s.start..s.end])
            .collect()
    }

    #[test]
    fn keys_mask_their_values() {
        assert_eq!(masked("  password: hunter2\n"), ["hunter2"]);
        assert_eq!(masked("  password: \"hun ter\" # c\n"), ["\"hun ter\" # c"]);
        assert_eq!(
            masked("auth: {username: u, password: hunter2, x: 1}\n"),
            ["hunter2"]
        );
        assert_eq!(masked("- api_key: abc\n"), ["abc"]);
        assert_eq!(masked("\"X-Api-Key\": abc\n"), ["abc"]);
        assert!(masked("password: {env: TPP_PASSWORD}\n").is_empty());
        assert!(masked("password:\n  env: X\n").is_empty());
        assert!(masked("token: \"{{ env.T }}\"\n").is_empty());
        assert!(masked("username: admin\n").is_empty());
    }

    #[test]
    fn block_scalars_are_masked_below_the_key() {
        let text = "a:\n  secret: |\n    line1\n    line2\n  next: 1\n";
        assert_eq!(masked(text), ["line1", "line2"]);
    }

    #[test]
    fn broken_yaml_is_still_masked() {
        assert_eq!(masked("  password: \"hunter2\n"), ["\"hunter2"]);
        assert_eq!(masked("url: https://u:pw1@h/x\n"), ["pw1"]);
    }
}
