//! The person at the keyboard. A ceremony asks the [`Operator`] typed
//! [`Question`]s, secrets, and shows summaries and QR codes; [`terminal`]
//! does it with prompts, [`scripted`] from an answers file (CI, rehearsals).
//!
//! Every question has a stable *subject* (`approve`, `sign:rootA`,
//! `generate:rootA`, …) and every secret one (`pin:token=root-1`,
//! `passphrase:online-keys`, …): answers files address those, never the
//! wording of a prompt.

pub mod scripted;
pub mod terminal;

use crate::keys::{KeyError, KeyLocation, NoSecrets, SecretRequest, SecretSource};
use std::io::IsTerminal as _;
use zeroize::Zeroizing;

/// How dangerous a question is; destructive ones get a banner and always
/// default to No.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Danger {
    /// An ordinary question.
    Normal,
    /// Something that cannot be undone (signing a root, generating keys).
    Destructive,
}

/// A yes/no question.
#[derive(Clone, Debug)]
pub struct Question {
    /// The stable subject answers files use (`approve`, `sign:rootA`).
    pub subject: String,
    /// The words shown to people.
    pub text: String,
    /// Banner or not.
    pub danger: Danger,
    /// The answer a bare Enter gives (always No for destructive ones).
    pub default: bool,
}

impl Question {
    /// A question about something that cannot be undone: default No.
    pub fn destructive(subject: impl Into<String>, text: impl Into<String>) -> Question {
        Question {
            subject: subject.into(),
            text: text.into(),
            danger: Danger::Destructive,
            default: false,
        }
    }
    /// An ordinary question with a default.
    pub fn normal(subject: impl Into<String>, text: impl Into<String>, default: bool) -> Question {
        Question {
            subject: subject.into(),
            text: text.into(),
            danger: Danger::Normal,
            default,
        }
    }
}

/// The subject of the question device code asks before a final PIN try.
pub const FINAL_PIN_TRY: &str = "pin-final-try";

/// What a subject in an answers file addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    /// A yes/no question.
    Question,
    /// A PIN or passphrase.
    Secret,
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Checks a subject as written in an answers file; the error lists the
/// subjects there are.
pub fn check_subject(s: &str) -> Result<SubjectKind, UnknownSubject> {
    let q = |rest: &str| ident_ok(rest).then_some(SubjectKind::Question);
    let found = match s.split_once(':') {
        None => match s {
            "approve" | FINAL_PIN_TRY => Some(SubjectKind::Question),
            _ => None,
        },
        Some(("sign" | "generate" | "adopt" | "generate-online" | "preflight", rest)) => q(rest),
        Some(("pin", rest)) => match rest.split_once('=') {
            Some(("token" | "serial" | "piv", v)) if !v.is_empty() => Some(SubjectKind::Secret),
            _ if rest == "piv" => Some(SubjectKind::Secret),
            _ => None,
        },
        Some(("passphrase", rest)) => match rest.split_once('=') {
            _ if rest == "online-keys" => Some(SubjectKind::Secret),
            Some(("key", v)) if ident_ok(v) => Some(SubjectKind::Secret),
            _ => None,
        },
        _ => None,
    };
    found.ok_or_else(|| UnknownSubject(crate::conex::shown(s)))
}

/// A subject an answers file names that is neither a question nor a secret
/// (the subject, shown escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a question subject (approve, sign:ID, generate:ID, adopt:ID, generate-online:ID, preflight:network, {FINAL_PIN_TRY}) nor a secret subject (pin:token=LABEL, pin:serial=SERIAL, pin:piv=SERIAL, passphrase:online-keys, passphrase:key=ID)")]
pub struct UnknownSubject(pub String);

/// The secret subject of a key location: what an answers file names to
/// give its PIN or passphrase.
pub fn secret_subject(loc: &KeyLocation) -> String {
    match loc {
        KeyLocation::Pkcs11(u) => match (&u.token, &u.serial) {
            (Some(t), _) => format!("pin:token={t}"),
            (None, Some(s)) => format!("pin:serial={s}"),
            (None, None) => "pin:token=".into(),
        },
        KeyLocation::Piv(p) => match p.serial {
            Some(s) => format!("pin:piv={s}"),
            None => "pin:piv".into(),
        },
        KeyLocation::File(f) => {
            let id = match f {
                crate::keys::file::FileLocation::Id { id, .. } => id.clone(),
                crate::keys::file::FileLocation::Path(p) => crate::keys::file::id_of_path(p),
            };
            format!("passphrase:key={id}")
        }
    }
}

/// What a ceremony needs of a person.
pub trait Operator: SecretSource {
    /// Asks a yes/no question.
    fn ask(&mut self, q: &Question) -> Result<bool, KeyError>;
    /// Asks for the secret with this subject (`pin:token=root-1`).
    fn secret_as(
        &mut self,
        subject: &str,
        req: &SecretRequest,
    ) -> Result<Zeroizing<String>, KeyError> {
        let _ = subject;
        self.secret(req)
    }
    /// Shows a titled block of text (a change summary, a step list).
    fn show(&mut self, title: &str, body: &str);
    /// Shows a QR code for `data` with a caption.
    fn show_qr(&mut self, caption: &str, data: &str);
    /// Waits until the person is ready to go on (after a QR code).
    fn pause(&mut self, what: &str) -> Result<(), KeyError> {
        let _ = what;
        Ok(())
    }
    /// Reports progress of step `n` of `total`; `next` is the step after.
    fn step(&mut self, n: usize, total: usize, what: &str, next: Option<&str>);
    /// Shows the ceremony's steps before it starts.
    fn plan(&mut self, title: &str, steps: &[String]) {
        self.show(title, &plan_text(steps));
    }
    /// Something slow begins (key generation, long verification).
    fn busy(&mut self, what: &str) {
        self.notice(what);
    }
    /// The slow thing ended.
    fn done(&mut self) {}
}

/// A secret source that asks the operator for the secret with a fixed
/// subject: what a device opened for one key asks for.
pub struct Subjected<'a> {
    /// The operator.
    pub op: &'a mut dyn Operator,
    /// The subject of every secret asked through this.
    pub subject: String,
}

impl SecretSource for Subjected<'_> {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        self.op.secret_as(&self.subject, req)
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        self.op.confirm_risky(question)
    }
    fn notice(&mut self, message: &str) {
        self.op.notice(message)
    }
}

/// A numbered step list.
pub fn plan_text(steps: &[String]) -> String {
    let body: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:>2}. {s}", i + 1))
        .collect();
    body.join("\n")
}

/// Who was chosen to answer (see [`choose`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// The answers file given.
    AnswersFile,
    /// The people at the terminal.
    Terminal,
    /// Every question answered yes (rehearsals only).
    AllYes,
}

/// What happens when there is neither an answers file nor a terminal.
#[derive(Debug)]
pub enum NoTerminal {
    /// Every question is answered yes (a rehearsal).
    AnswerYes,
    /// The command stops with this error.
    Fail(crate::error::ArcaError),
}

/// The one place that chooses the operator: the answers file when one is
/// given (a bad one is bad input); else, unless `yes` asks for every answer
/// to be yes, the terminal when standard input is one; else what
/// `no_terminal` says.
pub fn choose(
    answers: Option<&std::path::Path>,
    yes: bool,
    no_terminal: NoTerminal,
) -> Result<(Box<dyn Operator>, Chosen), crate::error::ArcaError> {
    if let Some(f) = answers {
        let op = scripted::Scripted::from_file(f)?;
        return Ok((Box::new(op), Chosen::AnswersFile));
    }
    if !yes && std::io::stdin().is_terminal() {
        return Ok((
            Box::new(terminal::TerminalOperator::new()),
            Chosen::Terminal,
        ));
    }
    match no_terminal {
        NoTerminal::AnswerYes => Ok((
            Box::new(scripted::Scripted::yes(Default::default())),
            Chosen::AllYes,
        )),
        NoTerminal::Fail(e) => Err(e),
    }
}

/// The secret source for this process: hidden prompts on a terminal, or
/// [`NoSecrets`] (which explains what to pass instead) when stdin is not one.
pub fn secrets() -> Box<dyn SecretSource> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Box::new(terminal::TerminalSecrets)
    } else {
        Box::new(NoSecrets)
    }
}

/// What Ctrl-C says while a ceremony runs: the step, the journal, the
/// command to resume. Kept ready for the signal handler.
static INTERRUPT_NOTE: std::sync::atomic::AtomicPtr<Vec<u8>> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Sets what Ctrl-C prints (None: only restore the terminal). The old note
/// is leaked on purpose: a signal handler may be reading it.
pub fn set_interrupt_note(note: Option<String>) {
    let p = match note {
        Some(n) => Box::into_raw(Box::new(n.into_bytes())),
        None => std::ptr::null_mut(),
    };
    INTERRUPT_NOTE.store(p, std::sync::atomic::Ordering::SeqCst);
}

extern "C" fn on_sigint(_: libc::c_int) {
    // only async-signal-safe calls: write(2) and _exit(2)
    let show_cursor = b"\x1b[?25h\n";
    // SAFETY: writing a static buffer to stderr.
    unsafe { libc::write(2, show_cursor.as_ptr().cast(), show_cursor.len()) };
    let p = INTERRUPT_NOTE.load(std::sync::atomic::Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: notes are leaked, never freed: the pointer stays valid.
        let v = unsafe { &*p };
        // SAFETY: writing a valid buffer to stderr.
        unsafe { libc::write(2, v.as_ptr().cast(), v.len()) };
    }
    // SAFETY: ends the process at once, as the default action of SIGINT
    // would, with the shell's code for it.
    unsafe { libc::_exit(130) };
}

/// Installs the Ctrl-C handler: it shows the cursor again (spinners and
/// menus hide it), prints the interrupt note and exits with 130.
pub fn install_interrupt_handler() {
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ArcaError;

    #[test]
    fn the_answers_file_comes_first_then_the_terminal_then_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("answers.toml");
        std::fs::write(&f, "confirm = \"no\"\n").unwrap();
        let declined = || NoTerminal::Fail(ArcaError::Key(KeyError::Declined("nobody".into())));
        let (mut op, chosen) = choose(Some(&f), true, declined()).unwrap();
        assert_eq!(chosen, Chosen::AnswersFile);
        assert!(!op
            .ask(&Question::normal("approve", "go on?", true))
            .unwrap());
        // `yes` passes the terminal by, whether there is one or not
        let (mut op, chosen) = choose(None, true, NoTerminal::AnswerYes).unwrap();
        assert_eq!(chosen, Chosen::AllYes);
        assert!(op
            .ask(&Question::destructive("sign:rootA", "sign?"))
            .unwrap());
        match choose(None, true, declined()) {
            Err(e) => assert_eq!(e.exit_code(), 5),
            Ok((_, c)) => panic!("{c:?} chosen where the fallback fails"),
        }
        // a bad answers file is bad input, named
        std::fs::write(&f, "confirm = \"perhaps\"\n").unwrap();
        match choose(Some(&f), false, NoTerminal::AnswerYes) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                assert!(e.to_string().contains("answers.toml"), "{e}");
            }
            Ok((_, c)) => panic!("{c:?} chosen from a bad answers file"),
        }
    }

    #[test]
    fn subjects_are_typed_never_wording() {
        for q in [
            "approve",
            "sign:rootA",
            "generate:rootA",
            "adopt:rootD",
            "generate-online:snap",
            "preflight:network",
            FINAL_PIN_TRY,
        ] {
            assert_eq!(check_subject(q), Ok(SubjectKind::Question), "{q}");
        }
        for s in [
            "pin:token=rehearsal-alice",
            "pin:serial=42",
            "pin:piv=15835999",
            "pin:piv",
            "passphrase:online-keys",
            "passphrase:key=rootA",
        ] {
            assert_eq!(check_subject(s), Ok(SubjectKind::Secret), "{s}");
        }
        for bad in [
            "token root-1",
            "passphrase for",
            "online keys",
            "sign:",
            "sign:a b",
            "pin:token=",
            "Do the root holders approve",
        ] {
            let e = check_subject(bad).unwrap_err().to_string();
            assert!(
                !e.contains('\n') && e.contains("not a question subject"),
                "{e}"
            );
        }
    }

    #[test]
    fn secret_subjects_of_locations() {
        let l = KeyLocation::parse("pkcs11:token=root-1;object=rootA?module-path=/m.so").unwrap();
        assert_eq!(secret_subject(&l), "pin:token=root-1");
        let l = KeyLocation::parse("piv:serial=7;slot=9c").unwrap();
        assert_eq!(secret_subject(&l), "pin:piv=7");
        for s in ["pin:token=root-1", "pin:piv=7"] {
            assert_eq!(check_subject(s), Ok(SubjectKind::Secret));
        }
    }

    #[test]
    fn words_wrap_and_cut_at_spaces() {
        let w = terminal::wrap(
            "alice: sign the root above as rootA at counter 1? [y/N]",
            20,
        );
        assert!(w.iter().all(|l| l.chars().count() <= 20), "{w:?}");
        assert_eq!(
            w.join(" "),
            "alice: sign the root above as rootA at counter 1? [y/N]"
        );
        let c = terminal::cut_words("root-key:rootB: bob generates rootB (ed25519)", 24);
        assert_eq!(c, "root-key:rootB: bob…");
        assert_eq!(terminal::cut_words("short", 24), "short");
    }
}
