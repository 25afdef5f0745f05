//! The `git diff` parser and its application, with the rules of the patch
//! library conex 1.0 and opam ≥ 2.4 apply updates with (hannesm/patch 3.1,
//! `-p1`):
//!
//! * a patch is a sequence of file sections, each found by its `---`/`+++`
//!   pair (or, for git's header-only operations — a rename without content
//!   change, an empty new or deleted file — by its `diff --git` header and
//!   `rename from`/`rename to`, `new file mode` or `deleted file mode`);
//!   lines that belong to no section (mail text, `index`, `similarity
//!   index`, mode lines, binary data, stray lines) are skipped;
//! * names lose their first component (`a/`, `b/`, or whatever comes
//!   first: `-p1`); a `---`/`+++` name of `/dev/null` (or dated 1969/1970)
//!   means no file;
//! * hunks are read by their counts; `\ No newline at end of file` marks
//!   the side of the line before it;
//! * a file section whose old and new names differ is a rename: the old
//!   name is gone, the new one has the old content with the hunks applied;
//!   symbolic links (mode 120000) become regular files holding the link
//!   text;
//! * hunks apply at exactly their position (`cleanly`, no fuzz).
//!
//! What arca refuses on top (conex would not): names with `..` or `.`
//! components, a NUL byte, or inside `.git`; names that are not UTF-8; a
//! file that two sections produce when applying them one after the other
//! (as opam does) would give other bytes than the first section alone
//! (which is what conex verifies).

use crate::conex::resource::Path as CPath;
use crate::conex::wire::ocaml_int_of_string;

mod apply;
mod overlay;

pub use apply::{apply_section, apply_section_owned, ApplyFailure};
pub use overlay::PatchedSource;

/// Why a patch cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch text is not a well-formed diff (where conex's patch parser
    /// fails too).
    #[error("patch line {line}: {reason}")]
    Syntax {
        /// 1-based line number in the patch.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Something arca does not apply.
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

fn syntax(line: usize, reason: impl Into<String>) -> PatchError {
    PatchError::Syntax {
        line,
        reason: reason.into(),
    }
}

/// A header-only git operation (no hunks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOnly {
    /// `rename from`/`rename to` without content change.
    Rename,
    /// `deleted file mode` of an empty file.
    Delete,
    /// `new file mode` of an empty file.
    Create,
}

/// What a file section does (names after `-p1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `--- old` / `+++ new`: a change, a rename when the names differ.
    Edit(String, String),
    /// `+++ /dev/null`.
    Delete(String),
    /// `--- /dev/null`.
    Create(String),
    /// A header-only git operation: the two `diff --git` names.
    Git(String, String, GitOnly),
}

impl Operation {
    /// The name whose content the section produces.
    pub fn target(&self) -> Option<&str> {
        match self {
            Operation::Edit(_, n) | Operation::Create(n) => Some(n),
            Operation::Git(_, n, GitOnly::Rename | GitOnly::Create) => Some(n),
            Operation::Delete(_) | Operation::Git(_, _, GitOnly::Delete) => None,
        }
    }

    /// The name whose old content the section reads (and which is gone
    /// afterwards unless it is also the target).
    pub fn source(&self) -> Option<&str> {
        match self {
            Operation::Edit(o, _) | Operation::Delete(o) => Some(o),
            Operation::Git(o, _, GitOnly::Rename | GitOnly::Delete) => Some(o),
            Operation::Create(_) | Operation::Git(_, _, GitOnly::Create) => None,
        }
    }

    /// Every name the section mentions (conex's `ids` looks at all).
    pub fn names(&self) -> Vec<&str> {
        match self {
            Operation::Create(a) | Operation::Delete(a) => vec![a],
            Operation::Edit(a, b) | Operation::Git(a, b, _) => vec![a, b],
        }
    }
}

/// A hunk: `@@ -mine_start,mine_len +their_start,their_len @@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub(crate) header: String,
    pub(crate) line: usize,
    mine_start: i64,
    mine_len: i64,
    mine: Vec<Vec<u8>>,
    their_len: i64,
    their: Vec<Vec<u8>>,
}

/// One file section of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// What it does.
    pub op: Operation,
    /// Line of the section's first header line in the patch.
    pub line: usize,
    pub(crate) hunks: Vec<Hunk>,
    mine_no_nl: bool,
    their_no_nl: bool,
}

/// A parsed patch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patch {
    /// The file sections, in patch order.
    pub files: Vec<FilePatch>,
}

// ---------------------------------------------------------------- names

/// OCaml's `String.trim` whitespace.
fn is_ocaml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

fn ocaml_trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !is_ocaml_space(*b))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_ocaml_space(*b))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn cut(sep: u8, s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|b| *b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

enum Lexed {
    Quoted(Vec<u8>, Vec<u8>),
    Unquoted,
    Empty,
}

/// A C-style quoted name as git and GNU diff write it: the name and what
/// follows the closing quote; `Unquoted` when there is no closing quote.
fn lex_filename(s: &[u8]) -> Lexed {
    if s.is_empty() {
        return Lexed::Empty;
    }
    if s[0] != b'"' {
        return Lexed::Unquoted;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() {
        let left = s.len() - i;
        match s[i] {
            b'"' => return Lexed::Quoted(out, s[i + 1..].to_vec()),
            b'\\' if left > 2 => {
                let c = s[i + 1];
                let simple = match c {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' => Some(b'\\'),
                    b'"' => Some(b'"'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(ch);
                    i += 2;
                } else if matches!(c, b'0'..=b'3')
                    && left > 3
                    && matches!(s[i + 2], b'0'..=b'7')
                    && matches!(s[i + 3], b'0'..=b'7')
                {
                    out.push((c - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0'));
                    i += 4;
                } else {
                    out.push(b'\\');
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Lexed::Unquoted
}

/// (name, rest)
fn parse_filename(s: &[u8], allow_space: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    match lex_filename(s) {
        Lexed::Quoted(n, r) => Ok((n, r)),
        Lexed::Unquoted if !allow_space => match cut(b' ', s) {
            None => Ok((s.to_vec(), vec![])),
            Some((a, b)) => Ok((a.to_vec(), b.to_vec())),
        },
        Lexed::Unquoted => Ok((s.to_vec(), vec![])),
        Lexed::Empty => Err("empty filename".into()),
    }
}

/// The name of a `---`/`+++` line (`None` for no file).
fn fname_parse(s: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let (name, date) = match cut(b'\t', s) {
        None => parse_filename(s, false)?,
        Some((f, date)) => match parse_filename(f, true)? {
            (n, r) if r.is_empty() => (n, date.to_vec()),
            _ => return Err("Unexpected character after closing double-quote".into()),
        },
    };
    let d = ocaml_trim(&date);
    if name == b"/dev/null"
        || d.starts_with(b"1970-")
        || d.starts_with(b"1969-")
        || d.ends_with(b" 1970")
        || d.ends_with(b" 1969")
    {
        Ok(None)
    } else {
        Ok(Some(name))
    }
}

fn parse_git_filename(s: &[u8]) -> Option<Vec<u8>> {
    match parse_filename(s, true) {
        Ok((n, r)) if r.is_empty() => Some(n),
        _ => None,
    }
}

/// Splits the `diff --git` names where the first ends with `from` and the
/// second with `to`.
fn git_header_rename(from: &[u8], to: &[u8], s: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    for i in 0..s.len() {
        if s[i] == b' ' || s[i] == b'\t' {
            if let (Some(a), Some(b)) =
                (parse_git_filename(&s[..i]), parse_git_filename(&s[i + 1..]))
            {
                if a.ends_with(from) && b.ends_with(to) {
                    return Some((a, b));
                }
            }
        }
    }
    None
}

/// Splits the `diff --git` names where they share the longest suffix.
fn git_header_same(s: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut best: Option<(usize, Vec<u8>, Vec<u8>)> = None;
    for i in 0..s.len() {
        if s[i] == b' ' || s[i] == b'\t' {
            if let (Some(a), Some(b)) =
                (parse_git_filename(&s[..i]), parse_git_filename(&s[i + 1..]))
            {
                let common = a
                    .iter()
                    .rev()
                    .zip(b.iter().rev())
                    .take_while(|(x, y)| x == y)
                    .count();
                if best.as_ref().is_none_or(|(n, _, _)| common > *n) {
                    best = Some((common, a, b));
                }
            }
        }
    }
    best.map(|(_, a, b)| (a, b))
}

/// `-p1`: drops the first component (runs of slashes count as one).
fn strip_prefix(name: &[u8], line: usize) -> Result<String, PatchError> {
    let mut parts = name.split(|b| *b == b'/');
    let _first = parts.next();
    let rest: Vec<&[u8]> = parts.filter(|p| !p.is_empty()).collect();
    if rest.is_empty() {
        return Err(syntax(
            line,
            format!(
                "file name {:?} has no directory to strip (-p1)",
                String::from_utf8_lossy(name)
            ),
        ));
    }
    let joined = rest.join(&b'/');
    let s = String::from_utf8(joined).map_err(|e| {
        syntax(
            line,
            format!(
                "file name {:?} is not UTF-8",
                String::from_utf8_lossy(e.as_bytes())
            ),
        )
    })?;
    check_safe(&s, line)?;
    Ok(s)
}

/// arca's own refusals for names (see the module documentation).
fn check_safe(s: &str, line: usize) -> Result<(), PatchError> {
    let unsafe_path = |reason: &str| PatchError::UnsafePath {
        line,
        path: s.to_string(),
        reason: reason.into(),
    };
    if s.contains('\0') {
        return Err(unsafe_path("NUL byte in path"));
    }
    let parts: Vec<&str> = s.split('/').collect();
    if parts.contains(&"..") {
        return Err(unsafe_path("'..' components are refused"));
    }
    if parts.contains(&".") {
        return Err(unsafe_path("'.' components are refused"));
    }
    if parts.contains(&".git") {
        return Err(unsafe_path("paths inside .git are refused"));
    }
    Ok(())
}

/// A patch name as repository path components.
pub fn name_to_path(s: &str) -> CPath {
    s.split('/').map(str::to_string).collect()
}

// ---------------------------------------------------------------- parser

fn starts(l: &[u8], p: &str) -> bool {
    l.starts_with(p.as_bytes())
}

fn to_start_len(data: &[u8], line: usize) -> Result<(i64, i64), PatchError> {
    let bad = || {
        syntax(
            line,
            format!(
                "hunk range {:?} is malformed",
                String::from_utf8_lossy(data)
            ),
        )
    };
    if data.is_empty() {
        return Err(bad());
    }
    match cut(b',', &data[1..]) {
        None if data == b"+1" || data == b"-1" => Ok((1, 1)),
        None => Err(bad()),
        Some((a, b)) => Ok((
            ocaml_int_of_string(a).ok_or_else(bad)?,
            ocaml_int_of_string(b).ok_or_else(bad)?,
        )),
    }
}

type Range = (i64, i64);

fn hunk_header(l: &[u8], line: usize) -> Result<(Range, Range), PatchError> {
    let bad = |why: &str| {
        syntax(
            line,
            format!("hunk header {:?}: {why}", String::from_utf8_lossy(l)),
        )
    };
    let first = l
        .split(|b| *b == b'@')
        .find(|p| !p.is_empty())
        .ok_or_else(|| bad("broken line"))?;
    let nums = ocaml_trim(first);
    let (mine, theirs) = cut(b' ', nums).ok_or_else(|| bad("no space in the ranges"))?;
    Ok((to_start_len(mine, line)?, to_start_len(theirs, line)?))
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Both,
    Mine,
    Their,
}

/// Reads the hunks of one section from `lines[k..]`: (hunks, mine_no_nl,
/// their_no_nl, index of the first line after them).
fn read_hunks(lines: &[&[u8]], mut k: usize) -> Result<(Vec<Hunk>, bool, bool, usize), PatchError> {
    let n = lines.len();
    let (mut m_nl, mut t_nl) = (false, false);
    let mut hunks = Vec::new();
    while k < n && starts(lines[k], "@@ -") {
        let hl = k + 1;
        let header = String::from_utf8_lossy(lines[k]).into_owned();
        let ((ms, ml), (_ts, tl)) = hunk_header(lines[k], hl)?;
        k += 1;
        let (mut cm, mut ct) = (ml, tl);
        let mut dir = Dir::Both;
        let (mut mine, mut their) = (Vec::new(), Vec::new());
        let fail = |at: usize, why: &str| syntax(at, format!("hunk {header:?}: {why}"));
        loop {
            let rest_is_end = k >= n || (k + 1 == n && lines[k].is_empty());
            if rest_is_end {
                if (cm, ct) == (0, 0) {
                    k = n;
                    break;
                }
                if k < n && cm == ct && (1..=3).contains(&cm) {
                    for _ in 0..cm {
                        mine.push(vec![]);
                        their.push(vec![]);
                    }
                    k = n;
                    break;
                }
                return Err(fail(k.min(n), "the patch ends inside the hunk"));
            }
            let x = lines[k];
            if (cm, ct) == (0, 0) && (x.is_empty() || x[0] != b'\\') {
                break;
            }
            let mut both = |data: &[u8], cm: &mut i64, ct: &mut i64| -> Result<(), PatchError> {
                if m_nl || t_nl {
                    return Err(fail(
                        k + 1,
                        "\"no newline at the end of file\" is not at the end of the file",
                    ));
                }
                if *cm == 0 || *ct == 0 {
                    return Err(fail(k + 1, "more lines than the header says"));
                }
                *cm -= 1;
                *ct -= 1;
                mine.push(data.to_vec());
                their.push(data.to_vec());
                Ok(())
            };
            if x.is_empty() {
                both(b"", &mut cm, &mut ct)?;
                dir = Dir::Both;
            } else {
                match x[0] {
                    b' ' => {
                        both(&x[1..], &mut cm, &mut ct)?;
                        dir = Dir::Both;
                    }
                    b'\t' => {
                        both(x, &mut cm, &mut ct)?;
                        dir = Dir::Both;
                    }
                    b'+' => {
                        if t_nl {
                            return Err(fail(
                                k + 1,
                                "\"no newline at the end of file\" is not at the end of the file",
                            ));
                        }
                        if ct == 0 {
                            return Err(fail(k + 1, "more '+' lines than the header says"));
                        }
                        ct -= 1;
                        their.push(x[1..].to_vec());
                        dir = Dir::Their;
                    }
                    b'-' => {
                        if m_nl {
                            return Err(fail(
                                k + 1,
                                "\"no newline at the end of file\" is not at the end of the file",
                            ));
                        }
                        if cm == 0 {
                            return Err(fail(k + 1, "more '-' lines than the header says"));
                        }
                        cm -= 1;
                        mine.push(x[1..].to_vec());
                        dir = Dir::Mine;
                    }
                    b'\\' => match dir {
                        Dir::Both => {
                            m_nl = true;
                            t_nl = true;
                        }
                        Dir::Mine => m_nl = true,
                        Dir::Their => t_nl = true,
                    },
                    _ => {
                        return Err(fail(
                            k + 1,
                            "a line that does not start with ' ', '-', '+' or '\\'",
                        ))
                    }
                }
            }
            k += 1;
        }
        hunks.push(Hunk {
            header,
            line: hl,
            mine_start: ms,
            mine_len: ml,
            mine,
            their_len: tl,
            their,
        });
    }
    Ok((hunks, m_nl, t_nl, k))
}

fn operation_of_strings(mine: &[u8], their: &[u8], line: usize) -> Result<Operation, PatchError> {
    let a = fname_parse(&mine[4..]).map_err(|e| syntax(line, e))?;
    let b = fname_parse(&their[4..]).map_err(|e| syntax(line + 1, e))?;
    Ok(match (a, b) {
        (None, Some(b)) => Operation::Create(strip_prefix(&b, line + 1)?),
        (Some(a), None) => Operation::Delete(strip_prefix(&a, line)?),
        (Some(a), Some(b)) => Operation::Edit(strip_prefix(&a, line)?, strip_prefix(&b, line + 1)?),
        (None, None) => return Err(syntax(line, "both file names are /dev/null")),
    })
}

type GitAction = (String, String, GitOnly);

/// One section from `lines[i..]`, and where the next search starts.
fn parse_one(lines: &[&[u8]], i: usize) -> Result<Option<(FilePatch, usize)>, PatchError> {
    let n = lines.len();
    let mut mode: Option<usize> = None;
    let mut action: Option<(GitAction, usize)> = None;
    let git_only = |(a, b, g): GitAction, line: usize| FilePatch {
        op: Operation::Git(a, b, g),
        line,
        hunks: vec![],
        mine_no_nl: false,
        their_no_nl: false,
    };
    let mut j = i;
    loop {
        if j >= n {
            return Ok(action.map(|(a, l)| (git_only(a, l), n)));
        }
        let x = lines[j];
        if starts(x, "diff --git ") {
            match action {
                None => {
                    mode = Some(j);
                    j += 1;
                    continue;
                }
                Some((a, l)) => return Ok(Some((git_only(a, l), j))),
            }
        }
        let names = mode.map(|m| &lines[m][11..]);
        if let Some(names) = names {
            if starts(x, "rename from ") && j + 1 < n && starts(lines[j + 1], "rename to ") {
                let (from, to) = (&x[12..], &lines[j + 1][10..]);
                if let Some((a, b)) = git_header_rename(from, to, names) {
                    let m = mode.unwrap_or(j);
                    action = Some((
                        (
                            strip_prefix(&a, m + 1)?,
                            strip_prefix(&b, m + 1)?,
                            GitOnly::Rename,
                        ),
                        m + 1,
                    ));
                }
                j += 2;
                continue;
            }
            let kind = if starts(x, "deleted file mode ") {
                Some(GitOnly::Delete)
            } else if starts(x, "new file mode ") {
                Some(GitOnly::Create)
            } else {
                None
            };
            if let Some(kind) = kind {
                if let Some((a, b)) = git_header_same(names) {
                    let m = mode.unwrap_or(j);
                    action = Some((
                        (strip_prefix(&a, m + 1)?, strip_prefix(&b, m + 1)?, kind),
                        m + 1,
                    ));
                }
                j += 1;
                continue;
            }
        }
        if starts(x, "--- ") && j + 1 < n && starts(lines[j + 1], "+++ ") {
            let op = operation_of_strings(x, lines[j + 1], j + 1)?;
            let line = mode.map_or(j + 1, |m| m + 1);
            let accept = match (&action, &op) {
                (None, _) => true,
                (
                    Some(((f, _, GitOnly::Delete), _)),
                    Operation::Delete(f2) | Operation::Edit(f2, _),
                ) => f == f2,
                (
                    Some(((_, f, GitOnly::Create), _)),
                    Operation::Create(f2) | Operation::Edit(_, f2),
                ) => f == f2,
                (Some(((a, b, GitOnly::Rename), _)), Operation::Edit(a2, b2)) => a == a2 && b == b2,
                _ => false,
            };
            if !accept {
                let (a, l) = action.take().expect("a git action");
                return Ok(Some((git_only(a, l), j)));
            }
            let (hunks, mine_no_nl, their_no_nl, next) = read_hunks(lines, j + 2)?;
            return Ok(Some((
                FilePatch {
                    op,
                    line,
                    hunks,
                    mine_no_nl,
                    their_no_nl,
                },
                next,
            )));
        }
        if starts(x, "*** ") && j + 1 < n && starts(lines[j + 1], "--- ") {
            return Err(syntax(j + 1, "context diffs are not supported"));
        }
        j += 1;
    }
}

impl Patch {
    /// Parses a patch (a `git diff`, `diff -u`, or `git format-patch`
    /// mail), as conex's patch library does.
    pub fn parse(data: &[u8]) -> Result<Patch, PatchError> {
        let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        let mut files = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            match parse_one(&lines, i)? {
                None => break,
                Some((fp, next)) => {
                    files.push(fp);
                    i = next;
                }
            }
        }
        Ok(Patch { files })
    }

    /// Every path the patch names (old and new names of every section).
    pub fn paths(&self) -> std::collections::BTreeSet<CPath> {
        self.files
            .iter()
            .flat_map(|f| f.op.names())
            .map(name_to_path)
            .collect()
    }

    /// The first section producing `name`, as conex looks it up.
    pub fn target_section(&self, name: &str) -> Option<&FilePatch> {
        self.files.iter().find(|f| f.op.target() == Some(name))
    }

    /// The first section reading (and removing) `name`.
    pub fn source_section(&self, name: &str) -> Option<&FilePatch> {
        self.files.iter().find(|f| f.op.source() == Some(name))
    }
}
