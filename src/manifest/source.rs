//! Loaded files and byte spans into them, so any later stage can point at `file:line:col`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use super::span::Span;

/// A file as read from disk, kept whole so diagnostics can quote it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it, for messages.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
    /// Secret values in the text, found once on first use (only diagnostics need them).
    secrets: OnceLock<Vec<Span>>,
}

impl SourceFile {
    #[must_use]
    pub fn new(path: &Path, text: String) -> Arc<Self> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Arc::new(Self {
            name: path.display().to_string(),
            path: path.to_path_buf(),
            text,
            line_starts,
            secrets: OnceLock::new(),
        })
    }

    /// 1-based line and character column of a byte offset.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// Byte offset of a 1-based line and character column, clamped to the file.
    #[must_use]
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end]
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(end, |(i, _)| start + i)
    }

    /// The spans of secret values (by key or by shape) that a quoted line must mask.
    #[must_use]
    pub fn secret_spans(&self) -> &[Span] {
        self.secrets
            .get_or_init(|| super::secrets::scan::secret_spans(&self.text))
    }

    /// The 1-based line holding a byte offset.
    #[must_use]
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&s| s <= self.clamp(offset))
            .max(1)
    }

    /// The byte range of 1-based lines `first..=last`, newline of the last included.
    #[must_use]
    pub fn lines_range(&self, first: usize, last: usize) -> std::ops::Range<usize> {
        let start = self
            .line_starts
            .get(first.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(last)
            .copied()
            .unwrap_or(self.text.len());
        start..end.max(start)
    }

    /// Moves an offset back onto a character boundary inside the text.
    #[must_use]
    pub fn clamp(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// The folder relative paths in this runbook are resolved against.
    #[must_use]
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_round_trips() {
        let f = SourceFile::new(Path::new("x.yaml"), "ab\nçd\n\nx".to_owned());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_col(8), (4, 1));
        assert_eq!(f.offset_of(2, 2), 5);
        assert_eq!(f.offset_of(9, 1), f.text.len());
    }
}
