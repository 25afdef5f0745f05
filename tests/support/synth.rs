//! Synthetic conex repositories of a chosen size, built with arca's library
//! (`arca::repository::Repo`, `arca::keys::file`, in-memory Ed25519
//! signers): packages with versions and files, janitors signing packages in
//! a maintainer quorum, snapshot, timestamp, and a root signed by an
//! RSA-4096 and an Ed25519 key. Shared by `examples/synth.rs`,
//! `benches/verify.rs` and the tests.
#![allow(dead_code)]

use arca::conex::expr::{Expr, KeyRef};
use arca::conex::resource::{Header, Resource};
use arca::conex::verify::{DirSource, Options};
use arca::conex::{Digest, Key, PublicKey, Role, Snapshot, Target, Targets, Timestamp};
use arca::keys::file::{FileLocation, FileSigner};
use arca::keys::{KeyError, KeySpec, NoSecrets, Signer};
use arca::repository::{compute_targets, sign_into, Counter, Repo};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The time written into every generated file.
pub const CREATED: &str = "2026-01-01T00:00:00Z";

/// How big a repository to make.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Number of packages.
    pub packages: usize,
    /// Total number of files under `packages/` (opam files plus extra files).
    pub files: usize,
    /// Files per version: 1 = only `opam`; n > 1 adds n-1 files under `files/`.
    pub files_per_version: usize,
    /// Bytes per file (approximately; at least the opam header).
    pub file_size: usize,
    /// Number of janitors (Ed25519 keys, one targets file each).
    pub janitors: usize,
    /// Maintainer quorum: each package is signed by this many janitors.
    pub quorum: usize,
    /// Seed for the janitor, snapshot and timestamp keys and the contents.
    pub seed: u64,
    /// Use this RSA private key file for the RSA root key instead of
    /// generating a new RSA-4096 key.
    pub rsa_key: Option<PathBuf>,
}

impl Default for Spec {
    /// About the size of opam-repository.
    fn default() -> Spec {
        Spec {
            packages: 4500,
            files: 35000,
            files_per_version: 1,
            file_size: 1000,
            janitors: 500,
            quorum: 2,
            seed: 1,
            rsa_key: None,
        }
    }
}

impl Spec {
    /// A tiny repository for tests.
    pub fn tiny() -> Spec {
        Spec {
            packages: 6,
            files: 20,
            files_per_version: 2,
            file_size: 200,
            janitors: 4,
            quorum: 2,
            seed: 7,
            rsa_key: None,
        }
    }
}

/// An Ed25519 key held in memory.
pub struct MemSigner {
    id: String,
    pk: PublicKey,
    sk: ed25519_dalek::SigningKey,
}

impl MemSigner {
    /// A key derived from `seed` and `id` (deterministic).
    pub fn derive(seed: u64, id: &str) -> MemSigner {
        let mut h = Sha256::new();
        h.update(b"arca synthetic key");
        h.update(seed.to_be_bytes());
        h.update(id.as_bytes());
        let sk = ed25519_dalek::SigningKey::from_bytes(&h.finalize().into());
        MemSigner {
            id: id.into(),
            pk: PublicKey::from_ed25519(&sk.verifying_key().to_bytes()),
            sk,
        }
    }
}

impl Signer for MemSigner {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    fn sign_raw(&mut self, msg: &[u8], _: arca::keys::CheckedPath) -> Result<Vec<u8>, KeyError> {
        use ed25519_dalek::Signer as _;
        Ok(self.sk.sign(msg).to_bytes().to_vec())
    }
    fn describe(&self) -> String {
        format!("in-memory key {}", self.id)
    }
}

/// A generated repository and what is needed to update it.
pub struct Synth {
    /// The repository directory.
    pub dir: PathBuf,
    /// The directory with the two root private keys.
    pub key_store: PathBuf,
    /// Trust anchors (the two root key ids).
    pub anchors: Vec<Digest>,
    /// The spec it was made with.
    pub spec: Spec,
    /// package name → janitor ids signing it.
    pub owners: BTreeMap<String, Vec<String>>,
    /// Number of files under `packages/`.
    pub files: usize,
    /// Number of signatures a full verification checks.
    pub signatures: usize,
}

impl Synth {
    /// Verification options for this repository (both anchors, quorum 2).
    pub fn options(&self) -> Options {
        Options {
            anchors: self.anchors.iter().cloned().collect(),
            quorum: Some(2),
            now: arca::conex::resource::parse_time(CREATED).unwrap_or(0) + 3600,
            ..Options::default()
        }
    }

    /// `-t` argument for `arca verify`.
    pub fn anchors_arg(&self) -> String {
        self.anchors
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Deterministic file content of about `size` bytes.
fn content(pkg: &str, ver: &str, name: &str, size: usize, seed: u64) -> Vec<u8> {
    let mut s = if name == "opam" {
        format!("opam-version: \"2.0\"\nsynopsis: \"{pkg} {ver}\"\ndescription: \"\"\"\n")
    } else {
        format!("# {pkg}.{ver}/files/{name}\n")
    };
    let mut n = 0u64;
    while s.len() + 4 < size {
        let mut h = Sha256::new();
        h.update(seed.to_be_bytes());
        h.update(pkg.as_bytes());
        h.update(ver.as_bytes());
        h.update(name.as_bytes());
        h.update(n.to_be_bytes());
        let line = hex::encode(h.finalize());
        let room = size - s.len() - 4;
        s.push_str(&line[..line.len().min(room.max(1))]);
        s.push('\n');
        n += 1;
    }
    if name == "opam" {
        s.push_str("\"\"\"\n");
    }
    s.into_bytes()
}

/// Package and version names: `pkg0001`, `0.1`, `0.2`, …
pub fn package_name(i: usize) -> String {
    format!("pkg{i:04}")
}

/// The janitor id `j0001`, …
pub fn janitor_name(i: usize) -> String {
    format!("j{i:04}")
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds a signed repository in `dir` (which must not exist), root keys
/// in `key_store`.
pub fn generate(dir: &Path, key_store: &Path, spec: &Spec) -> Result<Synth, String> {
    if dir.exists() {
        return Err(format!("{} exists already", dir.display()));
    }
    if spec.janitors < spec.quorum || spec.quorum == 0 || spec.packages == 0 {
        return Err("need packages > 0 and janitors ≥ quorum ≥ 1".into());
    }
    let fpv = spec.files_per_version.max(1);
    let versions_total = (spec.files / fpv).max(spec.packages);
    // 1. package files
    let mut nfiles = 0;
    let mut owners = BTreeMap::new();
    for p in 0..spec.packages {
        let pkg = package_name(p);
        let nv = versions_total / spec.packages + usize::from(p < versions_total % spec.packages);
        for v in 0..nv {
            let ver = format!("0.{}", v + 1);
            let vdir = dir.join("packages").join(&pkg).join(format!("{pkg}.{ver}"));
            write(
                &vdir.join("opam"),
                &content(&pkg, &ver, "opam", spec.file_size, spec.seed),
            )?;
            nfiles += 1;
            for f in 1..fpv {
                let name = format!("patch-{f}.diff");
                write(
                    &vdir.join("files").join(&name),
                    &content(&pkg, &ver, &name, spec.file_size, spec.seed),
                )?;
                nfiles += 1;
            }
        }
        let os: Vec<String> = (0..spec.quorum)
            .map(|k| janitor_name((p * spec.quorum + k) % spec.janitors))
            .collect();
        owners.insert(pkg, os);
    }
    // 2. root keys (files), root with roles
    std::fs::create_dir_all(key_store).map_err(err)?;
    let mut root_a = match &spec.rsa_key {
        Some(p) => FileSigner::open(&FileLocation::Path(p.clone()), &mut NoSecrets).map_err(err)?,
        None => FileSigner::generate(
            &FileLocation::Id {
                dir: key_store.to_path_buf(),
                id: "rootA".into(),
            },
            KeySpec::Rsa(4096),
        )
        .map_err(err)?,
    };
    let mut root_b = FileSigner::generate(
        &FileLocation::Id {
            dir: key_store.to_path_buf(),
            id: "rootB".into(),
        },
        KeySpec::Ed25519,
    )
    .map_err(err)?;
    let mut repo = Repo::new(dir, CREATED.into(), |_| {});
    repo.root_create(false).map_err(err)?;
    repo.root_add_key("rootA", root_a.public_key().clone(), CREATED, None)
        .map_err(err)?;
    repo.root_add_key("rootB", root_b.public_key().clone(), CREATED, Some(2))
        .map_err(err)?;
    let mut snap = MemSigner::derive(spec.seed, "snap");
    let mut ts = MemSigner::derive(spec.seed, "ts");
    // 3. janitors' targets files
    let datadir = vec!["packages".to_string()];
    let mut per_janitor: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    let src = DirSource(dir.to_path_buf());
    for (pkg, os) in &owners {
        let scope = vec!["packages".to_string(), pkg.clone()];
        let ts_ = compute_targets(&src, &datadir, &scope, true).map_err(err)?;
        for o in os {
            per_janitor
                .entry(o.clone())
                .or_default()
                .extend(ts_.iter().cloned());
        }
    }
    let mut refs = Vec::new();
    for j in 0..spec.janitors {
        let id = janitor_name(j);
        let mut signer = MemSigner::derive(spec.seed, &id);
        let mut t = new_targets(&id, signer.public_key().clone());
        t.targets = per_janitor.remove(&id).unwrap_or_default();
        t.header.counter = 1;
        sign_into(&mut t, &id, CREATED, &mut signer).map_err(err)?;
        write(&dir.join("keys").join(&id), t.to_file_string().as_bytes())?;
        refs.push(KeyRef::Remote {
            id: id.clone(),
            digest: t.valid_hash().map_err(err)?,
            epoch: 0,
        });
    }
    let q = spec.quorum as i64;
    repo.modify_root(|root, _| {
        root.roles.insert(Role::Maintainer, Expr::quorum(q, refs));
        Ok(())
    })
    .map_err(err)?;
    for (role, s) in [(Role::Snapshot, &snap), (Role::Timestamp, &ts)] {
        let id = if role == Role::Snapshot { "snap" } else { "ts" };
        repo.root_add_to_role(role, id, s.public_key().key_id(), 0, None)
            .map_err(err)?;
    }
    repo.root_sign("rootA", &mut root_a, Counter::Auto)
        .map_err(err)?;
    repo.root_sign("rootB", &mut root_b, Counter::Auto)
        .map_err(err)?;
    // 4. snapshot and timestamp
    repo.snapshot_create("snap", snap.public_key().clone(), CREATED, None)
        .map_err(err)?;
    repo.online_sign::<Snapshot>("snap", &mut snap, Counter::Increment)
        .map_err(err)?;
    repo.timestamp_create("ts", "snap", ts.public_key().clone(), CREATED, None)
        .map_err(err)?;
    repo.online_sign::<Timestamp>("ts", &mut ts, Counter::Increment)
        .map_err(err)?;
    Ok(Synth {
        dir: dir.to_path_buf(),
        key_store: key_store.to_path_buf(),
        anchors: vec![root_a.public_key().key_id(), root_b.public_key().key_id()],
        spec: spec.clone(),
        owners,
        files: nfiles,
        signatures: spec.janitors + 4,
    })
}

fn new_targets(id: &str, key: PublicKey) -> Targets {
    let mut keys = BTreeMap::new();
    keys.insert(
        id.to_string(),
        Key {
            id: id.into(),
            created: CREATED.into(),
            key,
        },
    );
    Targets {
        header: Header {
            created: CREATED.into(),
            counter: 0,
            epoch: 0,
            name: id.into(),
        },
        keys,
        valid: Expr::quorum(1, [KeyRef::Local(id.into())]),
        delegations: vec![],
        targets: vec![],
        signatures: BTreeMap::new(),
    }
}

/// A `git diff` hunk set replacing the whole file (what `git diff` would
/// print with `--unified=<large>`), for a created, changed or deleted file.
pub fn whole_file_diff(path: &str, old: Option<&[u8]>, new: Option<&[u8]>) -> String {
    fn lines(b: &[u8]) -> Vec<String> {
        let t = String::from_utf8_lossy(b);
        t.split_inclusive('\n').map(str::to_string).collect()
    }
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match (old, new) {
        (None, _) => out.push_str("new file mode 100644\n"),
        (_, None) => out.push_str("deleted file mode 100644\n"),
        _ => {}
    }
    let ol = old.map(lines).unwrap_or_default();
    let nl = new.map(lines).unwrap_or_default();
    out.push_str(&match old {
        Some(_) => format!("--- a/{path}\n"),
        None => "--- /dev/null\n".into(),
    });
    out.push_str(&match new {
        Some(_) => format!("+++ b/{path}\n"),
        None => "+++ /dev/null\n".into(),
    });
    let range = |n: usize| match n {
        0 => "0,0".to_string(),
        1 => "1".to_string(),
        n => format!("1,{n}"),
    };
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(ol.len()),
        range(nl.len())
    ));
    for (tag, ls) in [('-', &ol), ('+', &nl)] {
        for l in ls {
            out.push(tag);
            out.push_str(l);
            if !l.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// A one-package update of `synth` as a patch (the repository on disk is
/// not modified): a new version of `package`, its janitors' targets files
/// re-signed (counter + 1), new snapshot and timestamp.
pub fn one_package_update(synth: &Synth, package: &str) -> Result<String, String> {
    one_package_update_with(synth, package, &|_, _, _| {})
}

/// [`one_package_update`], each changed targets file passed to `tamper`
/// (with its id) before its janitor signs it (`false`) and after (`true`),
/// before the snapshot is made: an update as a janitor or a compromised
/// online key could make it.
pub fn one_package_update_with(
    synth: &Synth,
    package: &str,
    tamper: &dyn Fn(&str, &mut Targets, bool),
) -> Result<String, String> {
    let spec = &synth.spec;
    let dir = &synth.dir;
    let owners = synth
        .owners
        .get(package)
        .ok_or_else(|| format!("no package {package}"))?;
    let pdir = dir.join("packages").join(package);
    let nv = std::fs::read_dir(&pdir).map_err(err)?.count();
    let ver = format!("0.{}", nv + 1);
    let rel = format!("packages/{package}/{package}.{ver}/opam");
    let opam = content(package, &ver, "opam", spec.file_size, spec.seed + 1);
    let mut patch = String::new();
    let mut changed_keys = BTreeMap::new();
    for o in owners {
        let path = dir.join("keys").join(o);
        let old = std::fs::read(&path).map_err(err)?;
        let mut t = Targets::parse(&String::from_utf8_lossy(&old), &mut Vec::new()).map_err(err)?;
        t.targets.insert(
            0,
            Target::of_bytes(rel.split('/').map(str::to_string).collect(), &opam),
        );
        t.header.counter += 1;
        t.signatures.clear();
        tamper(o, &mut t, false);
        sign_into(&mut t, o, CREATED, &mut MemSigner::derive(spec.seed, o)).map_err(err)?;
        tamper(o, &mut t, true);
        let new = t.to_file_string().into_bytes();
        patch.push_str(&whole_file_diff(
            &format!("keys/{o}"),
            Some(&old),
            Some(&new),
        ));
        changed_keys.insert(vec!["keys".to_string(), o.clone()], new);
    }
    patch.push_str(&whole_file_diff(&rel, None, Some(&opam)));
    // snapshot
    let snap_old = std::fs::read(dir.join("snap")).map_err(err)?;
    let mut s =
        Snapshot::parse(&String::from_utf8_lossy(&snap_old), &mut Vec::new()).map_err(err)?;
    for t in s.targets.iter_mut() {
        if let Some(b) = changed_keys.get(&t.filename) {
            *t = Target::of_bytes(t.filename.clone(), b);
        }
    }
    s.header.counter += 1;
    s.signatures.clear();
    sign_into(
        &mut s,
        "snap",
        CREATED,
        &mut MemSigner::derive(spec.seed, "snap"),
    )
    .map_err(err)?;
    let snap_new = s.to_file_string().into_bytes();
    patch.push_str(&whole_file_diff("snap", Some(&snap_old), Some(&snap_new)));
    // timestamp
    let ts_old = std::fs::read(dir.join("ts")).map_err(err)?;
    let mut t =
        Timestamp::parse(&String::from_utf8_lossy(&ts_old), &mut Vec::new()).map_err(err)?;
    t.targets = vec![Target::of_bytes(vec!["snap".into()], &snap_new)];
    t.header.counter += 1;
    t.signatures.clear();
    sign_into(
        &mut t,
        "ts",
        CREATED,
        &mut MemSigner::derive(spec.seed, "ts"),
    )
    .map_err(err)?;
    patch.push_str(&whole_file_diff(
        "ts",
        Some(&ts_old),
        Some(t.to_file_string().as_bytes()),
    ));
    Ok(patch)
}
