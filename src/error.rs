//! arca's error type and its exit codes.
//!
//! Each layer has its own error type ([`ConexError`], [`KeyError`],
//! [`JournalError`], [`ScriptError`]); [`ArcaError`] holds any of them and
//! gives the process exit code the README's table documents.

use crate::conex::ConexError;
use crate::journal::JournalError;
use crate::keys::KeyError;

/// Everything that can stop an arca command.
#[derive(Debug, thiserror::Error)]
pub enum ArcaError {
    /// Malformed conex data.
    #[error("{0}")]
    Conex(#[from] ConexError),
    /// A key or device problem.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder that is there but cannot be used as asked (not a
    /// directory, not a tar file, not an image).
    #[error("{path}: {reason}")]
    Unusable {
        /// The file.
        path: String,
        /// Why not.
        reason: String,
    },
    /// A ceremony journal that cannot be read or written, or whose hash
    /// chain does not hold.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// A ceremony file or device profile that cannot be read or is not valid.
    #[error("{0}")]
    Script(#[from] ScriptError),
    /// arca refuses an unsafe operation (and says why).
    #[error("refused: {0}")]
    Refused(String),
    /// Verification failed: conex's verdict.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Bad input given on the command line or in an answers file.
    #[error("{0}")]
    Input(String),
    /// Another arca process (a rehearsal runs in one of its own) stopped
    /// with this exit code; its messages are already on stderr.
    #[error("{what} stopped (its messages are above)")]
    Child {
        /// What it was doing.
        what: String,
        /// Its exit code (None: killed by a signal).
        code: Option<i32>,
    },
}

/// A problem in a ceremony file or a device profile, with the line when
/// it is known. (Defined here, below the ceremony layer, so that
/// [`ArcaError`] can hold it; `ceremony::script` re-exports it.)
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScriptError {
    /// The file.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub msg: String,
}

impl ArcaError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> ArcaError {
        ArcaError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// A file at `path` that is there but cannot be used: `reason` says why.
    pub fn unusable(
        path: impl AsRef<std::path::Path>,
        reason: impl std::fmt::Display,
    ) -> ArcaError {
        ArcaError::Unusable {
            path: path.as_ref().display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// The process exit code for this error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            ArcaError::Verify(_) => 1,
            // a line of the journal that does not hold is a verdict; the
            // journal file that cannot be read or written is I/O
            ArcaError::Journal(e) if e.line == 0 => 3,
            ArcaError::Journal(_) => 1,
            ArcaError::Input(_) | ArcaError::Script(_) => 2,
            ArcaError::Conex(_) | ArcaError::Io { .. } | ArcaError::Unusable { .. } => 3,
            ArcaError::Key(KeyError::Declined(_)) => 5,
            ArcaError::Key(_) => 4,
            ArcaError::Refused(_) => 6,
            // the child's own code; a crash counts as a device error
            ArcaError::Child { code, .. } => match code {
                Some(c @ 1..=6) => *c,
                _ => 4,
            },
        }
    }
}

/// Result with [`ArcaError`].
pub type Result<T> = std::result::Result<T, ArcaError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_keeps_its_error_as_source_and_its_message() {
        let e = ArcaError::io(
            "some/file",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "some/file: gone");
        let src = e.source().expect("the io::Error is the source");
        let io = src.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn journal_errors_are_verdicts_unless_the_file_cannot_be_read() {
        let broken = JournalError {
            file: "j".into(),
            line: 2,
            msg: "chain broken".into(),
            source: None,
        };
        assert_eq!(ArcaError::from(broken).exit_code(), 1);
        let unreadable = JournalError {
            file: "j".into(),
            line: 0,
            msg: "denied".into(),
            source: Some(std::io::ErrorKind::PermissionDenied.into()),
        };
        let e = ArcaError::from(unreadable);
        assert_eq!(e.exit_code(), 3);
        assert!(e.source().is_some());
    }

    #[test]
    fn a_child_process_passes_its_exit_code_on() {
        for code in 1..=6 {
            let e = ArcaError::Child {
                what: "the rehearsal".into(),
                code: Some(code),
            };
            assert_eq!(e.exit_code(), code);
        }
        for code in [None, Some(101), Some(0)] {
            let e = ArcaError::Child {
                what: "the rehearsal".into(),
                code,
            };
            assert_eq!(e.exit_code(), 4, "{code:?}");
        }
    }
}
