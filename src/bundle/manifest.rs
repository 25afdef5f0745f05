//! The bundle's `MANIFEST`: one line `sha256=<hex> <size> <path>` per file
//! (every file of the bundle except the MANIFEST itself), sorted by path,
//! LF line ends, relative paths only.

use sha2::{Digest as _, Sha256};

/// One file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Path relative to the bundle (`/`-separated).
    pub path: String,
}

/// A parsed MANIFEST.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The files, sorted by path.
    pub lines: Vec<Line>,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a relative path may not appear in a bundle, or `None` when it may.
pub fn path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return Some("empty path");
    }
    if p.starts_with('/') {
        return Some("absolute path");
    }
    if p.chars().any(|c| c.is_control() || c == '\\') {
        return Some("control character or backslash in path");
    }
    for c in p.split('/') {
        match c {
            "" => return Some("empty path component"),
            "." => return Some("'.' path component"),
            ".." => return Some("'..' path component"),
            _ => {}
        }
    }
    None
}

impl Manifest {
    /// Builds the manifest of `files` (path, bytes).
    pub fn of<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Manifest {
        let mut lines: Vec<Line> = files
            .into_iter()
            .map(|(p, b)| Line {
                sha256: sha256_hex(b),
                size: b.len() as u64,
                path: p.to_string(),
            })
            .collect();
        lines.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { lines }
    }

    /// The MANIFEST file's text.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("sha256={} {} {}\n", l.sha256, l.size, l.path))
            .collect()
    }

    /// Parses MANIFEST text. Every problem is one line (`MANIFEST:N: …`);
    /// the lines that parse are returned with them.
    pub fn parse(text: &str) -> (Manifest, Vec<String>) {
        let mut problems = Vec::new();
        let mut lines: Vec<Line> = Vec::new();
        if !text.is_empty() && !text.ends_with('\n') {
            problems.push("MANIFEST: the last line does not end in LF".to_string());
        }
        // split, not lines(): lines() would swallow the CR of a CR LF.
        for (i, raw) in text.split_terminator('\n').enumerate() {
            let n = i + 1;
            if raw.ends_with('\r') {
                problems.push(format!("MANIFEST:{n}: CR LF line end (LF only)"));
                continue;
            }
            let mut parts = raw.splitn(3, ' ');
            let (Some(d), Some(s), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
                problems.push(format!(
                    "MANIFEST:{n}: expected \"sha256=<hex> <size> <path>\""
                ));
                continue;
            };
            let Some(hexd) = d.strip_prefix("sha256=").filter(|h| {
                h.len() == 64
                    && h.bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            }) else {
                problems.push(format!(
                    "MANIFEST:{n}: {p}: digest {d:?} is not sha256=<64 lowercase hex digits>"
                ));
                continue;
            };
            // Decimal digits only, no sign and no leading zero: one text per
            // manifest, so one digest per bundle.
            let size = match s.parse::<u64>() {
                Ok(v)
                    if s.bytes().all(|c| c.is_ascii_digit())
                        && (s == "0" || !s.starts_with('0')) =>
                {
                    v
                }
                _ => {
                    problems.push(format!(
                        "MANIFEST:{n}: {p}: size {s:?} is not a decimal number without sign or leading zero"
                    ));
                    continue;
                }
            };
            if let Some(why) = path_problem(p) {
                problems.push(format!("MANIFEST:{n}: {p}: {why}"));
                continue;
            }
            if p == "MANIFEST" {
                problems.push(format!("MANIFEST:{n}: the MANIFEST lists itself"));
                continue;
            }
            if let Some(prev) = lines.last() {
                if prev.path == p {
                    problems.push(format!("MANIFEST:{n}: {p}: listed twice"));
                    continue;
                }
                if prev.path.as_str() > p {
                    problems.push(format!("MANIFEST:{n}: {p}: not in sorted order"));
                }
            }
            lines.push(Line {
                sha256: hexd.to_string(),
                size,
                path: p.to_string(),
            });
        }
        (Manifest { lines }, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sorted() {
        let m = Manifest::of([("b", b"x".as_slice()), ("a/c", b"yy".as_slice())]);
        let t = m.render();
        assert!(t.starts_with("sha256="));
        assert!(t.find(" a/c\n").unwrap() < t.find(" b\n").unwrap());
        let (m2, p) = Manifest::parse(&t);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(m, m2);
    }

    #[test]
    fn bad_paths_are_named() {
        let d = sha256_hex(b"");
        for (p, why) in [
            ("/etc/passwd", "absolute"),
            ("a/../b", "'..'"),
            ("a//b", "empty"),
            ("./a", "'.'"),
        ] {
            let (_, probs) = Manifest::parse(&format!("sha256={d} 0 {p}\n"));
            assert_eq!(probs.len(), 1, "{p}");
            assert!(probs[0].contains(p) && probs[0].contains(why), "{probs:?}");
        }
        let (_, probs) = Manifest::parse("sha256=xyz 0 a\n");
        assert!(probs[0].contains("digest"));
    }

    #[test]
    fn cr_lf_line_ends_are_refused() {
        let d = sha256_hex(b"");
        let (_, probs) = Manifest::parse(&format!("sha256={d} 0 a\r\n"));
        assert_eq!(probs.len(), 1, "{probs:?}");
        assert!(probs[0].contains("CR LF"), "{probs:?}");
    }

    #[test]
    fn sizes_have_one_spelling() {
        let d = sha256_hex(b"");
        for s in ["+5", "05", "00", "-0", " 5", "0x5", "5e0"] {
            let (_, probs) = Manifest::parse(&format!("sha256={d} {s} a\n"));
            assert!(!probs.is_empty(), "size {s:?} was accepted");
        }
        let (m, probs) = Manifest::parse(&format!("sha256={d} 0 a\n"));
        assert!(probs.is_empty(), "{probs:?}");
        assert_eq!(m.lines[0].size, 0);
    }
}
