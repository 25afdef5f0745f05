//! `arca` with no arguments: a menu for the people in the ceremony room.

use super::{ceremony_run, CeremonyRun};
use crate::conex::resource::Resource;
use crate::error::{ArcaError, Result};
use crate::operator::terminal::theme;
use dialoguer::{Input, Select};
use std::path::{Path, PathBuf};

const ITEMS: [&str; 9] = [
    "Run a ceremony",
    "Resume a stopped ceremony",
    "Rehearse a ceremony (throw-away SoftHSM tokens)",
    "Janitor: sign my targets file",
    "Sign a pending request (an absent root holder)",
    "Inspect a root",
    "Verify a repository",
    "Tokens and YubiKeys",
    "Quit",
];

/// Asks for a line; with a `default`, Enter alone takes it.
fn ask(prompt: &str, default: &str) -> Result<String> {
    input(prompt, (!default.is_empty()).then_some(default), false)
}

/// Asks for a line that may be left empty (the prompt says what empty
/// means): Enter alone answers "".
fn ask_optional(prompt: &str) -> Result<String> {
    input(prompt, None, true).map(|s| s.trim().to_string())
}

/// One line of input. dialoguer clears only the last screen row of an
/// answer longer than the terminal is wide (pasted anchors) before it
/// repeats the answer, which leaves the prompt drawn twice; here the rows
/// the answer took are cleared and the answer shown once.
fn input(prompt: &str, default: Option<&str>, allow_empty: bool) -> Result<String> {
    let t = theme();
    let mut i = Input::<String>::with_theme(t.as_ref())
        .with_prompt(prompt)
        .allow_empty(allow_empty)
        .report(false);
    if let Some(d) = default {
        i = i.default(d.to_string());
    }
    let answer = i
        .interact_text()
        .map_err(|e| ArcaError::Input(format!("no answer: {e}")))?;
    let term = console::Term::stderr();
    let mut shown = String::new();
    let _ = t.format_input_prompt(&mut shown, prompt, default);
    let cols = usize::from(term.size().1).max(1);
    // the typed answer (empty when the default was taken)
    let typed = if default.is_some_and(|d| d == answer) {
        0
    } else {
        answer.chars().count()
    };
    let rows = (console::measure_text_width(&shown) + typed)
        .div_ceil(cols)
        .max(1);
    let _ = term.clear_last_lines(rows - 1);
    let mut done = String::new();
    let _ = t.format_input_prompt_selection(&mut done, prompt, &answer);
    let _ = term.write_line(&done);
    Ok(answer)
}

/// A yes/no question answered with a typed `y` or `n` and Enter (Enter
/// alone: no).
/// The menu's yes/no questions: the one yes/no of arca's prompts (a typed
/// answer confirmed with Enter; Enter alone is No).
fn yes_no(prompt: &str) -> Result<bool> {
    crate::operator::terminal::yes_no(prompt, false).map_err(|e| ArcaError::Input(e.to_string()))
}

/// The ceremony file to run: one of `ceremonies/*.toml` here, the built-in
/// create-root example (`None`), or a path typed in.
fn pick_ceremony() -> Result<Option<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("ceremonies")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut labels: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    // the built-in example when this folder has no create-root.toml
    let builtin = !files
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "create-root.toml"));
    if builtin {
        labels.push("create-root (the built-in example)".into());
    }
    labels.push("another file…".into());
    let t = theme();
    let n = Select::with_theme(t.as_ref())
        .with_prompt("Which ceremony file?")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(|e| ArcaError::Input(format!("no answer: {e}")))?;
    if n < files.len() {
        Ok(Some(files[n].clone()))
    } else if builtin && n == files.len() {
        Ok(None)
    } else {
        Ok(Some(PathBuf::from(ask("Path of the ceremony file", "")?)))
    }
}

fn report(r: Result<()>) {
    if let Err(e) = r {
        eprintln!("{}", console::style(format!("arca: {e}")).red());
    }
}

/// Ctrl-C anywhere in the menu: the terminal as it was when the menu
/// started (echo on, cursor shown), one line saying so, then the usual
/// end by SIGINT (exit status 130).
mod interrupt {
    use std::sync::OnceLock;

    static SAVED: OnceLock<libc::termios> = OnceLock::new();

    extern "C" fn on_sigint(_: libc::c_int) {
        const MSG: &[u8] = b"\x1b[?25h\r\narca: interrupted (Ctrl-C)\r\n";
        // SAFETY: only async-signal-safe calls (tcsetattr, write, signal,
        // raise) on memory written before the handler was installed.
        unsafe {
            if let Some(t) = SAVED.get() {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
            }
            libc::write(libc::STDERR_FILENO, MSG.as_ptr().cast(), MSG.len());
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }

    /// Saves the terminal's settings and installs the handler.
    pub(super) fn install() {
        let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios on success; checked before use.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, t.as_mut_ptr()) } == 0 {
            // SAFETY: initialised by the successful tcgetattr above.
            let _ = SAVED.set(unsafe { t.assume_init() });
        }
        let handler: extern "C" fn(libc::c_int) = on_sigint;
        // SAFETY: installs a handler that only makes async-signal-safe calls.
        unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
    }
}

/// The main menu; returns when the person quits.
#[allow(clippy::redundant_closure_call)]
pub fn run() -> i32 {
    interrupt::install();
    eprintln!("arca — offline root of a conex-signed repository");
    loop {
        let t = theme();
        let choice = Select::with_theme(t.as_ref())
            .with_prompt("What do you want to do?")
            .items(ITEMS)
            .default(0)
            .interact_opt();
        let n = match choice {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => return 0,
        };
        let r = match n {
            0 | 1 => (|| {
                let file = pick_ceremony()?;
                let profile = ask("Device profile of this machine", "profile.toml")?;
                ceremony_run(
                    CeremonyRun {
                        file,
                        profile: Some(PathBuf::from(profile)),
                        answers: None,
                        yes: false,
                        rehearse: false,
                        base: None,
                    },
                    n == 1,
                )
            })(),
            2 => (|| {
                let file = pick_ceremony()?;
                let base = ask(
                    "Rehearsal folder (new or a previous rehearsal's)",
                    "rehearsal",
                )?;
                let resume = Path::new(&base).join(".rehearsal-tokens").exists()
                    && yes_no("Resume this ceremony in that rehearsal folder if it stopped?")?
                    && ceremony_output_has_journal(file.as_deref(), &base);
                ceremony_run(
                    CeremonyRun {
                        file,
                        profile: None,
                        answers: None,
                        yes: false,
                        rehearse: true,
                        base: Some(PathBuf::from(base)),
                    },
                    resume,
                )
            })(),
            3 => janitor(),
            4 => sign_request(),
            5 => (|| {
                let p = ask("Root file", "root")?;
                let text = std::fs::read_to_string(&p).map_err(|e| ArcaError::io(&p, e))?;
                let root =
                    crate::conex::Root::parse(&text, &mut Vec::new()).map_err(|e| e.in_file(&p))?;
                let anchors = ask_optional(
                    "Trust anchors to check against (sha256=…, comma-separated; empty for none)",
                )?;
                let anchors = super::parse_anchors(&[anchors])?;
                print!("{}", crate::status::root_status(&root, &anchors).render());
                Ok(())
            })(),
            6 => (|| {
                let dir = ask("Repository folder", ".")?;
                let anchors = ask("Trust anchors (sha256=…, comma-separated)", "")?;
                let quorum = ask(
                    "Root signatures needed (opam's --quorum)",
                    &root_quorum(Path::new(&dir)).to_string(),
                )?;
                let q: usize = quorum.trim().parse().map_err(|_| {
                    ArcaError::Input(format!("quorum \"{}\" is not a number", quorum.trim()))
                })?;
                let anchors = super::parse_anchors(&[anchors])?;
                let pb = indicatif::ProgressBar::new_spinner();
                pb.set_message(format!("verifying {dir}…"));
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                let (warnings, r) = super::verify_dir(PathBuf::from(dir), anchors, Some(q));
                pb.finish_and_clear();
                super::report(&warnings, r, false, false)
            })(),
            7 => (|| {
                match crate::keys::pkcs11::list_tokens(None) {
                    Ok(ts) if ts.is_empty() => println!("PKCS#11: no token present"),
                    Ok(ts) => {
                        for t in ts {
                            println!(
                                "token {} — {} {} serial {}",
                                t.label, t.manufacturer, t.model, t.serial
                            );
                        }
                    }
                    Err(e) => println!("PKCS#11: {e}"),
                }
                match crate::keys::piv::list() {
                    Ok(ds) if ds.is_empty() => println!("YubiKeys: none present"),
                    Ok(ds) => {
                        for d in ds {
                            println!("YubiKey serial {} firmware {}", d.serial, d.firmware);
                        }
                    }
                    Err(e) => println!("YubiKeys: {e}"),
                }
                Ok(())
            })(),
            _ => return 0,
        };
        report(r);
    }
}

/// The number of signatures the root in `dir` asks for itself (1 when it
/// cannot be read): the default answer for the verifier's quorum.
fn root_quorum(dir: &Path) -> i64 {
    std::fs::read_to_string(dir.join("root"))
        .ok()
        .and_then(|t| crate::conex::Root::parse(&t, &mut Vec::new()).ok())
        .map(|r| r.valid.min_signers().max(1))
        .unwrap_or(1)
}

fn ceremony_output_has_journal(file: Option<&Path>, base: &str) -> bool {
    let c = match file {
        Some(f) => crate::ceremony::script::Ceremony::load(f).map_err(ArcaError::from),
        None => super::builtin_ceremony(),
    };
    c.map(|c| {
        Path::new(base)
            .join(c.output())
            .join("journal.jsonl")
            .exists()
    })
    .unwrap_or(false)
}

fn janitor() -> Result<()> {
    let repo = ask("Repository folder", ".")?;
    let id = ask("Your janitor id", "")?;
    let on = ask_optional("Your key (piv:serial=…;slot=9c, pkcs11:…, or empty for ~/.conex)")?;
    let on = (!on.is_empty()).then_some(on);
    let recompute = yes_no("Recompute the entries of every package first?")?;
    super::janitor_sign(PathBuf::from(repo), &id, on.as_deref(), recompute)
}

fn sign_request() -> Result<()> {
    let file = ask("The sign request file", "")?;
    let id = ask("Your root key id", "")?;
    let on = ask_optional("Your key (pkcs11:…, piv:…, or empty for ~/.conex)")?;
    let out = ask("Write the signature to", &format!("{id}.signature"))?;
    super::bundle::sign_request_cmd(super::bundle::SignRequestCmd::Sign {
        file: PathBuf::from(file),
        id,
        on: (!on.trim().is_empty()).then_some(on),
        key_store: None,
        out: Some(PathBuf::from(out)),
        answers: None,
        created: None,
    })
}
