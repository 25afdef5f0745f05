//! arca's error type and its exit codes.

use crate::conex::ConexError;
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
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// arca refuses an unsafe operation (and says why).
    #[error("refused: {0}")]
    Refused(String),
    /// Verification failed: conex's verdict.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Bad input given on the command line or in a ceremony file.
    #[error("{0}")]
    Input(String),
}

impl ArcaError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<std::path::Path>, e: impl std::fmt::Display) -> ArcaError {
        ArcaError::Io {
            path: path.as_ref().display().to_string(),
            reason: e.to_string(),
        }
    }

    /// The process exit code for this error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            ArcaError::Verify(_) => 1,
            ArcaError::Input(_) => 2,
            ArcaError::Conex(_) | ArcaError::Io { .. } => 3,
            ArcaError::Key(KeyError::Declined(_)) => 5,
            ArcaError::Key(_) => 4,
            ArcaError::Refused(_) => 6,
        }
    }
}

/// Result with [`ArcaError`].
pub type Result<T> = std::result::Result<T, ArcaError>;
