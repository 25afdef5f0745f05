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

/// The interactive operator: dialoguer prompts on the terminal.
pub struct TerminalOperator;

impl SecretSource for TerminalOperator {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        TerminalSecrets.secret(req)
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        TerminalSecrets.confirm_risky(question)
    }
    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

impl super::Operator for TerminalOperator {
    fn confirm(&mut self, question: &str, danger: super::Danger) -> Result<bool, KeyError> {
        if danger == super::Danger::Destructive {
            eprintln!("{}", "!".repeat(60));
            eprintln!("!! This step cannot be undone.");
            eprintln!("{}", "!".repeat(60));
        }
        TerminalSecrets.confirm_risky(question)
    }
    fn show(&mut self, title: &str, body: &str) {
        eprintln!("── {title} ──");
        eprintln!("{body}");
    }
    fn show_qr(&mut self, caption: &str, data: &str) {
        eprintln!("{caption}:");
        eprintln!("{}", qr_text(data));
        eprintln!("{data}");
    }
    fn step(&mut self, n: usize, total: usize, what: &str) {
        if total > 0 {
            eprintln!("[{n}/{total}] {what}");
        } else {
            eprintln!("[step {n}] {what}");
        }
    }
}

/// A QR code drawn with half-block characters (two modules per character
/// row), small enough for an 80×24 terminal for short payloads.
pub fn qr_text(data: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}
