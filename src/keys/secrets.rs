//! Secrets: how a key backend asks the person for a PIN or passphrase
//! ([`SecretSource`], [`SecretRequest`]) and the one reader of PIN and
//! passphrase files ([`read_secret_file`]).

use super::KeyError;
use zeroize::Zeroizing;

/// Why a secret is asked for, shown to the person.
#[derive(Debug, Clone)]
pub struct SecretRequest {
    /// What the secret unlocks (`PIN for token root-1`).
    pub what: String,
    /// Tries left before the PIN locks, when the device says.
    pub retries_left: Option<u32>,
    /// Whether this is the final try.
    pub final_try: bool,
}

/// How a key backend asks the person for secrets. Implemented by the
/// operator (terminal prompts, answers files). Secrets come back in
/// `Zeroizing` buffers and are never logged.
pub trait SecretSource {
    /// Asks for a PIN or passphrase.
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError>;
    /// Asks for an explicit yes before something risky (the final PIN try).
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError>;
    /// Tells the person something (insert the device, touch it…).
    fn notice(&mut self, message: &str);
}

/// The longest PIN or passphrase file arca reads.
pub const MAX_SECRET_BYTES: usize = 4096;

/// Reads a PIN or passphrase file (`what` names it in errors: "PIN file")
/// into a buffer reserved up front, so no reallocation leaves a copy behind,
/// and zeroized on drop; trailing CR/LF are trimmed. An empty, non-UTF-8 or
/// over-long file is refused; no error shows any of its bytes.
pub fn read_secret_file(path: &std::path::Path, what: &str) -> Result<Zeroizing<String>, KeyError> {
    use std::io::Read;
    let err = |reason: String| KeyError::File {
        path: path.display().to_string(),
        reason,
    };
    let f = std::fs::File::open(path)
        .map_err(|e| err(format!("cannot read the {what}: {}", e.kind())))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_BYTES + 1));
    f.take(MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("cannot read the {what}: {}", e.kind())))?;
    if buf.len() > MAX_SECRET_BYTES {
        return Err(err(format!(
            "the {what} is longer than {MAX_SECRET_BYTES} bytes"
        )));
    }
    let text =
        std::str::from_utf8(&buf).map_err(|_| err(format!("the {what} is not UTF-8 text")))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(err(format!("the {what} is empty")));
    }
    Ok(Zeroizing::new(secret.to_string()))
}

/// A [`SecretSource`] for non-interactive use that has no secrets: every
/// request fails with a message saying how to provide one.
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        Err(KeyError::Declined(format!(
            "{} is needed but no terminal is attached; give a pin-source=file:PATH in the key location or run on a terminal",
            req.what
        )))
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        Err(KeyError::Declined(format!(
            "{question} — refusing without a person to confirm"
        )))
    }
    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}
