//! Applying one file section: the patch library's line rope and
//! `Patch.patch ~cleanly:true`.

use super::*;

/// The patch library's line rope: runs of lines, each run knowing whether
/// its last line ends with a newline.
#[derive(Clone)]
enum Rope<'a> {
    Str(std::rc::Rc<Lines<'a>>, bool, usize, usize),
    App(Box<Rope<'a>>, Box<Rope<'a>>, usize),
}

/// Lines in one buffer, separated by `\n` there, so consecutive lines are
/// one slice. Where a line starts is found from a count of the line feeds
/// before each block of [`Lines::BLOCK`] bytes: a hunk touches a few lines
/// of a file, and a position of each of its lines would cost more than the
/// rest of the patching.
struct Lines<'a> {
    buf: std::borrow::Cow<'a, [u8]>,
    /// Number of lines: the line feeds plus one.
    n: usize,
    /// `before[k]`: the line feeds in `buf[..k * BLOCK]`, for every block
    /// and the end.
    before: Vec<usize>,
}

impl<'a> Lines<'a> {
    const BLOCK: usize = 4096;

    fn new(buf: std::borrow::Cow<'a, [u8]>) -> Lines<'a> {
        let mut before = Vec::with_capacity(buf.len() / Self::BLOCK + 2);
        let mut n = 0;
        before.push(0);
        for block in buf.chunks(Self::BLOCK) {
            // counted in bytes, 255 at a time (which the compiler vectorizes)
            for part in block.chunks(255) {
                n += usize::from(part.iter().fold(0u8, |c, &b| c + u8::from(b == b'\n')));
            }
            before.push(n);
        }
        Lines {
            buf,
            n: n + 1,
            before,
        }
    }

    /// `s` split at every `\n` (a final `\n` gives a last empty line),
    /// borrowed.
    fn of_bytes(s: &'a [u8]) -> Lines<'a> {
        Lines::new(std::borrow::Cow::Borrowed(s))
    }

    fn of_strings(xs: &[Vec<u8>]) -> Lines<'a> {
        let mut buf = Vec::with_capacity(xs.iter().map(|x| x.len() + 1).sum());
        for (n, x) in xs.iter().enumerate() {
            if n > 0 {
                buf.push(b'\n');
            }
            buf.extend_from_slice(x);
        }
        Lines::new(std::borrow::Cow::Owned(buf))
    }

    fn len(&self) -> usize {
        self.n
    }

    /// The offset of the `j`-th line feed (`j` from 1 to `n - 1`).
    fn feed(&self, j: usize) -> usize {
        // the block holding it: before[k] < j <= before[k + 1]
        let k = self.before.partition_point(|&c| c < j) - 1;
        let from = k * Self::BLOCK;
        let at = memchr::memchr_iter(b'\n', &self.buf[from..])
            .nth(j - self.before[k] - 1)
            .expect("the line feeds were counted");
        from + at
    }

    /// Where line `i` starts.
    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.feed(i) + 1
        }
    }

    /// Where line `i` ends (its line feed, or the end of the buffer).
    fn end(&self, i: usize) -> usize {
        if i + 1 == self.n {
            self.buf.len()
        } else {
            self.feed(i + 1)
        }
    }

    /// Lines `from..from + len`, one after the other.
    fn range(&self, from: usize, len: usize) -> impl Iterator<Item = &[u8]> {
        let rest = if len == 0 {
            &self.buf[..0]
        } else {
            &self.buf[self.start(from)..self.end(from + len - 1)]
        };
        rest.split(|&b| b == b'\n').take(len)
    }
}

impl<'a> Rope<'a> {
    fn empty() -> Rope<'a> {
        Rope::Str(std::rc::Rc::new(Lines::of_strings(&[])), true, 0, 0)
    }

    fn len(&self) -> usize {
        match self {
            Rope::Str(_, _, l, _) | Rope::App(_, _, l) => *l,
        }
    }

    fn of_bytes(s: &'a [u8]) -> Rope<'a> {
        // the run keeps the empty element after a final newline, as the
        // library's array does; only `len` lines count (an empty file is
        // one empty line without a newline)
        let parts = Lines::of_bytes(s);
        let nl = s.last() == Some(&b'\n');
        let len = parts.len() - usize::from(nl);
        Rope::Str(std::rc::Rc::new(parts), nl, len, 0)
    }

    fn of_strings(xs: &[Vec<u8>], nl: bool) -> Rope<'a> {
        Rope::Str(std::rc::Rc::new(Lines::of_strings(xs)), nl, xs.len(), 0)
    }

    fn append(a: Rope<'a>, b: Rope<'a>) -> Rope<'a> {
        let l = a.len() + b.len();
        Rope::App(Box::new(a), Box::new(b), l)
    }

    fn sub(&self, start: usize, stop: usize) -> Rope<'a> {
        if start == 0 && stop == self.len() {
            return self.clone();
        }
        if start == stop {
            return Rope::empty();
        }
        match self {
            Rope::Str(d, nl, _, off) => Rope::Str(d.clone(), *nl, stop - start, off + start),
            Rope::App(l, r, _) => {
                let ll = l.len();
                if stop <= ll {
                    l.sub(start, stop)
                } else if start >= ll {
                    r.sub(start - ll, stop - ll)
                } else {
                    Rope::append(l.sub(start, ll), r.sub(0, stop - ll))
                }
            }
        }
    }

    fn chop(&self, off: usize, len: i64) -> Option<Rope<'a>> {
        if len < 0 || len as usize > self.len().checked_sub(off)? {
            return None;
        }
        let len = len as usize;
        Some(if len == 0 {
            Rope::empty()
        } else {
            self.sub(off, off + len)
        })
    }

    fn shift(&self, n: usize) -> Rope<'a> {
        if n == 0 {
            return self.clone();
        }
        let max = self.len();
        self.sub(n.min(max), max)
    }

    fn last_is_nl(&self) -> bool {
        match self {
            Rope::Str(d, nl, len, off) => {
                if d.len() - off == *len {
                    *nl
                } else {
                    true
                }
            }
            Rope::App(_, r, _) => r.last_is_nl(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Rope::Str(d, _, len, off) => {
                if *len == 0 {
                    return;
                }
                // the lines and the line feeds between them, in one piece
                let (a, b) = (d.start(*off), d.end(off + len - 1));
                out.extend_from_slice(&d.buf[a..b]);
                if self.last_is_nl() {
                    out.push(b'\n');
                }
            }
            Rope::App(l, r, _) => {
                l.write(out);
                r.write(out);
            }
        }
    }

    fn lines(&self, out: &mut Vec<Vec<u8>>) {
        match self {
            Rope::Str(d, _, len, off) => out.extend(d.range(*off, *len).map(<[u8]>::to_vec)),
            Rope::App(l, r, _) => {
                l.lines(out);
                r.lines(out);
            }
        }
    }
}

/// The bytes [`Rope::write`] writes, at most (for the output's capacity).
fn rope_bytes(r: &Rope<'_>) -> usize {
    match r {
        Rope::Str(d, _, len, off) if *len > 0 => d.end(off + len - 1) - d.start(*off) + 1,
        Rope::Str(..) => 0,
        Rope::App(l, r, _) => rope_bytes(l) + rope_bytes(r),
    }
}

/// Why a section cannot produce its file (conex fails when it reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    /// The hunk header or the operation.
    pub hunk: String,
    /// Its line in the patch.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// The library's `Patch.patch ~cleanly:true`: the section's file from the
/// old content of its source (`None` when it has none). `Ok(None)` when
/// the section produces no file.
pub fn apply_section(old: Option<&[u8]>, fp: &FilePatch) -> Result<Option<Vec<u8>>, ApplyFailure> {
    let whole = |reason: &str| ApplyFailure {
        hunk: "file section".into(),
        line: fp.line,
        reason: reason.into(),
    };
    match &fp.op {
        Operation::Git(_, _, GitOnly::Rename) => Ok(old.map(<[u8]>::to_vec)),
        Operation::Git(_, _, GitOnly::Delete) | Operation::Delete(_) => Ok(None),
        Operation::Git(_, _, GitOnly::Create) => Ok(Some(vec![])),
        Operation::Create(_) => {
            let [h] = fp.hunks.as_slice() else {
                return Err(whole(&format!(
                    "a new file needs exactly one hunk, this one has {}",
                    fp.hunks.len()
                )));
            };
            let mut out = h.their.join(&b'\n');
            if !fp.their_no_nl {
                out.push(b'\n');
            }
            Ok(Some(out))
        }
        Operation::Edit(_, _) => {
            let mut rope = match old {
                None => Rope::empty(),
                Some(d) => Rope::of_bytes(d),
            };
            let mut offset: i64 = 0;
            for h in &fp.hunks {
                let fail = |reason: String| ApplyFailure {
                    hunk: h.header.clone(),
                    line: h.line,
                    reason,
                };
                let start = h.mine_start + offset;
                let off = (start - 1).max(0) as usize;
                let prefix = rope.chop(0, off as i64).ok_or_else(|| {
                    fail(format!(
                        "starts past the end of the file ({} line(s))",
                        rope.len()
                    ))
                })?;
                let actual = rope.chop(off, h.mine_len).ok_or_else(|| {
                    fail(format!(
                        "{} line(s) from line {} run past the end of the file ({} line(s))",
                        h.mine_len,
                        off + 1,
                        rope.len()
                    ))
                })?;
                let mut have = Vec::new();
                actual.lines(&mut have);
                if have != h.mine {
                    let at = have
                        .iter()
                        .zip(&h.mine)
                        .position(|(a, b)| a != b)
                        .unwrap_or(have.len().min(h.mine.len()));
                    return Err(fail(format!(
                        "line {} differs: expected {:?}, found {:?}",
                        h.mine_start.max(1) + at as i64,
                        String::from_utf8_lossy(h.mine.get(at).map_or(&[][..], |v| v)),
                        String::from_utf8_lossy(have.get(at).map_or(&[][..], |v| v))
                    )));
                }
                let suffix = rope.shift(off + h.mine_len as usize);
                let theirs = Rope::of_strings(&h.their, actual.last_is_nl());
                rope = Rope::append(prefix, Rope::append(theirs, suffix));
                offset += h.their_len - h.mine_len;
            }
            let mut out = Vec::with_capacity(rope_bytes(&rope) + 1);
            rope.write(&mut out);
            match (fp.mine_no_nl, fp.their_no_nl) {
                (false, true) if out.last() == Some(&b'\n') => {
                    out.pop();
                }
                (true, false) => out.push(b'\n'),
                _ => {}
            }
            Ok(Some(out))
        }
    }
}

/// [`apply_section`] over old content the caller gives up: an edit whose
/// hunks are in order, apart, and within lines that end with a line feed
/// (a targets file's update: a few lines changed in a large file) is made
/// in the old bytes themselves, without a copy of the file; any other
/// section, or one that does not apply, is applied by [`apply_section`]
/// (with its messages).
pub fn apply_section_owned(
    old: Option<Vec<u8>>,
    fp: &FilePatch,
) -> Result<Option<Vec<u8>>, ApplyFailure> {
    match (old, &fp.op) {
        (old, Operation::Git(_, _, GitOnly::Rename)) => Ok(old),
        (Some(buf), Operation::Edit(_, _)) => match in_place(&buf, fp) {
            Some(splices) => {
                let mut buf = buf;
                // from the last one, so that the earlier ranges stay put
                for (a, b, with) in splices.into_iter().rev() {
                    buf.splice(a..b, with);
                }
                Ok(Some(buf))
            }
            None => apply_section(Some(&buf), fp),
        },
        (old, _) => apply_section(old.as_deref(), fp),
    }
}

/// The byte ranges of `old` an edit replaces, and with what, when
/// [`apply_section`] would give the same bytes by replacing them (see
/// [`apply_section_owned`]); `None` otherwise.
#[allow(clippy::type_complexity)]
fn in_place(old: &[u8], fp: &FilePatch) -> Option<Vec<(usize, usize, Vec<u8>)>> {
    if fp.mine_no_nl || fp.their_no_nl || fp.hunks.len() > 8 || old.last() != Some(&b'\n') {
        return None;
    }
    let lines = Lines::of_bytes(old);
    // every line ends with a line feed: the last element is the empty one
    // after the final one
    let len = lines.len() - 1;
    let mut next = 0;
    let mut out = Vec::with_capacity(fp.hunks.len());
    for h in &fp.hunks {
        let (start, n) = (
            usize::try_from(h.mine_start).ok()?,
            usize::try_from(h.mine_len).ok()?,
        );
        // the hunk's first line in the old file: after the lines the hunks
        // before it replaced
        let off = start.checked_sub(1)?;
        if off < next
            || n != h.mine.len()
            || usize::try_from(h.their_len).ok()? != h.their.len()
            || off + n > len
            || !lines.range(off, n).eq(h.mine.iter().map(Vec::as_slice))
        {
            return None;
        }
        let a = lines.start(off);
        let b = if n == 0 {
            a
        } else {
            lines.end(off + n - 1) + 1
        };
        let mut with = Vec::with_capacity(h.their.iter().map(|l| l.len() + 1).sum());
        for l in &h.their {
            with.extend_from_slice(l);
            with.push(b'\n');
        }
        out.push((a, b, with));
        next = off + n;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line's bounds and every run of lines agree with a split at
    /// each line feed, for buffers whose line feeds fall on, before and
    /// after the index's block boundaries.
    #[test]
    fn lines_agree_with_a_split() {
        let b = Lines::BLOCK;
        let mut bufs: Vec<Vec<u8>> = vec![vec![], b"\n".to_vec(), b"a".to_vec(), b"\n\n".to_vec()];
        for at in [b - 1, b, b + 1, 2 * b - 1, 2 * b] {
            let mut v = vec![b'x'; 3 * b];
            v[at] = b'\n';
            bufs.push(v.clone());
            v.truncate(at + 1);
            bufs.push(v);
        }
        // line feeds at every 1..=300th byte, some runs of them
        let mut v = Vec::new();
        for i in 0..20_000usize {
            v.push(if i % (1 + i % 300) == 0 || (5000..5600).contains(&i) {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            });
        }
        bufs.push(v);
        for buf in &bufs {
            let l = Lines::of_bytes(buf);
            let want: Vec<&[u8]> = buf.split(|&c| c == b'\n').collect();
            assert_eq!(l.len(), want.len());
            let mut at = 0;
            for (i, w) in want.iter().enumerate() {
                assert_eq!((l.start(i), l.end(i)), (at, at + w.len()), "line {i}");
                at += w.len() + 1;
            }
            for from in (0..want.len()).step_by(7) {
                for len in [0, 1, 2, 13, want.len() - from] {
                    let len = len.min(want.len() - from);
                    let got: Vec<&[u8]> = l.range(from, len).collect();
                    assert_eq!(got, want[from..from + len], "lines {from}+{len}");
                }
            }
        }
        let l = Lines::of_strings(&[b"ab".to_vec(), vec![], b"c".to_vec()]);
        assert_eq!(l.range(0, 3).collect::<Vec<_>>(), [&b"ab"[..], b"", b"c"]);
    }

    /// An edit made in the old bytes gives the bytes (or the failure) of
    /// the line rope, for patches that add, drop and change lines at the
    /// start, in the middle and at the end of a file, in one or several
    /// hunks, with and without a final line feed.
    #[test]
    fn an_edit_in_place_is_the_edit_of_the_rope() {
        let old: Vec<u8> = (0..40)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut unterminated = old.clone();
        unterminated.pop();
        let line = |i: usize| format!("line {i}");
        let hunk = |at: usize, drop: usize, add: &[&str]| {
            let mut t = format!("@@ -{},{} +{},{} @@\n", at, drop + 2, at, add.len() + 2);
            t += &format!(" {}\n", line(at - 1));
            for k in 0..drop {
                t += &format!("-{}\n", line(at + k));
            }
            for a in add {
                t += &format!("+{a}\n");
            }
            t += &format!(" {}\n", line(at + drop));
            t
        };
        // (hunks, whether they are applied in place to the terminated file)
        let cases = [
            (vec![hunk(1, 0, &["new"])], true),
            (vec![hunk(1, 1, &[])], true),
            (vec![hunk(10, 2, &["x", "y", "z"])], true),
            (
                vec![
                    hunk(3, 1, &["a"]),
                    hunk(20, 0, &["b", "c"]),
                    hunk(36, 2, &[]),
                ],
                true,
            ),
            (vec![hunk(37, 1, &["end"])], true),
            // out of order, overlapping, not matching
            (vec![hunk(20, 0, &["b"]), hunk(3, 1, &["a"])], false),
            (vec![hunk(10, 2, &["x"]), hunk(11, 1, &["y"])], false),
            (
                vec![hunk(10, 1, &["x"]).replace("line 10", "line 99")],
                false,
            ),
        ];
        for (hunks, fast) in cases {
            let text = format!("--- a/f\n+++ b/f\n{}", hunks.concat());
            let p = Patch::parse(text.as_bytes()).unwrap();
            let fp = &p.files[0];
            for base in [&old, &unterminated] {
                let want = apply_section(Some(base), fp);
                let got = apply_section_owned(Some(base.clone()), fp);
                assert_eq!(got, want, "{text}");
            }
            assert_eq!(in_place(&old, fp).is_some(), fast, "{text}");
            assert_eq!(in_place(&unterminated, fp), None, "{text}");
        }
    }
}
