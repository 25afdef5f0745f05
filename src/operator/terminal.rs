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

/// The longest PIN or passphrase typed at the terminal.
pub const MAX_TYPED_SECRET: usize = 1024;

/// Reads one line from the controlling terminal with echo off. Bytes go one
/// at a time into a buffer reserved up front (no reallocation leaves a copy
/// behind) that is zeroized on drop — dialoguer's and console's readers go
/// through growing `String`s and a `BufReader`, which leave copies on the
/// heap. Backspace erases a character, Ctrl-U the line; Ctrl-C restores the
/// terminal and interrupts the process as it would at any other prompt.
pub fn read_hidden_line() -> std::io::Result<Zeroizing<String>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::fd::AsRawFd;
    use zeroize::Zeroize;
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the termios on success; checked before use.
    if unsafe { libc::tcgetattr(fd, saved.as_mut_ptr()) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: initialised by the successful tcgetattr above.
    let saved = unsafe { saved.assume_init() };
    let mut raw = saved;
    // Byte at a time, no echo, no signals from the keyboard (Ctrl-C is
    // handled below, after the terminal is restored).
    raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: plain FFI call with a valid fd and termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &raw) } != 0 {
        return Err(Error::last_os_error());
    }
    let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(MAX_TYPED_SECRET));
    let mut too_long = false;
    let mut interrupted = false;
    let mut byte = [0u8; 1];
    let result = loop {
        match tty.read(&mut byte) {
            Ok(0) => break Err(Error::new(ErrorKind::UnexpectedEof, "end of input")),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
        match byte[0] {
            b'\r' | b'\n' => break Ok(()),
            0x03 => {
                interrupted = true;
                break Err(Error::new(ErrorKind::Interrupted, "interrupted"));
            }
            0x04 if buf.is_empty() => {
                break Err(Error::new(ErrorKind::UnexpectedEof, "end of input"))
            }
            0x15 => buf.clear(),
            0x7f | 0x08 => {
                // one UTF-8 character: continuation bytes, then its lead byte
                while buf.last().is_some_and(|b| b & 0xC0 == 0x80) {
                    buf.pop();
                }
                buf.pop();
            }
            c if c < 0x20 => {}
            c if buf.len() < MAX_TYPED_SECRET => buf.push(c),
            _ => too_long = true,
        }
    };
    byte.zeroize();
    // SAFETY: restores the settings read above on the same fd.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    if interrupted {
        let _ = std::io::Write::write_all(&mut tty, b"\n");
        // SAFETY: raising a signal at ourselves; the default action ends
        // the process as Ctrl-C does at every other prompt.
        unsafe { libc::raise(libc::SIGINT) };
    }
    result?;
    if too_long {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("longer than {MAX_TYPED_SECRET} bytes"),
        ));
    }
    // Moves the buffer into the String: no copy.
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
        }
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
        let theme = theme();
        let term = console::Term::stderr();
        loop {
            let mut prompt = String::new();
            let _ = theme.format_password_prompt(&mut prompt, &req.what);
            let _ = term.write_str(&prompt);
            let read = read_hidden_line();
            let _ = term.clear_line();
            let s =
                read.map_err(|e| KeyError::Declined(format!("no {} entered: {e}", req.what)))?;
            if s.is_empty() {
                continue;
            }
            let mut done = String::new();
            let _ = theme.format_password_prompt_selection(&mut done, &req.what);
            let _ = term.write_line(&done);
            return Ok(s);
        }
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
