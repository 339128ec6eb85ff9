//! The exit codes redrive promises, in one table (published in the README).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success; for `plan`, nothing to do.
    Success,
    /// A runtime error: I/O, network setup, an internal error.
    Failure,
    /// `plan`: changes are pending.
    Changes,
    /// An invalid runbook or invalid arguments.
    Invalid,
    /// `apply`: some actions failed or ended unknown.
    ActionsFailed,
    /// A stale plan, or the state is locked by another apply.
    Stale,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl ExitStatus {
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Changes => 2,
            Self::Invalid => 3,
            Self::ActionsFailed => 4,
            Self::Stale => 5,
            Self::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
