//! A conex repository on disk and the conex verbs (`root`, `targets`,
//! `snapshot`, `timestamp`) as non-interactive building blocks. Where conex
//! is unsafe, these are safe by default and say why.

use crate::conex::expr::{Expr, KeyRef};
use crate::conex::resource::{path_to_string, Header, Path as CPath, Resource};
use crate::conex::verify::{valid_signatures, DirSource, Source};
use crate::conex::{
    Digest, Key, PublicKey, Role, Root, Signature, Snapshot, Target, Targets, Timestamp,
};
use crate::error::{ArcaError, Result};
use crate::keys::{sign_checked, Signer};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, bytes, true)
}

/// Writes `bytes` to a new file; refuses if `path` exists (checked again at
/// the rename, so a file appearing meanwhile is not replaced either).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Err(ArcaError::Refused(format!(
            "{} exists already; arca never overwrites it",
            path.display()
        )));
    }
    write_file(path, bytes, false)
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Temporary file beside `path`, 0644, synced, then renamed into place.
fn write_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| ArcaError::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".arca-")
        .tempfile_in(dir)
        .map_err(|e| ArcaError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| ArcaError::io(path, e))?;
    // repository files and ceremony outputs are public
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| ArcaError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ArcaError::io(path, e))?;
    if replace {
        tmp.persist(path)
            .map_err(|e| ArcaError::io(path, e.error))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| ArcaError::io(path, e.error))?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
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

/// Strict checks arca applies to every file it reads for writing or
/// signing: every key decodes and is in canonical form, every signature is
/// well-formed base64.
pub fn lint<R: Resource>(r: &R) -> std::result::Result<(), crate::conex::ConexError> {
    for (id, k) in r.keys() {
        k.key.validate().map_err(|e| {
            crate::conex::ConexError::field(format!("signed.keys.{id}"), e.to_string())
        })?;
    }
    for (id, s) in r.signatures() {
        if s.raw().is_none() {
            return Err(crate::conex::ConexError::field(
                format!("signatures.{id}"),
                "signature is not valid padded base64",
            ));
        }
    }
    Ok(())
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

/// Signs a root as `id` at `now`: the one root-signing path of arca
/// (`root sign`, ceremonies, sign requests). Refuses a root arca will not
/// write ([`check_root_shape`]), a signer that is not a key of the root or
/// does not count in its `valid` expression, and a device holding another
/// key than the root's `id`; applies the round rules of `counter`; checks
/// the new signature with the root's own key before keeping it. Returns
/// notes for people (a new round started, a round joined).
pub fn sign_root(
    root: &mut Root,
    id: &str,
    now: &str,
    signer: &mut dyn Signer,
    counter: Counter,
) -> Result<Vec<String>> {
    check_root_shape(root)?;
    let Some(key) = root.keys.get(id) else {
        return Err(ArcaError::Refused(format!(
            "{id} is not a key of this root; add it with `arca root add-key` first"
        )));
    };
    if key.key != *signer.public_key() {
        return Err(ArcaError::Refused(format!(
            "the key of {} ({}) is not root key {id} ({})",
            signer.describe(),
            signer.public_key().key_id(),
            key.key_id()
        )));
    }
    if !root.valid.local_ids().contains(id) {
        return Err(ArcaError::Refused(format!(
            "{id} does not count in the root's valid expression"
        )));
    }
    let mut notes = Vec::new();
    let others: Vec<String> = valid_signatures(root, &mut Vec::new())
        .into_values()
        .filter(|s| s != id)
        .collect();
    let bump = match counter {
        Counter::Increment => true,
        Counter::Keep => false,
        Counter::Auto => others.is_empty(),
    };
    if bump {
        root.header.counter = root
            .header
            .counter
            .checked_add(1)
            .ok_or_else(|| ArcaError::Refused("the root counter is at its maximum".into()))?;
        if !others.is_empty() {
            notes.push(format!(
                "starting a new signing round (counter {}): the signatures of {} no longer verify and are removed",
                root.header.counter,
                others.join(", ")
            ));
        }
        root.signatures.clear();
    } else if !others.is_empty() {
        notes.push(format!(
            "joining the signing round at counter {} already signed by {} (counter unchanged)",
            root.header.counter,
            others.join(", ")
        ));
    }
    let alg = signer.public_key().sig_alg();
    let tbs = root.to_be_signed(id, now, alg);
    let (alg, raw) = sign_checked(signer, tbs.as_bytes())?;
    add_root_signature(root, Signature::new(id, now, alg, &raw))?;
    Ok(notes)
}

/// Adds a root signature after checking it: its signer is a key of the
/// root that counts in `valid`, its algorithm fits the key, and it verifies
/// over this root's signed content. Used for every root signature arca
/// keeps, made here or imported.
pub fn add_root_signature(root: &mut Root, sig: Signature) -> Result<()> {
    let id = sig.id.clone();
    let key = root
        .keys
        .get(&id)
        .ok_or_else(|| ArcaError::Refused(format!("{id} is not a key of the root; not added")))?;
    if !root.valid.local_ids().contains(&id) {
        return Err(ArcaError::Refused(format!(
            "{id} does not count in the root's valid expression; not added"
        )));
    }
    if sig.alg != key.key.sig_alg() {
        return Err(ArcaError::Refused(format!(
            "a {} signature for a {} key; not added",
            sig.alg.as_str(),
            key.key.alg
        )));
    }
    let tbs = root.to_be_signed(&id, &sig.created, sig.alg);
    key.key
        .verify_b64(sig.alg, tbs.as_bytes(), &sig.value)
        .map_err(|e| {
            ArcaError::Refused(format!(
                "the signature of {id} does not verify over this root: {e}; not added"
            ))
        })?;
    root.signatures.insert(id, sig);
    Ok(())
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

/// Refuses roots arca will not write: quorum below 1 or above the keys that
/// could meet it, references to missing keys.
pub fn check_root_shape(root: &Root) -> Result<()> {
    let mut seen: BTreeMap<crate::conex::key::Digest, &str> = BTreeMap::new();
    for (id, k) in &root.keys {
        if let Some(other) = seen.insert(k.key_id(), id) {
            return Err(ArcaError::Refused(format!(
                "root keys {other} and {id} are the same key; one key under two ids would count once but look like two"
            )));
        }
    }
    for id in root.valid.local_ids() {
        if !root.keys.contains_key(&id) {
            return Err(ArcaError::Refused(format!(
                "the valid expression names {id}, which is not a root key"
            )));
        }
    }
    if let Expr::Quorum(n, refs) = &root.valid {
        if !refs.is_empty() || *n != 0 {
            quorum_bounds("the root", *n, refs.len(), "root key(s)").map_err(ArcaError::Refused)?;
        }
    }
    for (role, e) in &root.roles {
        if let Expr::Quorum(n, refs) = e {
            quorum_bounds(&format!("the {role} role"), *n, refs.len(), "key(s) in it")
                .map_err(ArcaError::Refused)?;
        } else if e.min_signers() < 1 {
            return Err(ArcaError::Refused(format!("the {role} role has quorum 0")));
        }
        if matches!(role, Role::Snapshot | Role::Timestamp)
            && !matches!(e, Expr::Quorum(1, r) if r.len() == 1)
        {
            return Err(ArcaError::Refused(format!(
                "the {role} role must be exactly one key with quorum 1"
            )));
        }
    }
    let online = |role: Role| {
        root.roles.get(&role).and_then(|e| {
            e.refs().into_iter().find_map(|r| match r {
                KeyRef::Remote { digest, .. } => Some(digest.clone()),
                KeyRef::Local(_) => None,
            })
        })
    };
    if let (Some(s), Some(t)) = (online(Role::Snapshot), online(Role::Timestamp)) {
        if s == t {
            return Err(ArcaError::Refused(SAME_ONLINE_KEY.into()));
        }
    }
    Ok(())
}

/// Why one key for snapshot and timestamp is refused.
pub const SAME_ONLINE_KEY: &str = "the snapshot and timestamp roles have the same key: whoever steals it signs both files, and a frozen timestamp can no longer be told from a frozen snapshot; give each role its own key";

/// The bounds of every quorum arca writes: at least 1 (a quorum of 0 or
/// below is met with no signature at all) and at most the keys that could
/// meet it. `what` names the expression (`the root`, `the maintainer role`).
pub fn quorum_bounds(
    what: &str,
    n: i64,
    keys: usize,
    noun: &str,
) -> std::result::Result<(), String> {
    if n < 1 {
        return Err(format!(
            "{what} has quorum {n}: a quorum 0 or below is met with no signature at all; give 1 or more"
        ));
    }
    if n > keys as i64 {
        return Err(format!(
            "{what} has quorum {n}, which exceeds the {keys} {noun}"
        ));
    }
    Ok(())
}

/// Ids must be opam identifiers conex can read back.
pub fn check_ident(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        && id.bytes().any(|c| c.is_ascii_alphabetic())
        && !id.starts_with("0x")
        && !matches!(id, "true" | "false" | "emptymap");
    if ok {
        Ok(())
    } else {
        Err(ArcaError::Input(format!(
            "id {id:?} is not usable: letters, digits, '_' and '-', at least one letter, not 0x…, true, false or emptymap"
        )))
    }
}

fn check_ident_path(p: &str) -> Result<()> {
    if p.is_empty() || p.contains('/') || p == "." || p == ".." {
        return Err(ArcaError::Input(format!(
            "package {p:?} is not a package name"
        )));
    }
    Ok(())
}
