//! The ceremony kinds: each a fixed order of steps ([`plan`]); the file
//! only parametrises it. The plan is the one list of steps: the screen's
//! list, the `[k/n]` counter, the journal's step names and resume all come
//! from it, and the engine refuses a step that is not in it.

pub mod add_role;
pub mod bump_epoch;
pub mod create_root;
pub mod rotate_key;

use super::script::{Ceremony, Delegate, Kind, RootKey, Source};
use super::{Engine, Outcome};
use crate::conex::{Digest, Key, KeyRef, PublicKey, Root};
use crate::error::{ArcaError, Result};
use crate::keys::KeyError;
use crate::operator::Question;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One step of a ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Preflight done, the journal starts.
    Begin,
    /// The current root is read and verified.
    LoadRoot,
    /// A root key is generated (or taken) on its holder's device.
    RootKey(String),
    /// A delegated key is read from a device or generated in memory.
    DelegateKey(String),
    /// The new root is assembled.
    Build,
    /// The root holders approve the change.
    Approve,
    /// A root holder signs.
    Sign(String),
    /// The signed root verifies with its own anchors and quorum.
    Verify,
    /// Root, anchors, opam configuration written.
    Outputs,
    /// The air-gap bundle written.
    Bundle,
    /// Trust anchors and the bundle digest shown.
    Done,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Begin => f.write_str("begin"),
            Step::LoadRoot => f.write_str("load-root"),
            Step::RootKey(id) => write!(f, "root-key:{id}"),
            Step::DelegateKey(id) => write!(f, "delegate-key:{id}"),
            Step::Build => f.write_str("build"),
            Step::Approve => f.write_str("approve"),
            Step::Sign(id) => write!(f, "sign:{id}"),
            Step::Verify => f.write_str("verify"),
            Step::Outputs => f.write_str("outputs"),
            Step::Bundle => f.write_str("bundle"),
            Step::Done => f.write_str("done"),
        }
    }
}

/// A step of the plan with what it does, for people.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// The step (its journal name).
    #[serde(serialize_with = "as_name")]
    pub step: Step,
    /// What it does.
    pub what: String,
}

fn as_name<S: serde::Serializer>(s: &Step, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&s.to_string())
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.what)
    }
}

/// The steps a ceremony takes, in order, with what each does.
pub fn plan(c: &Ceremony) -> Vec<Planned> {
    let p = |step: Step, what: String| Planned { step, what };
    let mut v = vec![p(Step::Begin, "preflight done, the journal starts".into())];
    if c.input_root().is_some() {
        v.push(p(
            Step::LoadRoot,
            "the current root is read and verified".into(),
        ));
    }
    for k in c.root_keys() {
        let verb = if k.existing { "takes" } else { "generates" };
        v.push(p(
            Step::RootKey(k.id.clone()),
            format!("{} {verb} {} ({})", k.holder, k.id, spec_words(k.spec)),
        ));
    }
    for d in c.delegates() {
        match &d.source {
            Source::Holder(h) => v.push(p(
                Step::DelegateKey(d.id.clone()),
                format!("read {}'s public key from {h}'s device", d.id),
            )),
            Source::Generate => v.push(p(
                Step::DelegateKey(d.id.clone()),
                format!("generate the online key {} (kept encrypted)", d.id),
            )),
            Source::Key(_) => {}
        }
    }
    v.push(p(Step::Build, "the new root is assembled".into()));
    v.push(p(
        Step::Approve,
        "the root holders approve the summary".into(),
    ));
    for (id, holder) in c.signers() {
        v.push(p(
            Step::Sign(id.clone()),
            format!("{holder} signs with {id}"),
        ));
    }
    v.push(p(
        Step::Verify,
        "the new root verifies with its own anchors and quorum".into(),
    ));
    v.push(p(
        Step::Outputs,
        "root, anchors, opam configuration written".into(),
    ));
    v.push(p(
        Step::Bundle,
        "the bundle for the online signer written".into(),
    ));
    v.push(p(
        Step::Done,
        "trust anchors and the bundle digest shown".into(),
    ));
    v
}

/// A key spec as people read it: `rsa 4096`, `ed25519`.
pub fn spec_words(s: crate::keys::KeySpec) -> String {
    match s {
        crate::keys::KeySpec::Ed25519 => "ed25519".into(),
        crate::keys::KeySpec::Rsa(bits) => format!("rsa {bits}"),
    }
}

/// Runs the kind of the engine's ceremony.
pub fn run(e: &mut Engine) -> Result<Outcome> {
    match &e.c.kind.clone() {
        Kind::CreateRoot(c) => create_root::run(e, c),
        Kind::AddRole(c) => add_role::run(e, c),
        Kind::RotateKey(c) => rotate_key::run(e, c),
        Kind::BumpEpoch(c) => bump_epoch::run(e, c),
    }
}

/// A key made or found on a holder's device, as journaled.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KeyRecord {
    /// Key id.
    pub id: String,
    /// Holder.
    pub holder: String,
    /// Location (no secrets).
    pub location: String,
    /// `alg=keydata`.
    pub public: String,
    /// Recorded creation time.
    pub created: String,
}

impl KeyRecord {
    /// The root key triple.
    pub fn key(&self) -> Result<Key> {
        Ok(Key {
            id: self.id.clone(),
            created: self.created.clone(),
            key: PublicKey::parse_conex(&self.public)?,
        })
    }
}

/// Generates (or, with `existing`, opens) a root key on its holder's
/// device; the PIN is asked once. A key found where one is to be generated
/// (preflight refused that on a first run) is adopted only when resuming
/// and the holders agree: the ceremony probably made it before it stopped.
pub fn root_key(e: &mut Engine, k: &RootKey) -> Result<KeyRecord> {
    let id = k.id.clone();
    let holder = k.holder.clone();
    let spec = k.spec;
    let existing = k.existing;
    e.step(&Step::RootKey(id.clone()), |e| {
        let loc = e.location(&holder, &id)?;
        let resuming = e.journal.entries.len() > 1;
        e.op.notice(&format!(
            "{holder}: connect the device for {id} ({})",
            loc.short()
        ));
        let present = super::preflight::key_present(&loc);
        let signer = if existing {
            e.open_at(&loc)?
        } else if present == Some(true) {
            let q = Question::destructive(
                format!("adopt:{id}"),
                format!(
                    "{holder}: a key {id} already exists on {}; this ceremony probably generated it before it stopped. Use it as {id}?",
                    loc.short()
                ),
            );
            if !resuming || !e.op.ask(&q)? {
                return Err(ArcaError::Refused(format!(
                    "a key {id} already exists at {loc}; set existing = true for {id} in the ceremony file to use it, or choose another id"
                )));
            }
            e.open_at(&loc)?
        } else {
            let q = Question::destructive(
                format!("generate:{id}"),
                format!(
                    "{holder}: generate root key {id} ({}) on {}?",
                    spec_words(spec),
                    loc.short()
                ),
            );
            if !e.op.ask(&q)? {
                return Err(ArcaError::Key(KeyError::Declined(format!(
                    "{holder} declined to generate {id}"
                ))));
            }
            e.op.busy(&format!(
                "generating {} key {id} on {}",
                spec_words(spec),
                loc.short()
            ));
            let subject = crate::operator::secret_subject(&loc);
            let g = e.with_pin(&subject, |s| crate::keys::generate(&loc, spec, s));
            e.op.done();
            g?
        };
        let pk = signer.public_key().clone();
        if pk.alg != spec.alg() && !existing {
            return Err(ArcaError::Refused(format!(
                "{id} at {loc} is {} but the ceremony asks for {}",
                pk.alg,
                spec_words(spec)
            )));
        }
        pk.validate()
            .map_err(|err| ArcaError::Refused(format!("{id}: {err}")))?;
        e.op.show(
            &format!("root key {id} of {holder}"),
            &format!(
                "{}\n{}",
                pk.key_id(),
                crate::status::read_aloud_lines(&pk.key_id(), "    ")
            ),
        );
        drop(signer);
        let mut outputs = BTreeMap::new();
        if let crate::keys::KeyLocation::Piv(p) = &loc {
            // the YubiKey's attestation: this key was generated on that device
            let a = crate::keys::piv::attest(p)?;
            a.check(&pk)?;
            let (k, d) = e.write(
                &format!("attestations/{id}-{}-{:02x}.der", a.serial, a.slot),
                &a.certificate,
            )?;
            outputs.insert(k, d);
            let (k, d) = e.write(
                &format!("attestations/{id}-{}-f9.der", a.serial),
                &a.intermediate,
            )?;
            outputs.insert(k, d);
            e.op.notice(&format!(
                "{id}: attestation of YubiKey {} slot {:02x} checked and kept",
                a.serial, a.slot
            ));
        }
        let rec = KeyRecord {
            id: id.clone(),
            holder: holder.clone(),
            location: loc.to_string(),
            public: pk.conex_string(),
            created: super::now(),
        };
        Ok((rec, outputs))
    })
}

/// The public key of a delegated key (given in the file, read from the
/// holder's device, or generated in memory).
pub fn delegate_key(e: &mut Engine, d: &Delegate) -> Result<PublicKey> {
    let holder = match &d.source {
        Source::Key(k) => return Ok(k.clone()),
        Source::Holder(h) => h.clone(),
        Source::Generate => String::new(),
    };
    let id = d.id.clone();
    let rec: KeyRecord = e.step(&Step::DelegateKey(id.clone()), |e| {
        let s = e.open(&holder, &id)?;
        let pk = s.public_key().clone();
        Ok((
            KeyRecord {
                id: id.clone(),
                holder: holder.clone(),
                location: e.location(&holder, &id)?.to_string(),
                public: pk.conex_string(),
                created: super::now(),
            },
            BTreeMap::new(),
        ))
    })?;
    Ok(PublicKey::parse_conex(&rec.public)?)
}

/// Keeps a copy of the current root (verified in preflight with its trust
/// anchors) in the output folder and returns it.
pub fn load_root(e: &mut Engine) -> Result<Root> {
    let input =
        e.c.input_root()
            .cloned()
            .ok_or_else(|| ArcaError::Input("this ceremony has no input root".into()))?;
    let p = e.base.join(&input.path);
    e.step(&Step::LoadRoot, |e| {
        let (root, text) = super::preflight::verified_input_root(e.c, &e.base)?;
        let w = e.write("work/root.old", text.as_bytes())?;
        Ok((
            serde_json::json!({"counter": root.header.counter, "file": p.display().to_string()}),
            BTreeMap::from([w]),
        ))
    })?;
    e.old_root()?
        .ok_or_else(|| ArcaError::Input("the copy of the current root is missing".into()))
}

/// The next root: the old one with counter + 1 and no signatures.
pub fn next_root(old: &Root) -> Result<Root> {
    let mut r = old.clone();
    r.header.counter = old
        .header
        .counter
        .checked_add(1)
        .ok_or_else(|| ArcaError::Refused("root counter at its maximum".into()))?;
    r.header.created = super::now();
    r.signatures.clear();
    Ok(r)
}

/// Collects the signatures of the ceremony's signers, in order.
pub fn sign_all(e: &mut Engine) -> Result<()> {
    for (id, holder) in e.c.signers() {
        e.sign_root(&holder, &id)?;
    }
    Ok(())
}

/// The digest a role references for a delegated key: its key id (for a
/// single-key targets file this equals the hash of its valid expression).
pub fn delegate_digest(pk: &PublicKey) -> Digest {
    pk.key_id()
}

/// A remote reference to a delegated key.
pub fn delegate_ref(d: &Delegate, pk: &PublicKey, epoch: u64) -> KeyRef {
    KeyRef::Remote {
        id: d.id.clone(),
        digest: delegate_digest(pk),
        epoch,
    }
}
