//! A verified state: what a clean full verification established about a
//! tree (per targets file its id, digest, size, epoch and counter; per path
//! under the data directory the file on disk and the entries that sign it),
//! keyed by the digests of the root, snapshot and timestamp bytes and of
//! the options; its text form; and verification of an updated tree from
//! the state of the old one ([`verify_from_state`]). Reading and writing
//! the state's file, and deciding whether the file may be trusted, is the
//! caller's.

use super::targets::{check_view, first_bad_path, parse_targets_view};
use super::{
    hash_file, valid_opam_path_str, FastExpr, FastMap, FastSet, KnownHeaders, Options, ReadView,
    SigCache, Source, StateError, Summary, VerifiedTree, Verifier,
};
use crate::conex::expr::Expr;
use crate::conex::key::Digest;
use crate::conex::resource::{path_to_string, Path as CPath, Role, Root, Target};
use crate::conex::targets_fast::TargetsView;
use crate::conex::{Snapshot, Timestamp};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::Arc;

/// The first line of a state file this version writes: its end line is
/// the BLAKE3 of everything before it.
const MAGIC: &str = "arca verified state\t2";
/// The first line of a state file of the version before, still read: the
/// same lines, its end line the SHA-256 of everything before it.
const MAGIC_1: &str = "arca verified state\t1";

/// The end line's digest of `parts` (the file's bytes before it), for the
/// state version that starts with `magic`: BLAKE3 (several times faster
/// than SHA-256 here, and as good a check that the file is whole and
/// unchanged) from version 2.
fn end_digest(magic: &str, parts: &[&[u8]]) -> String {
    if magic == MAGIC_1 {
        let mut h = Sha256::new();
        parts.iter().for_each(|p| h.update(p));
        hex::encode(h.finalize())
    } else {
        let mut h = blake3::Hasher::new();
        parts.iter().for_each(|p| {
            h.update(p);
        });
        h.finalize().to_hex().to_string()
    }
}

/// Digest of the options that change a verdict (not the time: the
/// timestamp is checked again each time).
fn options_fingerprint(opts: &Options) -> Vec<u8> {
    let mut s = String::new();
    for a in &opts.anchors {
        s.push_str(&a.to_string());
        s.push('\n');
    }
    s.push_str(&format!(
        "quorum {:?}\nopam {}\nignore-missing {}\nroot {}\n",
        opts.quorum, opts.opam, opts.ignore_missing, opts.root_name
    ));
    s.into_bytes()
}

/// The cache key: SHA-256 over the options and the root, snapshot and
/// timestamp names and bytes.
pub(crate) fn state_key(opts: &Options, files: &[(&str, &[u8])]) -> String {
    let mut h = Sha256::new();
    let fp = options_fingerprint(opts);
    h.update((fp.len() as u64).to_be_bytes());
    h.update(&fp);
    for (name, bytes) in files {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update(Sha256::digest(bytes));
    }
    hex::encode(h.finalize())
}

/// A field that can be written on a cache line.
fn clean(s: &str) -> Option<&str> {
    (!s.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r'))).then_some(s)
}

/// One targets file of a verified state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TargetsRec {
    id: String,
    /// The name in the file's header (conex compares ids ignoring case).
    name: String,
    digest: Digest,
    size: u64,
    epoch: u64,
    counter: u64,
}

/// One path under the data directory: on disk (digest, size) and the
/// entries (targets file index, digest, size) in targets-file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PathRec {
    disk: Option<(Digest, u64)>,
    entries: Vec<(usize, Digest, u64)>,
}

fn render_path_line(out: &mut String, path: &str, r: &PathRec) {
    out.push_str("p\t");
    out.push_str(path);
    match &r.disk {
        Some((d, n)) => {
            out.push('\t');
            out.push_str(&d.to_string());
            out.push('\t');
            out.push_str(&n.to_string());
        }
        None => out.push_str("\t-\t-"),
    }
    for (i, d, n) in &r.entries {
        out.push('\t');
        out.push_str(&i.to_string());
        if r.disk.as_ref().is_some_and(|(dd, nn)| dd == d && nn == n) {
            continue;
        }
        out.push(':');
        out.push_str(&d.to_string());
        out.push(':');
        out.push_str(&n.to_string());
    }
    out.push('\n');
}

fn parse_digest(s: &str) -> Option<Digest> {
    let (alg, data) = s.split_once('=')?;
    Some(Digest {
        alg: match alg {
            "sha256" => "sha256".into(),
            other => other.to_string().into(),
        },
        data: data.into(),
    })
}

fn parse_path_rest(rest: &str) -> Option<PathRec> {
    let mut it = rest.split('\t');
    let (d, n) = (it.next()?, it.next()?);
    let disk = if d == "-" && n == "-" {
        None
    } else {
        Some((parse_digest(d)?, n.parse().ok()?))
    };
    let mut entries = Vec::new();
    for e in it {
        match e.split_once(':') {
            None => {
                let (dd, nn) = disk.clone()?;
                entries.push((e.parse().ok()?, dd, nn));
            }
            Some((i, rest)) => {
                let (d, n) = rest.rsplit_once(':')?;
                entries.push((i.parse().ok()?, parse_digest(d)?, n.parse().ok()?));
            }
        }
    }
    Some(PathRec { disk, entries })
}

/// Whether a path line's entries name one of the targets files `ids`
/// (without parsing the digests).
fn lists_any(rest: &str, ids: &BTreeSet<usize>) -> bool {
    // the entries follow the disk digest and size
    let mut tabs = memchr::memchr_iter(b'\t', rest.as_bytes());
    let (Some(_), Some(at)) = (tabs.next(), tabs.next()) else {
        return false;
    };
    rest[at + 1..].split('\t').any(|e| {
        let i = e.split_once(':').map_or(e, |(i, _)| i);
        i.parse::<usize>().map_or(true, |i| ids.contains(&i))
    })
}

/// Whether the entries of a path line from the targets files `ids` are
/// exactly `new` (same files, digests and sizes, in order).
fn same_entries(rest: &str, ids: &BTreeSet<usize>, new: &[(usize, &str, u64)]) -> bool {
    let mut it = rest.split('\t');
    let (Some(dd), Some(dn)) = (it.next(), it.next()) else {
        return false;
    };
    let mut new = new.iter();
    for tok in it {
        let (i, d, n) = match tok.split_once(':') {
            None => (tok, dd, dn),
            Some((i, r)) => match r.rsplit_once(':') {
                Some((d, n)) => (i, d, n),
                None => return false,
            },
        };
        let Ok(i) = i.parse::<usize>() else {
            return false;
        };
        if !ids.contains(&i) {
            continue;
        }
        let Some((j, nd, nn)) = new.next() else {
            return false;
        };
        if *j != i || d != *nd || n.parse::<u64>() != Ok(*nn) {
            return false;
        }
    }
    new.next().is_none()
}

/// An entry read in place: targets file index, digest text, size.
type FreshEntry<'b> = (usize, &'b str, u64);

/// The entries of one path in the changed targets files: nearly always
/// one, kept without an allocation.
enum Fresh<'b> {
    One(FreshEntry<'b>),
    Many(Vec<FreshEntry<'b>>),
}

impl<'b> Fresh<'b> {
    fn push(&mut self, x: FreshEntry<'b>) {
        match self {
            Fresh::One(a) => *self = Fresh::Many(vec![*a, x]),
            Fresh::Many(v) => v.push(x),
        }
    }

    fn as_slice(&self) -> &[FreshEntry<'b>] {
        match self {
            Fresh::One(a) => std::slice::from_ref(a),
            Fresh::Many(v) => v,
        }
    }
}

/// Entries read in place as owned entries.
fn owned_entries(new: &[FreshEntry<'_>]) -> Result<Vec<(usize, Digest, u64)>, StateError> {
    new.iter()
        .map(|&(i, d, n)| Ok((i, parse_digest(d).ok_or("a digest without '='")?, n)))
        .collect()
}

/// A verified state as read from (or about to be written to) a cache file.
#[derive(Debug)]
pub struct State {
    pub(crate) key: String,
    pub(crate) snapshot: String,
    pub(crate) timestamp: String,
    keydir: CPath,
    datadir: CPath,
    expr: String,
    files: usize,
    targets: Vec<TargetsRec>,
    /// The path lines (`p\t<path>\t<disk digest>\t<size>\t<entries…>\n`),
    /// one per path, parsed only where the update touches them, from
    /// `paths_from` on (a state read from a file keeps the file's text).
    paths: String,
    paths_from: usize,
}

fn split_path(s: &str) -> CPath {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('/').map(str::to_string).collect()
    }
}

impl State {
    /// The state a clean full verification established, keyed by the root,
    /// snapshot and timestamp bytes `src` holds now (which must be the ones
    /// verified). `None` when the tree cannot be written down (a name with
    /// a tab or a line break, no timestamp role, or files that changed
    /// since they were verified).
    pub fn of_tree(src: &dyn Source, opts: &Options, t: &VerifiedTree) -> Option<State> {
        let root = &t.root;
        let (snap_id, _, _) = root.single_role(Role::Snapshot).ok()??;
        let (ts_id, _, _) = root.single_role(Role::Timestamp).ok()??;
        let rb = src.read(std::slice::from_ref(&opts.root_name)).ok()?;
        let sb = src.read(std::slice::from_ref(&snap_id)).ok()?;
        let tb = src.read(std::slice::from_ref(&ts_id)).ok()?;
        // the bytes must be those verified
        let mut scratch = Vec::new();
        let r2: Root =
            crate::conex::verify::parse_resource(rb.clone(), &opts.root_name, &mut scratch).ok()?;
        let s2: Snapshot =
            crate::conex::verify::parse_resource(sb.clone(), &snap_id, &mut scratch).ok()?;
        let t2: Timestamp =
            crate::conex::verify::parse_resource(tb.clone(), &ts_id, &mut scratch).ok()?;
        let snap_tgt = Target::of_bytes(vec![snap_id.clone()], &sb);
        if r2 != *root || s2 != t.snapshot || !t2.targets.iter().any(|x| x.same(&snap_tgt)) {
            return None;
        }
        let expr = root.roles.get(&Role::Maintainer)?;
        let remotes = expr.remotes();
        if remotes.len() != t.targets.len() {
            return None;
        }
        let mut targets = Vec::new();
        let mut index = HashMap::new();
        for ((id, _), tf) in remotes.iter().zip(&t.targets) {
            if !crate::conex::expr::id_equal(id, &tf.header.name) {
                return None;
            }
            let mut p = root.keydir.clone();
            p.push(id.clone());
            // the snapshot vouches for these bytes (full verification
            // checked that the file matches one of its entries)
            let bytes = src.read(&p).ok()?;
            let tg = Target::of_bytes(p, &bytes);
            if !t.snapshot.targets.iter().any(|x| x.same(&tg)) {
                return None;
            }
            clean(id)?;
            clean(&tf.header.name)?;
            index.insert(id.clone(), targets.len());
            targets.push(TargetsRec {
                id: id.clone(),
                name: tf.header.name.clone(),
                digest: tg.digest[0].clone(),
                size: tg.size,
                epoch: tf.header.epoch,
                counter: tf.header.counter,
            });
        }
        // the lines in the order of the targets files' entries (the files
        // in order, a path where it is first listed), then the files no
        // entry lists, sorted: an update of a targets file is then matched
        // with the lines in order ([`ordered_pass`])
        let mut at: FastMap<String, usize> = FastMap::default();
        let mut paths: Vec<(String, PathRec)> = Vec::new();
        for (i, tf) in t.targets.iter().enumerate() {
            for e in &tf.targets {
                let p = path_to_string(&e.filename);
                let k = *at.entry(p).or_insert_with_key(|p| {
                    paths.push((p.clone(), PathRec::default()));
                    paths.len() - 1
                });
                for d in &e.digest {
                    paths[k].1.entries.push((i, d.clone(), e.size));
                }
            }
        }
        let mut unlisted = Vec::new();
        for (p, (d, n)) in &t.disk {
            let p = path_to_string(p);
            match at.get(&p) {
                Some(&k) => paths[k].1.disk = Some((d.clone(), *n)),
                None => unlisted.push((
                    p,
                    PathRec {
                        disk: Some((d.clone(), *n)),
                        entries: Vec::new(),
                    },
                )),
            }
        }
        unlisted.sort_by(|a, b| a.0.cmp(&b.0));
        paths.extend(unlisted);
        let mut lines = String::with_capacity(paths.len() * 100);
        for (p, r) in paths {
            clean(&p)?;
            for d in r
                .entries
                .iter()
                .map(|e| &e.1)
                .chain(r.disk.iter().map(|x| &x.0))
            {
                clean(&d.to_string())?;
            }
            render_path_line(&mut lines, &p, &r);
        }
        let key = state_key(
            opts,
            &[
                (opts.root_name.as_str(), &rb),
                (snap_id.as_str(), &sb),
                (ts_id.as_str(), &tb),
            ],
        );
        Some(State {
            key,
            snapshot: clean(&snap_id)?.to_string(),
            timestamp: clean(&ts_id)?.to_string(),
            keydir: root.keydir.clone(),
            datadir: root.datadir.clone(),
            expr: clean(&expr.to_string())?.to_string(),
            files: t.summary.files,
            targets,
            paths: lines,
            paths_from: 0,
        })
    }

    /// The path lines.
    fn paths(&self) -> &str {
        &self.paths[self.paths_from..]
    }

    /// The cache file's bytes.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(4096 + self.paths().len());
        // writing to memory does not fail
        let _ = self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes the cache file's bytes to `w` (the path lines as they are,
    /// hashed for the end line on the way).
    pub fn write_to(&self, w: &mut (impl io::Write + Send)) -> io::Result<()> {
        let mut head = String::with_capacity(4096);
        head.push_str(MAGIC);
        head.push('\n');
        head.push_str(&format!(
            "key\t{}\nnames\t{}\t{}\nkeydir\t{}\ndatadir\t{}\nexpr\t{}\nfiles\t{}\n",
            self.key,
            self.snapshot,
            self.timestamp,
            path_to_string(&self.keydir),
            path_to_string(&self.datadir),
            self.expr,
            self.files
        ));
        for t in &self.targets {
            head.push_str(&format!(
                "t\t{}\t{}\t{}\t{}\t{}\t{}\n",
                t.id, t.name, t.digest, t.size, t.epoch, t.counter
            ));
        }
        // hashed while it is written
        let (end, written) = rayon::join(
            || {
                let d = end_digest(MAGIC, &[head.as_bytes(), self.paths().as_bytes()]);
                format!("end\t{d}\n")
            },
            || {
                w.write_all(head.as_bytes())?;
                w.write_all(self.paths().as_bytes())
            },
        );
        written?;
        w.write_all(end.as_bytes())
    }

    /// Parses a cache file's bytes; `Err` says why it cannot be used.
    pub fn parse(bytes: Vec<u8>) -> Result<State, StateError> {
        let trimmed = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'\n').count();
        let body_end = memchr::memrchr(b'\n', &bytes[..trimmed])
            .map(|i| i + 1)
            .ok_or("it is empty or truncated")?;
        // the version's first line decides the end line's digest
        let magic = match memchr::memchr(b'\n', &bytes).map(|i| &bytes[..i]) {
            Some(m) if m == MAGIC_1.as_bytes() => MAGIC_1,
            Some(m) if m == MAGIC.as_bytes() => MAGIC,
            _ => return Err("not a verified-state file of this version".into()),
        };
        // one after the other: both are fast (BLAKE3 0.45 ms, UTF-8 0.1 ms
        // on a 2.3 MB state), and the state is read on a thread outside the
        // pool, where handing half to the pool costs more than it saves
        let (head, tail) = bytes.split_at(body_end);
        let text = std::str::from_utf8(head).is_ok() && std::str::from_utf8(tail).is_ok();
        let digest = end_digest(magic, &[head]);
        if !text {
            return Err("it is not UTF-8".into());
        }
        // SAFETY: both parts are UTF-8, and they meet at a line feed
        let text = unsafe { String::from_utf8_unchecked(bytes) };
        let (body, last) = text.split_at(body_end);
        let want = last
            .strip_prefix("end\t")
            .and_then(|l| l.strip_suffix('\n'))
            .ok_or("it is truncated (no end line)")?;
        if digest != want {
            return Err("its end line does not match its content (changed or truncated)".into());
        }
        let paths_at = body.find("\np\t").map_or(body.len(), |i| i + 1);
        let (head, paths) = body.split_at(paths_at);
        let mut it = head.lines();
        // the first line, read above
        it.next();
        let bad = |what: &str| StateError::from(format!("bad {what} line"));
        let mut field = |name: &str| -> Result<String, StateError> {
            it.next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix('\t'))
                .map(str::to_string)
                .ok_or_else(|| bad(name))
        };
        let key = field("key")?;
        let names = field("names")?;
        let (snapshot, timestamp) = names.split_once('\t').ok_or_else(|| bad("names"))?;
        let keydir = split_path(&field("keydir")?);
        let datadir = split_path(&field("datadir")?);
        let expr = field("expr")?;
        let files = field("files")?.parse().map_err(|_| bad("files"))?;
        let mut targets = Vec::new();
        for l in it {
            if let Some(r) = l.strip_prefix("t\t") {
                let f: Vec<&str> = r.split('\t').collect();
                let [id, name, d, n, e, c] = f[..] else {
                    return Err(bad("t"));
                };
                let num = |s: &str| s.parse::<u64>().map_err(|_| bad("t"));
                targets.push(TargetsRec {
                    id: id.into(),
                    name: name.into(),
                    digest: parse_digest(d).ok_or_else(|| bad("t"))?,
                    size: num(n)?,
                    epoch: num(e)?,
                    counter: num(c)?,
                });
            } else {
                return Err(StateError::from(format!(
                    "unexpected line {:?}",
                    crate::conex::shown(l)
                )));
            }
        }
        let (snapshot, timestamp) = (snapshot.to_string(), timestamp.to_string());
        // the path lines stay where they were read, without a copy
        let paths_end = paths_at + paths.len();
        let mut text = text;
        text.truncate(paths_end);
        Ok(State {
            key,
            snapshot,
            timestamp,
            keydir,
            datadir,
            expr,
            files,
            targets,
            paths: text,
            paths_from: paths_at,
        })
    }
}

/// The outcome of an incremental verification from a verified state.
#[derive(Debug)]
pub struct Fast {
    /// The summary of the new tree.
    pub summary: Summary,
    /// Warnings, as full verification of the new tree would give them
    /// (then conex's rules between the trees add theirs).
    pub warnings: Vec<String>,
    /// Number of paths checked again (the others are as verified before).
    pub rechecked: usize,
}

/// (epoch, counter) of a targets file.
pub type EpochCounter = (u64, u64);
/// A path with its old record and its entries from changed targets files.
type Todo = (String, PathRec, Vec<(usize, Digest, u64)>);

/// A piece of the new path lines: a run of old lines kept as they are
/// (a byte range of the state's path lines), or a path to check again.
enum Seg {
    Keep(usize, usize),
    Check(Todo),
}

/// Appends the old line at `a..b` to `segs`, joined with a run ending
/// there.
fn keep(segs: &mut Vec<Seg>, a: usize, b: usize) {
    if let Some(Seg::Keep(_, end)) = segs.last_mut() {
        if *end == a {
            *end = b;
            return;
        }
    }
    segs.push(Seg::Keep(a, b));
}

/// The path lines of `st` with their byte ranges: (start, end, path, the
/// rest after the path).
fn path_lines(st: &State) -> impl Iterator<Item = Result<(usize, usize, &str, &str), StateError>> {
    let text = st.paths();
    let mut from = 0;
    let lines = memchr::memchr_iter(b'\n', text.as_bytes()).map(move |nl| {
        let a = from;
        from = nl + 1;
        let body = text[a..nl].strip_prefix("p\t").ok_or("bad path line")?;
        let tab = memchr::memchr(b'\t', body.as_bytes()).ok_or("bad path line")?;
        Ok((a, nl + 1, &body[..tab], &body[tab + 1..]))
    });
    // a last line without its line feed
    let tail = (!text.is_empty() && !text.ends_with('\n')).then(|| Err("bad path line".into()));
    lines.chain(tail)
}

/// A set of strings that may answer "perhaps" for one it does not hold:
/// which paths have a line, asked for the few entries [`ordered_pass`]
/// passes over.
struct Bloom {
    bits: Vec<u64>,
    hasher: foldhash::fast::FixedState,
}

impl Bloom {
    /// For about `n` strings (one in a few thousand answers wrongly).
    fn new(n: usize) -> Bloom {
        let words = (n * 16 / 64).next_power_of_two().max(1);
        Bloom {
            bits: vec![0; words],
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    fn probes(&self, s: &str) -> [usize; 2] {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(s);
        let m = self.bits.len() * 64 - 1;
        [h as usize & m, (h >> 32) as usize & m]
    }

    fn insert(&mut self, s: &str) {
        for b in self.probes(s) {
            self.bits[b / 64] |= 1 << (b % 64);
        }
    }

    fn may_hold(&self, s: &str) -> bool {
        self.probes(s)
            .iter()
            .all(|&b| self.bits[b / 64] & (1 << (b % 64)) != 0)
    }
}

/// Whether a path is one the patch changes (an update touches a few
/// files: compared directly, not hashed for every path line).
struct Touched<'d> {
    few: Option<Vec<&'d str>>,
    data: &'d FastSet<String>,
}

impl<'d> Touched<'d> {
    fn new(data: &'d FastSet<String>) -> Touched<'d> {
        Touched {
            few: (data.len() <= 8).then(|| data.iter().map(String::as_str).collect()),
            data,
        }
    }

    fn has(&self, p: &str) -> bool {
        match &self.few {
            Some(few) => few.contains(&p),
            None => self.data.contains(p),
        }
    }
}

/// conex's checks of an entry's text that the state needs (no empty path,
/// nothing a state line cannot hold).
fn check_entry(path: &str, digests: &[&str]) -> Result<(), StateError> {
    if path.is_empty() {
        return Err("an entry with an empty path".into());
    }
    clean(path).ok_or("a path with a tab or line break")?;
    for d in digests {
        clean(d).ok_or("a digest with a tab or line break")?;
    }
    Ok(())
}

/// The changed data files no line and no entry names (a new file nothing
/// signs), to be checked too.
fn add_unnamed(segs: &mut Vec<Seg>, data: &FastSet<String>) {
    for p in data.iter() {
        let named = segs
            .iter()
            .any(|s| matches!(s, Seg::Check((q, _, _)) if q == p));
        if !named {
            segs.push(Seg::Check((p.clone(), PathRec::default(), Vec::new())));
        }
    }
}

/// The paths whose entries or bytes may have changed, from one pass over
/// the path lines of `st`: a line whose entries from the changed targets
/// files (`ids`, read in place in `read`) are the same as before, for a
/// file the patch does not touch (`data`), is kept as it is; the others
/// are to be checked again, with their old record and their entries in
/// the changed targets files. The entries are found by path in a hash
/// map; [`ordered_pass`] is the same without one.
fn pass(
    st: &State,
    ids: &BTreeSet<usize>,
    data: &FastSet<String>,
    texts: &[(usize, Cow<'_, [u8]>)],
    read: &[ReadView<'_>],
) -> Result<Vec<Seg>, StateError> {
    let n: usize = read.iter().map(|r| r.view.entries.len()).sum();
    let mut new_entries: FastMap<&str, Fresh<'_>> =
        FastMap::with_capacity_and_hasher(n, Default::default());
    for ((i, _), r) in texts.iter().zip(read) {
        let t = &r.view;
        for e in &t.entries {
            check_entry(e.path, t.digests(e))?;
            for d in t.digests(e) {
                let x = (*i, *d, e.size);
                new_entries
                    .entry(e.path)
                    .and_modify(|f| f.push(x))
                    .or_insert(Fresh::One(x));
            }
        }
    }
    let mut segs = Vec::new();
    let touched = Touched::new(data);
    for l in path_lines(st) {
        let (a, b, p, rest) = l?;
        let touched = touched.has(p);
        if !touched && (ids.is_empty() || !lists_any(rest, ids)) {
            keep(&mut segs, a, b);
            continue;
        }
        let new = new_entries.remove(p).unwrap_or(Fresh::Many(Vec::new()));
        if !touched && same_entries(rest, ids, new.as_slice()) {
            keep(&mut segs, a, b);
            continue;
        }
        let r = parse_path_rest(rest)
            .ok_or_else(|| StateError::from(format!("bad line for {}", crate::conex::shown(p))))?;
        segs.push(Seg::Check((
            p.to_string(),
            r,
            owned_entries(new.as_slice())?,
        )));
    }
    for (p, new) in new_entries.drain() {
        segs.push(Seg::Check((
            p.to_string(),
            PathRec::default(),
            owned_entries(new.as_slice())?,
        )));
    }
    add_unnamed(&mut segs, data);
    Ok(segs)
}

/// How far after the cursor [`ordered_pass`] looks for a line's entry.
const LOOK_AHEAD: usize = 32;
/// How many lines without their entries, or entries without their lines,
/// [`ordered_pass`] takes before it leaves the update to [`pass`] (a state
/// written in another order would miss on every line).
const MAX_MISSES: usize = 1024;

/// [`pass`] for one changed targets file (`i`, read in place as `t`)
/// whose entries are in the order of the path lines (the order the state
/// writes them in): each line is matched with the entries at a cursor
/// that moves through the file, without a hash map (a large targets
/// file's entries would each be hashed, and looked up out of order). An
/// entry the cursor passes is left for the end; if its path has a line,
/// the order does not match and `None` says to use [`pass`]. The
/// outcome is [`pass`]'s, with the new paths in file order.
fn ordered_pass(
    st: &State,
    (i, id): (usize, &str),
    data: &FastSet<String>,
    t: &TargetsView<'_>,
    opam: Option<&CPath>,
) -> Option<Result<Vec<Seg>, StateError>> {
    let es = &t.entries;
    // an entry as it was (on a line kept as it is) was checked when the
    // state was made; the others are checked here, as [`pass`] checks all
    let check = |p: &str, fresh: &[FreshEntry<'_>]| -> Result<(), StateError> {
        let ds: Vec<&str> = fresh.iter().map(|x| x.1).collect();
        check_entry(p, &ds)?;
        match opam {
            Some(dd) if !valid_opam_path_str(p, dd) => Err(invalid_path(id, p)),
            _ => Ok(()),
        }
    };
    let ids = BTreeSet::from([i]);
    let mut taken = vec![false; es.len()];
    let (mut cur, mut misses) = (0, 0);
    let mut fresh: Vec<FreshEntry<'_>> = Vec::new();
    let mut segs = Vec::new();
    let touched = Touched::new(data);
    // a line's path is looked up only for an entry passed over
    let mut lines = Bloom::new(st.paths().len() / 64);
    for l in path_lines(st) {
        let (a, b, p, rest) = match l {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        lines.insert(p);
        let touched = touched.has(p);
        let listed = lists_any(rest, &ids);
        // the path's entries: at the cursor, or (for a line that lists
        // this file) a little after it
        let mut at = (cur < es.len() && es[cur].path == p).then_some(cur);
        if at.is_none() && listed {
            at = (cur + 1..es.len().min(cur + 1 + LOOK_AHEAD)).find(|&j| es[j].path == p);
            if at.is_none() {
                // the line's entries are gone (or elsewhere: then the
                // order does not match)
                misses += 1;
                if misses > MAX_MISSES {
                    return None;
                }
            }
        }
        fresh.clear();
        if let Some(mut j) = at {
            while j < es.len() && es[j].path == p {
                taken[j] = true;
                fresh.extend(t.digests(&es[j]).iter().map(|d| (i, *d, es[j].size)));
                j += 1;
            }
            cur = j;
        }
        if !touched && ((at.is_none() && !listed) || same_entries(rest, &ids, &fresh)) {
            keep(&mut segs, a, b);
            continue;
        }
        let Some(r) = parse_path_rest(rest) else {
            return Some(Err(StateError::from(format!(
                "bad line for {}",
                crate::conex::shown(p)
            ))));
        };
        if !fresh.is_empty() {
            if let Err(e) = check(p, &fresh) {
                return Some(Err(e));
            }
        }
        match owned_entries(&fresh) {
            Ok(x) => segs.push(Seg::Check((p.to_string(), r, x))),
            Err(e) => return Some(Err(e)),
        }
    }
    // the entries passed over: new paths, unless a line names one
    let mut rest: FastMap<&str, Vec<FreshEntry<'_>>> = FastMap::default();
    let mut order = Vec::new();
    for (j, e) in es.iter().enumerate().filter(|(j, _)| !taken[*j]) {
        if rest.len() > MAX_MISSES {
            return None;
        }
        let v = rest.entry(e.path).or_insert_with(|| {
            order.push(e.path);
            Vec::new()
        });
        v.extend(t.digests(&es[j]).iter().map(|d| (i, *d, e.size)));
    }
    if order.iter().any(|p| lines.may_hold(p)) {
        for l in path_lines(st) {
            match l {
                Ok((_, _, p, _)) if rest.contains_key(p) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
    for p in order {
        if let Err(e) = check(p, &rest[p]) {
            return Some(Err(e));
        }
        match owned_entries(&rest[p]) {
            Ok(x) => segs.push(Seg::Check((p.to_string(), PathRec::default(), x))),
            Err(e) => return Some(Err(e)),
        }
    }
    add_unnamed(&mut segs, data);
    Some(Ok(segs))
}

/// Why targets file `id` does not verify: it lists `path`, no opam path.
fn invalid_path(id: &str, path: &str) -> StateError {
    StateError::from(format!(
        "targets file {} contains an invalid path {}",
        crate::conex::shown(id),
        crate::conex::shown(path)
    ))
}

/// A targets file this large is matched with the path lines in order
/// ([`ordered_pass`]) when it is the one that changed.
const ORDERED_MIN: usize = 256;

/// Checks a path again: its entries (the old ones from the targets files
/// that did not change, then those of the changed ones), its bytes on
/// disk when the patch changes it, and the quorum of each (digest, size)
/// the entries give; its new line is written to `out`.
struct Recheck<'r> {
    changed_ids: &'r BTreeSet<usize>,
    changed_data: &'r FastSet<String>,
    sup_ids: &'r [(&'r String, &'r Digest, u64)],
    fast: &'r FastExpr,
    new: &'r dyn Source,
    datadir: &'r CPath,
    /// Files on disk: the old tree's count, then the new tree's.
    files: i64,
    /// Paths checked.
    rechecked: usize,
}

impl Recheck<'_> {
    fn check(&mut self, (p, old, fresh): Todo, out: &mut String) -> Result<(), StateError> {
        self.rechecked += 1;
        let p = p.as_str();
        let mut entries: Vec<(usize, Digest, u64)> = old
            .entries
            .iter()
            .filter(|(i, _, _)| !self.changed_ids.contains(i))
            .cloned()
            .collect();
        entries.extend(fresh);
        // targets-file order, then entry order (as full verification)
        entries.sort_by_key(|e| e.0);
        let disk = if self.changed_data.contains(p) {
            match hash_file(self.new, &split_path(p)) {
                Ok(x) => Some(x),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(StateError::from(format!(
                        "cannot read {}: {e}",
                        crate::conex::shown(p)
                    )))
                }
            }
        } else {
            old.disk.clone()
        };
        self.files += i64::from(disk.is_some()) - i64::from(old.disk.is_some());
        // every (digest, size) group must be supported
        let mut groups: Vec<&(usize, Digest, u64)> = entries.iter().collect();
        groups.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        let mut sups: Vec<(&String, &Digest, u64)> = Vec::new();
        for g in groups.chunk_by(|a, b| (&a.1, a.2) == (&b.1, b.2)) {
            sups.clear();
            sups.extend(g.iter().map(|e| self.sup_ids[e.0]));
            if !self.fast.eval_supporters(&sups) {
                return Err(StateError::from(format!(
                    "{} is not signed by a quorum",
                    crate::conex::shown(p)
                )));
            }
        }
        match &disk {
            Some((d, n))
                if !entries.is_empty() && !entries.iter().any(|(_, d2, n2)| d2 == d && n2 == n) =>
            {
                return Err(StateError::from(format!(
                    "{} does not match",
                    crate::conex::shown(p)
                )));
            }
            Some(_) if !entries.is_empty() => {}
            Some(_) => {
                let t = Target {
                    filename: split_path(p),
                    digest: vec![],
                    size: 0,
                };
                if t.is_opam_file(self.datadir) {
                    return Err(StateError::from(format!(
                        "{} is not signed",
                        crate::conex::shown(p)
                    )));
                }
            }
            None if !entries.is_empty() => {
                return Err(StateError::from(format!(
                    "{} is not on disk",
                    crate::conex::shown(p)
                )))
            }
            None => {}
        }
        let rec = PathRec { disk, entries };
        if rec.disk.is_some() || !rec.entries.is_empty() {
            render_path_line(out, p, &rec);
        }
        Ok(())
    }
}

/// The new path lines from the pieces: old lines as they were, the paths
/// checked again where their lines were (new paths at the end).
fn new_lines(st: &State, segs: Vec<Seg>, rc: &mut Recheck<'_>) -> Result<String, StateError> {
    let mut out = String::with_capacity(st.paths().len() + 4096);
    for s in segs {
        match s {
            Seg::Keep(a, b) => out.push_str(&st.paths()[a..b]),
            Seg::Check(todo) => rc.check(todo, &mut out)?,
        }
    }
    Ok(out)
}

/// What [`verify_from_state`] makes beside the signature checks: the
/// changed targets files' snapshot entries (from their bytes), the new
/// targets records, the new state, what `beside` gave, and how many paths
/// were checked again.
struct Side<W> {
    hashed: Vec<Target>,
    recs: Vec<TargetsRec>,
    state: State,
    written: W,
    rechecked: usize,
}

/// The new tree's root, timestamp and snapshot, verified from their bytes:
/// the first step of [`verify_from_state`], which needs no state (to be
/// made while the state is read).
pub struct Roles {
    root: Root,
    signers: Vec<String>,
    ts: Timestamp,
    snap: Snapshot,
    warnings: Vec<String>,
}

/// Verifies the root, timestamp and snapshot of `new` for
/// [`verify_from_state`].
pub fn verify_roles(
    new: &dyn Source,
    opts: &Options,
    sigs: Arc<SigCache>,
) -> Result<Roles, StateError> {
    let mut v = Verifier::new(new, opts.clone()).with_sig_cache(sigs);
    let (root, signers) = v.verify_root().map_err(|_| "the root does not verify")?;
    let ts = v
        .verify_timestamp(&root)
        .map_err(|_| "the timestamp does not verify")?
        .ok_or("no timestamp")?;
    let snap = v
        .verify_snapshot(&root, Some(&ts))
        .map_err(|_| "the snapshot does not verify")?
        .ok_or("no snapshot")?;
    Ok(Roles {
        root,
        signers,
        ts,
        snap,
        warnings: std::mem::take(&mut v.warnings),
    })
}

/// Verifies the new tree `new` (the old tree plus the files in `changed`)
/// from the verified state of the old tree and the new tree's roles
/// verified by [`verify_roles`]. `Err` says why the state cannot decide
/// (then verify the whole tree): only a clean success is decided here.
/// `beside` is given the new tree's state and the headers for conex's
/// rules between the trees as soon as they are made, while the signatures
/// of the changed targets files are still being checked (to write the
/// state down and check those rules meanwhile: it is the new tree's state
/// only if the verification succeeds); its outcome is returned with the
/// verification's.
pub fn verify_from_state<W: Send>(
    st: &State,
    new: &dyn Source,
    changed: &BTreeSet<CPath>,
    opts: &Options,
    sigs: Arc<SigCache>,
    roles: Roles,
    beside: impl FnOnce(&State, &KnownHeaders) -> W + Send,
) -> Result<(Fast, W), StateError> {
    let mut v = Verifier::new(new, opts.clone()).with_sig_cache(sigs);
    let Roles {
        root,
        signers,
        ts,
        snap,
        warnings,
    } = roles;
    v.warnings = warnings;
    let expr: &Expr = root
        .roles
        .get(&Role::Maintainer)
        .ok_or("no maintainer delegation")?;
    if root.keydir != st.keydir || root.datadir != st.datadir {
        return Err("the key or data directory changed".into());
    }
    if expr.to_string() != st.expr {
        return Err("the maintainer expression changed".into());
    }
    let (snap_id, ts_id) = (snap.header.name.clone(), ts.header.name.clone());
    if !crate::conex::expr::id_equal(&snap_id, &st.snapshot)
        || !crate::conex::expr::id_equal(&ts_id, &st.timestamp)
    {
        return Err("the snapshot or timestamp role changed".into());
    }
    let remotes = expr.remotes();
    if remotes.len() != st.targets.len()
        || remotes.keys().zip(&st.targets).any(|(id, t)| *id != t.id)
    {
        return Err("the delegated targets files changed".into());
    }
    // what the patch changes
    let kd = &root.keydir;
    let mut changed_ids: BTreeSet<usize> = BTreeSet::new();
    let mut data_changed: Vec<&CPath> = Vec::new();
    let by_id: HashMap<&str, usize> = st
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    for p in changed {
        if p.len() == 1 && (p[0] == opts.root_name || p[0] == snap_id || p[0] == ts_id) {
            continue;
        }
        if p.len() == kd.len() + 1 && p.starts_with(kd) {
            match by_id.get(p[kd.len()].as_str()) {
                Some(i) => {
                    changed_ids.insert(*i);
                    continue;
                }
                None => return Err("a file in the key directory that is not delegated".into()),
            }
        }
        if p.len() > root.datadir.len() && p.starts_with(&root.datadir) {
            data_changed.push(p);
            continue;
        }
        return Err(StateError::from(format!(
            "the patch changes {}",
            crate::conex::shown(&path_to_string(p))
        )));
    }
    // the targets files: changed ones checked in full, the others as the
    // new snapshot vouches for the bytes the state was made from
    let mut headers = KnownHeaders::new();
    // the changed targets files, read in place: parsed on the pool (a
    // large one in two parts); then their signatures are checked here
    // (the canonical string and the signature hash: the longest part)
    // while, on threads of their own, their bytes are hashed (for the
    // snapshot) and the path lines compared with their entries, and then
    // the new state is made and given to `beside`. Any failure only says that the
    // state cannot decide (the whole tree is verified then, with conex's
    // messages in conex's order), so the checks need not be in that order.
    let mut texts: Vec<(usize, Cow<'_, [u8]>)> = Vec::with_capacity(changed_ids.len());
    for &i in &changed_ids {
        let mut path = kd.clone();
        path.push(st.targets[i].id.clone());
        let bytes = new.read_cow(&path).map_err(|e| {
            StateError::from(format!(
                "cannot read targets file {}: {e}",
                crate::conex::shown(&st.targets[i].id)
            ))
        })?;
        texts.push((i, bytes));
    }
    let read: Vec<ReadView<'_>> = texts
        .par_iter()
        .map(|(i, bytes)| {
            let id = &st.targets[*i].id;
            let text = std::str::from_utf8(bytes).map_err(|_| {
                StateError::from(format!(
                    "targets file {} is not UTF-8",
                    crate::conex::shown(id)
                ))
            })?;
            parse_targets_view(text).ok_or_else(|| {
                StateError::from(format!(
                    "targets file {} is not in the common shape",
                    crate::conex::shown(id)
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let changed_data: FastSet<String> = data_changed.iter().map(|p| path_to_string(p)).collect();
    let sig_cache = v.sig_cache().clone();
    let fast = FastExpr::new(expr);
    let sup_ids: Vec<(&String, &Digest, u64)> =
        remotes.iter().map(|(id, (d, e))| (id, d, *e)).collect();
    // the new state's key (the new root, snapshot and timestamp bytes)
    let read_top = |n: &str| new.read(&[n.to_string()]).map_err(|e| e.to_string());
    let (rb, sb, tb) = (
        read_top(&opts.root_name)?,
        read_top(&snap_id)?,
        read_top(&ts_id)?,
    );
    let key = state_key(
        opts,
        &[
            (opts.root_name.as_str(), &rb),
            (st.snapshot.as_str(), &sb),
            (st.timestamp.as_str(), &tb),
        ],
    );
    // the changed targets files' old and new headers (checked below) and
    // the new snapshot and timestamp as verified here, for conex's rules
    // between the trees
    for ((i, _), r) in texts.iter().zip(&read) {
        let (old, h) = (&st.targets[*i], &r.view.head.header);
        headers.targets.insert(
            old.id.clone(),
            ((old.epoch, old.counter), (h.epoch, h.counter)),
        );
    }
    headers
        .online
        .insert(Role::Snapshot, (snap.header.epoch, snap.header.counter));
    headers
        .online
        .insert(Role::Timestamp, (ts.header.epoch, ts.header.counter));
    let mut rc = Recheck {
        changed_ids: &changed_ids,
        changed_data: &changed_data,
        sup_ids: &sup_ids,
        fast: &fast,
        new,
        datadir: &root.datadir,
        files: st.files as i64,
        rechecked: 0,
    };
    let (side, checked) = super::beside_thread(
        "arca-state",
        || -> Result<Side<W>, StateError> {
            // the bytes hashed on a third thread while the path lines are
            // compared here (with the signature check, three long tasks
            // shared by two cores leave neither idle)
            let hash = || -> Vec<Target> {
                texts
                    .iter()
                    .map(|(i, bytes)| {
                        let mut path = kd.clone();
                        path.push(st.targets[*i].id.clone());
                        Target::of_bytes(path, bytes)
                    })
                    .collect()
            };
            let compare = || -> Result<String, StateError> {
                let ordered = match (&texts[..], &read[..]) {
                    ([(i, _)], [r]) if r.view.entries.len() >= ORDERED_MIN => ordered_pass(
                        st,
                        (*i, &st.targets[*i].id),
                        &changed_data,
                        &r.view,
                        opts.opam.then_some(&root.datadir),
                    ),
                    _ => None,
                };
                let segs = match ordered {
                    Some(segs) => segs?,
                    None => {
                        for ((i, _), r) in texts.iter().zip(&read) {
                            if let Some(bad) = first_bad_path(opts, &root, &r.view) {
                                return Err(invalid_path(&st.targets[*i].id, &bad));
                            }
                        }
                        pass(st, &changed_ids, &changed_data, &texts, &read)?
                    }
                };
                new_lines(st, segs, &mut rc)
            };
            let (hashed, paths) = super::beside_thread("arca-hash", hash, compare);
            let paths = paths?;
            let mut recs = st.targets.clone();
            for (((i, _), r), tg) in texts.iter().zip(&read).zip(&hashed) {
                let h = &r.view.head.header;
                recs[*i] = TargetsRec {
                    id: st.targets[*i].id.clone(),
                    name: h.name.clone(),
                    digest: tg.digest[0].clone(),
                    size: tg.size,
                    epoch: h.epoch,
                    counter: h.counter,
                };
            }
            let state = State {
                key,
                snapshot: st.snapshot.clone(),
                timestamp: st.timestamp.clone(),
                keydir: st.keydir.clone(),
                datadir: st.datadir.clone(),
                expr: st.expr.clone(),
                files: usize::try_from(rc.files).map_err(|_| "file count below zero")?,
                targets: recs.clone(),
                paths,
                paths_from: 0,
            };
            let written = beside(&state, &headers);
            Ok(Side {
                hashed,
                recs,
                state,
                written,
                rechecked: rc.rechecked,
            })
        },
        || {
            // the signatures, name and expression of each changed file
            // (the snapshot's entry for its bytes is checked once they
            // are hashed)
            texts
                .par_iter()
                .zip(&read)
                .map(|((i, _), r)| check_view(None, &st.targets[*i].id, r, None, &sig_cache))
                .collect::<Vec<_>>()
        },
    );
    for (((i, _), r), (checked, w)) in texts.iter().zip(&read).zip(checked) {
        let id = &st.targets[*i].id;
        checked.map_err(|e| {
            StateError::from(format!("targets file {}: {e}", crate::conex::shown(id)))
        })?;
        if !w.is_empty() {
            return Err(StateError::from(format!(
                "targets file {} gives warnings",
                crate::conex::shown(id)
            )));
        }
        let head = &r.view.head;
        if !head.delegations.is_empty() {
            return Err("a targets file delegates".into());
        }
        let (dgst, epoch) = remotes.get(id).ok_or("targets files out of step")?;
        match head.valid_hash() {
            Ok(h) if h == *dgst && head.header.epoch == *epoch => {}
            _ => return Err("a targets file's keys or epoch changed".into()),
        }
        clean(&head.header.name).ok_or("a name with a tab or line break")?;
    }
    let Side {
        hashed,
        recs,
        state,
        written,
        rechecked,
    } = side?;
    // the snapshot's entries by path (a snapshot lists every targets file)
    let mut snap_by_path: FastMap<&CPath, Vec<&Target>> = FastMap::default();
    for x in &snap.targets {
        snap_by_path.entry(&x.filename).or_default().push(x);
    }
    let mut hashed = hashed.into_iter();
    let mut dm = HashMap::new();
    for (i, ((id, (dgst, epoch)), rec)) in remotes.iter().zip(&recs).enumerate() {
        let mut path = kd.clone();
        path.push(id.clone());
        let tg = if changed_ids.contains(&i) {
            hashed.next().ok_or("targets files out of step")?
        } else {
            Target {
                filename: path,
                digest: vec![rec.digest.clone()],
                size: rec.size,
            }
        };
        let listed = snap_by_path
            .get(&tg.filename)
            .is_some_and(|xs| xs.iter().any(|x| x.same(&tg)));
        if !listed {
            return Err(StateError::from(format!(
                "the snapshot does not list targets file {} as verified",
                crate::conex::shown(id)
            )));
        }
        dm.insert(dgst.clone(), (id.clone(), *epoch));
    }
    if !expr.eval(&dm, &BTreeSet::new()) {
        return Err("the maintainer expression is not satisfied".into());
    }
    let files = state.files;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    seen.extend(recs.iter().map(|r| r.name.clone()));
    let summary = Summary {
        root_signers: signers,
        root_counter: root.header.counter,
        timestamp: Some((ts.header.name.clone(), ts.header.counter, ts.header.epoch)),
        snapshot: Some((
            snap.header.name.clone(),
            snap.header.counter,
            snap.header.epoch,
        )),
        targets_files: seen.into_iter().collect(),
        files,
    };
    Ok((
        Fast {
            summary,
            warnings: std::mem::take(&mut v.warnings),
            rechecked,
        },
        written,
    ))
}
