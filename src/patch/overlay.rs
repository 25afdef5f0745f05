//! The old repository with a patch applied, in memory (a [`Source`] over
//! the old tree).

use super::{
    apply_section, apply_section_owned, name_to_path, FilePatch, GitOnly, Operation, Patch,
    PatchError,
};
use crate::conex::resource::{path_to_string, Path as CPath};
use crate::conex::verify::Source;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

/// What the patched tree holds at a path the patch produces or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// The new content.
    Content(Vec<u8>),
    /// Gone (deleted, or renamed away).
    Gone,
    /// The section producing it does not apply; reading it fails (conex
    /// fails only when it reads the file too).
    Failed(String),
}

/// The old repository with a patch applied, in memory, as conex's patch
/// provider presents it: a path the patch produces reads as the first
/// section producing it made it from the old tree; a path a section reads
/// and does not produce is gone; directory listings are the old listing
/// with the patch's names added and removed in patch order.
pub struct PatchedSource<'a> {
    base: &'a dyn Source,
    /// Changed files: new content, or `None` when gone.
    changes: BTreeMap<CPath, Option<Vec<u8>>>,
    failed: BTreeMap<CPath, String>,
    /// The patch's operations (names as paths), for listings.
    ops: Vec<(Option<CPath>, Option<CPath>, bool)>,
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl<'a> PatchedSource<'a> {
    /// Applies `patch` over `base`. `base_dir`, when given, is the
    /// directory of `base`: patched paths must stay inside it even through
    /// symbolic links.
    pub fn apply(
        base: &'a dyn Source,
        base_dir: Option<&Path>,
        patch: &Patch,
    ) -> std::result::Result<PatchedSource<'a>, PatchError> {
        let canon_root = base_dir.and_then(|d| d.canonicalize().ok());
        if let Some(root) = &canon_root {
            for fp in &patch.files {
                for name in fp.op.names() {
                    inside(root, &name_to_path(name), fp.line)?;
                }
            }
        }
        let mut result: BTreeMap<CPath, Change> = BTreeMap::new();
        let read_old = |name: &str| -> std::result::Result<Option<Vec<u8>>, String> {
            match base.read(&name_to_path(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) => Err(format!("cannot read the old file {name}: {e}")),
            }
        };
        let run = |fp: &FilePatch, old: Option<Vec<u8>>| -> Change {
            match apply_section_owned(old, fp) {
                Ok(Some(b)) => Change::Content(b),
                Ok(None) => Change::Gone,
                Err(f) => Change::Failed(format!(
                    "{} (patch line {}) does not apply: {}",
                    f.hunk, f.line, f.reason
                )),
            }
        };
        for fp in &patch.files {
            for name in fp.op.names() {
                let path = name_to_path(name);
                if result.contains_key(&path) {
                    continue;
                }
                let change = match (patch.target_section(name), patch.source_section(name)) {
                    (None, None) => continue,
                    (None, Some(_)) => Change::Gone,
                    (Some(d), _) => match d.op.source() {
                        None => run(d, None),
                        Some(src) => match read_old(src) {
                            Ok(old) => run(d, old),
                            Err(e) => Change::Failed(e),
                        },
                    },
                };
                result.insert(path, change);
            }
        }
        // opam applies the sections one after the other: where that gives
        // other bytes than conex's view (the first section), refuse
        for fp in &patch.files {
            let Some(name) = fp.op.target() else { continue };
            if patch
                .target_section(name)
                .is_some_and(|first| std::ptr::eq(first, fp))
            {
                continue;
            }
            let path = name_to_path(name);
            let mut cur: Option<Vec<u8>> = base.read(&path).ok();
            let mut applied = true;
            for s in patch.files.iter().filter(|s| s.op.target() == Some(name)) {
                let input = match s.op.source() {
                    None => None,
                    Some(src) if src == name => cur.clone(),
                    Some(src) => match base.read(&name_to_path(src)) {
                        Ok(b) => Some(b),
                        Err(_) => {
                            applied = false;
                            break;
                        }
                    },
                };
                match apply_section(input.as_deref(), s) {
                    Ok(c) => cur = c,
                    Err(_) => {
                        applied = false;
                        break;
                    }
                }
            }
            let conex_view = match result.get(&path) {
                Some(Change::Content(b)) => Some(b.clone()),
                _ => None,
            };
            if applied && cur != conex_view {
                return Err(PatchError::Unsupported {
                    line: fp.line,
                    path: name.to_string(),
                    reason: "the patch changes this file twice, and applied in order (as opam \
                             does) it gives other bytes than its first change alone (which is \
                             what conex verifies)"
                        .into(),
                });
            }
        }
        let mut s = PatchedSource {
            base,
            changes: BTreeMap::new(),
            failed: BTreeMap::new(),
            ops: patch
                .files
                .iter()
                .map(|f| {
                    (
                        f.op.source().map(name_to_path),
                        f.op.target().map(name_to_path),
                        matches!(
                            f.op,
                            Operation::Edit(..) | Operation::Git(_, _, GitOnly::Rename)
                        ),
                    )
                })
                .collect(),
        };
        for (path, c) in result {
            match c {
                Change::Content(b) => {
                    s.changes.insert(path, Some(b));
                }
                Change::Gone => {
                    s.changes.insert(path, None);
                }
                Change::Failed(m) => {
                    s.failed.insert(path, m);
                }
            }
        }
        Ok(s)
    }

    /// The changed files: path → new content (`None` when gone). Files
    /// whose section does not apply are not listed (reading them fails).
    pub fn changes(&self) -> &BTreeMap<CPath, Option<Vec<u8>>> {
        &self.changes
    }

    fn lookup(&self, path: &[String]) -> Option<io::Result<&[u8]>> {
        if let Some(m) = self.failed.get(path) {
            return Some(Err(io::Error::other(m.clone())));
        }
        match self.changes.get(path)? {
            Some(b) => Some(Ok(b)),
            None => Some(Err(io::Error::new(
                io::ErrorKind::NotFound,
                "deleted by the patch",
            ))),
        }
    }
}

/// The deepest existing ancestor of `path` must resolve inside `root`.
fn inside(root: &Path, path: &[String], line: usize) -> std::result::Result<(), PatchError> {
    let mut p = root.to_path_buf();
    let mut deepest = root.to_path_buf();
    for c in path {
        p.push(c);
        if std::fs::symlink_metadata(&p).is_ok() {
            deepest = p.clone();
        } else {
            break;
        }
    }
    match deepest.canonicalize() {
        Ok(c) if c.starts_with(root) => Ok(()),
        _ => Err(PatchError::UnsafePath {
            line,
            path: path_to_string(path),
            reason: "resolves outside the repository (symbolic link)".into(),
        }),
    }
}

impl Source for PatchedSource<'_> {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        match self.lookup(path) {
            Some(r) => r.map(<[u8]>::to_vec),
            None => self.base.read(path),
        }
    }

    fn read_cow(&self, path: &[String]) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        match self.lookup(path) {
            Some(r) => r.map(std::borrow::Cow::Borrowed),
            None => self.base.read(path).map(std::borrow::Cow::Owned),
        }
    }

    fn open(&self, path: &[String]) -> io::Result<Box<dyn io::Read + '_>> {
        match self.lookup(path) {
            Some(r) => r.map(|b| Box::new(b) as Box<dyn io::Read>),
            None => self.base.open(path),
        }
    }

    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        // (is_dir, name) as conex's listing keeps them: the old listing,
        // then each section in order adds its new name and removes its old
        // one (a file directly in `path`)
        let mut set: BTreeSet<(bool, String)> = match self.base.list(path) {
            Ok(v) => v.into_iter().map(|(n, d)| (d, n)).collect(),
            // a directory that cannot be listed stays an error (conex would
            // list it as empty and so not look at what is in it)
            Err(e) if !is_not_found(&e) => return Err(e),
            Err(_) => BTreeSet::new(),
        };
        let below = |p: &CPath, dir: bool| -> Option<(bool, String)> {
            if p.len() <= path.len() || !p.starts_with(path) {
                return None;
            }
            let name = p[path.len()].clone();
            if p.len() == path.len() + 1 {
                Some((false, name))
            } else if dir {
                Some((true, name))
            } else {
                None
            }
        };
        let mut touched = false;
        for (src, tgt, moves) in &self.ops {
            if let Some(t) = tgt {
                if let Some(e) = below(t, true) {
                    set.insert(e);
                    touched = true;
                }
            }
            if let Some(s) = src {
                if *moves && tgt.as_ref() == Some(s) {
                    continue;
                }
                if let Some(e) = below(s, false) {
                    set.remove(&e);
                    touched = true;
                }
            }
        }
        if set.is_empty() && !touched {
            // neither on disk nor made by the patch
            self.base.list(path)?;
        }
        Ok(set.into_iter().map(|(d, n)| (n, d)).collect())
    }
}
