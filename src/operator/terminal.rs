//! Terminal prompts with dialoguer: hidden secret entry, confirmations that
//! default to No.

use crate::keys::{KeyError, SecretRequest, SecretSource};
use zeroize::Zeroizing;

/// The prompt theme: colours only where the terminal takes them (and
/// `NO_COLOR` is unset).
pub fn theme() -> Box<dyn dialoguer::theme::Theme> {
    if console::colors_enabled_stderr() {
        Box::new(dialoguer::theme::ColorfulTheme::default())
    } else {
        Box::new(dialoguer::theme::SimpleTheme)
    }
}

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
        let s = dialoguer::Password::with_theme(theme().as_ref())
            .with_prompt(&req.what)
            .allow_empty_password(false)
            .interact()
            .map_err(|e| KeyError::Declined(format!("no {} entered: {e}", req.what)))?;
        Ok(Zeroizing::new(s))
    }

    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        dialoguer::Confirm::with_theme(theme().as_ref())
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| KeyError::Declined(format!("no answer: {e}")))
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// The interactive operator: dialoguer prompts on the terminal, a spinner
/// for slow steps, QR codes drawn with half blocks.
#[derive(Default)]
pub struct TerminalOperator {
    spinner: Option<indicatif::ProgressBar>,
    steps: Vec<String>,
}

impl TerminalOperator {
    /// A new terminal operator.
    pub fn new() -> TerminalOperator {
        TerminalOperator::default()
    }
}

impl SecretSource for TerminalOperator {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        super::Operator::done(self);
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
        self.done();
        if danger == super::Danger::Destructive {
            let bar = "!".repeat(60);
            let line = console::style(format!(
                "{bar}\n!! This step cannot be undone. The default answer is No.\n{bar}"
            ))
            .red()
            .bold();
            eprintln!("{line}");
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
        self.done();
        let next = self
            .steps
            .get(n)
            .map(|s| format!("  (next: {s})"))
            .unwrap_or_default();
        let head = if total > 0 {
            format!("Step {n}/{total}")
        } else {
            format!("Step {n}")
        };
        let line: String = format!("▶ {head}: {what}{next}").chars().take(79).collect();
        eprintln!("{}", console::style(line).bold());
    }
    fn plan(&mut self, title: &str, steps: &[String]) {
        self.steps = steps.to_vec();
        self.show(title, &super::plan_text(steps));
    }
    fn busy(&mut self, what: &str) {
        self.done();
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(what.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        self.spinner = Some(pb);
    }
    fn done(&mut self) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
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
