//! A borrowing parser for targets files in the shape conex writes them,
//! and the canonical string of a targets file written directly.
//!
//! Targets files are the large conex files (one entry per signed file), and
//! verification reads every one of them. [`parse`] reads the common shape
//! without the general parser's token strings, value tree and wire tree:
//! the file is read in place and each entry becomes a [`Target`] directly.
//! It accepts only a strict subset of the syntax — blanks (space, tab,
//! line feed), `name:` items, `[ … ]` lists, identifiers, decimal integers
//! and strings (plain ones read in place; those with escapes, carriage
//! returns or triple quotes, such as RSA keys, by the general lexer's
//! string rule) — and only files that the general path decodes without a
//! warning. On anything else (a comment, a group, an operator, a carriage
//! return between tokens, a duplicate key, an entry that is not
//! `[[filename "…"] [size 0x…] [digest […]]]` in some order, a value the
//! general path would refuse or warn about) it returns `None` and the
//! caller runs the general parser, so that its verdict, warnings and
//! messages are exactly those of the general parser. The small parts of
//! the file (header, keys, `valid`, delegations, signatures) go through the
//! same decoding and the same functions as in the general path.

use super::key::Digest;
use super::opam::ocaml_trim;
use super::resource::{self, Target, Targets};
use super::wire::{uint_of_string, Wire, WireMap};
use std::borrow::Cow;

/// Nesting limit of the fast path (the general parser allows 200).
const MAX_DEPTH: usize = 64;

/// A value read in place.
enum V<'a> {
    Id(&'a str),
    Int(i64),
    Str(Cow<'a, str>),
    List(Vec<V<'a>>),
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic()
}
fn is_ichar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

struct P<'a, 'b> {
    t: &'a str,
    s: &'a [u8],
    i: usize,
    /// The end of the `targets` list, read from a later entry on the side.
    tail: Option<&'b Tail<'a>>,
}

/// Files at least this long are read in two parts at once.
const SPLIT_MIN: usize = 1 << 20;

/// The entries of a `targets` list from position `at` on, read on another
/// thread while the file is read up to there. `at` is a guess at where an
/// entry starts (after `]`, blanks, `[`, blanks, `[`); it is used only if
/// the reading from the start arrives there between two entries of the
/// list — then what follows is read exactly as that reading would have
/// read it — and ignored otherwise.
struct Tail<'a> {
    at: usize,
    /// Taken by whichever reads the part: the thread on the side, or the
    /// reading from the start when it arrives first.
    claimed: std::sync::atomic::AtomicBool,
    done: std::sync::Mutex<Option<Option<Rest<'a>>>>,
    ready: std::sync::Condvar,
}

/// The entries of the end of a `targets` list, their digests (ranges from
/// 0) and the position after the list.
struct Rest<'a> {
    entries: Vec<EntryRef<'a>>,
    digests: Vec<&'a str>,
    end: usize,
}

impl<'a> Tail<'a> {
    /// Where to read the end of a large file's `targets` list from: the
    /// first entry start after `tenths` tenths of the text.
    fn guess(text: &str, tenths: usize) -> Option<usize> {
        let s = text.as_bytes();
        let from = s.len() / 10 * tenths.min(9);
        let window = s.get(from..(from + (1 << 16)).min(s.len()))?;
        let blank = |c: &u8| matches!(c, b' ' | b'\t' | b'\n');
        let mut k = 0;
        while let Some(j) = memchr::memchr(b']', &window[k..]) {
            let at = k + j + 1;
            let mut i = at;
            let skip = |i: &mut usize| {
                while window.get(*i).is_some_and(blank) {
                    *i += 1;
                }
            };
            skip(&mut i);
            if window.get(i) == Some(&b'[') {
                let start = i;
                i += 1;
                skip(&mut i);
                if window.get(i) == Some(&b'[') {
                    return Some(from + start);
                }
            }
            k = at;
        }
        None
    }

    fn new(at: usize) -> Tail<'a> {
        Tail {
            at,
            claimed: false.into(),
            done: std::sync::Mutex::new(None),
            ready: std::sync::Condvar::new(),
        }
    }

    fn claim(&self) -> bool {
        !self.claimed.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    fn read(&self, text: &'a str) -> Option<Rest<'a>> {
        P {
            t: text,
            s: text.as_bytes(),
            i: self.at,
            tail: None,
        }
        .rest_of_targets()
    }

    /// On the side: reads the part unless the reading from the start took
    /// it.
    fn run(&self, text: &'a str) {
        /// Says the part is done even if reading it panics (the reading
        /// from the start then reads it itself), so that nothing waits for
        /// ever.
        struct Done<'t, 'a>(&'t Tail<'a>, Option<Rest<'a>>);
        impl Drop for Done<'_, '_> {
            fn drop(&mut self) {
                let mut d = self.0.done.lock().unwrap_or_else(|p| p.into_inner());
                *d = Some(self.1.take());
                self.0.ready.notify_all();
            }
        }
        if self.claim() {
            let mut done = Done(self, None);
            done.1 = self.read(text);
        }
    }

    /// From the start, arrived at `at`: the part, read here if the side
    /// has not begun it, else waited for.
    fn take(&self, text: &'a str) -> Option<Rest<'a>> {
        if self.claim() {
            return self.read(text);
        }
        let mut d = self.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = d.take() {
                return r;
            }
            d = self.ready.wait(d).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// What a word (a run of identifier characters) is.
enum Word<'a> {
    Id(&'a str),
    Int(i64),
}

impl<'a> P<'a, '_> {
    fn ws(&mut self) {
        // eight bytes at a time (a line break and its indentation are
        // most of a targets file's blanks), the last few one at a time
        use super::swar::{differs, first, word_at};
        while let Some(w) = word_at(self.s, self.i) {
            match differs(w, b' ') & differs(w, b'\t') & differs(w, b'\n') {
                0 => self.i += 8,
                other => {
                    self.i += first(other);
                    return;
                }
            }
        }
        while let Some(b' ' | b'\t' | b'\n') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// A word at the cursor, as the general lexer reads it (longest match
    /// of its rules); `None` where the rules could read it otherwise (a
    /// `+` or `:` after it, `true`/`false`, a sign, an underscore-only or
    /// too long number).
    fn word(&mut self) -> Option<Word<'a>> {
        self.word_before(false)
    }

    /// [`Self::word`]; with `colon`, a `:` may follow (a variable name).
    fn word_before(&mut self, colon: bool) -> Option<Word<'a>> {
        let k = self.i;
        let mut j = k;
        let mut alpha = false;
        while let Some(&c) = self.s.get(j) {
            if !is_ichar(c) {
                break;
            }
            alpha |= is_alpha(c);
            j += 1;
        }
        if j == k || matches!(self.s.get(j), Some(b'+')) || (!colon && self.s.get(j) == Some(&b':'))
        {
            return None;
        }
        let w = &self.t[k..j];
        self.i = j;
        if alpha {
            if w == "true" || w == "false" {
                return None;
            }
            return Some(Word::Id(w));
        }
        if w.len() <= 18 && w.bytes().all(|b| b.is_ascii_digit()) {
            return w.parse().ok().map(Word::Int);
        }
        None
    }

    /// A string at the cursor (its opening quote checked): in place when
    /// it is plain, else (an escape, a carriage return, triple quotes)
    /// read by the general lexer's string rule.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let k = self.i + 1;
        if self.s.get(k) == Some(&b'"') && self.s.get(k + 1) == Some(&b'"') {
            let (v, end) = super::opam::lex_string(self.s, k + 2, true).ok()?;
            self.i = end;
            return Some(Cow::Owned(v));
        }
        let j = k + memchr::memchr3(b'"', b'\\', b'\r', self.s.get(k..)?)?;
        if self.s[j] != b'"' {
            let (v, end) = super::opam::lex_string(self.s, k, false).ok()?;
            self.i = end;
            return Some(Cow::Owned(v));
        }
        self.i = j + 1;
        Some(Cow::Borrowed(&self.t[k..j]))
    }

    fn value(&mut self, depth: usize) -> Option<V<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'[' => {
                self.i += 1;
                let mut xs = Vec::new();
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(V::List(xs));
                    }
                    xs.push(self.value(depth + 1)?);
                }
            }
            b'"' => self.string().map(V::Str),
            c if is_ichar(c) => match self.word()? {
                Word::Id(w) => Some(V::Id(w)),
                Word::Int(n) => Some(V::Int(n)),
            },
            _ => None,
        }
    }

    /// `[` at the cursor, after blanks.
    fn open(&mut self) -> Option<()> {
        self.ws();
        (self.peek()? == b'[').then(|| self.i += 1)
    }

    /// `]` at the cursor, after blanks.
    fn close(&mut self) -> bool {
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// An identifier at the cursor, after blanks.
    fn ident(&mut self) -> Option<&'a str> {
        self.ws();
        match self.word()? {
            Word::Id(w) => Some(w),
            Word::Int(_) => None,
        }
    }

    /// An entry's field name at the cursor, after blanks: [`Self::ident`],
    /// with the three names an entry has read without the general word
    /// rule (the same outcome: the rule reads such a name whole when no
    /// identifier character, `+` or `:` follows it).
    fn field(&mut self) -> Option<&'a str> {
        self.ws();
        let rest = &self.s[self.i..];
        for f in ["size", "filename", "digest"] {
            if let Some(after) = rest.strip_prefix(f.as_bytes()) {
                if !after
                    .first()
                    .is_some_and(|&c| is_ichar(c) || c == b'+' || c == b':')
                {
                    self.i += f.len();
                    return Some(f);
                }
            }
        }
        self.ident()
    }

    /// A string at the cursor, after blanks.
    fn str(&mut self) -> Option<Cow<'a, str>> {
        self.ws();
        if self.peek()? != b'"' {
            return None;
        }
        self.string()
    }

    /// A plain string at the cursor, after blanks, read in place and
    /// trimmed as conex trims a value; `None` for one the general lexer
    /// must read (an escape, a carriage return, triple quotes).
    fn plain_str(&mut self) -> Option<&'a str> {
        match self.str()? {
            Cow::Borrowed(s) => Some(ocaml_trim(s)),
            Cow::Owned(_) => None,
        }
    }

    /// One entry `[[filename "…"] [size 0x…] [digest ["…" …]]]`, its three
    /// fields in any order, exactly once each; its digests are appended to
    /// `digests`.
    fn target(&mut self, digests: &mut Vec<&'a str>) -> Option<EntryRef<'a>> {
        let (mut path, mut size, mut ds) = (None, None, None);
        for _ in 0..3 {
            self.open()?;
            match self.field()? {
                "filename" if path.is_none() => {
                    let s = self.plain_str()?;
                    let s = s.strip_prefix('/').unwrap_or(s);
                    if !resource::valid_path_str(s) {
                        return None;
                    }
                    path = Some(s);
                }
                "size" if size.is_none() => {
                    let w = self.ident()?;
                    if !w.starts_with("0x") {
                        return None;
                    }
                    size = Some(uint_of_string(w)?);
                }
                "digest" if ds.is_none() => {
                    self.open()?;
                    let start = digests.len();
                    while !self.close() {
                        // an unknown algorithm warns, a malformed digest
                        // is refused: both left to the general path
                        let d = self.plain_str()?;
                        // what `Digest::parse` accepts (`sha256=…`), without
                        // making the digest
                        if !d.starts_with("sha256=") {
                            return None;
                        }
                        digests.push(d);
                    }
                    ds = Some(start..digests.len());
                }
                _ => return None,
            }
            if !self.close() {
                return None;
            }
        }
        if !self.close() {
            return None;
        }
        let ds = ds?;
        Some(EntryRef {
            path: path?,
            digests: u32::try_from(ds.start).ok()?..u32::try_from(ds.end).ok()?,
            size: size?,
        })
    }

    /// The `targets` list.
    fn targets(&mut self, digests: &mut Vec<&'a str>) -> Option<Vec<EntryRef<'a>>> {
        self.open()?;
        let mut out = Vec::new();
        while !self.close() {
            if let Some(tail) = self.tail.filter(|t| t.at == self.i) {
                // the rest of the list as read from here on the side, if
                // it could be (else it is read here, as it would have been)
                if let Some(rest) = tail.take(self.t) {
                    out.extend(rest.entries.into_iter().map(|mut e| {
                        e.shift(digests.len());
                        e
                    }));
                    digests.extend(rest.digests);
                    self.i = rest.end;
                    return Some(out);
                }
            }
            self.open()?;
            out.push(self.target(digests)?);
        }
        Some(out)
    }

    /// The entries from the cursor to the end of the `targets` list (read
    /// as [`Self::targets`] reads them from there), and the position after
    /// the list.
    fn rest_of_targets(&mut self) -> Option<Rest<'a>> {
        let (mut entries, mut digests) = (Vec::new(), Vec::new());
        while !self.close() {
            self.open()?;
            entries.push(self.target(&mut digests)?);
        }
        Some(Rest {
            entries,
            digests,
            end: self.i,
        })
    }

    /// The `signed` map: its small fields decoded to wire values, the
    /// `targets` list read into entries.
    fn signed(&mut self, digests: &mut Vec<&'a str>) -> Option<(WireMap, Vec<EntryRef<'a>>)> {
        self.open()?;
        let mut m = WireMap::new();
        let mut targets = None;
        let mut n = 0;
        while !self.close() {
            n += 1;
            self.open()?;
            let k = self.ident()?;
            if k == "targets" {
                if targets.is_some() {
                    return None;
                }
                targets = Some(self.targets(digests)?);
            } else {
                let v = wire(self.value(1)?)?;
                if m.insert(k.to_string(), v).is_some() {
                    return None;
                }
            }
            if !self.close() {
                return None;
            }
        }
        // an empty list would decode to a list, not a map
        if n == 0 {
            return None;
        }
        Some((m, targets?))
    }
}

/// Whether a value is a `[key value]` pair (the general decoder's test for
/// a list that is a map).
fn is_pair(v: &V) -> bool {
    matches!(v, V::List(kv) if kv.len() == 2 && matches!(kv[0], V::Id(_)))
}

/// The general decoder (`opam::decode_value`) on a value read in place;
/// `None` where it would fail or warn.
fn wire(v: V) -> Option<Wire> {
    Some(match v {
        V::Id(s) if s.starts_with("0x") => Wire::Bigint(uint_of_string(s)?),
        V::Id("emptymap") => Wire::Map(WireMap::new()),
        V::Id(s) => Wire::Ident(s.to_string()),
        V::Str(s) => Wire::Data(ocaml_trim(&s).to_string()),
        V::Int(i) => Wire::Smallint(i),
        V::List(xs) if xs.is_empty() => Wire::List(vec![]),
        V::List(xs) if xs.iter().all(is_pair) => {
            let mut m = WireMap::new();
            for x in xs {
                let V::List(kv) = x else { return None };
                let mut kv = kv.into_iter();
                let (Some(V::Id(k)), Some(val)) = (kv.next(), kv.next()) else {
                    return None;
                };
                if m.insert(ocaml_trim(k).to_string(), wire(val)?).is_some() {
                    return None;
                }
            }
            Wire::Map(m)
        }
        V::List(xs) => Wire::List(xs.into_iter().map(wire).collect::<Option<_>>()?),
    })
}

/// One entry of a targets file read in place: its path (as conex reads
/// it: trimmed, without a leading `/`, every component checked) and its
/// size; its digests are a range of [`TargetsView::digests`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The path, components joined by `/`.
    pub path: &'a str,
    digests: std::ops::Range<u32>,
    /// Size in bytes.
    pub size: u64,
}

impl EntryRef<'_> {
    /// Moves the digest range by `n` (entries read apart, then joined).
    fn shift(&mut self, n: usize) {
        let n = n as u32;
        self.digests = self.digests.start + n..self.digests.end + n;
    }
}

/// A targets file read in place: everything but the entries decoded as
/// the general path decodes it (`head`, whose `targets` is empty), the
/// entries borrowed from the file's text.
#[derive(Clone, Debug)]
pub struct TargetsView<'a> {
    /// The targets file without its entries.
    pub head: Targets,
    /// The entries, in file order.
    pub entries: Vec<EntryRef<'a>>,
    digests: Vec<&'a str>,
}

impl<'a> TargetsView<'a> {
    /// The digests of an entry (`alg=data`, trimmed, each one that
    /// [`Digest::parse`] reads).
    pub fn digests(&self, e: &EntryRef<'a>) -> &[&'a str] {
        &self.digests[e.digests.start as usize..e.digests.end as usize]
    }

    /// The entries as [`Target`]s.
    fn owned_targets(&self) -> Vec<Target> {
        self.entries
            .iter()
            .map(|e| {
                // exactly as long as needed (a collected iterator of unknown
                // length starts at four): a repository has many entries
                let ds = self.digests(e);
                let mut digest = Vec::with_capacity(ds.len());
                digest.extend(ds.iter().filter_map(|d| Digest::parse(d).ok()));
                let parts = e.path.split('/');
                let mut filename = Vec::with_capacity(parts.clone().count());
                filename.extend(parts.map(str::to_string));
                Target {
                    filename,
                    digest,
                    size: e.size,
                }
            })
            .collect()
    }

    /// The canonical string of the `signed` map (the bytes
    /// [`canonical_signed`] gives for the owned targets file).
    pub fn canonical_signed(&self) -> String {
        // each entry's bytes, at most: its path and digests and the rest
        let size: usize = self
            .entries
            .iter()
            .map(|e| 48 + e.path.len() + self.digests(e).iter().map(|d| d.len() + 8).sum::<usize>())
            .sum();
        let mut out = String::with_capacity(4096 + size);
        self.write_canonical_signed(&mut out);
        out
    }

    /// `before`, the canonical string of the `signed` map and `after`,
    /// given to `sink` in pieces of some kilobytes as they are written
    /// (the same bytes as `before`, [`Self::canonical_signed`] and
    /// `after`, without holding them all: a large targets file's are
    /// megabytes).
    pub fn stream_canonical_signed(&self, before: &str, after: &str, sink: &mut dyn FnMut(&[u8])) {
        let mut out = Pieces {
            buf: String::with_capacity(PIECE + 1024),
            sink,
        };
        out.push_str(before);
        self.write_canonical_signed(&mut out);
        out.push_str(after);
        out.flush();
    }

    fn write_canonical_signed(&self, out: &mut impl Out) {
        canonical_signed_with(&self.head, out, |out| {
            write_targets(
                out,
                self.entries.iter().map(|e| {
                    let ds = self
                        .digests(e)
                        .iter()
                        .map(|d| super::key::split_digest(d).unwrap_or((d, "")));
                    (ds, std::iter::once(e.path), e.size)
                }),
            )
        })
    }
}

/// Where a canonical string is written: a `String`, or [`Pieces`].
trait Out {
    fn push_str(&mut self, s: &str);
    /// Appends the canonical string of `v`.
    fn wire(&mut self, v: &Wire);
}

impl Out for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s)
    }
    fn wire(&mut self, v: &Wire) {
        v.write_canonical(self)
    }
}

/// How many bytes [`Pieces`] gathers before it hands them on.
const PIECE: usize = 32 << 10;

/// A canonical string handed on in pieces of about [`PIECE`] bytes.
struct Pieces<'s> {
    buf: String,
    sink: &'s mut dyn FnMut(&[u8]),
}

impl Pieces<'_> {
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            (self.sink)(self.buf.as_bytes());
            self.buf.clear();
        }
    }
}

impl Pieces<'_> {
    /// Hands the gathered bytes on once they fill a piece.
    fn flush_full(&mut self) {
        if self.buf.len() >= PIECE {
            self.flush();
        }
    }
}

impl Out for Pieces<'_> {
    fn push_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.flush_full();
    }
    fn wire(&mut self, v: &Wire) {
        v.write_canonical(&mut self.buf);
        self.flush_full();
    }
}

/// Reads a targets file in the common shape in place; `None` when the
/// general parser must decide (see the module documentation). On success,
/// the view and the warnings the general path gives for the file.
pub fn parse_view(text: &str) -> Option<(TargetsView<'_>, Vec<String>)> {
    // the other thread usually hashes the file first
    parse_view_split(text, 7)
}

/// [`parse_view`] for a file that nothing else is done with meanwhile: a
/// large one is read in halves.
pub fn parse_view_alone(text: &str) -> Option<(TargetsView<'_>, Vec<String>)> {
    parse_view_split(text, 5)
}

/// [`parse_view`]; a large file is read in two parts at once, the end of
/// its entries on the side from about `tenths` tenths of the text on.
fn parse_view_split(text: &str, tenths: usize) -> Option<(TargetsView<'_>, Vec<String>)> {
    if text.len() >= SPLIT_MIN {
        if let Some(at) = Tail::guess(text, tenths) {
            let tail = Tail::new(at);
            let (r, ()) = rayon::join(|| parse_view_with(text, Some(&tail)), || tail.run(text));
            return r;
        }
    }
    parse_view_with(text, None)
}

fn parse_view_with<'a>(
    text: &'a str,
    tail: Option<&Tail<'a>>,
) -> Option<(TargetsView<'a>, Vec<String>)> {
    let mut p = P {
        t: text,
        s: text.as_bytes(),
        i: 0,
        tail,
    };
    let mut digests = Vec::new();
    let (mut signed, mut sigs) = (None, None);
    loop {
        p.ws();
        if p.peek().is_none() {
            break;
        }
        let name = match p.word_before(true)? {
            Word::Id(w) => w,
            Word::Int(_) => return None,
        };
        // `name:` followed by a blank, a list or a string (an identifier
        // right after the colon would be read with the name)
        if p.peek()? != b':' {
            return None;
        }
        p.i += 1;
        if !matches!(p.peek()?, b' ' | b'\t' | b'\n' | b'[' | b'"') {
            return None;
        }
        match name {
            "signed" if signed.is_none() => signed = Some(p.signed(&mut digests)?),
            "signatures" if sigs.is_none() => {
                let v = p.value(0)?;
                if !matches!(&v, V::List(xs) if xs.is_empty() || !xs.iter().all(is_pair)) {
                    return None;
                }
                sigs = Some(wire(v)?);
            }
            _ => return None,
        }
    }
    let (signed, entries) = signed?;
    let sigs = match sigs {
        Some(Wire::List(l)) => l,
        None => Vec::new(),
        Some(_) => return None,
    };
    let mut warnings = Vec::new();
    let head =
        resource::targets_of_parts(&signed, &sigs, &mut warnings, |_| Ok(Vec::new())).ok()?;
    Some((
        TargetsView {
            head,
            entries,
            digests,
        },
        warnings,
    ))
}

/// Parses a targets file in the common shape; `None` when the general
/// parser must decide (see the module documentation). On success, the
/// targets file and the warnings the general path gives for it.
pub fn parse(text: &str) -> Option<(Targets, Vec<String>)> {
    let (view, warnings) = parse_view(text)?;
    let targets = view.owned_targets();
    let mut t = view.head;
    t.targets = targets;
    Some((t, warnings))
}

/// The canonical string of a targets file's `signed` map, written without
/// building its wire value (the same bytes as
/// `Wire::Map(t.signed_wire()).canonical()`).
pub(super) fn canonical_signed(t: &Targets) -> String {
    let mut out = String::with_capacity(4096 + t.targets.len() * 140);
    canonical_signed_with(t, &mut out, |out| {
        write_targets(
            out,
            t.targets.iter().map(|e| {
                let ds = e.digest.iter().map(|d| (&*d.alg, d.data.as_str()));
                (ds, e.filename.iter().map(String::as_str), e.size)
            }),
        )
    });
    out
}

/// Appends to `out` the canonical string of the `signed` map of `t` with
/// its `targets` field written by `targets`.
fn canonical_signed_with<O: Out>(t: &Targets, out: &mut O, targets: impl FnOnce(&mut O)) {
    let m = t.signed_wire_without_targets();
    out.push_str("{");
    let mut first = true;
    let mut sep = |out: &mut O| {
        if !first {
            out.push_str(";");
        }
        first = false;
    };
    let mut targets = Some(targets);
    for (k, v) in &m {
        if k.as_str() > "targets" {
            if let Some(w) = targets.take() {
                sep(out);
                w(out);
            }
        }
        sep(out);
        out.push_str(k);
        out.push_str(":");
        out.wire(v);
    }
    if let Some(w) = targets.take() {
        sep(out);
        w(out);
    }
    out.push_str("}");
}

/// `targets:[{digest:[…];filename:…;size:0x…};…]`, each entry given as its
/// digests (algorithm, data), its path's parts (joined by `/`) and size.
fn write_targets<'x, D, P>(out: &mut impl Out, entries: impl Iterator<Item = (D, P, u64)>)
where
    D: Iterator<Item = (&'x str, &'x str)>,
    P: Iterator<Item = &'x str> + Clone,
{
    out.push_str("targets:[");
    for (n, (digests, parts, size)) in entries.enumerate() {
        if n > 0 {
            out.push_str(";");
        }
        out.push_str("{digest:[");
        for (m, (alg, data)) in digests.enumerate() {
            if m > 0 {
                out.push_str(";");
            }
            push_decimal(out, alg.len() + 1 + data.len());
            out.push_str("'");
            out.push_str(alg);
            out.push_str("=");
            out.push_str(data);
        }
        out.push_str("];filename:");
        let len = parts.clone().map(|c| c.len() + 1).sum::<usize>();
        push_decimal(out, len.saturating_sub(1));
        out.push_str("'");
        for (m, c) in parts.enumerate() {
            if m > 0 {
                out.push_str("/");
            }
            out.push_str(c);
        }
        out.push_str(";size:");
        push_hex(out, size);
        out.push_str("}");
    }
    out.push_str("]");
}

/// `n` in decimal.
fn push_decimal(out: &mut impl Out, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: appended as a string, not a char at a time
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// `n` as conex writes an unsigned integer: `0x` and upper-case hex digits.
fn push_hex(out: &mut impl Out, mut n: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789ABCDEF"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.push_str("0x");
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A targets file in conex's layout with `n` entries (every third one
    /// with its fields in another order); entry `bad` has a size conex
    /// would not read.
    fn file(n: usize, bad: Option<usize>) -> String {
        let mut s = String::from(
            "signed: [\n  [version 0]\n  [valid maintainer]\n  [typ targets]\n  [\n    targets\n    [\n",
        );
        for i in 0..n {
            let size = if bad == Some(i) {
                "3C8".to_string()
            } else {
                format!("0x{:X}", 100 + i)
            };
            let size = format!("        [size {size}]\n");
            let name = format!("        [filename \"packages/p{i}/p{i}.1/opam\"]\n");
            let digest = format!(
                "        [\n          digest\n          [\n            \"sha256={:064x}\"\n          ]\n        ]\n",
                i
            );
            s.push_str("      [\n");
            if i % 3 == 0 {
                s.push_str(&name);
                s.push_str(&digest);
                s.push_str(&size);
            } else {
                s.push_str(&size);
                s.push_str(&name);
                s.push_str(&digest);
            }
            s.push_str("      ]\n");
        }
        s.push_str(
            "    ]\n  ]\n  [name \"maintainer\"]\n  [\n    keys\n    [\n      [\n        maintainer\n        \"2026-01-01T00:00:00Z\"\n        \"ed25519=wSR8wrkSEL+nTKI6qnjCjnxbOexKifyL3/JwaALH8X0=\"\n      ]\n    ]\n  ]\n  [epoch 0x0]\n  [delegations []]\n  [created \"2026-01-01T00:00:00Z\"]\n  [counter 0x1]\n]\nsignatures: [\n]\n",
        );
        s
    }

    fn show(r: Option<(TargetsView<'_>, Vec<String>)>) -> String {
        format!("{r:?}")
    }

    /// Reading the end of the list from any position, before or after the
    /// reading from the start gets there, gives what reading it in one
    /// go gives; the part read apart is used exactly when the reading from
    /// the start arrives at its position between two entries.
    #[test]
    fn a_list_read_in_two_parts_is_the_list_read_at_once() {
        for bad in [None, Some(2), Some(7), Some(29)] {
            let text = file(30, bad);
            let whole = show(parse_view_with(&text, None));
            assert_eq!(whole.starts_with("Some("), bad.is_none(), "{whole}");
            // the entry starts (the keys list has lines like theirs)
            let list_end = text.find("\n    ]\n  ]\n  [name").unwrap();
            let starts: Vec<usize> = text[..list_end]
                .match_indices("\n      [\n")
                .map(|(i, _)| i + 7)
                .collect();
            let first = starts[0];
            let mut used = 0;
            for at in (0..first + 40)
                .chain(starts[4] - 20..starts[6] + 5)
                .chain(text.len() - 400..text.len() + 2)
            {
                for side_first in [false, true] {
                    let tail = Tail::new(at);
                    if side_first {
                        tail.run(&text);
                    }
                    let got = show(parse_view_with(&text, Some(&tail)));
                    assert_eq!(got, whole, "at {at}, bad {bad:?}, side first {side_first}");
                    if !side_first {
                        let arrived = tail.claimed.load(std::sync::atomic::Ordering::Acquire);
                        let between = starts.contains(&at);
                        assert!(
                            arrived == between || bad.is_some_and(|b| at > starts[b]),
                            "at {at}"
                        );
                        used += usize::from(arrived);
                    }
                }
            }
            if bad.is_none() {
                assert!(used >= 3, "{used}");
            }
        }
    }

    /// The blanks skipped eight bytes at a time are the blanks skipped one
    /// at a time, from every position of text with every byte value
    /// around blanks.
    #[test]
    fn blanks_are_skipped_as_one_at_a_time() {
        let mut text: Vec<u8> = (0..=255u8)
            .flat_map(|b| [b' ', b, b'\n', b'\t', b' '])
            .collect();
        text.extend(b"\n            [size 0x1]\n\t \n");
        text.extend(std::iter::repeat_n(b' ', 19));
        for i in 0..=text.len() {
            let mut want = i;
            while matches!(text.get(want), Some(b' ' | b'\t' | b'\n')) {
                want += 1;
            }
            let t = String::from_utf8_lossy(&text).into_owned();
            let mut p = P {
                t: &t,
                s: &text,
                i,
                tail: None,
            };
            p.ws();
            assert_eq!(p.i, want, "from {i}");
        }
    }

    /// The digest check made in place accepts what `Digest::parse` does.
    #[test]
    fn digests_are_accepted_as_digest_parse_accepts_them() {
        for d in [
            "sha256=ab",
            "sha256=",
            "sha256==",
            "SHA256=ab",
            "sha512=ab",
            "sha256ab",
            "",
            "=ab",
            " sha256=ab",
            "sha2=56",
            "md5=x=y",
        ] {
            assert_eq!(Digest::parse(d).is_ok(), d.starts_with("sha256="), "{d:?}");
        }
    }

    /// The canonical string handed on in pieces is, joined, the canonical
    /// string written whole, with what comes before and after it; no piece
    /// is empty and none much larger than a piece.
    #[test]
    fn the_canonical_string_in_pieces_is_the_whole_one() {
        for n in [0, 1, 3, 400, 3_000] {
            let text = file(n, None);
            let (view, _) = parse_view(&text).expect("read");
            let whole = view.canonical_signed();
            assert!(whole.contains("targets:["), "{whole}");
            for (before, after) in [("", ""), ("{created:4'then;data:", ";identifier:m}")] {
                let mut joined = Vec::new();
                let mut sizes = Vec::new();
                view.stream_canonical_signed(before, after, &mut |p| {
                    sizes.push(p.len());
                    joined.extend_from_slice(p)
                });
                let want = format!("{before}{whole}{after}");
                assert_eq!(String::from_utf8(joined).unwrap(), want, "{n} entries");
                assert!(
                    sizes.iter().all(|&k| k > 0 && k < PIECE + 1024),
                    "{sizes:?}"
                );
                assert_eq!(sizes.len(), want.len().div_ceil(PIECE).max(1), "{sizes:?}");
            }
        }
    }

    /// A large file is read in two parts at once, with the same outcome.
    #[test]
    fn a_large_file_is_read_in_two_parts_at_once() {
        let n = 5_000;
        for bad in [None, Some(n / 5), Some(n - 2)] {
            let text = file(n, bad);
            assert!(text.len() >= SPLIT_MIN, "{}", text.len());
            let whole = show(parse_view_with(&text, None));
            for tenths in [5, 7] {
                let at = Tail::guess(&text, tenths).expect("an entry start");
                assert!(at >= text.len() / 10 * tenths && at < text.len());
                assert!(
                    text[..at].ends_with("]\n      ") && text[at..].starts_with("[\n        [")
                );
            }
            for _ in 0..20 {
                assert_eq!(show(parse_view(&text)), whole);
                assert_eq!(show(parse_view_alone(&text)), whole);
            }
        }
    }
}
