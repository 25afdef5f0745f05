//! Terminal prompts with dialoguer: hidden secret entry, confirmations that
//! default to No.

use crate::keys::{KeyError, SecretRequest, SecretSource};
use zeroize::Zeroizing;

/// Asks for secrets on the terminal (never echoed, never logged).
pub struct TerminalSecrets;

impl SecretSource for TerminalSecrets {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        if let Some(n) = req.retries_left {
            eprintln!(
                "{}: {n} tr{} left before it locks",
                req.what,
                if n == 1 { "y" } else { "ies" }
            );
        }
        if req.final_try {
            eprintln!("WARNING: this is the final try; a wrong entry locks it.");
        }
        let s = dialoguer::Password::new()
            .with_prompt(&req.what)
            .allow_empty_password(false)
            .interact()
            .map_err(|e| KeyError::Declined(format!("no {} entered: {e}", req.what)))?;
        Ok(Zeroizing::new(s))
    }

    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| KeyError::Declined(format!("no answer: {e}")))
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}
