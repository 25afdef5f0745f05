//! Targets files as full verification keeps them once checked: the file
//! without its entries, and the entries packed — slices of one string (the
//! file's own text when it was read in place), no allocation per entry.

use super::*;
use std::ops::Range;

/// A checked targets file: everything but the entries as the parser gives
/// it (`head`, whose `targets` is empty), and the entries.
pub(super) struct Checked {
    /// The targets file without its entries.
    pub head: Targets,
    /// Its entries, in file order.
    pub entries: Packed,
}

/// The entries of a targets file: each one's path (components joined by
/// `/`), digests (`alg=data`) and size, as ranges of one string.
#[derive(Default)]
pub(super) struct Packed {
    text: String,
    entries: Vec<PackedEntry>,
    /// The digests of all entries, in order.
    digests: Vec<Range<usize>>,
}

struct PackedEntry {
    path: Range<usize>,
    /// Indices into `digests`.
    digests: Range<usize>,
    size: u64,
}

/// One entry of a [`Packed`].
pub(super) struct EntryText<'p> {
    /// The path, components joined by `/`.
    pub path: &'p str,
    digests: &'p [Range<usize>],
    text: &'p str,
    /// Size in bytes.
    pub size: u64,
}

impl<'p> EntryText<'p> {
    /// The digests, `alg=data` (each one [`Digest::parse`] reads).
    pub fn digests(&self) -> impl Iterator<Item = &'p str> + '_ {
        self.digests.iter().map(|r| &self.text[r.clone()])
    }
}

impl Packed {
    /// The entries of `view` in a string of their own.
    fn copied(view: &TargetsView<'_>) -> Packed {
        let mut b = Packed::default();
        for e in &view.entries {
            let path = b.push(e.path);
            let first = b.digests.len();
            for d in view.digests(e) {
                let r = b.push(d);
                b.digests.push(r);
            }
            b.entry(path, first, e.size);
        }
        b
    }

    /// The entries of a targets file read by the general parser.
    pub fn of_targets(targets: &[Target]) -> Packed {
        let mut b = Packed::default();
        for t in targets {
            let at = b.text.len();
            for (i, c) in t.filename.iter().enumerate() {
                if i > 0 {
                    b.text.push('/');
                }
                b.text.push_str(c);
            }
            let path = at..b.text.len();
            let first = b.digests.len();
            for d in &t.digest {
                let at = b.text.len();
                b.text.push_str(&d.alg);
                b.text.push('=');
                b.text.push_str(&d.data);
                b.digests.push(at..b.text.len());
            }
            b.entry(path, first, t.size);
        }
        b
    }

    /// Appends `s` to the text: its range.
    fn push(&mut self, s: &str) -> Range<usize> {
        let at = self.text.len();
        self.text.push_str(s);
        at..self.text.len()
    }

    /// Ends an entry whose digests start at `first_digest`.
    fn entry(&mut self, path: Range<usize>, first_digest: usize, size: u64) {
        self.entries.push(PackedEntry {
            path,
            digests: first_digest..self.digests.len(),
            size,
        });
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries, in file order.
    pub fn iter(&self) -> impl Iterator<Item = EntryText<'_>> {
        self.entries.iter().map(|e| EntryText {
            path: &self.text[e.path.clone()],
            digests: &self.digests[e.digests.clone()],
            text: &self.text,
            size: e.size,
        })
    }

    /// The entries as the general parser gives them.
    pub fn to_targets(&self) -> Vec<Target> {
        self.iter()
            .map(|e| Target {
                filename: e.path.split('/').map(str::to_string).collect(),
                digest: e.digests().filter_map(|d| Digest::parse(d).ok()).collect(),
                size: e.size,
            })
            .collect()
    }
}

impl Checked {
    /// The targets file with its entries, as the general parser gives it.
    pub fn to_targets(&self) -> Targets {
        let mut t = self.head.clone();
        t.targets = self.entries.to_targets();
        t
    }
}

/// The entries and digests of `view` as ranges of `text`, when each one
/// is a slice of it.
fn ranges(text: &str, view: &TargetsView<'_>) -> Option<(Vec<PackedEntry>, Vec<Range<usize>>)> {
    let base = text.as_ptr() as usize;
    let range = |s: &str| {
        let at = (s.as_ptr() as usize).checked_sub(base)?;
        (at + s.len() <= text.len()).then_some(at..at + s.len())
    };
    let mut entries = Vec::with_capacity(view.entries.len());
    let mut digests = Vec::new();
    for e in &view.entries {
        let first = digests.len();
        for d in view.digests(e) {
            digests.push(range(d)?);
        }
        entries.push(PackedEntry {
            path: range(e.path)?,
            digests: first..digests.len(),
            size: e.size,
        });
    }
    Some((entries, digests))
}

impl Loader<'_> {
    /// Reads, parses and checks one targets file as [`Loader::targets`]
    /// does — the same outcome, warnings and messages — keeping its entries
    /// packed: a file in the shape conex writes is read in place.
    pub fn checked(&self, id: &str, warnings: &mut Vec<String>) -> Result<Checked, VerifyError> {
        // what is not read in place the general parser reads from the same
        // bytes, and gives the messages
        let packed = |mut t: Targets| {
            let entries = Packed::of_targets(&t.targets);
            t.targets = Vec::new();
            Checked { head: t, entries }
        };
        let path = self.path(id);
        let Ok(bytes) = self.src.read(&path) else {
            return self.targets(id, warnings).map(packed);
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                return self
                    .targets_of(id, &path, e.into_bytes(), warnings)
                    .map(packed)
            }
        };
        let (tgt, read) = self.hashed_beside(&path, text.as_bytes(), || {
            read_targets_view(self.opts, self.root, &text)
        });
        let Some(read) = read else {
            return self
                .targets_of(id, &path, text.into_bytes(), warnings)
                .map(packed);
        };
        let (r, w) = check_view(self.snap, id, &read, tgt.as_ref(), self.sigs);
        warnings.extend(w);
        r?;
        let ReadView { view, .. } = read;
        // the entries stay where they were read, as ranges of the text
        Ok(match ranges(&text, &view) {
            Some((entries, digests)) => Checked {
                head: view.head,
                entries: Packed {
                    text,
                    entries,
                    digests,
                },
            },
            None => {
                let entries = Packed::copied(&view);
                Checked {
                    head: view.head,
                    entries,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: &str = include_str!("../../../tests/vectors/repo/keys/m1");

    fn entries(p: &Packed) -> Vec<(String, Vec<String>, u64)> {
        p.iter()
            .map(|e| {
                let ds = e.digests().map(str::to_string).collect();
                (e.path.to_string(), ds, e.size)
            })
            .collect()
    }

    #[test]
    fn packed_entries_are_the_parsed_entries() {
        let (view, _) = crate::conex::targets_fast::parse_view(M1).expect("conex's shape");
        let general = Targets::parse(M1, &mut Vec::new()).expect("parses");
        assert_eq!(general.targets.len(), 2);
        // in place, copied, and from the general parser's entries: the same
        let (e, d) = ranges(M1, &view).expect("slices of the text");
        let in_place = Packed {
            text: M1.to_string(),
            entries: e,
            digests: d,
        };
        let copied = Packed::copied(&view);
        let of_targets = Packed::of_targets(&general.targets);
        for p in [&in_place, &copied, &of_targets] {
            assert_eq!(p.len(), 2);
            assert_eq!(p.to_targets(), general.targets);
            assert_eq!(entries(p), entries(&in_place));
        }
        assert_eq!(
            entries(&in_place)[1],
            (
                "packages/bar/bar.0.1/opam".to_string(),
                vec![
                    "sha256=fca77d69c9e4a6b4ae814f48dd24b3dd33c58fd0b136dac0853e0603685c9003"
                        .to_string()
                ],
                0x31
            )
        );
        // a string that is not the view's text holds none of its slices
        let other = M1.to_string();
        assert!(ranges(&other, &view).is_none());
    }
}
