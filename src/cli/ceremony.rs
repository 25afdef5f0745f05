//! `arca ceremony`: check, run, resume, verify a transcript.

use super::args::{CeremonyCmd, CeremonyRun};
use super::output::output;
use crate::error::{ArcaError, Result};
use crate::keys;
use std::path::PathBuf;

pub(super) fn ceremony_cmd(cmd: CeremonyCmd) -> Result<()> {
    use crate::ceremony::{profile::Profile, script::Ceremony};
    match cmd {
        CeremonyCmd::Check {
            file,
            profile,
            json,
        } => {
            let c = Ceremony::load(&file)?;
            if let Some(p) = profile {
                let prof = Profile::load(&p)?;
                prof.check_holders(&p.display().to_string(), &c.holders())?;
            }
            let d = crate::ceremony::digest(c.text.as_bytes());
            let plan = crate::ceremony::kinds::plan(&c);
            // a warning, not a refusal: the root is good for conex, only
            // not for the online signer conex runs in production
            let mirror = c.opam_mirror_problems();
            for p in &mirror {
                eprintln!(
                    "arca: warning: {}: opam-mirror cannot serve the root this ceremony makes: {p}",
                    file.display()
                );
            }
            let v = serde_json::json!({
                "file": file.display().to_string(), "kind": c.kind(), "title": c.title(), "digest": d,
                "steps": plan.iter().map(|p| p.step.to_string()).collect::<Vec<_>>(),
                "plan": plan.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "opam_mirror_problems": mirror,
            });
            output(json, &v, |_| {
                format!(
                    "{}: {} ceremony \"{}\" is valid; {} steps; digest {d}\n{}\n",
                    file.display(),
                    c.kind(),
                    c.title(),
                    plan.len(),
                    crate::ceremony::grouped_lines(&d, "    ")
                )
            });
            Ok(())
        }
        CeremonyCmd::VerifyTranscript { path, json } => {
            let j = if path.is_dir() {
                path.join("journal.jsonl")
            } else {
                path
            };
            // a journal that cannot be read is an I/O error (3); one that
            // reads but whose chain does not hold failed verification (1)
            let entries = crate::journal::read_chain(&j).map_err(|e| match e.source {
                Some(source) => ArcaError::io(&j, source),
                None => ArcaError::Verify(e.to_string()),
            })?;
            let last = entries.last().map(|e| e.step.clone()).unwrap_or_default();
            let head = entries.last().map(|e| e.hash.clone()).unwrap_or_default();
            let v = serde_json::json!({
                "journal": j.display().to_string(), "steps": entries.len(), "last_step": last, "last_hash": head,
            });
            output(json, &v, |_| {
                format!(
                    "{}: {} step(s), chain intact, last step {last} ({head})\n",
                    j.display(),
                    entries.len()
                )
            });
            Ok(())
        }
        CeremonyCmd::Run(a) => ceremony_run(a, false),
        CeremonyCmd::Resume(a) => ceremony_run(a, true),
    }
}

/// The built-in create-root example (`ceremonies/create-root.toml`).
pub(crate) fn builtin_ceremony() -> Result<crate::ceremony::script::Ceremony> {
    Ok(crate::ceremony::script::Ceremony::parse(
        std::path::Path::new("create-root.toml (built in)"),
        include_str!("../../ceremonies/create-root.toml").to_string(),
    )?)
}

/// `s` quoted for a shell when it needs it.
pub(super) fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./=:,+@".contains(&c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The exact command that resumes this ceremony.
pub(super) fn resume_command(a: &CeremonyRun) -> String {
    let mut v = vec!["arca".to_string(), "ceremony".into(), "resume".into()];
    if let Some(f) = &a.file {
        v.push(shell_word(&f.display().to_string()));
    }
    if a.rehearse {
        v.push("--rehearse".into());
    }
    if let Some(p) = &a.profile {
        v.push("--profile".into());
        v.push(shell_word(&p.display().to_string()));
    }
    if let Some(f) = &a.answers {
        v.push("--answers".into());
        v.push(shell_word(&f.display().to_string()));
    }
    if a.yes {
        v.push("--yes".into());
    }
    if let Some(b) = &a.base {
        v.push("--base".into());
        v.push(shell_word(&b.display().to_string()));
    }
    v.join(" ")
}

/// Set in the process that runs a rehearsal for another arca process.
pub(super) const REHEARSAL_CHILD: &str = "ARCA_REHEARSAL_CHILD";

/// Runs a rehearsal in a process of its own with the rehearsal's SoftHSM
/// configuration: a PKCS#11 module this process loaded earlier (the menu's
/// token list, say) keeps the configuration it was loaded with, and a
/// rehearsal must never write to a token store it did not make.
pub(super) fn rehearse_in_child(
    a: &CeremonyRun,
    base: &std::path::Path,
    resume: bool,
) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().map_err(|e| ArcaError::io("arca's own executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["ceremony", if resume { "resume" } else { "run" }]);
    if let Some(f) = &a.file {
        cmd.arg(f);
    }
    cmd.arg("--rehearse").arg("--base").arg(base);
    if let Some(f) = &a.answers {
        cmd.arg("--answers").arg(f);
    }
    if a.yes {
        cmd.arg("--yes");
    }
    cmd.env(REHEARSAL_CHILD, "1").env(
        "SOFTHSM2_CONF",
        base.join(".rehearsal-tokens").join("softhsm2.conf"),
    );
    // SAFETY: only resets a signal disposition between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    // Ctrl-C is the child's to handle (it says where it stopped)
    // SAFETY: plain signal disposition changes.
    let old = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let st = cmd.status();
    // SAFETY: restores the disposition saved above.
    unsafe { libc::signal(libc::SIGINT, old) };
    let st = st.map_err(|e| ArcaError::io("the rehearsal process", e))?;
    use std::os::unix::process::ExitStatusExt as _;
    if st.signal() == Some(libc::SIGINT) || st.code() == Some(130) {
        std::process::exit(130);
    }
    match st.code() {
        Some(0) => Ok(()),
        code => Err(ArcaError::Child {
            what: "the rehearsal".into(),
            code,
        }),
    }
}

pub(crate) fn ceremony_run(a: CeremonyRun, resume: bool) -> Result<()> {
    use crate::ceremony::{profile::Profile, rehearse, script::Ceremony};
    use crate::operator::{choose, scripted::Scripted, Chosen, NoTerminal, Operator};
    let c = match &a.file {
        Some(f) => Ceremony::load(f)?,
        None => builtin_ceremony()?,
    };
    if a.rehearse && std::env::var_os(REHEARSAL_CHILD).is_none() {
        let base = match &a.base {
            Some(b) => b.clone(),
            None => tempfile::Builder::new()
                .prefix("arca-rehearsal-")
                .tempdir()
                .map_err(|e| ArcaError::io("temporary folder", e))?
                .keep(),
        };
        if let Some(f) = &a.answers {
            // a bad answers file is refused before anything is made
            Scripted::from_file(f)?;
        }
        return rehearse_in_child(&a, &base, resume);
    }
    let (profile, base, mut op): (Profile, PathBuf, Box<dyn Operator>) = if a.rehearse {
        let base = a
            .base
            .clone()
            .ok_or_else(|| ArcaError::Input("--base FOLDER is required".into()))?;
        let (op, chosen) = choose(a.answers.as_deref(), a.yes, NoTerminal::AnswerYes)?;
        let interactive = chosen == Chosen::Terminal;
        if interactive {
            eprintln!(
                "Rehearsal: every holder's device is a throw-away SoftHSM token; their PIN is {:?}.",
                rehearse::REHEARSAL_PIN
            );
        }
        let profile = rehearse::prepare(&c, &base.join(".rehearsal-tokens"), !interactive)?;
        (profile, base, op)
    } else {
        let profile = Profile::load(
            a.profile
                .as_deref()
                .ok_or_else(|| ArcaError::Input("--profile FILE is required".into()))?,
        )?;
        let (op, _) = choose(
            a.answers.as_deref(),
            false,
            NoTerminal::Fail(ArcaError::Key(keys::KeyError::Declined(
                "no terminal to ask the people in the room: give --answers FILE (see docs/ceremonies.md)".into(),
            ))),
        )?;
        (
            profile,
            a.base.clone().unwrap_or_else(|| PathBuf::from(".")),
            op,
        )
    };
    crate::operator::install_interrupt_handler();
    let mut again = CeremonyRun {
        file: a.file.clone(),
        profile: a.profile.clone(),
        answers: a.answers.clone(),
        rehearse: a.rehearse,
        yes: a.yes,
        base: a.base.clone(),
    };
    if a.rehearse {
        again.base = Some(base.clone());
    }
    let out = crate::ceremony::run(
        &c,
        &profile,
        op.as_mut(),
        &base,
        resume,
        a.rehearse,
        resume_command(&again),
    )?;
    if out.finished_before {
        println!("finished before: {}", out.root.display());
    } else {
        println!("root written: {}", out.root.display());
    }
    println!("trust anchors: {}", out.anchors.join(","));
    if let Some(ns) = &out.next_steps {
        print!("{ns}");
    }
    Ok(())
}
