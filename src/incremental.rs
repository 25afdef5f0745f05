//! Incremental verification (`--incremental --repository OLD --patch P`),
//! as conex 1.0 does it: the patch (a `git diff`) is applied with `-p1`
//! semantics *in memory* over the old repository (which is never
//! modified), the resulting tree is fully verified, and then conex's
//! `verify_diffs` rules are checked between the old and the new tree:
//!
//! * the key directory named by the root must not change;
//! * if the root file changed, its counter must strictly increase (and it
//!   may never decrease);
//! * for every changed targets file `<keydir>/<id>`: same epoch ⇒ counter
//!   strictly increases, higher epoch ⇒ any counter, lower epoch ⇒ refused;
//!   a deleted targets file is refused, a new one is fine.
//!
//! conex does not check that the snapshot and timestamp counters increase;
//! neither does the verdict here. arca adds a warning when they do not.

use crate::conex::resource::{path_to_string, Path as CPath, Resource, Root, Targets};
use crate::conex::verify::{
    read_resource, DirSource, Options, SigCache, Source, Summary, Verifier,
};
use crate::conex::{Snapshot, Timestamp};
use crate::error::{ArcaError, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Why a patch cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch text is not a well-formed `git diff`.
    #[error("patch line {line}: {reason}")]
    Syntax {
        /// 1-based line number in the patch.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A git feature arca does not apply (renames, copies, binary data,
    /// symbolic links, submodules).
    #[error("patch line {line}: {path}: {reason}")]
    Unsupported {
        /// 1-based line number in the patch.
        line: usize,
        /// The file concerned.
        path: String,
        /// What is not supported.
        reason: String,
    },
    /// A path that would leave the repository (or is otherwise unsafe).
    #[error("patch line {line}: unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// 1-based line number in the patch.
        line: usize,
        /// The path as written in the patch.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A hunk (or a whole-file operation) does not apply to the old tree.
    #[error("{path}: {hunk} (patch line {line}) does not apply: {reason}")]
    Apply {
        /// The file concerned.
        path: String,
        /// The hunk header (`@@ -5,6 +5,16 @@`) or the operation.
        hunk: String,
        /// 1-based line number of the hunk header in the patch.
        line: usize,
        /// Why not.
        reason: String,
    },
}

impl From<PatchError> for ArcaError {
    fn from(e: PatchError) -> ArcaError {
        match e {
            PatchError::UnsafePath { .. } => ArcaError::Refused(format!("patch: {e}")),
            _ => ArcaError::Input(format!("patch: {e}")),
        }
    }
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HunkLine {
    /// Context: present in old and new.
    Context(Vec<u8>),
    /// Only in the old file.
    Remove(Vec<u8>),
    /// Only in the new file.
    Add(Vec<u8>),
}

/// A hunk: `@@ -old_start,old_len +new_start,new_len @@`. Line contents
/// carry their line terminator (absent after `\ No newline at end of file`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hunk {
    header: String,
    line: usize,
    old_start: usize,
    old_len: usize,
    lines: Vec<HunkLine>,
}

/// What a file section of the patch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// A new file.
    Create,
    /// A deleted file.
    Delete,
    /// A changed file (content and/or mode).
    Modify,
}

/// One file of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The path inside the repository (after stripping one component).
    pub path: CPath,
    /// What happens to it.
    pub op: FileOp,
    /// Line of its `diff --git` header in the patch.
    pub line: usize,
    hunks: Vec<Hunk>,
}

/// A parsed `git diff`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patch {
    /// The files it touches, in patch order.
    pub files: Vec<FilePatch>,
}

fn syntax(line: usize, reason: impl Into<String>) -> PatchError {
    PatchError::Syntax {
        line,
        reason: reason.into(),
    }
}

/// Decodes a C-style quoted git path (`"a/x\tb"`), or returns it as is.
fn unquote(s: &str, line: usize) -> std::result::Result<String, PatchError> {
    let Some(inner) = s.strip_prefix('"') else {
        return Ok(s.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| syntax(line, format!("unterminated quoted path {s:?}")))?;
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b
            .get(i + 1)
            .ok_or_else(|| syntax(line, format!("bad escape in path {s:?}")))?;
        i += 2;
        out.push(match c {
            b'\\' => b'\\',
            b'"' => b'"',
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'0'..=b'3' => {
                let oct = b
                    .get(i..i + 2)
                    .filter(|o| o.iter().all(|d| (b'0'..=b'7').contains(d)))
                    .ok_or_else(|| syntax(line, format!("bad octal escape in path {s:?}")))?;
                i += 2;
                (c - b'0') * 64 + (oct[0] - b'0') * 8 + (oct[1] - b'0')
            }
            _ => return Err(syntax(line, format!("bad escape in path {s:?}"))),
        });
    }
    String::from_utf8(out).map_err(|_| syntax(line, format!("path {s:?} is not UTF-8")))
}

/// Checks a patch path and strips its first component (`-p1`). `None` for
/// `/dev/null`.
fn strip_path(raw: &str, line: usize) -> std::result::Result<Option<CPath>, PatchError> {
    if raw == "/dev/null" {
        return Ok(None);
    }
    let unsafe_path = |reason: &str| PatchError::UnsafePath {
        line,
        path: raw.to_string(),
        reason: reason.into(),
    };
    if raw.starts_with('/') {
        return Err(unsafe_path("absolute paths are refused"));
    }
    if raw.contains('\0') {
        return Err(unsafe_path("NUL byte in path"));
    }
    let parts: Vec<&str> = raw.split('/').collect();
    if parts.contains(&"..") {
        return Err(unsafe_path("'..' components are refused"));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(unsafe_path("empty or '.' components are refused"));
    }
    if parts.len() < 2 {
        return Err(unsafe_path(
            "expected a prefix directory (a/… or b/…) to strip (-p1)",
        ));
    }
    if parts[1..].contains(&".git") {
        return Err(unsafe_path("paths inside .git are refused"));
    }
    Ok(Some(parts[1..].iter().map(|s| s.to_string()).collect()))
}

/// The path of a `---`/`+++` line: git appends a TAB when the name has a
/// space.
fn header_path(rest: &str, line: usize) -> std::result::Result<String, PatchError> {
    let rest = if rest.starts_with('"') {
        rest
    } else {
        rest.split('\t').next().unwrap_or(rest)
    };
    unquote(rest.trim_end_matches('\r'), line)
}

/// The two names of `diff --git a/X b/Y` (unambiguous when X == Y or quoted).
fn diff_git_names(
    rest: &str,
    line: usize,
) -> std::result::Result<Option<(String, String)>, PatchError> {
    let rest = rest.trim_end_matches('\r');
    if rest.starts_with('"') {
        // "a/…" "b/…" or "a/…" b/…; skip escaped quotes
        let mut i = 1;
        let b = rest.as_bytes();
        let mut close = None;
        while i < b.len() {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                close = Some(i);
                break;
            }
            i += 1;
        }
        let close = close.ok_or_else(|| syntax(line, "unterminated quoted path"))?;
        let a = unquote(&rest[..=close], line)?;
        let b2 = rest[close + 1..].trim_start();
        let b2 = unquote(b2, line)?;
        return Ok(Some((a, b2)));
    }
    let n = rest.len();
    if n >= 5 && (n - 1).is_multiple_of(2) {
        let half = (n - 1) / 2;
        if rest.is_char_boundary(half) && rest.is_char_boundary(half + 1) {
            let (a, b) = (&rest[..half], &rest[half + 1..]);
            if rest.as_bytes()[half] == b' ' && a.get(2..) == b.get(2..) {
                return Ok(Some((a.to_string(), b.to_string())));
            }
        }
    }
    if let Some((a, b)) = rest.split_once(' ') {
        if !b.contains(' ') {
            return Ok(Some((a.to_string(), b.to_string())));
        }
    }
    Ok(None)
}

fn parse_range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

/// `@@ -l,s +l,s @@ …` → (old_start, old_len, new_len).
fn parse_hunk_header(l: &str) -> Option<(usize, usize, usize)> {
    let rest = l.strip_prefix("@@ -")?;
    let (old, rest) = rest.split_once(" +")?;
    let (new, _) = rest.split_once(" @@")?;
    let (os, ol) = parse_range(old)?;
    let (_, nl) = parse_range(new)?;
    Some((os, ol, nl))
}

impl Patch {
    /// Parses a `git diff` (as `git diff`, `git diff --cached` or `git
    /// format-patch` print it). Text before the first `diff --git` is
    /// ignored.
    pub fn parse(data: &[u8]) -> std::result::Result<Patch, PatchError> {
        let mut lines: Vec<&[u8]> = data.split_inclusive(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let text = |i: usize| -> std::result::Result<&str, PatchError> {
            let l = lines[i];
            let l = l.strip_suffix(b"\n").unwrap_or(l);
            std::str::from_utf8(l).map_err(|_| syntax(i + 1, "header line is not UTF-8"))
        };
        let mut files = Vec::new();
        let mut i = 0;
        // skip preamble
        while i < lines.len() && !lines[i].starts_with(b"diff --git ") {
            if lines[i].starts_with(b"--- ")
                && lines.get(i + 1).is_some_and(|n| n.starts_with(b"+++ "))
            {
                return Err(syntax(
                    i + 1,
                    "a file header without `diff --git`: only git diffs are supported",
                ));
            }
            i += 1;
        }
        while i < lines.len() {
            let start = i;
            let head = text(i)?;
            let Some(rest) = head.strip_prefix("diff --git ") else {
                return Err(syntax(
                    i + 1,
                    format!("expected `diff --git`, found {head:?}"),
                ));
            };
            let names = diff_git_names(rest, i + 1)?;
            i += 1;
            let mut op = FileOp::Modify;
            let mut old_name: Option<Option<String>> = None;
            let mut new_name: Option<Option<String>> = None;
            let label = names
                .as_ref()
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| rest.to_string());
            // extended headers
            while i < lines.len() {
                let l = text(i).unwrap_or("");
                let unsupported = |reason: &str| PatchError::Unsupported {
                    line: i + 1,
                    path: label.clone(),
                    reason: reason.into(),
                };
                if l.starts_with("diff --git ") || l.starts_with("@@ ") {
                    break;
                } else if let Some(m) = l.strip_prefix("new file mode ") {
                    op = FileOp::Create;
                    check_mode(m).map_err(|r| unsupported(&r))?;
                } else if l.starts_with("deleted file mode ") {
                    op = FileOp::Delete;
                } else if let Some(m) = l.strip_prefix("new mode ") {
                    check_mode(m).map_err(|r| unsupported(&r))?;
                } else if l.starts_with("old mode ")
                    || l.starts_with("index ")
                    || l.starts_with("similarity index ")
                    || l.starts_with("dissimilarity index ")
                {
                } else if l.starts_with("rename from ") || l.starts_with("rename to ") {
                    return Err(unsupported(
                        "renames are not supported; produce the patch with `git diff --no-renames`",
                    ));
                } else if l.starts_with("copy from ") || l.starts_with("copy to ") {
                    return Err(unsupported(
                        "copies are not supported; produce the patch with `git diff --no-renames`",
                    ));
                } else if l.starts_with("GIT binary patch") || l.starts_with("Binary files ") {
                    return Err(unsupported("binary patches are not supported"));
                } else if let Some(r) = l.strip_prefix("--- ") {
                    old_name = Some(Some(header_path(r, i + 1)?).filter(|p| p != "/dev/null"));
                    if old_name == Some(None) && op == FileOp::Modify {
                        op = FileOp::Create;
                    }
                    let Some(r2) = lines
                        .get(i + 1)
                        .and_then(|_| text(i + 1).ok())
                        .and_then(|l| l.strip_prefix("+++ "))
                    else {
                        return Err(syntax(i + 2, "expected `+++ ` after `--- `"));
                    };
                    new_name = Some(Some(header_path(r2, i + 2)?).filter(|p| p != "/dev/null"));
                    if new_name == Some(None) && op == FileOp::Modify {
                        op = FileOp::Delete;
                    }
                    i += 2;
                    break;
                } else {
                    return Err(syntax(
                        i + 1,
                        format!("unexpected line in file header: {l:?}"),
                    ));
                }
                i += 1;
            }
            // the path, -p1
            let raw = match (&old_name, &new_name, &names) {
                (Some(Some(o)), Some(Some(n)), _) => {
                    let (po, pn) = (strip_path(o, start + 1)?, strip_path(n, start + 1)?);
                    if po != pn {
                        return Err(PatchError::Unsupported {
                            line: start + 1,
                            path: n.clone(),
                            reason: format!("old name {o} differs (renames are not supported)"),
                        });
                    }
                    n.clone()
                }
                (_, Some(Some(n)), _) => n.clone(),
                (Some(Some(o)), _, _) => o.clone(),
                (_, _, Some((a, b))) => {
                    if strip_path(a, start + 1)? != strip_path(b, start + 1)? {
                        return Err(PatchError::Unsupported {
                            line: start + 1,
                            path: b.clone(),
                            reason: format!("old name {a} differs (renames are not supported)"),
                        });
                    }
                    b.clone()
                }
                _ => {
                    return Err(syntax(
                        start + 1,
                        format!("cannot tell the file name of {head:?}"),
                    ))
                }
            };
            let path =
                strip_path(&raw, start + 1)?.ok_or_else(|| syntax(start + 1, "no file name"))?;
            if let Some((a, b)) = &names {
                // the `diff --git` names must be safe too
                strip_path(a, start + 1)?;
                strip_path(b, start + 1)?;
            }
            // hunks
            let mut hunks = Vec::new();
            while i < lines.len() && lines[i].starts_with(b"@@ ") {
                let h = text(i)?;
                let (old_start, old_len, new_len) = parse_hunk_header(h)
                    .ok_or_else(|| syntax(i + 1, format!("malformed hunk header {h:?}")))?;
                let hl = i + 1;
                i += 1;
                let (mut o, mut n) = (0usize, 0usize);
                let mut body: Vec<HunkLine> = Vec::new();
                while o < old_len || n < new_len {
                    let Some(l) = lines.get(i) else {
                        return Err(syntax(
                            i,
                            format!("hunk {h:?} ends early (patch truncated?)"),
                        ));
                    };
                    let (tag, content) = match l.first() {
                        Some(b'\n') => (b' ', &b"\n"[..]),
                        Some(b'\r') if l == b"\r\n" => (b' ', &b"\r\n"[..]),
                        Some(c) => (*c, &l[1..]),
                        None => (b'?', &l[..]),
                    };
                    let content = content.to_vec();
                    match tag {
                        b' ' => {
                            o += 1;
                            n += 1;
                            body.push(HunkLine::Context(content));
                        }
                        b'-' => {
                            o += 1;
                            body.push(HunkLine::Remove(content));
                        }
                        b'+' => {
                            n += 1;
                            body.push(HunkLine::Add(content));
                        }
                        b'\\' => {
                            strip_newline(&mut body, i + 1)?;
                        }
                        _ => {
                            return Err(syntax(
                                i + 1,
                                format!("hunk {h:?}: line does not start with ' ', '-' or '+'"),
                            ))
                        }
                    }
                    if o > old_len || n > new_len {
                        return Err(syntax(
                            i + 1,
                            format!("hunk {h:?} has more lines than its header says"),
                        ));
                    }
                    i += 1;
                }
                while i < lines.len() && lines[i].starts_with(b"\\") {
                    strip_newline(&mut body, i + 1)?;
                    i += 1;
                }
                hunks.push(Hunk {
                    header: h.to_string(),
                    line: hl,
                    old_start,
                    old_len,
                    lines: body,
                });
            }
            files.push(FilePatch {
                path,
                op,
                line: start + 1,
                hunks,
            });
            // anything else before the next file is an error
            if i < lines.len() && !lines[i].starts_with(b"diff --git ") {
                // git format-patch's signature trailer ends the patch
                if lines[i] == b"-- \n" {
                    break;
                }
                return Err(syntax(
                    i + 1,
                    format!("unexpected line {:?}", String::from_utf8_lossy(lines[i])),
                ));
            }
        }
        Ok(Patch { files })
    }

    /// Every path the patch touches.
    pub fn paths(&self) -> BTreeSet<CPath> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

fn check_mode(m: &str) -> std::result::Result<(), String> {
    match m.trim() {
        "100644" | "100755" => Ok(()),
        "120000" => Err("symbolic links are not supported".into()),
        "160000" => Err("submodules are not supported".into()),
        other => Err(format!("file mode {other} is not supported")),
    }
}

fn strip_newline(body: &mut [HunkLine], line: usize) -> std::result::Result<(), PatchError> {
    let last = body.last_mut().ok_or_else(|| {
        syntax(
            line,
            "`\\ No newline at end of file` without a line before it",
        )
    })?;
    let c = match last {
        HunkLine::Context(c) | HunkLine::Remove(c) | HunkLine::Add(c) => c,
    };
    if c.pop() != Some(b'\n') {
        return Err(syntax(line, "two `\\ No newline` markers for one line"));
    }
    Ok(())
}

/// Applies the hunks of `fp` to `old` (exact positions, no fuzz, as conex's
/// `cleanly` patching).
fn apply_hunks(old: &[u8], fp: &FilePatch) -> std::result::Result<Vec<u8>, PatchError> {
    let name = path_to_string(&fp.path);
    let olines: Vec<&[u8]> = old.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::with_capacity(old.len());
    let mut cur = 0usize; // index into olines
    for h in &fp.hunks {
        let fail = |reason: String| PatchError::Apply {
            path: name.clone(),
            hunk: h.header.clone(),
            line: h.line,
            reason,
        };
        // 0-based index of the first old line the hunk covers
        let at = if h.old_len == 0 {
            h.old_start
        } else {
            h.old_start
                .checked_sub(1)
                .ok_or_else(|| fail("old start 0 with lines to match".into()))?
        };
        if at < cur {
            return Err(fail("hunks overlap or are out of order".into()));
        }
        if at > olines.len() {
            return Err(fail(format!(
                "starts at line {} but the file has {} line(s)",
                h.old_start,
                olines.len()
            )));
        }
        for l in &olines[cur..at] {
            out.extend_from_slice(l);
        }
        cur = at;
        for hl in &h.lines {
            match hl {
                HunkLine::Context(c) | HunkLine::Remove(c) => {
                    let Some(have) = olines.get(cur) else {
                        return Err(fail(format!(
                            "line {} is past the end of the file",
                            cur + 1
                        )));
                    };
                    if *have != c.as_slice() {
                        return Err(fail(format!(
                            "line {} differs: expected {:?}, found {:?}",
                            cur + 1,
                            String::from_utf8_lossy(c),
                            String::from_utf8_lossy(have)
                        )));
                    }
                    if let HunkLine::Context(c) = hl {
                        out.extend_from_slice(c);
                    }
                    cur += 1;
                }
                HunkLine::Add(c) => out.extend_from_slice(c),
            }
        }
    }
    for l in &olines[cur..] {
        out.extend_from_slice(l);
    }
    Ok(out)
}

/// The old repository with a patch applied, in memory.
pub struct PatchedSource<'a> {
    base: &'a dyn Source,
    /// Changed files: new content, or `None` when deleted.
    changes: BTreeMap<CPath, Option<Vec<u8>>>,
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
        let mut s = PatchedSource {
            base,
            changes: BTreeMap::new(),
        };
        let canon_root = base_dir.and_then(|d| d.canonicalize().ok());
        for fp in &patch.files {
            let name = path_to_string(&fp.path);
            let op_err = |reason: String| PatchError::Apply {
                path: name.clone(),
                hunk: match fp.op {
                    FileOp::Create => "file creation".into(),
                    FileOp::Delete => "file deletion".into(),
                    FileOp::Modify => "file change".into(),
                },
                line: fp.line,
                reason,
            };
            if let Some(root) = &canon_root {
                // the deepest existing ancestor must resolve inside the repository
                let mut p = root.clone();
                let mut deepest = root.clone();
                for c in &fp.path {
                    p.push(c);
                    if std::fs::symlink_metadata(&p).is_ok() {
                        deepest = p.clone();
                    } else {
                        break;
                    }
                }
                match deepest.canonicalize() {
                    Ok(c) if c.starts_with(root) => {}
                    _ => {
                        return Err(PatchError::UnsafePath {
                            line: fp.line,
                            path: name.clone(),
                            reason: "resolves outside the repository (symbolic link)".into(),
                        })
                    }
                }
            }
            let current: Option<Vec<u8>> = match s.changes.get(&fp.path) {
                Some(c) => c.clone(),
                None => match base.read(&fp.path) {
                    Ok(b) => Some(b),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => return Err(op_err(format!("cannot read the old file: {e}"))),
                },
            };
            let new = match (fp.op, current) {
                (FileOp::Create, Some(_)) => return Err(op_err("the file exists already".into())),
                (FileOp::Create, None) => {
                    if s.is_dir(&fp.path) {
                        return Err(op_err("a directory of that name exists".into()));
                    }
                    Some(apply_hunks(&[], fp)?)
                }
                (FileOp::Delete | FileOp::Modify, None) => {
                    return Err(op_err("the file does not exist".into()))
                }
                (FileOp::Delete, Some(old)) => {
                    let rest = apply_hunks(&old, fp)?;
                    if !rest.is_empty() {
                        return Err(op_err(
                            "the deletion does not remove the whole file (it differs)".into(),
                        ));
                    }
                    None
                }
                (FileOp::Modify, Some(old)) => Some(apply_hunks(&old, fp)?),
            };
            s.changes.insert(fp.path.clone(), new);
        }
        Ok(s)
    }

    fn is_dir(&self, path: &[String]) -> bool {
        if self
            .changes
            .keys()
            .any(|k| k.len() > path.len() && k.starts_with(path))
        {
            return true;
        }
        self.base.list(path).is_ok()
    }

    /// The changed files: path → new content (`None` when deleted).
    pub fn changes(&self) -> &BTreeMap<CPath, Option<Vec<u8>>> {
        &self.changes
    }
}

impl Source for PatchedSource<'_> {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        match self.changes.get(path) {
            Some(Some(b)) => Ok(b.clone()),
            Some(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "deleted by the patch",
            )),
            None => self.base.read(path),
        }
    }

    fn open(&self, path: &[String]) -> io::Result<Box<dyn io::Read + '_>> {
        match self.changes.get(path) {
            Some(Some(b)) => Ok(Box::new(&b[..])),
            Some(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "deleted by the patch",
            )),
            None => self.base.open(path),
        }
    }

    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let added: Vec<(String, bool)> = self
            .changes
            .iter()
            .filter(|(k, v)| v.is_some() && k.len() > path.len() && k.starts_with(path))
            .map(|(k, _)| (k[path.len()].clone(), k.len() > path.len() + 1))
            .collect();
        let mut out = match self.base.list(path) {
            Ok(v) => v,
            Err(e) if added.is_empty() => return Err(e),
            Err(_) => Vec::new(),
        };
        let deleted: Vec<&String> = self
            .changes
            .iter()
            .filter(|(k, v)| v.is_none() && k.len() == path.len() + 1 && k.starts_with(path))
            .map(|(k, _)| &k[path.len()])
            .collect();
        if !deleted.is_empty() {
            out.retain(|(name, _)| !deleted.contains(&name));
        }
        for (name, is_dir) in added {
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, is_dir));
            }
        }
        Ok(out)
    }
}

/// The outcome of an incremental verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// conex's verdict: the summary of the new tree, or why it is refused.
    pub result: std::result::Result<Summary, String>,
    /// Warnings (conex's, then arca's).
    pub warnings: Vec<String>,
    /// The files the patch changes.
    pub changed: Vec<String>,
}

/// Verifies `patch` against the old repository in `old`: applies it in
/// memory, fully verifies the new tree, then checks conex's rules between
/// the two trees. Errors are about the patch itself (malformed, does not
/// apply, unsafe paths); the verification outcome is in the [`Verdict`].
pub fn verify_patch(
    old: &Path,
    patch: &[u8],
    opts: Options,
) -> std::result::Result<Verdict, PatchError> {
    let base = DirSource(old.to_path_buf());
    let parsed = Patch::parse(patch)?;
    let new = PatchedSource::apply(&base, Some(old), &parsed)?;
    let changed: Vec<String> = parsed.paths().iter().map(|p| path_to_string(p)).collect();
    let sigs = Arc::new(SigCache::new());
    let mut v = Verifier::new(&new, opts.clone()).with_sig_cache(sigs);
    let full = v.verify_full();
    let mut warnings = std::mem::take(&mut v.warnings);
    let result = full.and_then(|summary| {
        verify_diffs(&base, &new, &parsed, &opts, &mut warnings)?;
        Ok(summary)
    });
    Ok(Verdict {
        result,
        warnings,
        changed,
    })
}

/// [`verify_patch`] with the verified-state cache `cache`
/// ([`crate::verify_cache`]): when the cache holds the verified state of
/// `old`, only what the patch changes is verified; otherwise the whole
/// patched tree is. On success the cache is replaced by the state of the
/// new tree. The notes say what happened to the cache (shown with `-v`).
pub fn verify_patch_cached(
    old: &Path,
    patch: &[u8],
    opts: Options,
    cache: &Path,
) -> std::result::Result<(Verdict, Vec<String>), PatchError> {
    let base = DirSource(old.to_path_buf());
    let parsed = Patch::parse(patch)?;
    let new = PatchedSource::apply(&base, Some(old), &parsed)?;
    let paths = parsed.paths();
    let changed: Vec<String> = paths.iter().map(|p| path_to_string(p)).collect();
    let sigs = Arc::new(SigCache::new());
    let shown = cache.display();
    let mut notes = Vec::new();
    let fast = crate::verify_cache::load(cache, old, &base, &opts).and_then(|st| {
        crate::verify_cache::verify_from_state(&st, &new, &paths, &opts, sigs.clone())
    });
    let (result, warnings, state) = match fast {
        Ok(f) => {
            notes.push(format!(
                "verified-state cache {shown}: used ({} path(s) checked again)",
                f.rechecked
            ));
            let mut warnings = f.warnings;
            let result = verify_diffs_known(&base, &new, &parsed, &opts, &mut warnings, &f.headers)
                .map(|()| f.summary);
            (result, warnings, Some(f.state))
        }
        Err(why) => {
            notes.push(format!(
                "verified-state cache {shown}: not used ({why}); verifying the whole tree"
            ));
            let mut v = Verifier::new(&new, opts.clone())
                .with_sig_cache(sigs)
                .capturing();
            let full = v.verify_full();
            let tree = v.take_verified_tree();
            let mut warnings = std::mem::take(&mut v.warnings);
            let result = full.and_then(|summary| {
                verify_diffs(&base, &new, &parsed, &opts, &mut warnings)?;
                Ok(summary)
            });
            let state = tree.and_then(|t| crate::verify_cache::State::of_tree(&new, &opts, &t));
            (result, warnings, state)
        }
    };
    if result.is_ok() {
        notes.push(store_note(cache, state));
    }
    Ok((
        Verdict {
            result,
            warnings,
            changed,
        },
        notes,
    ))
}

/// Writes a verified state (when there is one) and says what happened.
pub fn store_note(cache: &Path, state: Option<crate::verify_cache::State>) -> String {
    let shown = cache.display();
    match state {
        None => format!(
            "verified-state cache {shown}: not written (warnings, delegations, no snapshot or timestamp, or names it cannot hold)"
        ),
        Some(st) => match crate::verify_cache::store(cache, &st) {
            Ok(()) => format!("verified-state cache {shown}: written"),
            Err(e) => format!("verified-state cache {shown}: not written ({e})"),
        },
    }
}

/// conex's rule for a changed targets file, from the old and new (epoch,
/// counter): same epoch ⇒ the counter strictly increases, a lower epoch is
/// refused.
fn targets_rule(
    id: &str,
    (e, c): (u64, u64),
    (e2, c2): (u64, u64),
) -> std::result::Result<(), String> {
    if e == e2 {
        if c == c2 {
            return Err(format!("counter and epoch of {id} same"));
        }
        if c > c2 {
            return Err(format!("counter of {id} is moving backwards"));
        }
    } else if e > e2 {
        return Err(format!("epoch of {id} is moving backwards"));
    }
    Ok(())
}

/// Old and new (epoch, counter) of targets files both trees hold and that
/// were already read and checked (from a verified state), by id.
type KnownHeaders = BTreeMap<String, ((u64, u64), (u64, u64))>;

/// conex's `verify_diffs`: the rules between the old and the new tree.
fn verify_diffs(
    old: &dyn Source,
    new: &dyn Source,
    patch: &Patch,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> std::result::Result<(), String> {
    verify_diffs_known(old, new, patch, opts, warnings, &KnownHeaders::new())
}

/// [`verify_diffs`], with the headers of some changed targets files known.
fn verify_diffs_known(
    old: &dyn Source,
    new: &dyn Source,
    patch: &Patch,
    opts: &Options,
    warnings: &mut Vec<String>,
    known: &KnownHeaders,
) -> std::result::Result<(), String> {
    let rn = &opts.root_name;
    let old_root: Root = read_resource(old, std::slice::from_ref(rn), rn, warnings)?;
    let new_root: Root = read_resource(new, std::slice::from_ref(rn), rn, warnings)?;
    if old_root.keydir != new_root.keydir {
        return Err("old and new key directories are different".into());
    }
    let keydir = &new_root.keydir;
    let mut root_changed = false;
    let mut ids = BTreeSet::new();
    for p in patch.paths() {
        if p.len() > keydir.len() && p.starts_with(keydir) {
            if let Some(id) = p.last() {
                ids.insert(id.clone());
            }
        } else if p.len() == 1 && p[0] == *rn {
            root_changed = true;
        }
    }
    match old_root.header.counter.cmp(&new_root.header.counter) {
        std::cmp::Ordering::Equal if root_changed => {
            return Err("root counter same, expected to increase".into())
        }
        std::cmp::Ordering::Greater => return Err("root counter decremented".into()),
        _ => {}
    }
    for id in &ids {
        if let Some((o, n)) = known.get(id) {
            targets_rule(id, *o, *n)?;
            continue;
        }
        let mut path = keydir.clone();
        path.push(id.clone());
        let read =
            |src: &dyn Source, w: &mut Vec<String>| -> std::result::Result<Targets, String> {
                let t: Targets = read_resource(src, &path, id, w)?;
                if opts.opam {
                    if let Some(bad) = t
                        .targets
                        .iter()
                        .find(|x| !x.valid_opam_path(&new_root.datadir))
                    {
                        return Err(format!(
                            "{id} contains an invalid path {}",
                            path_to_string(&bad.filename)
                        ));
                    }
                }
                Ok(t)
            };
        let deleted = matches!(new.read(&path), Err(e) if is_not_found(&e));
        let mut scratch = Vec::new();
        match (read(old, &mut scratch), read(new, warnings)) {
            (Err(_), Ok(_)) => {}
            (Ok(_), Err(_)) if deleted => {
                return Err(format!(
                    "targets file {} is deleted (conex does not allow deleting a targets file)",
                    path_to_string(&path)
                ))
            }
            (_, Err(e)) => return Err(e),
            (Ok(t), Ok(t2)) => targets_rule(
                id,
                (t.header.epoch, t.header.counter),
                (t2.header.epoch, t2.header.counter),
            )?,
        }
    }
    online_monotonicity::<Snapshot>(old, new, &new_root, crate::conex::Role::Snapshot, warnings);
    online_monotonicity::<Timestamp>(old, new, &new_root, crate::conex::Role::Timestamp, warnings);
    Ok(())
}

/// arca's extra check (a warning only; conex does not check it): a changed
/// snapshot or timestamp should have a higher counter (or epoch).
fn online_monotonicity<R: Resource>(
    old: &dyn Source,
    new: &dyn Source,
    root: &Root,
    role: crate::conex::Role,
    warnings: &mut Vec<String>,
) {
    let Ok(Some((id, _, _))) = root.single_role(role) else {
        return;
    };
    let path = vec![id.clone()];
    let (Ok(a), Ok(b)) = (old.read(&path), new.read(&path)) else {
        return;
    };
    if a == b {
        return;
    }
    let mut scratch = Vec::new();
    let (Ok(o), Ok(n)) = (
        crate::conex::verify::parse_resource::<R>(a, &id, &mut scratch),
        crate::conex::verify::parse_resource::<R>(b, &id, &mut scratch),
    ) else {
        return;
    };
    let (o, n) = (o.header(), n.header());
    if (n.epoch, n.counter) <= (o.epoch, o.counter) {
        warnings.push(format!(
            "arca: {} {id} changed but its counter did not increase (epoch {} counter {} → epoch {} counter {}); conex does not check this",
            R::TYP, o.epoch, o.counter, n.epoch, n.counter
        ));
    }
}

/// `arca verify --incremental --repository OLD --patch P`.
pub fn verify_incremental(
    old: &Path,
    patch: &Path,
    opts: Options,
    verbose: bool,
    json: bool,
    cache: Option<&Path>,
) -> Result<()> {
    if !old.is_dir() {
        return Err(ArcaError::io(old, "not a directory"));
    }
    let data = std::fs::read(patch).map_err(|e| ArcaError::io(patch, e))?;
    let (verdict, notes) = match cache {
        None => (
            verify_patch(old, &data, opts).map_err(ArcaError::from)?,
            vec![],
        ),
        Some(c) => verify_patch_cached(old, &data, opts, c).map_err(ArcaError::from)?,
    };
    if verbose && !json {
        for n in &notes {
            eprintln!("{n}");
        }
    }
    if verbose && !json {
        eprintln!(
            "patch {}: {} file(s) changed",
            patch.display(),
            verdict.changed.len()
        );
    }
    crate::cli::report(&verdict.warnings, verdict.result, verbose, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::conex::verify::MemSource as Mem;

    fn p(s: &str) -> CPath {
        s.split('/').map(str::to_string).collect()
    }

    fn apply(
        old: &[(&str, &str)],
        patch: &str,
    ) -> std::result::Result<BTreeMap<CPath, Option<Vec<u8>>>, PatchError> {
        let m = Mem(old
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let patch = Patch::parse(patch.as_bytes())?;
        let s = PatchedSource::apply(&m, None, &patch)?;
        Ok(s.changes().clone())
    }

    #[test]
    fn modify_create_delete() {
        let patch = "\
diff --git a/f b/f
index 1..2 100644
--- a/f
+++ b/f
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
diff --git a/d/new b/d/new
new file mode 100644
index 0000000..1
--- /dev/null
+++ b/d/new
@@ -0,0 +1 @@
+x
\\ No newline at end of file
diff --git a/gone b/gone
deleted file mode 100644
index 1..0000000
--- a/gone
+++ /dev/null
@@ -1 +0,0 @@
-bye
";
        let c = apply(&[("f", "one\ntwo\nthree\n"), ("gone", "bye\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"one\nTWO\nthree\n"[..]));
        assert_eq!(c[&p("d/new")].as_deref(), Some(&b"x"[..]));
        assert_eq!(c[&p("gone")], None);
    }

    #[test]
    fn no_newline_markers() {
        let patch = "\
diff --git a/f b/f
--- a/f
+++ b/f
@@ -1,2 +1,2 @@
 a
-b
\\ No newline at end of file
+b
";
        let c = apply(&[("f", "a\nb")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"a\nb\n"[..]));
    }

    #[test]
    fn refusals() {
        let m = |s: &str| apply(&[("f", "a\n")], s).unwrap_err().to_string();
        let e = m("diff --git a/../x b/../x\n--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains("'..'"), "{e}");
        let e = m("diff --git a/f b/f\n--- /etc/passwd\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains("absolute"), "{e}");
        let e = m("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-z\n+b\n");
        assert!(
            e.contains("f: @@ -1 +1 @@ (patch line 4) does not apply: line 1 differs"),
            "{e}"
        );
        let e = m("diff --git a/f b/g\nsimilarity index 90%\nrename from f\nrename to g\n");
        assert!(e.contains("renames are not supported"), "{e}");
        let e = m("diff --git a/f b/f\nindex 1..2 100644\nGIT binary patch\nliteral 1\n");
        assert!(e.contains("binary"), "{e}");
        let e = m("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n");
        assert!(e.contains("ends early"), "{e}");
        let e = m("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains("only git diffs"), "{e}");
        let e = m(
            "diff --git a/f b/f\nnew file mode 100644\n--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+a\n",
        );
        assert!(e.contains("exists already"), "{e}");
        let e = m("diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc\n");
        assert!(e.contains("symbolic links"), "{e}");
    }

    #[test]
    fn format_patch_mail_around_the_diff() {
        let patch = "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\n---\n f | 2 +-\n\ndiff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.5\n\n";
        let c = apply(&[("f", "a\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"b\n"[..]));
    }

    #[test]
    fn insertion_after_a_line_and_crlf_content() {
        let patch = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+x\r\n";
        let c = apply(&[("f", "a\r\nb\r\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"a\r\nx\r\nb\r\n"[..]));
    }

    #[test]
    fn mangled_patches_give_errors_not_panics() {
        let base = include_str!("../tests/vectors/variants/incremental-update.patch");
        let old: Vec<(&str, &str)> = vec![
            ("keys/m1", include_str!("../tests/vectors/repo/keys/m1")),
            ("snap", include_str!("../tests/vectors/repo/snap")),
            ("ts", include_str!("../tests/vectors/repo/ts")),
        ];
        let mut applied = 0;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut b = base.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % b.len().max(1);
                match next() % 4 {
                    0 => b.truncate(at),
                    1 => {
                        if at < b.len() {
                            b[at] = (next() % 256) as u8;
                        }
                    }
                    2 => {
                        if at < b.len() {
                            b.remove(at);
                        }
                    }
                    _ => {
                        let junk = b"@- +\\\n/.";
                        b.insert(at.min(b.len()), junk[(next() as usize) % junk.len()])
                    }
                }
            }
            let m = Mem(old
                .iter()
                .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
                .collect());
            if let Ok(patch) = Patch::parse(&b) {
                if PatchedSource::apply(&m, None, &patch).is_ok() {
                    applied += 1;
                }
            }
        }
        assert!(applied > 0, "some mangled patches still apply");
        let m = Mem(old
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let patch = Patch::parse(base.as_bytes()).unwrap();
        assert!(PatchedSource::apply(&m, None, &patch).is_ok());
    }

    #[test]
    fn empty_new_file_without_hunks() {
        let c = apply(
            &[],
            "diff --git a/e b/e\nnew file mode 100644\nindex 0000000..e69de29\n",
        )
        .unwrap();
        assert_eq!(c[&p("e")].as_deref(), Some(&b""[..]));
    }
}
