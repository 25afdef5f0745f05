//! Why a verification refuses a repository.

/// A verification's refusal: conex's verdict as one line (`couldn't
/// validate root role: …`, `comparison failed: …`). Its text is the
/// verdict arca prints; callers that report it use its `Display`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(String);

impl VerifyError {
    /// The verdict's text.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<String> for VerifyError {
    fn from(msg: String) -> VerifyError {
        VerifyError(msg)
    }
}

impl From<&str> for VerifyError {
    fn from(msg: &str) -> VerifyError {
        VerifyError(msg.to_string())
    }
}

/// Why a verified state (`state`) cannot decide a verification: the file is
/// stale, malformed or not trusted, or the update is not the plain case.
/// The caller then verifies the whole tree; the text says why (`-v`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StateError(String);

impl From<String> for StateError {
    fn from(msg: String) -> StateError {
        StateError(msg)
    }
}

impl From<&str> for StateError {
    fn from(msg: &str) -> StateError {
        StateError(msg.to_string())
    }
}
