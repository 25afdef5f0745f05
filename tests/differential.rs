//! Differential test: repositories made with conex 1.0's own tools,
//! mutated (field edits, re-signed edits, layout variants, byte and token
//! mutations, file-system oddities, flags, legitimate updates in full and
//! incremental mode, renames as `git diff -M` writes them, mutated
//! patches), and `arca verify`'s verdict compared with the stricter of
//! conex's two verifiers (accept only when both accept).
//!
//! A mismatch that is one of arca's documented differences
//! (docs/conex-differences.md) is counted by its class; any other fails
//! the test, printed with its seed and case number. Replay one case with
//! `ARCA_DIFF_SEED=S ARCA_DIFF_ONLY=N cargo test --test differential --
//! --nocapture`; run many with `ARCA_DIFF_CASES=5000` (see
//! scripts/differential.sh).

#[path = "support/conex_repo.rs"]
mod conex_repo;
mod support;

use conex_repo::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: u64) -> Rng {
        let mut r = Rng(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The base repositories, built once per run.
struct Bases {
    scratch: PathBuf,
    homes: BTreeMap<&'static str, ConexHome>,
    repos: BTreeMap<&'static str, Built>,
}

fn packages(extra: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = vec![
        (
            "foo/foo.1.0.0/opam".into(),
            b"opam-version: \"2.0\"\nname: \"foo\"\n".to_vec(),
        ),
        (
            "foo/foo.1.0.1/opam".into(),
            b"opam-version: \"2.0\"\nname: \"foo\"\nversion: \"1.0.1\"\n".to_vec(),
        ),
        (
            "bar/bar.0.1/opam".into(),
            b"opam-version: \"2.0\"\n".to_vec(),
        ),
        (
            "bar/bar.0.1/files/fix.patch".into(),
            b"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n".to_vec(),
        ),
        (
            "baz/baz.2/opam".into(),
            b"opam-version: \"2.0\"\nsynopsis: \"no newline\"".to_vec(),
        ),
    ];
    v.extend_from_slice(extra);
    v
}

/// A few real packages from the opam-repository snapshot, when present.
fn real_packages() -> Vec<(String, Vec<u8>)> {
    let tar = support::shared_dir().join("opam-repository/packages-1a137c9113.tar.xz");
    if !tar.is_file() {
        return vec![];
    }
    let out = std::process::Command::new("tar")
        .args(["-xJOf"])
        .arg(&tar)
        .args([
            "packages/micro_httpd/micro_httpd.0.20.1/opam",
            "packages/ocamlfind/ocamlfind.1.9.6/opam",
            "packages/ocamlfind/ocamlfind.1.9.6/files/ocamlfind.install",
        ])
        .output();
    // members may be missing in another snapshot: fall back to nothing
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            vec![("micro_httpd/micro_httpd.0.20.1/opam".into(), o.stdout)]
        }
        _ => vec![],
    }
}

impl Bases {
    fn new(scratch: &Path) -> Bases {
        let mut homes = BTreeMap::new();
        let mut repos = BTreeMap::new();
        let real = real_packages();
        for (name, shape) in [
            ("production", Shape::Production),
            ("janitors", Shape::Janitors),
            ("bare", Shape::Bare),
        ] {
            let h = ConexHome::new(&scratch.join(format!("home-{name}")));
            let dir = scratch.join(format!("base-{name}"));
            write_packages(&dir, &packages(&real));
            let b = build(&h, &dir, shape);
            homes.insert(name, h);
            repos.insert(name, b);
        }
        Bases {
            scratch: scratch.to_path_buf(),
            homes,
            repos,
        }
    }
}

/// What a case runs: a full verification of `dir`, or an incremental one
/// of `patch` over `old`; extra flags.
struct Case {
    family: &'static str,
    what: String,
    full: Option<PathBuf>,
    incremental: Option<(PathBuf, PathBuf)>,
    flags: Vec<String>,
    anchors: Vec<String>,
    quorum: Option<usize>,
}

impl Case {
    fn args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.full {
            v.push("--dir".into());
            v.push(d.display().to_string());
        }
        if let Some((old, p)) = &self.incremental {
            v.extend([
                "--incremental".into(),
                "--repository".into(),
                old.display().to_string(),
                "--patch".into(),
                p.display().to_string(),
            ]);
        }
        for a in &self.anchors {
            v.push("-t".into());
            v.push(a.clone());
        }
        if let Some(q) = self.quorum {
            v.push("--quorum".into());
            v.push(q.to_string());
        }
        v.extend(self.flags.iter().cloned());
        v
    }
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut es: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    es.sort();
    for p in es {
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The signed files of a repository (root, keys/*, snapshot, timestamp).
fn signed_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![dir.join("root")];
    for n in ["snap", "ts"] {
        if dir.join(n).is_file() {
            v.push(dir.join(n));
        }
    }
    files_below(&dir.join("keys"), &mut v);
    v
}

fn package_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    files_below(&dir.join("packages"), &mut v);
    v
}

/// Byte mutations: flips, insertions, deletions, truncation.
fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>) -> String {
    let mut what = Vec::new();
    for _ in 0..=rng.below(3) {
        if b.is_empty() {
            b.push(b'x');
        }
        let at = rng.below(b.len());
        match rng.below(5) {
            0 => {
                let bit = 1u8 << rng.below(8);
                b[at] ^= bit;
                what.push(format!("flip {bit:#x} at {at}"));
            }
            1 => {
                let c = *rng.pick(b" \n\t\"[]()=0x_-+ZTa\\\x00\xff");
                b.insert(at, c);
                what.push(format!("insert {c:#x} at {at}"));
            }
            2 => {
                b.remove(at);
                what.push(format!("delete at {at}"));
            }
            3 => {
                b[at] = rng.below(256) as u8;
                what.push(format!("set at {at}"));
            }
            _ => {
                b.truncate(at);
                what.push(format!("truncate at {at}"));
            }
        }
    }
    what.join(", ")
}

/// Token mutations: a value in another spelling (some conex reads as the
/// same value, some not).
fn mutate_tokens(rng: &mut Rng, text: &str) -> Option<(String, String)> {
    type Edit = fn(&str) -> Option<String>;
    let edits: &[(&str, Edit)] = &[
        ("counter 0x1 -> 0x0_1", |t| {
            rep(t, "[counter 0x1]", "[counter 0x0_1]")
        }),
        ("counter 0x1 -> 0x01", |t| {
            rep(t, "[counter 0x1]", "[counter 0x01]")
        }),
        ("counter 0x1 -> 0X1", |t| {
            rep(t, "[counter 0x1]", "[counter 0X1]")
        }),
        ("counter 0x1 -> 0x_1", |t| {
            rep(t, "[counter 0x1]", "[counter 0x_1]")
        }),
        ("epoch 0x0 -> 0x0_0", |t| {
            rep(t, "[epoch 0x0]", "[epoch 0x0_0]")
        }),
        ("size in upper-case -> lower-case", |t| {
            let i = t.find("[size 0x")? + 8;
            let j = i + t[i..].find(']')?;
            let s = &t[i..j];
            (s != s.to_lowercase()).then(|| format!("{}{}{}", &t[..i], s.to_lowercase(), &t[j..]))
        }),
        ("digest hex upper-case", |t| {
            let i = t.find("\"sha256=")? + 8;
            Some(format!(
                "{}{}{}",
                &t[..i],
                t[i..i + 64].to_uppercase(),
                &t[i + 64..]
            ))
        }),
        ("signature base64 trailing bits", |t| {
            // the last data character before "==" of an Ed25519 signature
            // carries 4 unused bits
            let i = t.find("==\"")?;
            let c = t.as_bytes()[i - 1];
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let v = alphabet.iter().position(|x| *x == c)?;
            let n = alphabet[(v & !0xf) | ((v + 1) & 0xf)] as char;
            Some(format!("{}{}{}", &t[..i - 1], n, &t[i..]))
        }),
        ("non-UTF-8 byte in a signature value", |t| {
            let i = t.rfind("==\"")?;
            Some(format!("{}\u{0}{}", &t[..i - 2], &t[i - 2..]).replacen('\u{0}', "\u{FFFF}", 1))
        }),
        ("unterminated string", |t| {
            let i = t.rfind('"')?;
            Some(format!("{}{}", &t[..i], &t[i + 1..]))
        }),
        ("name in other case", |t| {
            let i = t.find("[name \"")? + 7;
            let j = i + t[i..].find('"')?;
            Some(format!("{}{}{}", &t[..i], t[i..j].to_uppercase(), &t[j..]))
        }),
        ("comment line", |t| Some(format!("(* a comment *)\n{t}"))),
        ("CRLF line ends", |t| Some(t.replace('\n', "\r\n"))),
        ("extra spaces", |t| Some(t.replace("[", "[ "))),
        ("created without Z", |t| {
            let i = t.find("Z\"")?;
            Some(format!("{}{}", &t[..i], &t[i + 1..]))
        }),
    ];
    let (name, f) = rng.pick(edits);
    f(text).map(|t| (name.to_string(), t))
}

fn rep(t: &str, a: &str, b: &str) -> Option<String> {
    t.contains(a).then(|| t.replacen(a, b, 1))
}

/// Timestamp `created` spellings to re-sign a timestamp with.
const CREATED_FORMS: &[&str] = &[
    "2026-11-21T23:33:22.5Z",
    "2026-11-21t23:33:22Z",
    "2026-11-21T23:33:22z",
    "2026-11-21T23:33:22+24:00",
    "1970-01-01T00:00:00Z",
    "2026-1-2T3:4:5Z",
    "2026-11-21T23:33:22+0:0",
    "2026-0x1-0x1T0x1:0_1:01Z",
    "2026-11-21T23:33:22-01:00",
    "2026-11-21T23:33:22",
    "99999-11-21T23:33:22Z",
    "2026-02-31T23:33:22Z",
    "2026-11-21T23:33:60Z",
];

fn copy_base(b: &Built, to: &Path) -> PathBuf {
    copy_all(&b.dir, to);
    to.to_path_buf()
}

fn write_str(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

/// Builds case `n` in `work` (emptied by the caller).
fn make_case(bases: &Bases, rng: &mut Rng, work: &Path) -> Case {
    let shape = *rng.pick(&["production", "production", "janitors", "bare"]);
    let b = &bases.repos[shape];
    let h = &bases.homes[shape];
    let mut case = Case {
        family: "",
        what: format!("{shape}: "),
        full: None,
        incremental: None,
        flags: vec![],
        anchors: b.anchors.clone(),
        quorum: Some(b.quorum),
    };
    let kind = rng.below(100);
    let dir = work.join("repo");
    if kind < 45 {
        // full verification of a mutated repository
        copy_base(b, &dir);
        case.full = Some(dir.clone());
        case.family = "full";
        let w = full_mutation(rng, h, b, &dir, &mut case);
        case.what += &w;
    } else {
        // incremental: a legitimate update, then maybe a mutated patch
        let old = copy_base(b, &work.join("old"));
        copy_base(b, &dir);
        let nb = Built {
            dir: dir.clone(),
            anchors: b.anchors.clone(),
            janitors: b.janitors.clone(),
            online: b.online,
            quorum: b.quorum,
        };
        let upd = update(rng, &dir);
        case.what += &format!("incremental, {upd}");
        if rng.chance(85) {
            if let Err(e) = try_resign(h, &nb, false) {
                case.what += &format!(" (conex's tools refused to sign: {e})");
            }
        } else {
            case.what += " (not re-signed)";
        }
        let mut patch = git_diff(work, &old, &dir);
        case.family =
            if case.what.contains("not re-signed") || case.what.contains("refused to sign") {
                "incremental, update not signed"
            } else {
                "incremental, signed update"
            };
        if rng.chance(50) {
            case.what += &format!("; patch {}", mutate_patch(rng, &mut patch));
            case.family = "incremental, mutated patch";
        }
        let p = work.join("update.patch");
        std::fs::write(&p, &patch).unwrap();
        case.incremental = Some((old, p));
    }
    flags(rng, &mut case);
    case
}

/// A legitimate-looking update of the tree in `dir` (not signed yet).
fn update(rng: &mut Rng, dir: &Path) -> String {
    let pk = dir.join("packages");
    match rng.below(8) {
        0 => {
            std::fs::create_dir_all(pk.join("foo/foo.2.0.0")).unwrap();
            write_str(
                &pk.join("foo/foo.2.0.0/opam"),
                "opam-version: \"2.0\"\nversion: \"2.0.0\"\n",
            );
            "new version foo.2.0.0".into()
        }
        1 => {
            // opam-repository moves version folders: micro_httpd.0.20.1 -> 0.20.1-1
            let from = if pk.join("micro_httpd/micro_httpd.0.20.1").is_dir() {
                "micro_httpd/micro_httpd.0.20.1"
            } else {
                "foo/foo.1.0.1"
            };
            let to = format!("{from}-1");
            std::fs::rename(pk.join(from), pk.join(&to)).unwrap();
            format!("rename {from} -> {to}")
        }
        2 => {
            std::fs::rename(pk.join("bar/bar.0.1"), pk.join("bar/bar.0.2")).unwrap();
            let f = pk.join("bar/bar.0.2/opam");
            let t = std::fs::read_to_string(&f).unwrap();
            write_str(&f, &format!("{t}synopsis: \"renamed and changed\"\n"));
            "rename bar.0.1 -> bar.0.2 with a change".into()
        }
        3 => {
            std::fs::remove_dir_all(pk.join("foo/foo.1.0.0")).unwrap();
            "remove foo.1.0.0".into()
        }
        4 => {
            let f = pk.join("baz/baz.2/opam");
            let t = std::fs::read_to_string(&f).unwrap();
            write_str(&f, &format!("{t}\ndepends: [\"foo\"]"));
            "edit a file without a final newline".into()
        }
        5 => {
            std::fs::create_dir_all(pk.join("foo/foo.1.0.0/files")).unwrap();
            std::os::unix::fs::symlink(
                "../../../bar/bar.0.1/opam",
                pk.join("foo/foo.1.0.0/files/link"),
            )
            .unwrap();
            "add a symbolic link".into()
        }
        6 => {
            let f = pk.join("bar/bar.0.1/files/fix.patch");
            write_str(&f, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+c\n");
            "edit a patch file".into()
        }
        _ => {
            std::fs::create_dir_all(pk.join("new/new.1")).unwrap();
            write_str(&pk.join("new/new.1/opam"), "opam-version: \"2.0\"\n");
            write_str(
                &pk.join("foo/foo.1.0.0/opam"),
                "opam-version: \"2.0\"\nname: \"foo\"\nsynopsis: \"x\"\n",
            );
            "new package and a changed file".into()
        }
    }
}

/// Mutations of a patch as it travels (or is crafted).
fn mutate_patch(rng: &mut Rng, p: &mut Vec<u8>) -> String {
    let text = String::from_utf8_lossy(p).into_owned();
    let (what, new): (&str, String) = match rng.below(9) {
        0 => {
            let w = mutate_bytes(rng, p);
            return format!("bytes ({w})");
        }
        1 => ("without a/ b/ prefixes", text.replace(" a/", " ").replace(" b/", " ")),
        2 => ("a section twice", {
            let secs: Vec<&str> = text.split_inclusive("\ndiff --git ").collect();
            let i = rng.below(secs.len());
            let mut s = text.clone();
            s.push_str("diff --git ");
            s.push_str(secs[i].trim_start_matches("diff --git "));
            s
        }),
        3 => ("stray lines", {
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            let at = rng.below(lines.len() + 1);
            lines.insert(at.min(lines.len()), "this is not a diff line\n");
            lines.concat()
        }),
        4 => ("a damaged --- header", text.replacen("\n--- ", "\n-- ", 1)),
        5 => ("a damaged +++ header", text.replacen("\n+++ ", "\n+++", 1)),
        6 => ("no `\\ No newline` markers", text.replace("\\ No newline at end of file\n", "")),
        7 => ("CRLF", text.replace('\n', "\r\n")),
        _ => ("mail around it", format!("From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] update\n\n---\n{text}-- \n2.47.3\n")),
    };
    *p = new.into_bytes();
    what.into()
}

/// A mutation of the repository in `dir` for full verification.
fn full_mutation(rng: &mut Rng, h: &ConexHome, b: &Built, dir: &Path, case: &mut Case) -> String {
    let nb = Built {
        dir: dir.to_path_buf(),
        anchors: b.anchors.clone(),
        janitors: b.janitors.clone(),
        online: b.online,
        quorum: b.quorum,
    };
    let rel = |p: &Path| p.strip_prefix(dir).unwrap().display().to_string();
    match rng.below(10) {
        0 | 1 => {
            let f = rng.pick(&signed_files(dir)).clone();
            let mut bytes = std::fs::read(&f).unwrap();
            let w = mutate_bytes(rng, &mut bytes);
            std::fs::write(&f, bytes).unwrap();
            format!("bytes of {} ({w})", rel(&f))
        }
        2 | 3 => {
            let f = rng.pick(&signed_files(dir)).clone();
            let t = std::fs::read_to_string(&f).unwrap();
            match mutate_tokens(rng, &t) {
                Some((w, t2)) => {
                    let t2 = t2.replace('\u{FFFF}', "\u{0}");
                    let mut bytes = t2.into_bytes();
                    // the non-UTF-8 byte
                    if let Some(i) = bytes.iter().position(|x| *x == 0) {
                        bytes[i] = 0xff;
                    }
                    std::fs::write(&f, bytes).unwrap();
                    format!("token in {}: {w}", rel(&f))
                }
                None => "token mutation (none applies)".into(),
            }
        }
        4 if b.online => {
            let c = *rng.pick(CREATED_FORMS);
            let f = dir.join("ts");
            let t = std::fs::read_to_string(&f).unwrap();
            let i = t.find("[created \"").unwrap() + 10;
            let j = i + t[i..].find('"').unwrap();
            write_str(&f, &format!("{}{c}{}", &t[..i], &t[j..]));
            h.ok("conex_timestamp", &["sign", "--id", "ts", "--no-incr"], dir);
            format!("timestamp re-signed with created {c:?}")
        }
        5 => {
            let u = update(rng, dir);
            if rng.chance(70) {
                match try_resign(h, &nb, false) {
                    Ok(()) => format!("legitimate update ({u})"),
                    Err(e) => format!("update ({u}), conex's tools refused to sign: {e}"),
                }
            } else {
                format!("update not signed ({u})")
            }
        }
        6 => {
            let pk = dir.join("packages");
            let what = match rng.below(10) {
                0 => {
                    unix_named::mkfifo(&pk.join("foo/foo.1.0.0/fifo"));
                    "a FIFO in a package"
                }
                1 => {
                    std::fs::create_dir_all(pk.join("unsigned/unsigned.1")).unwrap();
                    write_str(
                        &pk.join("unsigned/unsigned.1/opam"),
                        "opam-version: \"2.0\"\n",
                    );
                    "an unsigned package"
                }
                2 => {
                    write_str(&pk.join("foo/foo.1.0.0/extra"), "x");
                    "an unsigned file in a signed package"
                }
                3 => {
                    std::fs::create_dir_all(pk.join("empty/empty.1")).unwrap();
                    "an empty package folder"
                }
                4 => {
                    write_str(&dir.join("README"), "hello");
                    "a file at the top level"
                }
                5 => {
                    std::os::unix::fs::symlink("opam", pk.join("foo/foo.1.0.0/alias")).unwrap();
                    "a symbolic link to a signed file"
                }
                6 => {
                    std::os::unix::fs::symlink("missing", pk.join("foo/foo.1.0.0/dangling"))
                        .unwrap();
                    "a dangling symbolic link"
                }
                7 => {
                    let name = std::ffi::OsStr::from_bytes_lossless(b"caf\xe9");
                    std::fs::create_dir_all(pk.join("foo").join(name)).unwrap();
                    write_str(&pk.join("foo").join(name).join("opam"), "x");
                    "a non-UTF-8 folder name"
                }
                8 => {
                    std::fs::remove_file(pk.join("bar/bar.0.1/opam")).unwrap();
                    "a signed file removed"
                }
                _ => {
                    std::fs::rename(pk.join("foo/foo.1.0.1"), pk.join("foo/foo.1.0.2")).unwrap();
                    "a version folder renamed (not re-signed)"
                }
            };
            what.into()
        }
        7 => {
            // a re-signed targets file with an edit conex's tools keep
            let j = *rng.pick(&b.janitors);
            let f = dir.join("keys").join(j);
            let t = std::fs::read_to_string(&f).unwrap();
            let t2 = t.replacen("[counter 0x", "[counter 0x1", 1);
            write_str(&f, &t2);
            h.ok("conex_targets", &["sign", "--id", j, "--no-incr"], dir);
            resign_online(h, &nb, false);
            format!("targets {j} counter changed and re-signed")
        }
        8 => {
            let f = rng.pick(&package_files(dir)).clone();
            let mut bytes = std::fs::read(&f).unwrap();
            let w = mutate_bytes(rng, &mut bytes);
            std::fs::write(&f, bytes).unwrap();
            format!("bytes of {} ({w})", rel(&f))
        }
        _ => {
            case.anchors = b
                .anchors
                .iter()
                .map(|a| a.to_uppercase().replace("SHA256", "sha256"))
                .collect();
            if rng.chance(50) {
                let mut a = b.anchors.clone();
                a[0] = format!(" {}", a[0]);
                case.anchors = vec![a.join(",")];
            }
            "anchors in another spelling".into()
        }
    }
}

mod unix_named {
    pub fn mkfifo(p: &std::path::Path) {
        let st = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

trait FromBytes {
    fn from_bytes_lossless(b: &[u8]) -> &std::ffi::OsStr;
}

impl FromBytes for std::ffi::OsStr {
    fn from_bytes_lossless(b: &[u8]) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}

fn flags(rng: &mut Rng, case: &mut Case) {
    match rng.below(12) {
        0 => {
            case.flags.push("--ignore-missing".into());
            case.what += " [--ignore-missing]";
        }
        1 => {
            case.flags.push("--nostrict".into());
            case.what += " [--nostrict]";
        }
        2 => {
            case.flags.push("--no-opam".into());
            case.what += " [--no-opam]";
        }
        3 => {
            case.quorum = Some(case.quorum.unwrap_or(1) + 1);
            case.what += " [--quorum +1]";
        }
        4 => {
            case.quorum = None;
            case.what += " [no --quorum]";
        }
        _ => {}
    }
}

/// The documented difference a mismatch belongs to, if any
/// (docs/conex-differences.md).
fn documented(conex: &(Outcome, Outcome), arca: &Outcome) -> Option<&'static str> {
    let crashed = conex.0.code == Some(125) || conex.1.code == Some(125);
    if arca.accepted() && crashed {
        return Some("conex crashes on a file the verdict does not need");
    }
    if !arca.accepted() && conex.0.accepted() && conex.1.accepted() {
        let m = &arca.out;
        if m.contains("is not UTF-8") {
            return Some("a file name that is not UTF-8 is refused");
        }
        if m.contains("unsafe path") {
            return Some("a patch path with . or .. components or inside .git is refused");
        }
        if m.contains("changes this file twice") {
            return Some("a file the patch changes twice, differently in order");
        }
        if m.contains("is not a regular file or a directory") {
            return Some("a folder that cannot be listed is refused in incremental mode");
        }
    }
    None
}

struct Tally {
    cases: u64,
    agree: u64,
    accepted: u64,
    documented: BTreeMap<&'static str, u64>,
    mismatches: Vec<String>,
    /// family → (cases, accepted by conex)
    families: BTreeMap<&'static str, (u64, u64)>,
}

fn campaign(seed: u64, cases: u64, only: Option<u64>) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let bases = Bases::new(tmp.path());
    let mut t = Tally {
        cases: 0,
        agree: 0,
        accepted: 0,
        documented: BTreeMap::new(),
        mismatches: vec![],
        families: BTreeMap::new(),
    };
    let range: Vec<u64> = match only {
        Some(n) => vec![n],
        None => (0..cases).collect(),
    };
    for n in range {
        let work = bases.scratch.join("work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let mut rng = Rng::new(seed, n);
        let case = make_case(&bases, &mut rng, &work);
        let args = case.args();
        let conex = conex_verify(&args);
        let arca = arca_verify(&args);
        if let Some((old, _)) = &case.incremental {
            // with a verified-state cache of the old tree (written when the
            // old tree verifies cleanly with these flags): the same outcome
            let cache = work.join("arca-state");
            let mut full = vec!["--dir".to_string(), old.display().to_string()];
            full.extend(args.iter().skip(5).cloned());
            full.extend(["--cache".to_string(), cache.display().to_string()]);
            let _ = arca_verify(&full);
            let mut with = args.clone();
            with.extend(["--cache".to_string(), cache.display().to_string()]);
            let cached = arca_verify(&with);
            let strip = |s: &str| -> String {
                s.lines()
                    .filter(|l| !l.starts_with("verified-state cache "))
                    .map(|l| format!("{l}\n"))
                    .collect()
            };
            if cached.code != arca.code || strip(&cached.out) != strip(&arca.out) {
                t.mismatches.push(format!(
                    "seed {seed} case {n}: {} — arca with --cache gives {:?} {:?}, without {:?} {:?}",
                    case.what, cached.code, cached.out, arca.code, arca.out
                ));
            }
        }
        let conex_ok = conex.0.accepted() && conex.1.accepted();
        t.cases += 1;
        let f = t.families.entry(case.family).or_default();
        f.0 += 1;
        f.1 += u64::from(conex_ok);
        if only.is_some() {
            eprintln!(
                "case {n}: {}\nargs: {args:?}\nopenssl {:?}:\n{}\nmirage {:?}:\n{}\narca {:?}:\n{}",
                case.what,
                conex.0.code,
                conex.0.out,
                conex.1.code,
                conex.1.out,
                arca.code,
                arca.out
            );
        }
        if conex_ok == arca.accepted() {
            t.agree += 1;
            t.accepted += u64::from(conex_ok);
            continue;
        }
        match documented(&conex, &arca) {
            Some(d) => *t.documented.entry(d).or_default() += 1,
            None => t.mismatches.push(format!(
                "seed {seed} case {n}: {} — conex {} (openssl {:?}, mirage {:?}), arca {} ({:?}): {}\n  conex: {}\n  replay: ARCA_DIFF_SEED={seed} ARCA_DIFF_ONLY={n} cargo test --test differential -- --nocapture",
                case.what,
                if conex_ok { "accepts" } else { "rejects" },
                conex.0.code,
                conex.1.code,
                if arca.accepted() { "accepts" } else { "rejects" },
                arca.code,
                arca.out.trim().lines().last().unwrap_or(""),
                conex.0.out.trim().lines().last().unwrap_or(""),
            )),
        }
    }
    t
}

#[test]
#[cfg_attr(
    not(arca_conex_oracle),
    ignore = "needs conex's tools (../shared/oracle/build.sh)"
)]
fn arca_gives_conex_verdicts_on_conex_made_repositories() {
    let seed = env_u64("ARCA_DIFF_SEED", 0x00c0_ffee);
    let cases = env_u64("ARCA_DIFF_CASES", 200);
    let only = std::env::var("ARCA_DIFF_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let t = campaign(seed, cases, only);
    let documented: u64 = t.documented.values().sum();
    eprintln!(
        "differential: seed {seed}, {} cases, {} agree ({} accepted by both), {} documented differences {:?}, {} mismatches",
        t.cases,
        t.agree,
        t.accepted,
        documented,
        t.documented,
        t.mismatches.len()
    );
    for (f, (n, a)) in &t.families {
        eprintln!("  {f}: {n} cases, {a} accepted by conex");
    }
    for m in &t.mismatches {
        eprintln!("{m}");
    }
    assert!(
        t.mismatches.is_empty(),
        "{} undocumented mismatches",
        t.mismatches.len()
    );
    if only.is_none() && t.cases >= 100 {
        // the campaign must exercise both verdicts
        assert!(
            t.accepted > t.cases / 10,
            "too few accepted cases: {}",
            t.accepted
        );
        assert!(t.accepted < t.cases * 9 / 10, "too few rejected cases");
    }
}

/// The package folders the real updates touch.
fn touched_packages(diffs: &[PathBuf]) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for d in diffs {
        for l in std::fs::read_to_string(d).unwrap().lines() {
            if let Some(rest) = l.strip_prefix("diff --git a/packages/") {
                if let Some(n) = rest.split('/').next() {
                    names.insert(n.to_string());
                }
            }
        }
    }
    names.into_iter().collect()
}

/// The real opam-repository updates (`git diff -M` of 60 commits) on the
/// packages they touch (taken from the snapshot before them), signed with
/// conex's tools after each commit as the online signer would: every
/// update, and every update followed by a version folder renamed the way
/// opam-repository renames them (`x.1.0` → `x.1.0-1`), travels as a `git
/// diff -M` and must be accepted incrementally by both of conex's
/// verifiers and by arca. CI takes the first 8 commits
/// (`ARCA_DIFF_REAL_UPDATES=60` for all).
#[test]
#[cfg_attr(
    not(all(arca_conex_oracle, arca_shared_opam)),
    ignore = "needs conex's tools (../shared/oracle/build.sh) and ../shared/opam-repository"
)]
fn real_opam_repository_updates_and_renames_incrementally() {
    let shared = support::shared_dir().join("opam-repository");
    let mut diffs: Vec<PathBuf> = std::fs::read_dir(shared.join("updates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "diff"))
        .collect();
    diffs.sort();
    let limit = env_u64("ARCA_DIFF_REAL_UPDATES", 8) as usize;
    diffs.truncate(limit);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo = t.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let tar = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .unwrap();
    let members: Vec<String> = touched_packages(&diffs)
        .into_iter()
        .map(|n| format!("packages/{n}"))
        .collect();
    // packages new in the updates are not in the snapshot: tar says so
    // and extracts the others
    let _ = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(&tar)
        .arg("-C")
        .arg(&repo)
        .args(&members)
        .output()
        .unwrap();
    std::fs::create_dir_all(repo.join("packages")).unwrap();
    let h = ConexHome::new(&t.join("h"));
    let b = build(&h, &repo, Shape::Production);
    let args_of = |old: &Path, p: &Path| {
        let mut v = vec![
            "--incremental".to_string(),
            "--repository".into(),
            old.display().to_string(),
            "--patch".into(),
            p.display().to_string(),
        ];
        for a in &b.anchors {
            v.extend(["-t".to_string(), a.clone()]);
        }
        v
    };
    let mut failures = Vec::new();
    let (mut updates, mut renames) = (0, 0);
    let mut check = |what: String, old: &Path, new: &Path| {
        let patch = git_diff(t, old, new);
        let p = t.join("u.patch");
        std::fs::write(&p, &patch).unwrap();
        let args = args_of(old, &p);
        let (a, m) = conex_verify(&args);
        let me = arca_verify(&args);
        if !(a.accepted() && m.accepted() && me.accepted()) {
            failures.push(format!(
                "{what}: openssl {:?} mirage {:?} arca {:?}\n  conex: {}\n  arca: {}",
                a.code,
                m.code,
                me.code,
                a.out.trim(),
                me.out.trim()
            ));
        }
        String::from_utf8_lossy(&patch).contains("\nrename from ")
    };
    for d in &diffs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        if std::env::var_os("ARCA_DIFF_VERBOSE").is_some() {
            eprintln!("{name}");
        }
        let old = t.join("old");
        let _ = std::fs::remove_dir_all(&old);
        copy_all(&repo, &old);
        let o = std::process::Command::new("git")
            .args(["apply", "--whitespace=nowarn"])
            .arg(d)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: git apply: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        resign(&h, &b, false);
        check(format!("update {name}"), &old, &repo);
        updates += 1;
        // then a version folder the update touched is renamed
        let text = std::fs::read_to_string(d).unwrap();
        let dir = text.lines().find_map(|l| {
            let rest = l.strip_prefix("+++ b/packages/")?;
            let mut it = rest.split('/');
            let (p, v) = (it.next()?, it.next()?);
            Some(format!("{p}/{v}"))
        });
        let Some(dir) = dir.filter(|x| repo.join("packages").join(x).is_dir()) else {
            continue;
        };
        let renamed = t.join("renamed");
        let _ = std::fs::remove_dir_all(&renamed);
        copy_all(&repo, &renamed);
        std::fs::rename(
            renamed.join("packages").join(&dir),
            renamed.join("packages").join(format!("{dir}-1")),
        )
        .unwrap();
        let rb = Built {
            dir: renamed.clone(),
            anchors: b.anchors.clone(),
            janitors: b.janitors.clone(),
            online: b.online,
            quorum: b.quorum,
        };
        resign(&h, &rb, false);
        if check(
            format!("update {name}, then {dir} renamed to {dir}-1"),
            &repo,
            &renamed,
        ) {
            renames += 1;
        }
    }
    eprintln!(
        "real opam-repository updates: {updates} updates and {renames} git renames, each accepted by both conex verifiers and arca unless listed: {} failures",
        failures.len()
    );
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty());
    assert!(renames > 0 || diffs.len() < 3, "no rename was exercised");
}
