//! Full verification of a repository with conex's verdicts (conex 1.0
//! `Conex.verify_root`, `verify_timestamp`, `verify_snapshot`, `verify`).
//!
//! The work that grows with the repository runs in parallel on all cores:
//! targets files are read, parsed and their signatures checked concurrently,
//! and the data directory is walked and hashed concurrently (file contents
//! are streamed, so memory does not depend on file sizes). Results are
//! consumed in the same order as a sequential run, so verdicts and warnings
//! are exactly those of the sequential algorithm. Each distinct signature
//! is verified once ([`SigCache`]).

use super::expr::{id_equal, Expr, KeyRef};
use super::key::{Digest, KeyDataError};
use super::resource::{
    conex_timestamp, path_to_string, Path, Resource, Root, Snapshot, Target, Targets, Timestamp,
};
use super::wire::{Wire, WireMap};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// Read access to a repository tree (a directory, or a patched copy).
/// Implementations are shared between threads.
pub trait Source: Sync {
    /// Reads the file at `path` (components relative to the repository).
    /// Used for the small signed files.
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>>;
    /// Lists a directory: (name, is_dir), in the order the file system
    /// returns them.
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>>;
    /// Opens the file at `path` for streaming (used to hash package files
    /// without holding them in memory). The default reads the whole file.
    fn open(&self, path: &[String]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::Cursor::new(self.read(path)?)))
    }
}

/// A repository held in memory: path components → file bytes.
#[derive(Debug, Default, Clone)]
pub struct MemSource(pub std::collections::BTreeMap<Vec<String>, Vec<u8>>);

impl Source for MemSource {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.join("/")))
    }
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for k in self.0.keys() {
            if k.len() > path.len() && k.starts_with(path) {
                let e = (k[path.len()].clone(), k.len() > path.len() + 1);
                if out.last() != Some(&e) {
                    out.push(e);
                }
            }
        }
        if out.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, path.join("/")));
        }
        Ok(out)
    }
}

/// A repository in a directory.
pub struct DirSource(pub std::path::PathBuf);

impl DirSource {
    fn full(&self, path: &[String]) -> std::path::PathBuf {
        let mut p = self.0.clone();
        for c in path {
            p.push(c);
        }
        p
    }
}

impl Source for DirSource {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        let mut f = open_regular(&self.full(path))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.full(path))? {
            let e = e?;
            let name = e.file_name().into_string().map_err(|n| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {n:?} is not UTF-8"),
                )
            })?;
            // follow symlinks as conex does (stat, not lstat); anything
            // but a regular file or a directory (a FIFO, a socket, a
            // device, a dangling link) makes the listing fail, as conex's
            // does: it is never opened
            let ft = e.file_type()?;
            let ft = if ft.is_symlink() {
                std::fs::metadata(e.path())?.file_type()
            } else {
                ft
            };
            if !ft.is_dir() && !ft.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name} is not a regular file or a directory"),
                ));
            }
            out.push((name, ft.is_dir()));
        }
        Ok(out)
    }
    fn open(&self, path: &[String]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(open_regular(&self.full(path))?))
    }
}

/// Opens a regular file for reading, never blocking: the file is opened
/// with `O_NONBLOCK` (a FIFO does not wait for a writer) and refused unless
/// it is a regular file (following symbolic links).
fn open_regular(p: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// SHA-256 (conex form) and size of a file, streamed from `src` in
/// fixed-size chunks.
pub fn hash_file(src: &dyn Source, path: &[String]) -> io::Result<(Digest, u64)> {
    let mut r = src.open(path)?;
    hash_reader(&mut r)
}

/// SHA-256 (conex form) and size of everything `r` yields.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<(Digest, u64)> {
    let mut h = Sha256::new();
    let mut buf = [0u8; 32 * 1024];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((
        Digest {
            alg: "sha256".into(),
            data: hex::encode(h.finalize()),
        },
        size,
    ))
}

/// Outcomes of signature verifications: each distinct (key, algorithm,
/// signed bytes, signature) is verified once. Shared between verifiers
/// (e.g. across the two trees of an incremental verification).
#[derive(Default)]
pub struct SigCache {
    map: Mutex<HashMap<[u8; 32], Result<(), KeyDataError>>>,
}

impl SigCache {
    /// An empty cache.
    pub fn new() -> SigCache {
        SigCache::default()
    }

    /// Number of distinct signatures verified so far.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing was verified yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `sig_b64` over `msg` with `key`, or returns the cached
    /// outcome of the same verification.
    pub fn verify(
        &self,
        key: &super::PublicKey,
        alg: super::SigAlg,
        msg: &[u8],
        sig_b64: &str,
    ) -> Result<(), KeyDataError> {
        let mut h = Sha256::new();
        for part in [
            key.conex_string().as_bytes(),
            alg.as_str().as_bytes(),
            Sha256::digest(msg).as_slice(),
            sig_b64.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let k: [u8; 32] = h.finalize().into();
        if let Some(r) = self.map.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return r;
        }
        let r = key.verify_b64(alg, msg, sig_b64);
        if let Ok(mut m) = self.map.lock() {
            m.insert(k, r.clone());
        }
        r
    }
}

/// Verification options (the verifier's command-line flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Trust anchors (root key ids).
    pub anchors: BTreeSet<Digest>,
    /// Minimum number of distinct anchored root signers.
    pub quorum: Option<usize>,
    /// Seconds a timestamp may lie in the future.
    pub expiry: i64,
    /// The current time (unix seconds).
    pub now: i64,
    /// Check opam repository path rules.
    pub opam: bool,
    /// Tolerate unsigned packages nobody signed anything in.
    pub ignore_missing: bool,
    /// Name of the root file.
    pub root_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            anchors: BTreeSet::new(),
            quorum: None,
            expiry: 900,
            now: 0,
            opam: true,
            ignore_missing: false,
            root_name: "root".into(),
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Root key ids whose anchored signatures counted.
    pub root_signers: Vec<String>,
    /// Root counter.
    pub root_counter: u64,
    /// The timestamp file's id, counter and epoch, when present.
    pub timestamp: Option<(String, u64, u64)>,
    /// The snapshot file's id, counter and epoch, when present.
    pub snapshot: Option<(String, u64, u64)>,
    /// Targets files that verified.
    pub targets_files: Vec<String>,
    /// Files under the data directory that matched.
    pub files: usize,
}

type Loaded = (Result<Arc<Targets>, String>, Vec<String>);

/// The verifier: accumulates conex's warnings while it works.
pub struct Verifier<'a> {
    src: &'a dyn Source,
    opts: Options,
    /// Warnings, in order (conex's `[WARNING]` lines).
    pub warnings: Vec<String>,
    cache: HashMap<String, Result<Arc<Targets>, String>>,
    /// Targets files loaded ahead (in parallel), with their warnings, not
    /// yet consumed in sequential order.
    pending: HashMap<String, Loaded>,
    sigs: Arc<SigCache>,
    /// Whether [`Self::verify_full`] keeps a [`VerifiedTree`].
    capture: bool,
    captured: Option<VerifiedTree>,
}

/// What a clean full verification established about the tree, kept for a
/// verified-state cache (`crate::verify_cache`): only made when the
/// maintainer level gave no warning at all and nothing is delegated, so
/// that the state is exactly "every targets file verified, every file
/// matched".
#[derive(Clone, Debug)]
pub struct VerifiedTree {
    /// The verified root.
    pub root: Root,
    /// The verified snapshot.
    pub snapshot: Snapshot,
    /// The targets files of the maintainer expression, all verified.
    pub targets: Vec<Arc<Targets>>,
    /// Every file under the data directory: path, digest and size.
    pub disk: DiskFiles,
    /// The summary of the verification.
    pub summary: Summary,
}

/// Parses a resource from its bytes and checks its name.
pub fn parse_resource<R: Resource>(
    bytes: Vec<u8>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<R, String> {
    let not_utf8 = || {
        format!(
            "parse error while parsing {name} (type {}): not UTF-8",
            R::TYP
        )
    };
    let (text, marked) = match String::from_utf8(bytes) {
        Ok(t) => (t, false),
        Err(e) => (mark_invalid_utf8(e.as_bytes()), true),
    };
    let mut r = R::parse(&text, warnings)
        .map_err(|e| format!("parse error while parsing {name} (type {}): {e}", R::TYP))?;
    if marked {
        // conex reads bytes: a byte that is not UTF-8 inside a signature
        // only spoils that signature (conex ignores it); anywhere in the
        // signed part it would change what the signatures cover, and arca
        // refuses the file
        if r.canonical_signed().chars().any(is_marker)
        {
            return Err(not_utf8());
        }
        let spoiled: Vec<String> = r
            .signatures()
            .iter()
            .filter(|(id, s)| {
                id.chars().any(is_marker)
                    || s.created.chars().any(is_marker)
                    || s.value.chars().any(is_marker)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in spoiled {
            r.signatures_mut().remove(&id);
            warnings.push(format!(
                "{} {name}: ignoring the signature of {} (not UTF-8)",
                R::TYP,
                super::shown(&id)
            ));
        }
    }
    if !id_equal(&r.header().name, name) {
        return Err(format!(
            "{name} (type {}) is named {}",
            R::TYP,
            super::shown(&r.header().name)
        ));
    }
    Ok(r)
}

/// The stand-in for a byte that is not UTF-8 (`0x80..=0xff` to
/// `U+10FF80..=U+10FFFF`, private use), so that a file can be parsed and
/// the bytes found again.
fn mark_invalid_utf8(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 16);
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for &x in chunk.invalid() {
            out.push(char::from_u32(0x10FF00 + u32::from(x)).unwrap_or('\u{FFFD}'));
        }
    }
    out
}

fn is_marker(c: char) -> bool {
    ('\u{10FF80}'..='\u{10FFFF}').contains(&c)
}

/// Reads a resource at `path`, parses it and checks its name (conex's
/// `read_root`/`read_targets`/… messages).
pub fn read_resource<R: Resource>(
    src: &dyn Source,
    path: &[String],
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<R, String> {
    let limit = super::resource::MAX_FILE_BYTES;
    let mut bytes = Vec::new();
    src.open(path)
        .and_then(|r| r.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|_| format!("{name} (type {}) was not found in repository", R::TYP))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{name} (type {}) is larger than {} MiB, the limit for a conex file",
            R::TYP,
            limit / (1024 * 1024)
        ));
    }
    parse_resource(bytes, name, warnings)
}

/// Verifies every signature of a resource with the key of the same id in
/// the resource; returns valid signers as key id → signer id (one entry per
/// key id: a key listed under two ids counts once).
pub fn valid_signatures<R: Resource>(
    r: &R,
    warnings: &mut Vec<String>,
) -> BTreeMap<Digest, String> {
    valid_signatures_cached(r, warnings, &SigCache::new())
}

/// [`valid_signatures`] with a shared cache; several signatures of one
/// file are verified in parallel.
pub fn valid_signatures_cached<R: Resource>(
    r: &R,
    warnings: &mut Vec<String>,
    cache: &SigCache,
) -> BTreeMap<Digest, String> {
    let signed = r.canonical_signed();
    let sigs: Vec<_> = r
        .signatures()
        .iter()
        .map(|(id, sig)| {
            let tbs = wrap_signed(r, &signed, id, &sig.created, sig.alg);
            (id, sig, r.keys().get(id), tbs)
        })
        .collect();
    let checked: Vec<Option<Result<(), KeyDataError>>> = sigs
        .par_iter()
        .map(|(_, sig, key, tbs)| {
            let key = (*key)?;
            Some(cache.verify(&key.key, sig.alg, tbs.as_bytes(), &sig.value))
        })
        .collect();
    let mut out = BTreeMap::new();
    for ((id, _, _, _), res) in sigs.into_iter().zip(checked) {
        match res {
            None => warnings.push(format!(
                "{} {}: no key {id} for its signature",
                R::TYP,
                r.header().name
            )),
            Some(Ok(())) => {
                if let Some(key) = r.keys().get(id) {
                    out.insert(key.key_id(), id.clone());
                }
            }
            Some(Err(e)) => warnings.push(format!(
                "{} {}: signature of {id}: {e}",
                R::TYP,
                r.header().name
            )),
        }
    }
    out
}

/// The bytes a signature covers (`to_be_signed`), from the canonical string
/// of the signed map computed once per file.
fn wrap_signed<R: Resource>(
    r: &R,
    signed_canonical: &str,
    id: &str,
    created: &str,
    alg: super::SigAlg,
) -> String {
    // the wrapper's keys sort as created < data < identifier < sigtype
    let empty = super::resource::to_be_signed(&WireMap::new(), id, created, alg);
    let head = format!("{{created:{};data:", Wire::Data(created.into()).canonical());
    match empty
        .strip_prefix(head.as_str())
        .and_then(|t| t.strip_prefix("{}"))
    {
        Some(tail) => {
            let mut s = String::with_capacity(head.len() + signed_canonical.len() + tail.len());
            s.push_str(&head);
            s.push_str(signed_canonical);
            s.push_str(tail);
            s
        }
        None => r.to_be_signed(id, created, alg),
    }
}

fn target_of_file(src: &dyn Source, path: Path) -> Result<Target, String> {
    let (digest, size) =
        hash_file(src, &path).map_err(|e| format!("cannot read {}: {e}", path_to_string(&path)))?;
    Ok(Target {
        filename: path,
        digest: vec![digest],
        size,
    })
}

/// Reads, parses and checks one targets file (conex's `verify_targets`
/// without its cache). Pure: warnings go to `warnings`.
fn load_targets(
    src: &dyn Source,
    opts: &Options,
    root: &Root,
    snap: Option<&Snapshot>,
    id: &str,
    sigs: &SigCache,
    warnings: &mut Vec<String>,
) -> Result<Targets, String> {
    let mut path = root.keydir.clone();
    path.push(id.to_string());
    let bytes = src.read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{id} (type targets) was not found in repository"),
        // a patch section that does not apply, a FIFO, …
        _ => format!("{id} (type targets) cannot be read: {e}"),
    })?;
    // the snapshot vouches for these exact bytes
    let tgt = snap.map(|_| Target::of_bytes(path.clone(), &bytes));
    let t: Targets = parse_resource(bytes, id, warnings)?;
    if opts.opam {
        if let Some(bad) = t.targets.iter().find(|x| !x.valid_opam_path(&root.datadir)) {
            return Err(format!(
                "{id} contains an invalid path {}",
                path_to_string(&bad.filename)
            ));
        }
    }
    if let (Some(snap), Some(tgt)) = (snap, tgt) {
        if !snap.targets.iter().any(|x| x.same(&tgt)) {
            return Err(format!(
                "couldn't validate target {id}: no match in snapshot targets"
            ));
        }
    }
    let valid = valid_signatures_cached(&t, warnings, sigs);
    let ids: BTreeSet<String> = valid.into_values().collect();
    if t.valid.eval(&HashMap::new(), &ids) {
        Ok(t)
    } else {
        Err(format!("couldn't validate expression in targets {id}"))
    }
}

/// Signed files: path → accepted (digest, size), in (digest, size) order
/// per path, borrowed from the verified targets files. A hash map: nothing
/// needs the paths in order except the messages, which are sorted where
/// they are made.
type TargetTree<'t> = FastMap<&'t Path, Vec<(&'t Digest, u64)>>;
/// A hash map with a fast, randomly seeded hash (foldhash): the keys come
/// from the repository, so the seed keeps colliding keys from being made.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// One delegation level whose targets files were collected: its path, the
/// expression, the ids it delegates to (key digest, epoch), its verified
/// targets files, and where its warnings go among the others.
struct Level {
    path: Path,
    expr: Expr,
    id_d: BTreeMap<String, (Digest, u64)>,
    targets: Vec<Arc<Targets>>,
    warnings_at: usize,
}
/// The files under the data directory: path, digest and size.
pub type DiskFiles = Vec<(Path, (Digest, u64))>;
/// Verified targets files of one delegation level: key digest → (id,
/// epoch), id → (key digest, epoch), the files.
type Collected = (
    HashMap<Digest, (String, u64)>,
    BTreeMap<String, (Digest, u64)>,
    Vec<Arc<Targets>>,
);
/// A delegation entry: (expression, terminating, id, key digest, epoch).
type DelegationEntry = (Expr, bool, String, Digest, u64);
/// Supporters of one delegation expression: (terminating, id, key digest, epoch).
type DelegationSups = Vec<(bool, String, Digest, u64)>;

fn subpath(parent: &[String], p: &[String]) -> bool {
    p.len() > parent.len() && p.starts_with(parent)
}

/// An expression prepared for evaluating many times against small sets of
/// supporters (remote references indexed by digest): the same result as
/// [`Expr::eval`] with no local signatures, without scanning every
/// reference of a large quorum for each file.
pub enum FastExpr {
    /// A quorum of remote references, indexed by key digest.
    Quorum(i64, HashMap<Digest, Vec<(String, u64)>>),
    /// Both.
    And(Box<FastExpr>, Box<FastExpr>),
    /// Either.
    Or(Box<FastExpr>, Box<FastExpr>),
}

impl FastExpr {
    /// Prepares `e`.
    pub fn new(e: &Expr) -> FastExpr {
        match e {
            Expr::Quorum(n, refs) => {
                let mut remotes: HashMap<Digest, Vec<(String, u64)>> = HashMap::new();
                for r in refs {
                    match r {
                        KeyRef::Local(_) => {}
                        KeyRef::Remote { id, digest, epoch } => remotes
                            .entry(digest.clone())
                            .or_default()
                            .push((id.clone(), *epoch)),
                    }
                }
                FastExpr::Quorum(*n, remotes)
            }
            Expr::And(a, b) => {
                FastExpr::And(Box::new(FastExpr::new(a)), Box::new(FastExpr::new(b)))
            }
            Expr::Or(a, b) => FastExpr::Or(Box::new(FastExpr::new(a)), Box::new(FastExpr::new(b))),
        }
    }

    /// Same as `eval` with `dm` built from `sups` in order (a later
    /// supporter with the same key digest replaces an earlier one) and no
    /// local signatures.
    pub fn eval_supporters(&self, sups: &[(&String, &Digest, u64)]) -> bool {
        match self {
            FastExpr::Quorum(n, remotes) => {
                let mut good = 0i64;
                for (i, (id2, d, e2)) in sups.iter().enumerate() {
                    if sups[i + 1..].iter().any(|(_, d2, _)| d2 == d) {
                        continue;
                    }
                    if let Some(v) = remotes.get(*d) {
                        good += v
                            .iter()
                            .filter(|(id, e)| id_equal(id, id2) && e == e2)
                            .count() as i64;
                    }
                }
                good >= *n
            }
            FastExpr::And(a, b) => a.eval_supporters(sups) && b.eval_supporters(sups),
            FastExpr::Or(a, b) => a.eval_supporters(sups) || b.eval_supporters(sups),
        }
    }
}

/// One entry of the data directory walk, in sequential walk order.
enum Walked {
    File(Path, Result<(Digest, u64), String>),
    Failed(String),
}

/// Walks `prefix` depth-first in directory order, hashing files; the
/// subdirectories and files are processed in parallel but the result keeps
/// the sequential order.
fn walk_and_hash(src: &dyn Source, prefix: &[String]) -> Vec<Walked> {
    let items = match src.list(prefix) {
        Ok(items) => items,
        Err(e) => {
            return vec![Walked::Failed(format!(
                "cannot list {}: {e}",
                display_path(prefix)
            ))]
        }
    };
    items
        .into_par_iter()
        .flat_map_iter(|(name, is_dir)| {
            let mut p = prefix.to_vec();
            p.push(name);
            if is_dir {
                walk_and_hash(src, &p)
            } else {
                let r = hash_file(src, &p)
                    .map_err(|e| format!("cannot read {}: {e}", path_to_string(&p)));
                vec![Walked::File(p, r)]
            }
        })
        .collect()
}

impl<'a> Verifier<'a> {
    /// A verifier for `src`.
    pub fn new(src: &'a dyn Source, opts: Options) -> Verifier<'a> {
        Verifier {
            src,
            opts,
            warnings: Vec::new(),
            cache: HashMap::new(),
            pending: HashMap::new(),
            sigs: Arc::new(SigCache::new()),
            capture: false,
            captured: None,
        }
    }

    /// Keeps a [`VerifiedTree`] after a clean full verification (see
    /// [`Self::take_verified_tree`]).
    pub fn capturing(mut self) -> Verifier<'a> {
        self.capture = true;
        self
    }

    /// The tree a clean [`Self::verify_full`] established, when capturing.
    pub fn take_verified_tree(&mut self) -> Option<VerifiedTree> {
        self.captured.take()
    }

    /// The targets file `id` (`<keydir>/<id>`) read, parsed and checked as
    /// full verification does (opam paths, the snapshot's digest,
    /// signatures, its own expression), with its warnings.
    pub fn check_targets_file(
        &self,
        root: &Root,
        snap: Option<&Snapshot>,
        id: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Targets, String> {
        load_targets(self.src, &self.opts, root, snap, id, &self.sigs, warnings)
    }

    /// Uses (and fills) a shared signature cache.
    pub fn with_sig_cache(mut self, sigs: Arc<SigCache>) -> Verifier<'a> {
        self.sigs = sigs;
        self
    }

    /// The signature cache of this verifier.
    pub fn sig_cache(&self) -> &Arc<SigCache> {
        &self.sigs
    }

    /// Reads the root and checks its signatures against the anchors, its
    /// `valid` expression and the requested quorum.
    pub fn verify_root(&mut self) -> Result<(Root, Vec<String>), String> {
        let name = self.opts.root_name.clone();
        let root: Root = read_resource(
            self.src,
            std::slice::from_ref(&name),
            &name,
            &mut self.warnings,
        )?;
        let sigs = valid_signatures_cached(&root, &mut self.warnings, &self.sigs);
        let mut ids = BTreeSet::new();
        for (kid, id) in sigs {
            if self.opts.anchors.contains(&kid) {
                ids.insert(id);
            } else {
                self.warnings.push(format!(
                    "{id} ({kid}) is not a valid root key (not a trust anchor)"
                ));
            }
        }
        let quorum_ok = self.opts.quorum.is_none_or(|q| q <= ids.len());
        if !root.valid.eval(&HashMap::new(), &ids) {
            if self.opts.anchors.is_empty() {
                return Err("couldn't validate root role: no trust anchors were given (none in the exact form sha256=<64 lower-case hex digits>)".into());
            }
            return Err(format!(
                "couldn't validate root role: {} valid signature(s) by trust anchors, the root needs {}",
                ids.len(),
                root.valid
            ));
        }
        if !quorum_ok {
            return Err(format!(
                "provided quorum was not matched: {} valid signature(s) by trust anchors, {} needed",
                ids.len(),
                self.opts.quorum.unwrap_or(0)
            ));
        }
        if root.valid.min_signers() < 1 {
            self.warnings
                .push("root valid expression is satisfied without any signature (quorum 0)".into());
        }
        Ok((root, ids.into_iter().collect()))
    }

    fn check_role_file<R: Resource>(
        &mut self,
        role: (String, Digest, u64),
        what: &str,
    ) -> Result<R, String> {
        let (id, dgst, epoch) = role;
        let r: R = read_resource(self.src, std::slice::from_ref(&id), &id, &mut self.warnings)?;
        let sigs = valid_signatures_cached(&r, &mut self.warnings, &self.sigs);
        match sigs.get(&dgst) {
            None => Err(format!("couldn't validate {what} signature")),
            Some(id2) if !id_equal(&id, id2) => {
                self.warnings.push(format!(
                    "delegated public key was not used for signature on {what}"
                ));
                Err(format!("no valid signature on {what}"))
            }
            Some(_) if r.header().epoch != epoch => {
                self.warnings.push(format!(
                    "{what} epoch mismatch: root {epoch}, {what} {}",
                    r.header().epoch
                ));
                Err(format!("{what} with bad epoch"))
            }
            Some(_) => Ok(r),
        }
    }

    /// Verifies the timestamp file named by the root's timestamp role.
    pub fn verify_timestamp(&mut self, root: &Root) -> Result<Option<Timestamp>, String> {
        let Some(role) = root.single_role(super::Role::Timestamp)? else {
            self.warnings.push("no timestamp role found in root".into());
            return Ok(None);
        };
        let ts: Timestamp = self.check_role_file(role, "timestamp")?;
        let created = conex_timestamp(&ts.header.created).ok_or_else(|| {
            format!(
                "cannot parse the timestamp's created time {:?}",
                ts.header.created
            )
        })?;
        if created > self.opts.now {
            self.warnings.push(format!(
                "timestamp is in the future ({})",
                ts.header.created
            ));
        }
        if created > self.opts.now + self.opts.expiry {
            self.warnings
                .push(format!("timestamp is invalid ({})", ts.header.created));
            return Err("timestamp is no longer valid".into());
        }
        Ok(Some(ts))
    }

    /// Verifies the snapshot file named by the root's snapshot role, and
    /// that the timestamp vouches for its exact bytes.
    pub fn verify_snapshot(
        &mut self,
        root: &Root,
        ts: Option<&Timestamp>,
    ) -> Result<Option<Snapshot>, String> {
        let Some(role) = root.single_role(super::Role::Snapshot)? else {
            self.warnings.push("no snapshot role found in root".into());
            return Ok(None);
        };
        let id = role.0.clone();
        let snap: Snapshot = self.check_role_file(role, "snapshot")?;
        match ts {
            None => self
                .warnings
                .push("no timestamp provided, taking snapshot as is".into()),
            Some(ts) => {
                let tgt = target_of_file(self.src, vec![id])?;
                if !ts.targets.iter().any(|t| t.same(&tgt)) {
                    return Err("couldn't validate snapshot: no match in timestamp target".into());
                }
            }
        }
        Ok(Some(snap))
    }

    fn verify_targets(
        &mut self,
        root: &Root,
        snap: Option<&Snapshot>,
        id: &str,
    ) -> Result<Arc<Targets>, String> {
        if let Some(r) = self.cache.get(id) {
            return r.clone();
        }
        let (r, warnings) = match self.pending.remove(id) {
            Some(loaded) => loaded,
            None => {
                let mut w = Vec::new();
                let r = load_targets(self.src, &self.opts, root, snap, id, &self.sigs, &mut w);
                (r.map(Arc::new), w)
            }
        };
        self.warnings.extend(warnings);
        self.cache.insert(id.to_string(), r.clone());
        r
    }

    /// Loads the not yet loaded targets files among `ids` in parallel;
    /// [`Self::verify_targets`] then consumes them in sequential order.
    fn prefetch_targets(&mut self, root: &Root, snap: Option<&Snapshot>, ids: &[&String]) {
        let todo: Vec<&String> = ids
            .iter()
            .copied()
            .filter(|id| !self.cache.contains_key(*id) && !self.pending.contains_key(*id))
            .collect();
        let (src, opts, sigs) = (self.src, &self.opts, &*self.sigs);
        let loaded: Vec<(String, Loaded)> = todo
            .par_iter()
            .map(|id| {
                let mut w = Vec::new();
                let r = load_targets(src, opts, root, snap, id, sigs, &mut w);
                ((*id).clone(), (r.map(Arc::new), w))
            })
            .collect();
        self.pending.extend(loaded);
    }

    /// Loads and checks the targets files an expression refers to.
    fn collect_targets(&mut self, root: &Root, snap: Option<&Snapshot>, expr: &Expr) -> Collected {
        let mut dm = HashMap::new();
        let mut id_d = BTreeMap::new();
        let mut out = Vec::new();
        let remotes = expr.remotes();
        let ids: Vec<&String> = remotes.keys().collect();
        self.prefetch_targets(root, snap, &ids);
        for (id, (dgst, epoch)) in remotes {
            let t = match self.verify_targets(root, snap, &id) {
                Ok(t) => t,
                Err(msg) => {
                    self.warnings
                        .push(format!("couldn't load or verify target {id}: {msg}"));
                    continue;
                }
            };
            match t.valid_hash() {
                Err(e) => self.warnings.push(e.to_string()),
                Ok(h) if t.header.epoch == epoch && h == dgst => {
                    id_d.insert(id.clone(), (dgst.clone(), epoch));
                    dm.insert(dgst, (id, epoch));
                    out.push(t);
                }
                Ok(_) => self.warnings.push(format!(
                    "dropping {id} since epoch ({epoch} vs {}) or digest mismatch",
                    t.header.epoch
                )),
            }
        }
        (dm, id_d, out)
    }

    /// Full verification (`--dir`).
    pub fn verify_full(&mut self) -> Result<Summary, String> {
        let (root, signers) = self.verify_root()?;
        let ts = self.verify_timestamp(&root)?;
        let snap = self.verify_snapshot(&root, ts.as_ref())?;
        let warnings_before_targets = self.warnings.len();
        let mut top_level: Vec<Arc<Targets>> = Vec::new();
        let mut delegated = false;
        let expr = root
            .roles
            .get(&super::Role::Maintainer)
            .cloned()
            .ok_or("no delegation for maintainers")?;
        let mut queue: VecDeque<(Path, Expr, bool)> = VecDeque::new();
        queue.push_back((vec![], expr, false));
        let mut seen_files = BTreeSet::new();
        // the levels are collected first and their entries checked after,
        // so that the tree of signed files can borrow from the targets
        // files; each level's warnings are put where a level-by-level run
        // gives them
        let mut levels: Vec<Level> = Vec::new();
        while let Some((path, expr, terminating)) = queue.pop_front() {
            let (dm, id_d, targets) = self.collect_targets(&root, snap.as_ref(), &expr);
            seen_files.extend(targets.iter().map(|t| t.header.name.clone()));
            if !expr.eval(&dm, &BTreeSet::new()) {
                self.warnings.push(format!(
                    "expression {expr} is not satisfied for {}",
                    display_path(&path)
                ));
                continue;
            }
            let warnings_at = self.warnings.len();
            if self.capture {
                if path.is_empty() {
                    top_level = targets.clone();
                }
                delegated |= targets.iter().any(|t| !t.delegations.is_empty());
            }
            if !terminating {
                for d in self.validate_delegations(&id_d, &path, &expr, &targets) {
                    queue.push_back(d);
                }
            }
            levels.push(Level {
                path,
                expr,
                id_d,
                targets,
                warnings_at,
            });
        }
        let mut tree: TargetTree = FastMap::default();
        let mut level_warnings = Vec::with_capacity(levels.len());
        for l in &levels {
            let mut w = Vec::new();
            validate_targets(&mut tree, &mut w, &l.id_d, &l.path, &l.expr, &l.targets);
            level_warnings.push(w);
        }
        for (l, w) in levels.iter().zip(level_warnings).rev() {
            self.warnings.splice(l.warnings_at..l.warnings_at, w);
        }
        let (files, on_disk) = self.compare_with_disk(&root, &tree)?;
        let summary = Summary {
            root_signers: signers,
            root_counter: root.header.counter,
            timestamp: ts
                .as_ref()
                .map(|t| (t.header.name.clone(), t.header.counter, t.header.epoch)),
            snapshot: snap
                .as_ref()
                .map(|s| (s.header.name.clone(), s.header.counter, s.header.epoch)),
            targets_files: seen_files.into_iter().collect(),
            files,
        };
        if self.capture && !delegated && self.warnings.len() == warnings_before_targets {
            if let (Some(snapshot), Some(_)) = (snap, ts) {
                self.captured = Some(VerifiedTree {
                    root,
                    snapshot,
                    targets: top_level,
                    disk: on_disk,
                    summary: summary.clone(),
                });
            }
        }
        Ok(summary)
    }

    fn validate_delegations(
        &mut self,
        id_d: &BTreeMap<String, (Digest, u64)>,
        parent: &[String],
        expr: &Expr,
        targets: &[Arc<Targets>],
    ) -> Vec<(Path, Expr, bool)> {
        // path -> [(expression, terminating, id, keydigest, epoch)]
        let mut dtree: BTreeMap<Path, Vec<DelegationEntry>> = BTreeMap::new();
        for t in targets {
            let Some((kd, epoch)) = id_d.get(&t.header.name) else {
                continue;
            };
            for d in &t.delegations {
                for p in &d.paths {
                    if subpath(parent, p) {
                        dtree.entry(p.clone()).or_default().push((
                            d.valid.clone(),
                            d.terminating,
                            t.header.name.clone(),
                            kd.clone(),
                            *epoch,
                        ));
                    } else {
                        self.warnings.push(format!(
                            "ignoring delegation of {} by {} (not below {})",
                            path_to_string(p),
                            t.header.name,
                            display_path(parent)
                        ));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (path, entries) in dtree {
            let mut by_expr: Vec<(Expr, DelegationSups)> = Vec::new();
            for (e, term, id, kd, ep) in entries {
                match by_expr.iter_mut().find(|(x, _)| *x == e) {
                    Some((_, v)) => v.push((term, id, kd, ep)),
                    None => by_expr.push((e, vec![(term, id, kd, ep)])),
                }
            }
            for (e, sups) in by_expr {
                let dm_of = |term: bool| -> HashMap<Digest, (String, u64)> {
                    sups.iter()
                        .filter(|s| s.0 == term)
                        .map(|(_, id, kd, ep)| (kd.clone(), (id.clone(), *ep)))
                        .collect()
                };
                if expr.eval(&dm_of(true), &BTreeSet::new()) {
                    out.push((path.clone(), e, true));
                } else if expr.eval(&dm_of(false), &BTreeSet::new()) {
                    out.push((path.clone(), e, false));
                } else {
                    self.warnings.push(format!(
                        "delegation {e} for {} is not supported by {expr}",
                        path_to_string(&path)
                    ));
                }
            }
        }
        out
    }

    fn disk_tree(
        &self,
        prefix: &[String],
        out: &mut Vec<(Path, (Digest, u64))>,
    ) -> Result<(), String> {
        for w in walk_and_hash(self.src, prefix) {
            match w {
                Walked::Failed(m) | Walked::File(_, Err(m)) => return Err(m),
                Walked::File(p, Ok(x)) => out.push((p, x)),
            }
        }
        Ok(())
    }

    fn compare_with_disk(
        &mut self,
        root: &Root,
        tree: &TargetTree<'_>,
    ) -> Result<(usize, DiskFiles), String> {
        let mut on_disk: Vec<(Path, (Digest, u64))> = Vec::new();
        self.disk_tree(&root.datadir, &mut on_disk)?;
        // problems in path order: files on disk first, then signed files
        // missing on disk
        let mut disk_problems: Vec<(&Path, String, Option<String>)> = Vec::new(); // path, message, package if only-on-disk
        let mut signed_on_disk = 0usize;
        for (path, (dgst, len)) in &on_disk {
            let signed = tree.get(path);
            signed_on_disk += usize::from(signed.is_some());
            match signed {
                None => {
                    let t = Target {
                        filename: path.clone(),
                        digest: vec![],
                        size: 0,
                    };
                    if t.is_opam_file(&root.datadir) {
                        // conex 1.0 tolerates the file when nothing is
                        // signed below the path's *first* component (for
                        // an opam repository: `packages`)
                        let pkg = path.first().cloned();
                        disk_problems.push((
                            path,
                            format!("path {} only exists on disk", path_to_string(path)),
                            pkg,
                        ));
                    }
                }
                Some(xs) => {
                    if !xs.iter().any(|(d, l)| *d == dgst && l == len) {
                        disk_problems.push((
                            path,
                            format!(
                                "no matching digest for {} (on disk {len} bytes, {dgst}; signed {})",
                                path_to_string(path),
                                xs.iter().map(|(d, l)| format!("{l} bytes, {d}")).collect::<Vec<_>>().join("; ")
                            ),
                            None,
                        ));
                    }
                }
            }
        }
        disk_problems.sort_by(|a, b| a.0.cmp(b.0));
        let mut problems: Vec<(String, Option<String>)> =
            disk_problems.into_iter().map(|(_, m, p)| (m, p)).collect();
        // paths on disk are distinct: when as many of them are signed as
        // there are signed paths, none is missing
        let mut missing: Vec<&Path> = if signed_on_disk == tree.len() {
            Vec::new()
        } else {
            let present: std::collections::HashSet<&Path, foldhash::fast::RandomState> =
                on_disk.iter().map(|(p, _)| p).collect();
            tree.keys().copied().filter(|p| !present.contains(p)).collect()
        };
        missing.sort();
        for path in missing {
            problems.push((
                format!("path {} only exists in targets", path_to_string(path)),
                None,
            ));
        }
        for (m, _) in &problems {
            self.warnings.push(m.clone());
        }
        if problems.is_empty() {
            return Ok((on_disk.len(), on_disk));
        }
        if !self.opts.ignore_missing {
            return Err(format!("comparison failed: {}", problems[0].0));
        }
        let signed_pkgs: BTreeSet<&String> = tree.keys().filter_map(|p| p.first()).collect();
        let strict: Vec<_> = problems
            .iter()
            .filter(|(_, pkg)| match pkg {
                Some(pkg) => signed_pkgs.contains(pkg),
                None => true,
            })
            .collect();
        match strict.first() {
            None => Ok((on_disk.len(), Vec::new())),
            Some((m, _)) => Err(format!("non-strict comparison failed: {m}")),
        }
    }
}

/// Checks one level's entries against its expression and adds the
/// accepted ones to `tree` (conex's `validate_targets`).
fn validate_targets<'t>(
    tree: &mut TargetTree<'t>,
    warnings: &mut Vec<String>,
    id_d: &'t BTreeMap<String, (Digest, u64)>,
    parent: &[String],
    expr: &Expr,
    targets: &'t [Arc<Targets>],
) {
    // path -> [(digest, size, supporter id, key digest, epoch)], in the
    // order of the targets files and their entries
    type Entry<'t> = (&'t Digest, u64, &'t String, &'t Digest, u64);
    let mut groups: FastMap<&Path, Vec<Entry>> = FastMap::default();
    for t in targets {
        let Some((kd, epoch)) = id_d.get(&t.header.name) else {
            warnings.push(format!(
                "couldn't find id {} among the delegated ids",
                t.header.name
            ));
            continue;
        };
        groups.reserve(t.targets.len());
        for chk in &t.targets {
            if !subpath(parent, &chk.filename) {
                warnings.push(format!(
                    "ignoring target {} of {} (not below {})",
                    path_to_string(&chk.filename),
                    t.header.name,
                    display_path(parent)
                ));
                continue;
            }
            let g = groups.entry(&chk.filename).or_default();
            for d in &chk.digest {
                g.push((d, chk.size, &t.header.name, kd, *epoch));
            }
        }
    }
    let fast = FastExpr::new(expr);
    let mut sups: Vec<(&String, &Digest, u64)> = Vec::new();
    let mut failed: Vec<(&Path, &Digest, u64)> = Vec::new();
    tree.reserve(groups.len());
    for (path, mut entries) in groups {
        // stable: supporters keep their order
        if entries.len() > 1 {
            entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        }
        for group in entries.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (dgst, len) = (group[0].0, group[0].1);
            sups.clear();
            sups.extend(group.iter().map(|e| (e.2, e.3, e.4)));
            if fast.eval_supporters(&sups) {
                tree.entry(path).or_default().push((dgst, len));
            } else {
                failed.push((path, dgst, len));
            }
        }
    }
    failed.sort();
    for (path, dgst, len) in failed {
        warnings.push(format!(
            "expression {expr} is not satisfied for {} ({dgst}, {len} bytes)",
            path_to_string(path)
        ));
    }
}

fn display_path(p: &[String]) -> String {
    if p.is_empty() {
        "the repository".into()
    } else {
        path_to_string(p)
    }
}
