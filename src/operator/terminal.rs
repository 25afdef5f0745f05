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

/// The controlling terminal in raw mode — a byte at a time, no echo, no
/// signals from the keyboard — with its settings restored when dropped (and
/// by `restore`). Raw mode is entered with TCSAFLUSH: what was typed before
/// is thrown away, so no keystroke carries over into the next question.
struct RawTty {
    tty: std::fs::File,
    saved: libc::termios,
}

impl RawTty {
    fn open() -> std::io::Result<RawTty> {
        use std::os::fd::AsRawFd;
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")?;
        let fd = tty.as_raw_fd();
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios on success; checked before use.
        if unsafe { libc::tcgetattr(fd, saved.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: initialised by the successful tcgetattr above.
        let saved = unsafe { saved.assume_init() };
        let mut raw = saved;
        raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: plain FFI call with a valid fd and termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawTty { tty, saved })
    }

    /// Puts back the settings read when opening.
    fn restore(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: restores the settings read in `open` on the same fd.
        unsafe { libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

impl Drop for RawTty {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Reads the next key of a line typed at the terminal into `byte`: `None`
/// for Enter; Ctrl-C is an `Interrupted` error, the end of input or Ctrl-D
/// on an empty line (`empty`) an `UnexpectedEof` one; a signal that
/// interrupts the read is retried.
fn read_key(
    tty: &mut std::fs::File,
    byte: &mut [u8; 1],
    empty: bool,
) -> std::io::Result<Option<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let eof = || Error::new(ErrorKind::UnexpectedEof, "end of input");
    loop {
        match tty.read(byte) {
            Ok(0) => return Err(eof()),
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    match byte[0] {
        b'\r' | b'\n' => Ok(None),
        0x03 => Err(Error::new(ErrorKind::Interrupted, "interrupted")),
        0x04 if empty => Err(eof()),
        key => Ok(Some(key)),
    }
}

/// Whether a line ended with Ctrl-C ([`read_key`]'s `Interrupted`).
fn is_interrupt(r: &std::io::Result<()>) -> bool {
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::Interrupted)
}

/// Reads one line from the controlling terminal with echo off. Bytes go one
/// at a time into a buffer reserved up front (no reallocation leaves a copy
/// behind) that is zeroized on drop — dialoguer's and console's readers go
/// through growing `String`s and a `BufReader`, which leave copies on the
/// heap. Backspace erases a character, Ctrl-U the line; Ctrl-C restores the
/// terminal and interrupts the process as it would at any other prompt.
pub fn read_hidden_line() -> std::io::Result<Zeroizing<String>> {
    use std::io::{Error, ErrorKind};
    use zeroize::Zeroize;
    // Ctrl-C is handled below, after the terminal is restored.
    let mut raw = RawTty::open()?;
    let tty = &mut raw.tty;
    let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(MAX_TYPED_SECRET));
    let mut too_long = false;
    let mut byte = [0u8; 1];
    let result = loop {
        let key = match read_key(tty, &mut byte, buf.is_empty()) {
            Ok(Some(key)) => key,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match key {
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
    raw.restore();
    if is_interrupt(&result) {
        let _ = std::io::Write::write_all(&mut raw.tty, b"\n");
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

/// The width of the terminal on stderr (80 when unknown).
pub fn width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map(|(_, w)| w as usize)
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// The height of the terminal on stderr (24 when unknown).
pub fn height() -> usize {
    console::Term::stderr()
        .size_checked()
        .map(|(h, _)| h as usize)
        .filter(|h| *h >= 8)
        .unwrap_or(24)
}

/// `text` wrapped at spaces to lines of at most `width` characters (a word
/// longer than a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let wl = word.chars().count();
            let ll = line.chars().count();
            if ll > 0 && ll + 1 + wl > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            while line.chars().count() > width {
                let head: String = line.chars().take(width).collect();
                let tail: String = line.chars().skip(width).collect();
                out.push(head);
                line = tail;
            }
        }
        out.push(line);
    }
    out
}

/// `s` cut to at most `max` characters at a word boundary, with `…`.
pub fn cut_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for word in s.split(' ') {
        let cand = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if cand.chars().count() + 1 > max {
            break;
        }
        out = cand;
    }
    if out.is_empty() {
        out = s.chars().take(max.saturating_sub(1)).collect();
    }
    out.push('…');
    out
}

/// Reads one typed line from the terminal, echoed, with Backspace and
/// Ctrl-U. Input typed before the prompt is dropped first, so no key
/// pressed earlier answers this question. Ctrl-C restores the terminal
/// and interrupts the process.
fn read_answer_line(prompt: &str) -> std::io::Result<String> {
    use std::io::Write;
    // what was typed before the question is thrown away
    let mut raw = RawTty::open()?;
    let tty = &mut raw.tty;
    let _ = tty.write_all(format!("\x1b[?25h{prompt}").as_bytes());
    let _ = tty.flush();
    let mut buf = String::new();
    let mut byte = [0u8; 1];
    let mut pending: Vec<u8> = Vec::new();
    let result = loop {
        let key = match read_key(tty, &mut byte, buf.is_empty()) {
            Ok(Some(key)) => key,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match key {
            0x15 => {
                for _ in 0..buf.chars().count() {
                    let _ = tty.write_all(b"\x08 \x08");
                }
                buf.clear();
            }
            0x7f | 0x08 => {
                if buf.pop().is_some() {
                    let _ = tty.write_all(b"\x08 \x08");
                }
            }
            0x1b => {
                // an escape sequence (arrow keys): ignored
                pending.clear();
            }
            c if c < 0x20 => {}
            c => {
                pending.push(c);
                if let Ok(s) = std::str::from_utf8(&pending) {
                    if buf.chars().count() < 32 && !s.chars().any(|c| c.is_control()) {
                        buf.push_str(s);
                        let _ = tty.write_all(s.as_bytes());
                    }
                    pending.clear();
                } else if pending.len() >= 4 {
                    pending.clear();
                }
            }
        }
        let _ = tty.flush();
    };
    raw.restore();
    let _ = raw.tty.write_all(b"\n");
    if is_interrupt(&result) {
        // SAFETY: raising a signal at ourselves; the default action or
        // arca's handler ends the process as Ctrl-C does elsewhere.
        unsafe { libc::raise(libc::SIGINT) };
    }
    result.map(|()| buf)
}

/// Asks a yes/no question on the terminal: the answer is typed and
/// confirmed with Enter (`y`, `yes`, `n`, `no`; a bare Enter is the default
/// shown in capitals). Anything else asks again. A question wider than the
/// terminal is wrapped at words, drawn once.
pub fn yes_no(question: &str, default: bool) -> Result<bool, KeyError> {
    let choices = if default { "[Y/n]" } else { "[y/N]" };
    let w = width().saturating_sub(1).max(20);
    let mut lines = wrap(&format!("{question} {choices}"), w);
    let last = lines.pop().unwrap_or_default();
    for l in &lines {
        eprintln!("{l}");
    }
    loop {
        let a = read_answer_line(&format!("{last} "))
            .map_err(|e| KeyError::Declined(format!("no answer: {e}")))?;
        match a.trim().to_lowercase().as_str() {
            "" => return Ok(default),
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => eprintln!("Type y (yes) or n (no), then Enter."),
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
        yes_no(question, false)
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// The interactive operator: typed answers on the terminal, a spinner with
/// the elapsed time for slow steps, long text in pages, QR codes one at a
/// time.
#[derive(Default)]
pub struct TerminalOperator {
    spinner: Option<indicatif::ProgressBar>,
}

impl TerminalOperator {
    /// A new terminal operator.
    pub fn new() -> TerminalOperator {
        TerminalOperator::default()
    }
}

impl SecretSource for TerminalOperator {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        // a slow step that asks for a PIN first: the spinner pauses for the
        // prompt and goes on while the device works
        let paused = self.spinner.take().map(|pb| {
            let msg = pb.message();
            pb.finish_and_clear();
            msg
        });
        let r = TerminalSecrets.secret(req);
        if let Some(msg) = paused {
            super::Operator::busy(self, &msg);
        }
        r
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        super::Operator::done(self);
        TerminalSecrets.confirm_risky(question)
    }
    fn notice(&mut self, message: &str) {
        if let Some(pb) = &self.spinner {
            pb.println(message);
        } else {
            eprintln!("{message}");
        }
    }
}

impl super::Operator for TerminalOperator {
    fn ask(&mut self, q: &super::Question) -> Result<bool, KeyError> {
        self.done();
        if q.danger == super::Danger::Destructive {
            let line = console::style("!! This step cannot be undone. The default answer is No.")
                .red()
                .bold();
            eprintln!("{line}");
        }
        yes_no(&q.text, q.default && q.danger != super::Danger::Destructive)
    }
    fn show(&mut self, title: &str, body: &str) {
        self.done();
        let w = width();
        let mut lines = vec![format!("── {title} ──")];
        for l in body.lines() {
            lines.extend(wrap(l, w));
        }
        // a block taller than the screen goes in pages, so that nothing
        // scrolls away unread
        let page = height().saturating_sub(3).max(5);
        if lines.len() <= page + 2 {
            for l in &lines {
                eprintln!("{l}");
            }
            return;
        }
        let pages = lines.len().div_ceil(page);
        for (i, chunk) in lines.chunks(page).enumerate() {
            for l in chunk {
                eprintln!("{l}");
            }
            if i + 1 < pages {
                let _ = read_answer_line(&format!(
                    "── {title}: page {} of {pages}; Enter for the next page ──",
                    i + 1
                ));
            }
        }
    }
    fn show_qr(&mut self, caption: &str, data: &str) {
        self.done();
        eprintln!("{caption}:");
        eprintln!("{}", qr_text(data));
        eprintln!("{data}");
    }
    fn pause(&mut self, what: &str) -> Result<(), KeyError> {
        read_answer_line(&format!("Enter to go on ({what}) "))
            .map(|_| ())
            .map_err(|e| KeyError::Declined(format!("no answer: {e}")))
    }
    fn step(&mut self, n: usize, total: usize, what: &str, next: Option<&str>) {
        self.done();
        let head = format!("▶ Step {n}/{total}: {what}");
        let w = width().saturating_sub(1);
        let line = match next {
            Some(nx) => {
                let room = w.saturating_sub(head.chars().count() + 10);
                if room >= 8 {
                    format!("{head}  (next: {})", cut_words(nx, room))
                } else {
                    cut_words(&head, w)
                }
            }
            None => cut_words(&head, w),
        };
        eprintln!("{}", console::style(line).bold());
    }
    fn busy(&mut self, what: &str) {
        self.done();
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.set_message(what.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        self.spinner = Some(pb);
    }
    fn done(&mut self) {
        if let Some(pb) = self.spinner.take() {
            let secs = pb.elapsed().as_secs_f32();
            let msg = pb.message();
            pb.finish_and_clear();
            eprintln!("{msg} done in {secs:.1} s");
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
