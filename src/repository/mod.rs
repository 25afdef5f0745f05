//! A conex repository on disk and the conex verbs (`root`, `targets`,
//! `snapshot`, `timestamp`) as non-interactive building blocks. Where conex
//! is unsafe, these are safe by default and say why.
//!
//! Here: [`Repo`] and its verbs. `root.rs`: the one root-signing path
//! ([`sign_root`], [`add_root_signature`]). `rules.rs`: what arca accepts
//! for writing ([`lint`], [`check_root_shape`], [`quorum_bounds`],
//! [`check_ident`]). `files.rs`: atomic and no-clobber writes.
//! [`sign_request`]: the sign-request protocol for absent root holders.
//! `text.rs`: a digest grouped for reading aloud, TOML errors on one line.
//! The layer imports conex, keys and error only; bundle, status, the
//! operator, the ceremonies and the command line build on it.

mod files;
mod root;
mod rules;
pub mod sign_request;
mod text;

pub use files::{parent_dir, write_atomic, write_new};
pub use root::{add_root_signature, sign_root};
pub use rules::{check_ident, check_root_shape, lint, quorum_bounds, SAME_ONLINE_KEY};
pub use text::{grouped, line_of, toml_error};

use crate::conex::expr::{Expr, KeyRef};
use crate::conex::resource::{path_to_string, Header, Path as CPath, Resource};
use crate::conex::verify::{valid_signatures, DirSource, Source};
use crate::conex::{
    Digest, Key, PublicKey, Role, Root, Signature, Snapshot, Target, Targets, Timestamp,
};
use crate::error::{ArcaError, Result};
use crate::keys::{sign_checked, Signer};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Seconds since the Unix epoch by the system clock (0 for a clock set
/// before 1970): the one clock of arca.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How `sign` treats the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Join the current signing round if it has valid signatures, else start
    /// a new one (counter + 1). The safe default.
    Auto,
    /// Always start a new round (counter + 1), dropping earlier signatures.
    Increment,
    /// Never touch the counter (conex's `--no-incr`).
    Keep,
}

/// A conex repository in a directory.
pub struct Repo {
    /// The repository directory.
    pub dir: PathBuf,
    /// The root file's name.
    pub root_name: String,
    /// Compute and report, but write nothing.
    pub dry_run: bool,
    /// The time written as `created`.
    pub now: String,
    /// Where messages for the person go (what changed, what was refused
    /// and why), as they happen.
    notices: Box<dyn FnMut(&str)>,
}

impl Repo {
    /// A repository at `dir`. Every message for the person goes to
    /// `notices` when it arises (the command line prints it), so no command
    /// can lose one.
    pub fn new(dir: impl Into<PathBuf>, now: String, notices: impl FnMut(&str) + 'static) -> Repo {
        Repo {
            dir: dir.into(),
            root_name: "root".into(),
            dry_run: false,
            now,
            notices: Box::new(notices),
        }
    }

    fn path(&self, rel: &[String]) -> PathBuf {
        let mut p = self.dir.clone();
        for c in rel {
            p.push(c);
        }
        p
    }

    /// Tells the person something, through the `notices` of [`Repo::new`].
    pub fn note(&mut self, s: impl Into<String>) {
        (self.notices)(&s.into());
    }

    /// Reads and parses a resource (warnings become notices).
    pub fn read<R: Resource>(&mut self, rel: &[String]) -> Result<R> {
        let path = self.path(rel);
        let text = crate::conex::resource::read_text_limited(&path)
            .map_err(|e| ArcaError::io(&path, e))?;
        let mut warnings = Vec::new();
        let file = crate::conex::opam::decode(&text, &mut warnings)
            .map_err(|e| e.in_file(path.display()))?;
        let r = R::from_file_wire(&file, &mut warnings).map_err(|e| e.in_file(path.display()))?;
        // anything besides `signed` and `signatures` would be dropped when
        // arca writes the file back
        if let Some(k) = file
            .keys()
            .find(|k| !matches!(k.as_str(), "signed" | "signatures"))
        {
            return Err(crate::conex::ConexError::field(
                k.clone(),
                "unknown top-level field (a conex file has only signed and signatures); arca would drop it when writing",
            )
            .in_file(path.display())
            .into());
        }
        let name = rel.last().map(String::as_str).unwrap_or_default();
        if !crate::conex::expr::id_equal(&r.header().name, name) {
            return Err(crate::conex::ConexError::field(
                "signed.name",
                format!(
                    "is \"{}\" but the file is named {name:?}",
                    crate::conex::shown(&r.header().name)
                ),
            )
            .in_file(path.display())
            .into());
        }
        if let Some(w) = warnings.first() {
            return Err(ArcaError::Refused(format!(
                "{}: {w} — arca does not rewrite a file with content it would drop; fix the file first",
                path.display()
            )));
        }
        lint(&r).map_err(|e| e.in_file(path.display()))?;
        Ok(r)
    }

    fn write<R: Resource>(&mut self, rel: &[String], r: &R) -> Result<()> {
        let path = self.path(rel);
        if self.dry_run {
            self.note(format!("dry run: {} not written", path.display()));
            return Ok(());
        }
        write_atomic(&path, r.to_file_string().as_bytes())?;
        self.note(format!("wrote {}", path.display()));
        Ok(())
    }

    fn root_rel(&self) -> Vec<String> {
        vec![self.root_name.clone()]
    }

    /// Reads the root file.
    pub fn root(&mut self) -> Result<Root> {
        let rel = self.root_rel();
        self.read(&rel)
    }

    /// `root create`: a fresh root (counter 0, no keys). Keeps an existing
    /// root unless `force`.
    pub fn root_create(&mut self, force: bool) -> Result<Root> {
        let path = self.path(&self.root_rel());
        if path.exists() && !force {
            return Err(ArcaError::Refused(format!(
                "{} exists already; use --force to replace it with an empty root",
                path.display()
            )));
        }
        let mut root = Root::new(&self.now);
        root.header.name = self.root_name.clone();
        let rel = self.root_rel();
        self.write(&rel, &root)?;
        Ok(root)
    }

    /// Applies a change to the root; signatures that no longer verify are
    /// removed and the person is told.
    pub fn modify_root(
        &mut self,
        f: impl FnOnce(&mut Root, &mut Vec<String>) -> Result<()>,
    ) -> Result<Root> {
        let mut root = self.root()?;
        let before = valid_signatures(&root, &mut Vec::new());
        let mut notes = Vec::new();
        f(&mut root, &mut notes)?;
        for n in notes {
            self.note(n);
        }
        check_root_shape(&root)?;
        if !before.is_empty() {
            let after = valid_signatures(&root, &mut Vec::new());
            let lost: Vec<String> = before
                .values()
                .filter(|id| !after.values().any(|a| a == *id))
                .cloned()
                .collect();
            if !lost.is_empty() {
                for id in &lost {
                    root.signatures.remove(id);
                }
                self.note(format!(
                    "this change invalidates the signatures of {}: they are removed; the root must be signed again",
                    lost.join(", ")
                ));
            }
        }
        let rel = self.root_rel();
        self.write(&rel, &root)?;
        Ok(root)
    }

    /// `root add-key`.
    pub fn root_add_key(
        &mut self,
        id: &str,
        key: PublicKey,
        created: &str,
        quorum: Option<i64>,
    ) -> Result<Root> {
        check_ident(id)?;
        key.validate()
            .map_err(|e| ArcaError::Input(format!("key {id}: {e}")))?;
        let created = created.to_string();
        self.modify_root(|root, notes| {
            if let Some((other, _)) = root.keys.iter().find(|(o, k)| k.key == key && o.as_str() != id) {
                return Err(ArcaError::Refused(format!(
                    "this key is already root key {other}; one key under two ids would count once but look like two"
                )));
            }
            let Expr::Quorum(n, refs) = &root.valid else {
                return Err(ArcaError::Refused("the root's valid expression is not a plain quorum; edit it by hand".into()));
            };
            let mut refs = refs.clone();
            refs.push(KeyRef::Local(id.into()));
            let n = match quorum {
                Some(q) => q,
                None if *n < 1 => {
                    notes.push("quorum was 0 (no signature needed); set to 1 — give --quorum to choose".into());
                    1
                }
                None => *n,
            };
            root.valid = Expr::quorum(n, refs);
            root.keys.insert(id.into(), Key { id: id.into(), created, key });
            Ok(())
        })
    }

    /// `root remove-key`.
    pub fn root_remove_key(&mut self, id: &str, quorum: Option<i64>) -> Result<Root> {
        self.modify_root(|root, _| {
            if root.keys.remove(id).is_none() {
                return Err(ArcaError::Input(format!("the root has no key {id}")));
            }
            let Expr::Quorum(n, refs) = &root.valid else {
                return Err(ArcaError::Refused(
                    "the root's valid expression is not a plain quorum; edit it by hand".into(),
                ));
            };
            let refs: Vec<KeyRef> = refs.iter().filter(|r| r.id() != id).cloned().collect();
            root.valid = Expr::quorum(quorum.unwrap_or(*n), refs);
            root.signatures.remove(id);
            Ok(())
        })
    }

    /// `root add-to-role`: adds a remote reference to a role.
    pub fn root_add_to_role(
        &mut self,
        role: Role,
        id: &str,
        digest: Digest,
        epoch: u64,
        quorum: Option<i64>,
    ) -> Result<Root> {
        check_ident(id)?;
        self.modify_root(|root, _| {
            let r = KeyRef::Remote {
                id: id.into(),
                digest,
                epoch,
            };
            let e = match root.roles.get(&role) {
                None => Expr::quorum(quorum.unwrap_or(1), [r]),
                Some(Expr::Quorum(n, refs)) => {
                    let mut refs: Vec<KeyRef> =
                        refs.iter().filter(|x| x.id() != id).cloned().collect();
                    refs.push(r);
                    Expr::quorum(quorum.unwrap_or(*n), refs)
                }
                Some(_) => {
                    return Err(ArcaError::Refused(format!(
                        "the {role} role is not a plain quorum; edit it by hand"
                    )))
                }
            };
            root.roles.insert(role, e);
            Ok(())
        })
    }

    /// `root set-role`: the role becomes exactly this one reference.
    pub fn root_set_role(
        &mut self,
        role: Role,
        id: &str,
        digest: Digest,
        epoch: u64,
    ) -> Result<Root> {
        check_ident(id)?;
        self.modify_root(|root, _| {
            root.roles.insert(
                role,
                Expr::quorum(
                    1,
                    [KeyRef::Remote {
                        id: id.into(),
                        digest,
                        epoch,
                    }],
                ),
            );
            Ok(())
        })
    }

    /// `root remove-from-role`.
    pub fn root_remove_from_role(
        &mut self,
        role: Role,
        id: &str,
        quorum: Option<i64>,
    ) -> Result<Root> {
        self.modify_root(|root, notes| {
            let Some(Expr::Quorum(n, refs)) = root.roles.get(&role) else {
                return Err(ArcaError::Input(format!(
                    "the root has no plain {role} role"
                )));
            };
            let refs: Vec<KeyRef> = refs.iter().filter(|x| x.id() != id).cloned().collect();
            if refs.is_empty() {
                root.roles.remove(&role);
                notes.push(format!("the {role} role is now empty and removed"));
            } else {
                let n = quorum.unwrap_or((*n).min(refs.len() as i64));
                root.roles.insert(role, Expr::quorum(n, refs));
            }
            Ok(())
        })
    }

    /// `root sign`: signs the root with `signer` as `id` ([`sign_root`]).
    pub fn root_sign(
        &mut self,
        id: &str,
        signer: &mut dyn Signer,
        counter: Counter,
    ) -> Result<Root> {
        let mut root = self.root()?;
        let now = self.now.clone();
        for n in sign_root(&mut root, id, &now, signer, counter)? {
            self.note(n);
        }
        let rel = self.root_rel();
        self.write(&rel, &root)?;
        Ok(root)
    }

    /// The path of janitor `id`'s targets file (`<keydir>/<id>`).
    pub fn targets_rel(&mut self, id: &str) -> Result<Vec<String>> {
        let root = self.root()?;
        let mut rel = root.keydir.clone();
        rel.push(id.to_string());
        Ok(rel)
    }

    /// Reads janitor `id`'s targets file.
    pub fn targets(&mut self, id: &str) -> Result<Targets> {
        let rel = self.targets_rel(id)?;
        self.read(&rel)
    }

    /// `targets create`: a janitor's targets file with its key; an existing
    /// one is kept.
    pub fn targets_create(
        &mut self,
        id: &str,
        key: PublicKey,
        key_created: &str,
    ) -> Result<Targets> {
        check_ident(id)?;
        let rel = self.targets_rel(id)?;
        if self.path(&rel).exists() {
            let t: Targets = self.read(&rel)?;
            self.note(format!("{} exists; kept as it is", path_to_string(&rel)));
            return Ok(t);
        }
        let keys = own_key(id, key, key_created);
        let t = Targets {
            header: Header {
                created: self.now.clone(),
                counter: 0,
                epoch: 0,
                name: id.into(),
            },
            keys,
            valid: Expr::quorum(1, [KeyRef::Local(id.into())]),
            delegations: vec![],
            targets: vec![],
            signatures: BTreeMap::new(),
        };
        self.write(&rel, &t)?;
        Ok(t)
    }

    /// `targets compute`: (re)computes the entries for one package or all
    /// packages, replacing the entries below that path.
    pub fn targets_compute(&mut self, id: &str, pkg: Option<&str>, opam: bool) -> Result<Targets> {
        let root = self.root()?;
        let rel = self.targets_rel(id)?;
        let mut t: Targets = self.read(&rel)?;
        let mut scope = root.datadir.clone();
        if let Some(p) = pkg {
            check_ident_path(p)?;
            scope.push(p.to_string());
        }
        let computed = compute_targets(&DirSource(self.dir.clone()), &root.datadir, &scope, opam)?;
        let before = t.targets.len();
        t.targets.retain(|x| !x.filename.starts_with(&scope));
        let kept = t.targets.len();
        t.targets.extend(computed.iter().cloned());
        self.note(format!(
            "{}: {} entr{} below {} replaced by {} computed",
            path_to_string(&rel),
            before - kept,
            if before - kept == 1 { "y" } else { "ies" },
            path_to_string(&scope),
            computed.len()
        ));
        self.write(&rel, &t)?;
        Ok(t)
    }

    /// `targets sign`.
    pub fn targets_sign(
        &mut self,
        id: &str,
        signer: &mut dyn Signer,
        counter: Counter,
    ) -> Result<Targets> {
        let rel = self.targets_rel(id)?;
        let mut t: Targets = self.read(&rel)?;
        self.sign_resource(&mut t, id, signer, counter)?;
        self.write(&rel, &t)?;
        Ok(t)
    }

    fn sign_resource<R: Resource>(
        &mut self,
        r: &mut R,
        id: &str,
        signer: &mut dyn Signer,
        counter: Counter,
    ) -> Result<()> {
        let Some(key) = r.keys().get(id) else {
            return Err(ArcaError::Refused(format!(
                "key for {id} not present in {} {}",
                R::TYP,
                r.header().name
            )));
        };
        if key.key != *signer.public_key() {
            return Err(ArcaError::Refused(format!(
                "the key of {} ({}) is not the key {id} of {} {} ({})",
                signer.describe(),
                signer.public_key().key_id(),
                R::TYP,
                r.header().name,
                key.key_id()
            )));
        }
        if counter != Counter::Keep {
            let h = r.header_mut();
            h.counter = h.counter.checked_add(1).ok_or_else(|| {
                ArcaError::Refused("the counter is at its maximum: bump the epoch".into())
            })?;
            r.signatures_mut().clear();
        }
        sign_into(r, id, &self.now, signer)
    }

    /// `snapshot create`: digests of every file in the key directory.
    pub fn snapshot_create(
        &mut self,
        id: &str,
        key: PublicKey,
        key_created: &str,
        epoch: Option<u64>,
    ) -> Result<Snapshot> {
        check_ident(id)?;
        let root = self.root()?;
        let src = DirSource(self.dir.clone());
        let names = src
            .list(&root.keydir)
            .map_err(|e| ArcaError::io(self.path(&root.keydir), e))?;
        let mut targets = Vec::new();
        for (name, is_dir) in names.into_iter().rev() {
            let mut p = root.keydir.clone();
            p.push(name);
            if is_dir {
                self.note(format!(
                    "unexpected directory {} in the key directory, skipped",
                    path_to_string(&p)
                ));
                continue;
            }
            let bytes = src.read(&p).map_err(|e| ArcaError::io(self.path(&p), e))?;
            targets.push(Target::of_bytes(p, &bytes));
        }
        let rel = vec![id.to_string()];
        let header = self.online_header::<Snapshot>(&rel, id, epoch)?;
        let keys = own_key(id, key, key_created);
        let s = Snapshot {
            header,
            keys,
            targets,
            signatures: BTreeMap::new(),
        };
        self.write(&rel, &s)?;
        Ok(s)
    }

    /// `timestamp create`: the digest of the snapshot file.
    pub fn timestamp_create(
        &mut self,
        id: &str,
        snapshot_id: &str,
        key: PublicKey,
        key_created: &str,
        epoch: Option<u64>,
    ) -> Result<Timestamp> {
        check_ident(id)?;
        let snap_rel = vec![snapshot_id.to_string()];
        let bytes = std::fs::read(self.path(&snap_rel))
            .map_err(|e| ArcaError::io(self.path(&snap_rel), e))?;
        let rel = vec![id.to_string()];
        let header = self.online_header::<Timestamp>(&rel, id, epoch)?;
        let keys = own_key(id, key, key_created);
        let t = Timestamp {
            header,
            keys,
            targets: vec![Target::of_bytes(snap_rel, &bytes)],
            signatures: BTreeMap::new(),
        };
        self.write(&rel, &t)?;
        Ok(t)
    }

    /// The header of a (re-)made snapshot or timestamp file: an existing
    /// file keeps its counter and epoch; a higher `epoch` restarts the
    /// counter; a lower one is refused.
    fn online_header<R: Resource>(
        &mut self,
        rel: &[String],
        id: &str,
        epoch: Option<u64>,
    ) -> Result<Header> {
        if !self.path(rel).exists() {
            return Ok(Header {
                created: self.now.clone(),
                counter: 0,
                epoch: epoch.unwrap_or(0),
                name: id.into(),
            });
        }
        let old: R = self.read(rel)?;
        let mut h = Header {
            created: self.now.clone(),
            ..old.header().clone()
        };
        match epoch {
            Some(e) if e < h.epoch => {
                return Err(ArcaError::Refused(format!(
                    "epoch {e} is below the epoch {} of {id}",
                    h.epoch
                )));
            }
            Some(e) if e > h.epoch => {
                self.note(format!(
                    "{id}: epoch {} -> {e}, the counter restarts at 0",
                    h.epoch
                ));
                h.epoch = e;
                h.counter = 0;
            }
            _ => {}
        }
        Ok(h)
    }

    /// `snapshot sign` / `timestamp sign` (the file named `id` at the top).
    pub fn online_sign<R: Resource>(
        &mut self,
        id: &str,
        signer: &mut dyn Signer,
        counter: Counter,
    ) -> Result<R> {
        let rel = vec![id.to_string()];
        let mut r: R = self.read(&rel)?;
        self.sign_resource(&mut r, id, signer, counter)?;
        self.write(&rel, &r)?;
        Ok(r)
    }
}

/// The key map of a file signed by its own single key.
fn own_key(id: &str, key: PublicKey, created: &str) -> BTreeMap<String, Key> {
    BTreeMap::from([(
        id.to_string(),
        Key {
            id: id.into(),
            created: created.into(),
            key,
        },
    )])
}

/// Signs `r` as `id` at `now`, checking the signature before keeping it.
pub fn sign_into<R: Resource>(
    r: &mut R,
    id: &str,
    now: &str,
    signer: &mut dyn Signer,
) -> Result<()> {
    let alg = signer.public_key().sig_alg();
    let tbs = r.to_be_signed(id, now, alg);
    let (alg, raw) = sign_checked(signer, tbs.as_bytes())?;
    r.signatures_mut()
        .insert(id.to_string(), Signature::new(id, now, alg, &raw));
    Ok(())
}

/// Computes the targets below `scope` as conex does (opam files only; with
/// `opam`, any other file that is not a valid opam repository path is an
/// error). Order: conex's (reverse of a depth-first walk in directory order).
pub fn compute_targets(
    src: &dyn Source,
    datadir: &[String],
    scope: &[String],
    opam: bool,
) -> Result<Vec<Target>> {
    fn walk(
        src: &dyn Source,
        datadir: &[String],
        dir: &[String],
        opam: bool,
        acc: &mut Vec<Target>,
    ) -> Result<()> {
        let items = src
            .list(dir)
            .map_err(|e| ArcaError::Input(format!("cannot list {}: {e}", path_to_string(dir))))?;
        for (name, is_dir) in items {
            let mut p: CPath = dir.to_vec();
            p.push(name);
            if is_dir {
                walk(src, datadir, &p, opam, acc)?;
                continue;
            }
            let bytes = src.read(&p).map_err(|e| {
                ArcaError::Input(format!("cannot read {}: {e}", path_to_string(&p)))
            })?;
            let t = Target::of_bytes(p, &bytes);
            if !opam || t.is_opam_file(datadir) {
                acc.push(t);
            } else if !t.valid_opam_path(datadir) {
                return Err(ArcaError::Input(format!(
                    "invalid path {} (not an opam repository path)",
                    path_to_string(&t.filename)
                )));
            }
        }
        Ok(())
    }
    let mut acc = Vec::new();
    walk(src, datadir, scope, opam, &mut acc)?;
    acc.reverse();
    Ok(acc)
}

fn check_ident_path(p: &str) -> Result<()> {
    if p.is_empty() || p.contains('/') || p == "." || p == ".." {
        return Err(ArcaError::Input(format!(
            "package {p:?} is not a package name"
        )));
    }
    Ok(())
}
