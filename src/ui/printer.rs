//! The one printer: data to stdout, messages for people to stderr, colour only on terminals.

use std::io::{self, IsTerminal as _, Write};

use anstream::{AutoStream, ColorChoice};

/// Where output goes; tests capture it in memory.
pub struct Printer {
    out: Box<dyn Write>,
    /// stdout without the colour-stripping adapter, for data when there is no colour and
    /// stdout is not a terminal: the adapter scans every byte (an eighth of the time of a
    /// million-action JSON plan, 2 % of an apply's).
    raw: Option<Box<dyn Write>>,
    err: Box<dyn Write>,
    color: bool,
}

impl Printer {
    /// Real stdout/stderr. Colour follows `--color`, `NO_COLOR` and whether stderr is a terminal.
    #[must_use]
    pub fn terminal(choice: ColorChoice) -> Self {
        let err = AutoStream::new(io::stderr(), choice);
        let color = !matches!(err.current_choice(), ColorChoice::Never);
        Self {
            out: Box::new(AutoStream::new(io::stdout(), choice)),
            // On a terminal everything goes through the adapter, which also strips escape codes
            // that a server's text may carry when there is no colour.
            raw: (!io::stdout().is_terminal()).then(|| Box::new(io::stdout()) as Box<dyn Write>),
            err: Box::new(err),
            color,
        }
    }

    /// Writes into the given sinks, without colour.
    #[must_use]
    pub fn capture(out: Box<dyn Write>, err: Box<dyn Write>) -> Self {
        Self {
            out,
            raw: None,
            err,
            color: false,
        }
    }

    #[must_use]
    pub fn color(&self) -> bool {
        self.color
    }

    /// Data: plans, JSON, rendered actions.
    ///
    /// # Errors
    /// A failed write (a closed pipe).
    pub fn data(&mut self, text: &str) -> io::Result<()> {
        let out = self.data_sink();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// stdout, through the colour-stripping adapter only when there may be colour to strip.
    fn data_sink(&mut self) -> &mut dyn Write {
        match &mut self.raw {
            Some(raw) if !self.color => &mut **raw,
            _ => &mut *self.out,
        }
    }

    /// Data written as it is produced, through a 64 KiB buffer: a document of a million
    /// actions goes out without being held whole. Flushed when dropped; call `flush` to see
    /// errors.
    pub fn data_writer(&mut self) -> io::BufWriter<&mut dyn Write> {
        io::BufWriter::with_capacity(64 * 1024, self.data_sink())
    }

    /// stdout as a file, and its length, when it is a regular file written at its end that is
    /// not stderr's too: a large document can go straight into it and be cut back to that
    /// length if it fails half-way (which would lose nothing printed for people).
    ///
    /// # Errors
    /// Flushing what was printed before.
    pub fn data_file(&mut self) -> io::Result<Option<(std::fs::File, u64)>> {
        use std::io::Seek as _;
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::MetadataExt as _;
        if self.raw.is_none() {
            return Ok(None);
        }
        self.out.flush()?;
        let handle = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .ok()
                .map(std::fs::File::from)
                .and_then(|f| f.metadata().ok().map(|m| (f, m)))
        };
        let Some((mut file, meta)) = handle(io::stdout().as_fd()) else {
            return Ok(None);
        };
        let shared = handle(io::stderr().as_fd())
            .is_some_and(|(_, err)| (err.dev(), err.ino()) == (meta.dev(), meta.ino()));
        let at = file.stream_position().ok();
        Ok((meta.is_file() && !shared && at == Some(meta.len())).then_some((file, meta.len())))
    }

    /// A message for people.
    ///
    /// # Errors
    /// A failed write.
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        self.err.write_all(text.as_bytes())?;
        self.err.flush()
    }
}
