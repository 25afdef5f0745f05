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

fn ask(prompt: &str, default: &str) -> Result<String> {
    let t = theme();
    let mut i = Input::<String>::with_theme(t.as_ref()).with_prompt(prompt);
    if !default.is_empty() {
        i = i.default(default.to_string());
    }
    i.interact_text()
        .map_err(|e| ArcaError::Input(format!("no answer: {e}")))
}

fn pick_ceremony() -> Result<PathBuf> {
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
    labels.push("another file…".into());
    let t = theme();
    let n = Select::with_theme(t.as_ref())
        .with_prompt("Which ceremony file?")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(|e| ArcaError::Input(format!("no answer: {e}")))?;
    if n < files.len() {
        Ok(files[n].clone())
    } else {
        Ok(PathBuf::from(ask("Path of the ceremony file", "")?))
    }
}

fn report(r: Result<()>) {
    if let Err(e) = r {
        eprintln!("{}", console::style(format!("arca: {e}")).red());
    }
}

/// The main menu; returns when the person quits.
#[allow(clippy::redundant_closure_call)]
pub fn run() -> i32 {
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
                        file: Some(file),
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
                    && crate::operator::terminal::yes_no(
                        "Resume this ceremony in that rehearsal folder if it stopped?",
                        false,
                    )
                    .unwrap_or(false)
                    && ceremony_output_has_journal(&file, &base);
                ceremony_run(
                    CeremonyRun {
                        file: Some(file),
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
            5 => {
                (|| {
                    let p = ask("Root file", "root")?;
                    let text = std::fs::read_to_string(&p).map_err(|e| ArcaError::io(&p, e))?;
                    let root = crate::conex::Root::parse(&text, &mut Vec::new())
                        .map_err(|e| e.in_file(&p))?;
                    let anchors = ask("Trust anchors to check against (sha256=…, comma-separated; empty for none)", "")
                    .unwrap_or_default();
                    let anchors = super::parse_anchors(&[anchors])?;
                    print!("{}", crate::status::root_status(&root, &anchors).render());
                    Ok(())
                })()
            }
            6 => (|| {
                let dir = ask("Repository folder", ".")?;
                let anchors = ask("Trust anchors (sha256=…, comma-separated)", "")?;
                let quorum = ask("Quorum of root signatures", "1")?;
                let q: usize = quorum
                    .trim()
                    .parse()
                    .map_err(|_| ArcaError::Input(format!("quorum {quorum:?} is not a number")))?;
                let pb = indicatif::ProgressBar::new_spinner();
                pb.set_message(format!("verifying {dir}…"));
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                let r = super::verify_dir(PathBuf::from(dir), &[anchors], Some(q));
                pb.finish_and_clear();
                r
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

fn ceremony_output_has_journal(file: &Path, base: &str) -> bool {
    crate::ceremony::script::Ceremony::load(file)
        .map(|c| {
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
    let on = ask(
        "Your key (piv:serial=…;slot=9c, pkcs11:…, or empty for ~/.conex)",
        "",
    )?;
    let on = (!on.trim().is_empty()).then_some(on);
    let recompute =
        crate::operator::terminal::yes_no("Recompute the entries of every package first?", false)
            .map_err(|e| ArcaError::Input(e.to_string()))?;
    super::janitor_sign(PathBuf::from(repo), &id, on.as_deref(), recompute)
}

fn sign_request() -> Result<()> {
    let file = ask("The sign request file", "")?;
    let id = ask("Your root key id", "")?;
    let on = ask("Your key (pkcs11:…, piv:…, or empty for ~/.conex)", "")?;
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
