//! Scripted ceremonies: a reviewed file (`ceremonies/*.toml`) plus a fixed,
//! tested order of steps in code. Every step is journaled; a killed ceremony
//! resumes where it stopped and ends as if never interrupted.

pub mod kinds;
pub mod preflight;
pub mod profile;
pub mod rehearse;
pub mod script;
pub mod summary;

use crate::conex::resource::{format_time, Resource};
use crate::conex::verify::{DirSource, Options, Verifier};
use crate::conex::{Digest, Root};
use crate::error::{ArcaError, Result};
use crate::journal::Journal;
use crate::keys::{KeyLocation, SecretSource, Signer};
use crate::operator::{Operator, Question};
use crate::repository::write_atomic;
use crate::repository::Counter;
use kinds::{Planned, Step};
use profile::Profile;
use script::Ceremony;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A running ceremony.
pub struct Engine<'a> {
    /// The ceremony.
    pub c: &'a Ceremony,
    /// The device profile.
    pub profile: &'a Profile,
    /// The person.
    pub op: &'a mut dyn Operator,
    /// The output folder.
    pub out: PathBuf,
    /// The folder paths in the ceremony file are relative to.
    pub base: PathBuf,
    /// The journal.
    pub journal: Journal,
    /// Whether this is a rehearsal.
    pub rehearsal: bool,
    /// The steps, in order: the only list of them.
    pub plan: Vec<Planned>,
    /// The command that resumes this ceremony, for people.
    pub resume_command: String,
    last: Option<usize>,
    current: usize,
    delay: Option<std::time::Duration>,
    online_pass: Option<zeroize::Zeroizing<String>>,
}

/// What a ceremony produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The signed root written.
    pub root: PathBuf,
    /// Trust anchors of the new root.
    pub anchors: Vec<String>,
    /// The air-gap bundle folder.
    pub bundle: PathBuf,
    /// The bundle's digest (`sha256=` of its MANIFEST).
    pub bundle_digest: String,
    /// What the online side must do with this root, when something beyond
    /// the usual (a new epoch).
    pub next_steps: Option<String>,
    /// The ceremony had finished before (a resume found it done).
    pub finished_before: bool,
}

use crate::repository::now_secs;

/// The time to record.
pub fn now() -> String {
    format_time(now_secs())
}

/// SHA-256 of bytes as `sha256=…`.
pub fn digest(bytes: &[u8]) -> String {
    Digest::sha256(bytes).to_string()
}

/// A `sha256=…` digest in groups of four, eight groups a line, indented.
pub fn grouped_lines(d: &str, indent: &str) -> String {
    match Digest::parse(d) {
        Ok(d) => crate::status::read_aloud_lines(&d, indent),
        Err(_) => format!("{indent}{d}"),
    }
}

/// What the holders see before they approve and before every signature:
/// the change summary and the digest of exactly the content signed.
pub fn what_is_signed(old: Option<&Root>, new: &Root) -> String {
    let d = digest(new.canonical_signed().as_bytes());
    let g = crate::repository::grouped(&d);
    let groups: Vec<&str> = g.split(' ').collect();
    let mid = groups.len().div_ceil(2);
    format!(
        "{}signed content  {}\n                {}",
        summary::describe_change(old, new),
        groups[..mid].join(" "),
        groups[mid..].join(" ")
    )
}

/// What the online side does after a root that moves an online role to a
/// new epoch (or a new key), as exact commands; None when nothing changes
/// for it.
pub fn online_next_steps(old: Option<&Root>, new: &Root) -> Option<String> {
    use crate::conex::Role;
    let old = old?;
    let mut lines = Vec::new();
    let mut snapshot_epoch = None;
    let mut timestamp_epoch = None;
    for role in [Role::Snapshot, Role::Timestamp] {
        let a = old.single_role(role).ok().flatten();
        let b = new.single_role(role).ok().flatten();
        if let Some((id, d, e)) = &b {
            if a.as_ref()
                .is_some_and(|(ia, da, ea)| ia != id || da != d || ea != e)
            {
                lines.push(format!(
                    "The root expects the {role} file {id} at epoch {e} (its counter restarts)."
                ));
                match role {
                    Role::Snapshot => snapshot_epoch = Some(*e),
                    _ => timestamp_epoch = Some(*e),
                }
            }
        }
    }
    let mut janitors = Vec::new();
    if let (Some(a), Some(b)) = (
        old.roles.get(&Role::Maintainer),
        new.roles.get(&Role::Maintainer),
    ) {
        for r in b.refs() {
            if let crate::conex::KeyRef::Remote { id, epoch, .. } = r {
                let before = a.refs().into_iter().find_map(|x| match x {
                    crate::conex::KeyRef::Remote {
                        id: i, epoch: e, ..
                    } if i == id => Some(*e),
                    _ => None,
                });
                if before.is_some_and(|e| e != *epoch) {
                    janitors.push(format!(
                        "Janitor {id} makes and signs their targets file again at epoch {epoch}: arca targets create --id {id} --epoch {epoch}"
                    ));
                }
            }
        }
    }
    if lines.is_empty() && janitors.is_empty() {
        return None;
    }
    if !lines.is_empty() {
        lines.push("On the online machine, with this root in the repository:".into());
        lines.push(match snapshot_epoch {
            Some(e) => format!("  arca snapshot create --epoch {e}"),
            None => "  arca snapshot create".into(),
        });
        lines.push("  arca snapshot sign".into());
        lines.push(match timestamp_epoch {
            Some(e) => format!("  arca timestamp create --epoch {e}"),
            None => "  arca timestamp create".into(),
        });
        lines.push("  arca timestamp sign".into());
    }
    lines.extend(janitors);
    Some(lines.join("\n") + "\n")
}

impl<'a> Engine<'a> {
    /// Prepares a run: the checks that need no PIN (a refusal here leaves
    /// no journal), the preflight list, then the journal.
    pub fn start(
        c: &'a Ceremony,
        profile: &'a Profile,
        op: &'a mut dyn Operator,
        base: &Path,
        resume: bool,
        rehearsal: bool,
        resume_command: String,
    ) -> Result<Engine<'a>> {
        profile.check_holders(&c.path.display().to_string(), &c.holders())?;
        preflight::inputs(c, profile, base, resume)?;
        let out = base.join(c.output());
        let checks = preflight::run(c, profile, &out, resume, now_secs());
        let mut text = String::new();
        for ch in &checks {
            let (mark, note) = match (ch.ok, ch.acknowledgeable && rehearsal) {
                (true, _) => (" ok ", ""),
                (false, true) => ("warn", " (rehearsal)"),
                (false, false) => ("FAIL", ""),
            };
            text.push_str(&format!("[{mark}] {}: {}{note}\n", ch.name, ch.detail));
        }
        let cdigest = digest(c.text.as_bytes());
        text.push_str(&format!(
            "ceremony file digest (witnesses read it aloud):\n{}\n",
            grouped_lines(&cdigest, "    ")
        ));
        op.show("Preflight", &text);
        for ch in &checks {
            if ch.ok || (ch.acknowledgeable && rehearsal) {
                continue;
            }
            if ch.acknowledgeable
                && op.ask(&Question::normal(
                    format!("preflight:{}", ch.name),
                    format!("{}: {} — go on anyway?", ch.name, ch.detail),
                    false,
                ))?
            {
                continue;
            }
            return Err(ArcaError::Refused(format!(
                "preflight: {}: {}",
                ch.name, ch.detail
            )));
        }
        let journal = Journal::open(&out.join("journal.jsonl"))?;
        let plan = kinds::plan(c);
        if resume {
            match journal.find("begin") {
                Some(b)
                    if b.detail.get("ceremony_digest").and_then(|d| d.as_str())
                        == Some(cdigest.as_str()) => {}
                Some(_) => {
                    return Err(ArcaError::Refused(
                        "the journal belongs to a different ceremony file (digest differs)".into(),
                    ))
                }
                None => return Err(ArcaError::Refused("the journal has no begin step".into())),
            }
            for en in &journal.entries {
                if !plan.iter().any(|p| p.step.to_string() == en.step) {
                    return Err(ArcaError::Refused(format!(
                        "{}:{}: step {} is not in the plan of this ceremony",
                        journal.path().display(),
                        en.seq,
                        crate::conex::shown(&en.step)
                    )));
                }
            }
        }
        let delay = std::env::var("ARCA_CEREMONY_STEP_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_millis);
        let lines: Vec<String> = plan.iter().map(|p| p.to_string()).collect();
        op.plan(&format!("{} — {} steps", c.title(), plan.len()), &lines);
        let mut e = Engine {
            c,
            profile,
            op,
            out,
            base: base.to_path_buf(),
            journal,
            rehearsal,
            plan,
            resume_command,
            last: None,
            current: 0,
            delay,
            online_pass: None,
        };
        e.step(&Step::Begin, |e| {
            Ok((
                serde_json::json!({"kind": e.c.kind(), "title": e.c.title(), "ceremony_digest": cdigest, "rehearsal": rehearsal}),
                BTreeMap::new(),
            ))
        })?;
        Ok(e)
    }

    /// What people are told when the ceremony stops at the current step.
    pub fn stopped_note(&self) -> String {
        let n = self.current + 1;
        let name = self
            .plan
            .get(self.current)
            .map(|p| p.step.to_string())
            .unwrap_or_default();
        format!(
            "Stopped at step {n}/{} ({name}). The journal {} keeps every step done so far.\nResume with:\n  {}\n",
            self.plan.len(),
            self.journal.path().display(),
            self.resume_command
        )
    }

    /// Runs a step of the plan once: a step already in the journal returns
    /// what it recorded (after checking its output files are unchanged). A
    /// step that is not in the plan, or comes out of the plan's order, is
    /// refused.
    pub fn step<T: Serialize + DeserializeOwned>(
        &mut self,
        step: &Step,
        f: impl FnOnce(&mut Self) -> Result<(T, BTreeMap<String, String>)>,
    ) -> Result<T> {
        let name = step.to_string();
        let idx = self
            .plan
            .iter()
            .position(|p| p.step == *step)
            .ok_or_else(|| {
                ArcaError::Refused(format!(
                    "step {name} is not in the plan of this {} ceremony",
                    self.c.kind()
                ))
            })?;
        if self.last.is_some_and(|l| idx <= l) {
            return Err(ArcaError::Refused(format!(
                "step {name} comes out of the plan's order"
            )));
        }
        self.last = Some(idx);
        self.current = idx;
        let n = idx + 1;
        let total = self.plan.len();
        let next = self.plan.get(idx + 1).map(|p| p.to_string());
        if self.journal.find("begin").is_some() || step != &Step::Begin {
            crate::operator::set_interrupt_note(Some(self.stopped_note()));
        }
        if let Some(e) = self.journal.find(&name).cloned() {
            for (file, d) in &e.outputs {
                let p = self.out.join(file);
                if let Ok(bytes) = std::fs::read(&p) {
                    // later steps may have rewritten work files; final outputs must match
                    if !file.starts_with("work/") && digest(&bytes) != *d {
                        return Err(ArcaError::Refused(format!(
                            "{} changed since step {name} wrote it",
                            p.display()
                        )));
                    }
                } else if !file.starts_with("work/") {
                    return Err(ArcaError::Refused(format!(
                        "{} written by step {name} is missing",
                        p.display()
                    )));
                }
            }
            self.op.step(
                n,
                total,
                &format!("{name} (done before, resumed)"),
                next.as_deref(),
            );
            return serde_json::from_value(e.detail)
                .map_err(|err| ArcaError::Input(format!("journal step {name}: {err}")));
        }
        self.op.step(n, total, &name, next.as_deref());
        let (v, outputs) = f(self)?;
        let detail = serde_json::to_value(&v).map_err(|e| ArcaError::Input(e.to_string()))?;
        self.journal.append(&now(), &name, detail, outputs)?;
        crate::operator::set_interrupt_note(Some(self.stopped_note()));
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        Ok(v)
    }

    /// Writes a file in the output folder atomically; returns (name, digest).
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<(String, String)> {
        write_atomic(&self.out.join(rel), bytes)?;
        Ok((rel.to_string(), digest(bytes)))
    }

    /// Writes a final output: never over an existing file.
    pub fn write_final(&self, rel: &str, bytes: &[u8]) -> Result<(String, String)> {
        let p = self.out.join(rel);
        if p.exists() {
            // resumed after the write but before the journal line: same bytes are fine
            if std::fs::read(&p).map(|b| b == bytes).unwrap_or(false) {
                return Ok((rel.to_string(), digest(bytes)));
            }
        }
        crate::repository::write_new(&p, bytes)?;
        Ok((rel.to_string(), digest(bytes)))
    }

    /// The location of a holder's device, for key `id`.
    pub fn location(&self, holder: &str, id: &str) -> Result<KeyLocation> {
        if holder.is_empty() && self.generates(id) {
            return Ok(KeyLocation::File(crate::keys::file::FileLocation::Path(
                self.out
                    .join(format!("work/online-keys/{id}.encrypted.pem")),
            )));
        }
        let loc = self.profile.holders.get(holder).ok_or_else(|| {
            ArcaError::Input(format!("no device for holder {holder} in the profile"))
        })?;
        Ok(loc.for_key(id)?)
    }

    /// Opens a holder's key (PIN through the operator, asked once).
    pub fn open(&mut self, holder: &str, id: &str) -> Result<Box<dyn Signer>> {
        if holder.is_empty() && self.generates(id) {
            return self.generate_online(id);
        }
        let loc = self.location(holder, id)?;
        self.op.notice(&format!(
            "{holder}: connect the device holding {id} ({})",
            loc.short()
        ));
        self.open_at(&loc)
    }

    /// Opens the key at a location (PIN through the operator).
    pub fn open_at(&mut self, loc: &KeyLocation) -> Result<Box<dyn Signer>> {
        let subject = crate::operator::secret_subject(loc);
        self.with_pin(&subject, |s| crate::keys::open(loc, s))
    }

    /// Runs a device operation that asks for the secret `subject`; a wrong
    /// PIN is reported and asked again (the device's own retry counter
    /// bounds it).
    pub fn with_pin<T>(
        &mut self,
        subject: &str,
        mut f: impl FnMut(&mut dyn SecretSource) -> std::result::Result<T, crate::keys::KeyError>,
    ) -> Result<T> {
        let mut attempts = 0;
        loop {
            let mut s = crate::operator::Subjected {
                op: &mut *self.op,
                subject: subject.to_string(),
            };
            match f(&mut s) {
                Err(crate::keys::KeyError::WrongPin(msg)) if attempts < 9 => {
                    attempts += 1;
                    self.op.notice(&format!("{msg} — try again"));
                }
                r => return Ok(r?),
            }
        }
    }

    /// Shows the change summary and the digest of the signed content of
    /// `root`: before every approval and every signature.
    pub fn show_what_is_signed(&mut self, root: &Root) -> Result<()> {
        let old = self.old_root()?;
        let text = what_is_signed(old.as_ref(), root);
        self.op.show("What this root changes", &text);
        Ok(())
    }

    /// Signs the working root as `id` by `holder`, after showing it.
    pub fn sign_root(&mut self, holder: &str, id: &str) -> Result<()> {
        self.step(&Step::Sign(id.to_string()), |e| {
            let mut root = e.work_root()?;
            e.show_what_is_signed(&root)?;
            if !e.op.ask(&Question::destructive(
                format!("sign:{id}"),
                format!(
                    "{holder}: sign the root above as {id} at counter {}?",
                    root.header.counter
                ),
            ))? {
                return Err(ArcaError::Key(crate::keys::KeyError::Declined(format!(
                    "{holder} declined to sign; nothing was signed"
                ))));
            }
            let mut s = e.open(holder, id)?;
            let t = now();
            crate::repository::sign_root(&mut root, id, &t, s.as_mut(), Counter::Keep)?;
            let w = e.write("work/root", root.to_file_string().as_bytes())?;
            Ok((
                serde_json::json!({"id": id, "holder": holder, "signature_time": t, "signed": digest(root.canonical_signed().as_bytes())}),
                BTreeMap::from([w]),
            ))
        })
        .map(|_: serde_json::Value| ())
    }

    /// The working root.
    pub fn work_root(&self) -> Result<Root> {
        let p = self.out.join("work/root");
        let text = std::fs::read_to_string(&p).map_err(|e| ArcaError::io(&p, e))?;
        Ok(Root::parse(&text, &mut Vec::new()).map_err(|e| e.in_file(p.display()))?)
    }

    /// The copy of the current root a re-signing ceremony changes.
    pub fn old_root(&self) -> Result<Option<Root>> {
        let p = self.out.join("work/root.old");
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| ArcaError::io(&p, e))?;
        Ok(Some(
            Root::parse(&text, &mut Vec::new()).map_err(|e| e.in_file(p.display()))?,
        ))
    }

    /// Writes the unsigned working root and asks the holders to approve
    /// what it changes.
    pub fn build_root(&mut self, new: Root) -> Result<()> {
        crate::repository::check_root_shape(&new)?;
        self.step(&Step::Build, |e| {
            let w = e.write("work/root", new.to_file_string().as_bytes())?;
            Ok((serde_json::json!({"counter": new.header.counter, "signed": digest(new.canonical_signed().as_bytes())}), BTreeMap::from([w])))
        })?;
        self.step(&Step::Approve, |e| {
            let root = e.work_root()?;
            e.show_what_is_signed(&root)?;
            if !e.op.ask(&Question::destructive(
                "approve",
                "Do the root holders approve these changes?",
            ))? {
                return Err(ArcaError::Key(crate::keys::KeyError::Declined(
                    "the change was not approved; nothing was signed".into(),
                )));
            }
            Ok((
                serde_json::json!({"approved": true, "signed": digest(root.canonical_signed().as_bytes())}),
                BTreeMap::new(),
            ))
        })
        .map(|_: serde_json::Value| ())
    }

    /// Verifies the signed working root against its own keys as anchors
    /// with its quorum, then writes the outputs.
    pub fn finish(&mut self) -> Result<Outcome> {
        let root = self.work_root()?;
        let anchors: Vec<String> = root
            .valid
            .local_ids()
            .iter()
            .filter_map(|id| root.keys.get(id))
            .map(|k| k.key_id().to_string())
            .collect();
        let quorum = root.valid.min_signers();
        self.step(&Step::Verify, |e| {
            let opts = Options {
                anchors: anchors
                    .iter()
                    .filter_map(|a| Digest::parse(a).ok())
                    .collect(),
                quorum: Some(quorum as usize),
                now: now_secs(),
                ..Options::default()
            };
            let src = DirSource(e.out.join("work"));
            let mut v = Verifier::new(&src, opts);
            let (_, signers) = v
                .verify_root()
                .map_err(|m| ArcaError::Verify(format!("the new root: {m}")))?;
            Ok((
                serde_json::json!({"signers": signers, "quorum": quorum}),
                BTreeMap::new(),
            ))
        })?;
        let root_text = root.to_file_string();
        let anchors_line = anchors.join(",");
        self.step(&Step::Outputs, |e| {
            let mut outs = BTreeMap::new();
            let (k, d) = e.write_final("root", root_text.as_bytes())?;
            outs.insert(k, d);
            let (k, d) = e.write_final("anchors.txt", format!("{anchors_line}\n").as_bytes())?;
            outs.insert(k, d);
            let opam = crate::bundle::opam_text(quorum, &anchors_line);
            let (k, d) = e.write_final("opam.txt", opam.as_bytes())?;
            outs.insert(k, d);
            let (k, d) = e.write_final("ceremony.toml", e.c.text.as_bytes())?;
            outs.insert(k, d);
            Ok((serde_json::json!({"anchors": anchors_line}), outs))
        })?;
        let next_steps = online_next_steps(self.old_root()?.as_ref(), &root);
        let bundle_digest: String = self.step(&Step::Bundle, |e| {
            let digest = e.write_bundle(&root_text, next_steps.as_deref())?;
            let m = e.out.join("bundle/MANIFEST");
            let mbytes = std::fs::read(&m).map_err(|err| ArcaError::io(&m, err))?;
            Ok((
                digest,
                BTreeMap::from([("bundle/MANIFEST".to_string(), self::digest(&mbytes))]),
            ))
        })?;
        let bd = bundle_digest.clone();
        let anchors2 = anchors.clone();
        let ns = next_steps.clone();
        self.step(&Step::Done, |e| {
            let mut text = String::new();
            for a in &anchors2 {
                text.push_str(&format!("{a}\n{}\n", grouped_lines(a, "    ")));
            }
            text.push_str("(anchors.txt holds them comma-separated, for `arca verify -t`)");
            e.op.show("Trust anchors (give these to clients)", &text);
            for (i, a) in anchors2.iter().enumerate() {
                e.op.show_qr(&format!("trust anchor {} of {}", i + 1, anchors2.len()), a);
                e.op.pause(&format!("trust anchor {} of {}", i + 1, anchors2.len()))?;
            }
            e.op.show(
                "Bundle for the online signer (compare this digest on the online side)",
                &format!(
                    "{}\n{bd}\n{}",
                    e.out.join("bundle").display(),
                    grouped_lines(&bd, "    ")
                ),
            );
            e.op.show_qr("bundle digest", &bd);
            e.op.pause("bundle digest")?;
            if let Some(ns) = &ns {
                e.op.show("The online side must now", ns.trim_end());
            }
            Ok((serde_json::json!({"bundle_digest": bd}), BTreeMap::new()))
        })?;
        crate::operator::set_interrupt_note(None);
        Ok(Outcome {
            root: self.out.join("root"),
            anchors,
            bundle: self.out.join("bundle"),
            bundle_digest,
            next_steps,
            finished_before: false,
        })
    }

    /// Writes `<output>/bundle/`: the signed root and what derives from it,
    /// the journal so far, PIV attestations found in `<output>/attestations/`
    /// and the encrypted online keys this ceremony generated. Returns the
    /// bundle digest.
    fn write_bundle(&self, root_text: &str, next_steps: Option<&str>) -> Result<String> {
        let jp = self.journal.path().to_path_buf();
        let journal = std::fs::read(&jp).map_err(|e| ArcaError::io(&jp, e))?;
        let mut b = crate::bundle::Contents::for_root(root_text, &journal)?;
        if let Some(ns) = next_steps {
            b.add("NEXT-STEPS.txt", ns.as_bytes())?;
        }
        for (dir, prefix) in [("attestations", "attestations/")] {
            let d = self.out.join(dir);
            if let Ok(rd) = std::fs::read_dir(&d) {
                let mut names: Vec<_> = rd
                    .filter_map(|x| x.ok())
                    .filter(|x| x.file_type().map(|t| t.is_file()).unwrap_or(false))
                    .map(|x| x.path())
                    .collect();
                names.sort();
                for p in names {
                    let bytes = std::fs::read(&p).map_err(|e| ArcaError::io(&p, e))?;
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    b.add(&format!("{prefix}{}", name.unwrap_or_default()), &bytes)?;
                }
            }
        }
        for id in self.c.generated_ids() {
            let dir = self.out.join("work/online-keys");
            let enc = dir.join(format!("{id}.encrypted.pem"));
            let pubf = dir.join(format!("{id}.pub"));
            if !enc.exists() {
                continue;
            }
            let pem = std::fs::read_to_string(&enc).map_err(|e| ArcaError::io(&enc, e))?;
            let pk = std::fs::read_to_string(&pubf).map_err(|e| ArcaError::io(&pubf, e))?;
            let pk = crate::conex::PublicKey::parse_conex(pk.trim())
                .map_err(|e| e.in_file(pubf.display()))?;
            b.add_online_key(&id, &pk.key_id(), &pem)?;
        }
        b.write_dir(&self.out.join("bundle"))
    }

    fn generates(&self, id: &str) -> bool {
        self.c.generated_ids().iter().any(|g| g == id)
    }

    /// Generates an online key in memory and keeps it only encrypted with a
    /// passphrase typed twice (asked once per ceremony). The clear key never
    /// touches the disk; a resumed ceremony reuses the encrypted file.
    fn generate_online(&mut self, id: &str) -> Result<Box<dyn Signer>> {
        let dir = self.out.join("work/online-keys");
        let enc = dir.join(format!("{id}.encrypted.pem"));
        let pubf = dir.join(format!("{id}.pub"));
        if enc.exists() && pubf.exists() {
            let t = std::fs::read_to_string(&pubf).map_err(|e| ArcaError::io(&pubf, e))?;
            let pk = crate::conex::PublicKey::parse_conex(t.trim())
                .map_err(|e| e.in_file(pubf.display()))?;
            return Ok(Box::new(EncryptedOnly { id: id.into(), pk }));
        }
        if !self.op.ask(&Question::destructive(
            format!("generate-online:{id}"),
            format!(
                "generate the online key {id} here; it leaves this machine only encrypted with a passphrase?"
            ),
        ))? {
            return Err(ArcaError::Key(crate::keys::KeyError::Declined(format!(
                "declined to generate {id}"
            ))));
        }
        if self.online_pass.is_none() && self.rehearsal {
            // a rehearsal's keys are thrown away: make a passphrase, show it once
            let mut raw = zeroize::Zeroizing::new([0u8; 18]);
            getrandom::fill(raw.as_mut())
                .map_err(|e| ArcaError::Input(format!("no randomness: {e}")))?;
            let p = zeroize::Zeroizing::new(hex::encode(raw.as_ref()));
            self.op.show(
                "Rehearsal passphrase for the online keys (shown once)",
                p.as_str(),
            );
            self.online_pass = Some(p);
        }
        if self.online_pass.is_none() {
            let ask = |op: &mut dyn Operator, what: &str| {
                op.secret_as(
                    "passphrase:online-keys",
                    &crate::keys::SecretRequest {
                        what: what.into(),
                        retries_left: None,
                        final_try: false,
                    },
                )
            };
            let a = ask(&mut *self.op, "passphrase for the online keys")?;
            let b = ask(&mut *self.op, "passphrase for the online keys (again)")?;
            if *a != *b {
                return Err(ArcaError::Input(
                    "the two passphrases for the online keys differ; nothing was generated".into(),
                ));
            }
            if a.chars().count() < 12 {
                return Err(ArcaError::Refused(
                    "the passphrase for the online keys needs at least 12 characters".into(),
                ));
            }
            self.online_pass = Some(a);
        }
        let pass = self
            .online_pass
            .as_ref()
            .map(|p| p.as_bytes())
            .unwrap_or_default();
        let (der, pk) = crate::bundle::ed25519_in_memory()?;
        let pem = crate::bundle::encrypt_pkcs8(&der, pass)?;
        drop(der);
        // the public key first: a crash between the two writes leaves no
        // encrypted key without its public key, and generating again is safe
        write_atomic(&pubf, format!("{}\n", pk.conex_string()).as_bytes())?;
        crate::repository::write_new(&enc, pem.as_bytes())?;
        self.op.show(
            &format!("online key {id} (generated, kept encrypted)"),
            &format!(
                "{}\n{}",
                pk.key_id(),
                crate::status::read_aloud_lines(&pk.key_id(), "    ")
            ),
        );
        Ok(Box::new(EncryptedOnly { id: id.into(), pk }))
    }
}

/// An online key generated during a ceremony: only its public key is at
/// hand; the private key exists only encrypted and signs on the online side.
struct EncryptedOnly {
    id: String,
    pk: crate::conex::PublicKey,
}

impl Signer for EncryptedOnly {
    fn public_key(&self) -> &crate::conex::PublicKey {
        &self.pk
    }
    fn sign_raw(
        &mut self,
        _msg: &[u8],
        _: crate::keys::CheckedPath,
    ) -> std::result::Result<Vec<u8>, crate::keys::KeyError> {
        Err(crate::keys::KeyError::Unsupported(format!(
            "{} exists here only encrypted; it signs on the online machine",
            self.id
        )))
    }
    fn describe(&self) -> String {
        format!("{} (encrypted, for the online signer)", self.id)
    }
}

/// Runs (or resumes) a ceremony file with a profile and an operator;
/// `base` is the folder outputs are relative to. A resumed ceremony that
/// had finished says so and where its outputs are.
#[allow(clippy::too_many_arguments)]
pub fn run(
    c: &Ceremony,
    profile: &Profile,
    op: &mut dyn Operator,
    base: &Path,
    resume: bool,
    rehearsal: bool,
    resume_command: String,
) -> Result<Outcome> {
    if resume {
        if let Some(o) = finished(c, op, base)? {
            return Ok(o);
        }
    }
    let mut e = Engine::start(c, profile, op, base, resume, rehearsal, resume_command)?;
    let r = kinds::run(&mut e);
    if r.is_err() {
        crate::operator::set_interrupt_note(None);
        if matches!(&r, Err(ArcaError::Key(crate::keys::KeyError::Declined(_))))
            && e.journal.entries.len() <= 1
            && !resume
        {
            // declined before anything was done: leave nothing behind
            let _ = std::fs::remove_dir_all(&e.out);
            e.op.notice("Nothing was written.");
        } else {
            let note = e.stopped_note();
            e.op.notice(note.trim_end());
        }
    }
    r
}

/// A finished ceremony's outcome from its journal (None: not finished).
fn finished(c: &Ceremony, op: &mut dyn Operator, base: &Path) -> Result<Option<Outcome>> {
    let out = base.join(c.output());
    let jp = out.join("journal.jsonl");
    if !jp.exists() {
        return Ok(None);
    }
    let journal = Journal::open(&jp)?;
    let Some(done) = journal.find("done") else {
        return Ok(None);
    };
    let cdigest = digest(c.text.as_bytes());
    if journal
        .find("begin")
        .and_then(|b| b.detail.get("ceremony_digest").and_then(|d| d.as_str()))
        != Some(cdigest.as_str())
    {
        return Err(ArcaError::Refused(
            "the journal belongs to a different ceremony file (digest differs)".into(),
        ));
    }
    let bd = done
        .detail
        .get("bundle_digest")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string();
    let anchors: Vec<String> = std::fs::read_to_string(out.join("anchors.txt"))
        .unwrap_or_default()
        .trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    op.show(
        "This ceremony is finished",
        &format!(
            "It finished at {}; nothing is left to do.\nroot: {}\ntrust anchors: {}\nbundle: {} (digest {bd})\njournal: {}",
            done.time,
            out.join("root").display(),
            out.join("anchors.txt").display(),
            out.join("bundle").display(),
            jp.display()
        ),
    );
    Ok(Some(Outcome {
        root: out.join("root"),
        anchors,
        bundle: out.join("bundle"),
        bundle_digest: bd,
        next_steps: None,
        finished_before: true,
    }))
}
