//! Scripted ceremonies: a reviewed file (`ceremonies/*.toml`) plus a fixed,
//! tested order of steps in code. Every step is journaled; a killed ceremony
//! resumes where it stopped and ends as if never interrupted.

pub use crate::journal;
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
use crate::keys::{KeyLocation, SecretSource, Signer};
use crate::operator::{Danger, Operator};
use crate::repository::write_atomic;
use journal::Journal;
use profile::Profile;
use script::Ceremony;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl From<script::ScriptError> for ArcaError {
    fn from(e: script::ScriptError) -> ArcaError {
        ArcaError::Input(e.to_string())
    }
}
impl From<journal::JournalError> for ArcaError {
    fn from(e: journal::JournalError) -> ArcaError {
        ArcaError::Input(e.to_string())
    }
}

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
    n: usize,
    total: usize,
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
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The time to record.
pub fn now() -> String {
    format_time(now_secs())
}

/// SHA-256 of bytes as `sha256=…`.
pub fn digest(bytes: &[u8]) -> String {
    Digest::sha256(bytes).to_string()
}

impl<'a> Engine<'a> {
    /// Prepares a run: preflight, then the journal.
    pub fn start(
        c: &'a Ceremony,
        profile: &'a Profile,
        op: &'a mut dyn Operator,
        base: &Path,
        resume: bool,
        rehearsal: bool,
    ) -> Result<Engine<'a>> {
        profile.check_holders(&c.path.display().to_string(), &c.holders())?;
        let out = base.join(c.output());
        let checks = preflight::run(c, profile, &out, resume, now_secs());
        let mut text = String::new();
        for ch in &checks {
            text.push_str(&format!(
                "[{}] {}: {}\n",
                if ch.ok { " ok " } else { "FAIL" },
                ch.name,
                ch.detail
            ));
        }
        let cdigest = digest(c.text.as_bytes());
        text.push_str(&format!(
            "ceremony file digest (witnesses read it aloud):\n{}\n",
            crate::status::read_aloud_lines(
                &Digest::parse(&cdigest).map_err(|_| ArcaError::Input("digest".into()))?,
                "    "
            )
        ));
        op.show("Preflight", &text);
        for ch in &checks {
            if ch.ok {
                continue;
            }
            if ch.acknowledgeable
                && (rehearsal
                    || op.confirm(
                        &format!("{}: {} — go on anyway?", ch.name, ch.detail),
                        Danger::Destructive,
                    )?)
            {
                continue;
            }
            return Err(ArcaError::Refused(format!(
                "preflight: {}: {}",
                ch.name, ch.detail
            )));
        }
        let journal = Journal::open(&out.join("journal.jsonl"))?;
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
        }
        let delay = std::env::var("ARCA_CEREMONY_STEP_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_millis);
        let steps = kinds::plan(c);
        op.plan(&format!("{} — {} steps", c.title(), steps.len()), &steps);
        let total = steps.len();
        let mut e = Engine {
            c,
            profile,
            op,
            out,
            base: base.to_path_buf(),
            journal,
            rehearsal,
            n: 0,
            total,
            delay,
            online_pass: None,
        };
        e.step("begin", |e| {
            Ok((
                serde_json::json!({"kind": e.c.kind(), "title": e.c.title(), "ceremony_digest": cdigest, "rehearsal": rehearsal}),
                BTreeMap::new(),
            ))
        })?;
        Ok(e)
    }

    /// Runs a step once: a step already in the journal returns what it
    /// recorded (after checking its output files are unchanged).
    pub fn step<T: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self) -> Result<(T, BTreeMap<String, String>)>,
    ) -> Result<T> {
        self.n += 1;
        if let Some(e) = self.journal.find(name).cloned() {
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
                self.n,
                self.total,
                &format!("{name} (done before, resumed)"),
            );
            return serde_json::from_value(e.detail)
                .map_err(|err| ArcaError::Input(format!("journal step {name}: {err}")));
        }
        self.op.step(self.n, self.total, name);
        let (v, outputs) = f(self)?;
        let detail = serde_json::to_value(&v).map_err(|e| ArcaError::Input(e.to_string()))?;
        self.journal.append(&now(), name, detail, outputs)?;
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

    /// Opens a holder's key (PIN through the operator).
    pub fn open(&mut self, holder: &str, id: &str) -> Result<Box<dyn Signer>> {
        if holder.is_empty() && self.generates(id) {
            return self.generate_online(id);
        }
        let loc = self.location(holder, id)?;
        self.op.notice(&format!(
            "{holder}: connect the device holding {id} ({})",
            loc.short()
        ));
        self.with_pin(|s| crate::keys::open(&loc, s))
    }

    /// Runs a device operation that asks for a PIN; a wrong PIN is reported
    /// and asked again (the device's own retry counter bounds it).
    pub fn with_pin<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn SecretSource) -> std::result::Result<T, crate::keys::KeyError>,
    ) -> Result<T> {
        let mut attempts = 0;
        loop {
            let secrets: &mut dyn SecretSource = self.op;
            match f(secrets) {
                Err(crate::keys::KeyError::WrongPin(msg)) if attempts < 9 => {
                    attempts += 1;
                    self.op.notice(&format!("{msg} — try again"));
                }
                r => return Ok(r?),
            }
        }
    }

    /// Signs the working root as `id` by `holder`, joining the current round.
    pub fn sign_root(&mut self, holder: &str, id: &str) -> Result<()> {
        let name = format!("sign:{id}");
        self.step(&name, |e| {
            let mut root = e.work_root()?;
            if !e.op.confirm(
                &format!(
                    "{holder}: sign the root above as {id} at counter {}?",
                    root.header.counter
                ),
                Danger::Destructive,
            )? {
                return Err(ArcaError::Key(crate::keys::KeyError::Declined(format!(
                    "{holder} declined to sign; nothing was signed"
                ))));
            }
            let mut s = e.open(holder, id)?;
            let key = root
                .keys
                .get(id)
                .ok_or_else(|| ArcaError::Refused(format!("{id} is not a key of the new root")))?;
            if key.key != *s.public_key() {
                return Err(ArcaError::Refused(format!(
                    "the device of {holder} holds another key than {id}"
                )));
            }
            let t = now();
            crate::repository::sign_into(&mut root, id, &t, s.as_mut())?;
            let w = e.write("work/root", root.to_file_string().as_bytes())?;
            Ok((
                serde_json::json!({"id": id, "holder": holder, "signature_time": t}),
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

    /// Writes the unsigned working root and shows what changes.
    pub fn build_root(&mut self, old: Option<&Root>, new: Root) -> Result<()> {
        crate::repository::check_root_shape(&new)?;
        self.step("build", |e| {
            let w = e.write("work/root", new.to_file_string().as_bytes())?;
            Ok((serde_json::json!({"counter": new.header.counter, "signed": digest(new.canonical_signed().as_bytes())}), BTreeMap::from([w])))
        })?;
        let root = self.work_root()?;
        let text = summary::describe_change(old, &root);
        self.step("approve", |e| {
            e.op.show("What this root changes", &text);
            if !e.op.confirm(
                "Do the root holders approve these changes?",
                Danger::Destructive,
            )? {
                return Err(ArcaError::Key(crate::keys::KeyError::Declined(
                    "the change was not approved; nothing was signed".into(),
                )));
            }
            Ok((serde_json::json!({"approved": true}), BTreeMap::new()))
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
        self.step("verify", |e| {
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
        self.step("outputs", |e| {
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
        let bundle_digest: String = self.step("bundle", |e| {
            let digest = e.write_bundle(&root_text)?;
            let m = e.out.join("bundle/MANIFEST");
            let mbytes = std::fs::read(&m).map_err(|err| ArcaError::io(&m, err))?;
            Ok((
                digest,
                BTreeMap::from([("bundle/MANIFEST".to_string(), self::digest(&mbytes))]),
            ))
        })?;
        let anchors_line2 = anchors.join(",");
        let bd = bundle_digest.clone();
        self.step("done", |e| {
            let list: Vec<&str> = anchors_line2.split(',').collect();
            e.op.show(
                "Trust anchors (give these to clients)",
                &list.join(
                    "
",
                ),
            );
            for (i, a) in list.iter().enumerate() {
                e.op.show_qr(&format!("trust anchor {} of {}", i + 1, list.len()), a);
            }
            e.op.show(
                "Bundle for the online signer (compare this digest on the online side)",
                &format!(
                    "{}
{bd}
{}",
                    e.out.join("bundle").display(),
                    crate::bundle::grouped(&bd)
                ),
            );
            e.op.show_qr("bundle digest", &bd);
            Ok((serde_json::json!({"bundle_digest": bd}), BTreeMap::new()))
        })?;
        Ok(Outcome {
            root: self.out.join("root"),
            anchors,
            bundle: self.out.join("bundle"),
            bundle_digest,
        })
    }

    /// Writes `<output>/bundle/`: the signed root and what derives from it,
    /// the journal so far, PIV attestations found in `<output>/attestations/`
    /// and the encrypted online keys this ceremony generated. Returns the
    /// bundle digest.
    fn write_bundle(&self, root_text: &str) -> Result<String> {
        let jp = self.journal.path().to_path_buf();
        let journal = std::fs::read(&jp).map_err(|e| ArcaError::io(&jp, e))?;
        let mut b = crate::bundle::Contents::for_root(root_text, &journal)?;
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
        for id in self.generated_ids() {
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

    /// Ids of delegated keys the ceremony file asks to generate in memory.
    pub fn generated_ids(&self) -> Vec<String> {
        use script::CeremonyFile as F;
        let specs: Vec<&script::DelegateSpec> = match &self.c.file {
            F::CreateRoot(c) => c.snapshot.iter().chain(c.timestamp.iter()).collect(),
            F::AddRole(c) => c.add.iter().collect(),
            F::RotateKey(c) => c.replacement.iter().collect(),
            F::BumpEpoch(_) => Vec::new(),
        };
        specs
            .into_iter()
            .filter(|d| d.generate)
            .map(|d| d.id.get_ref().clone())
            .collect()
    }

    fn generates(&self, id: &str) -> bool {
        self.generated_ids().iter().any(|g| g == id)
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
        if !self.op.confirm(
            &format!(
                "generate the online key {id} here; it leaves this machine only encrypted with a passphrase?"
            ),
            Danger::Destructive,
        )? {
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
                op.secret(&crate::keys::SecretRequest {
                    what: what.into(),
                    retries_left: None,
                    final_try: false,
                })
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
                crate::status::read_aloud(&pk.key_id())
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
    fn sign_raw(&mut self, _msg: &[u8]) -> std::result::Result<Vec<u8>, crate::keys::KeyError> {
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
/// `base` is the folder outputs are relative to.
pub fn run(
    c: &Ceremony,
    profile: &Profile,
    op: &mut dyn Operator,
    base: &Path,
    resume: bool,
    rehearsal: bool,
) -> Result<Outcome> {
    let mut e = Engine::start(c, profile, op, base, resume, rehearsal)?;
    let r = kinds::run(&mut e);
    if let Err(ArcaError::Key(crate::keys::KeyError::Declined(_))) = &r {
        // declined before anything was done: leave nothing behind
        if e.journal.entries.len() <= 1 && !resume {
            let _ = std::fs::remove_dir_all(&e.out);
        }
    }
    r
}
