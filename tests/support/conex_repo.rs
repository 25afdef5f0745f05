//! Repositories made with conex 1.0's own tools (`conex_key`,
//! `conex_root`, `conex_targets`, `conex_snapshot`, `conex_timestamp`, keys
//! in a temporary `$HOME/.conex`), and both of conex's verifiers asked for
//! their verdict. Used by the differential and interop tests.
#![allow(dead_code)]

use crate::support::{arca, conex_tool};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `$HOME` whose `.conex` holds the keys conex's tools made.
pub struct ConexHome {
    pub home: PathBuf,
}

impl ConexHome {
    pub fn new(dir: &Path) -> ConexHome {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        ConexHome { home }
    }

    /// Runs one of conex's tools in `cwd` with this `$HOME`.
    pub fn run(&self, tool: &str, args: &[&str], cwd: &Path) -> Output {
        Command::new(conex_tool(tool))
            .args(args)
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"))
    }

    /// Runs a tool and insists it succeeds.
    pub fn ok(&self, tool: &str, args: &[&str], cwd: &Path) -> String {
        let o = self.run(tool, args, cwd);
        assert!(
            o.status.success(),
            "{tool} {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The key id (`sha256=…`) of a key `conex_key` made.
    pub fn key_id(&self, id: &str) -> String {
        for e in std::fs::read_dir(self.home.join(".conex")).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            if let Some(rest) = n.strip_prefix(&format!("{id}.")) {
                return rest.trim_end_matches(".private").to_string();
            }
        }
        panic!("no key {id}");
    }
}

/// The shapes of repository the tests build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// conex.robur.coop today: one root key, one maintainer key for
    /// everything, snapshot and timestamp.
    Production,
    /// Two root keys (RSA-4096 and Ed25519) with a quorum of 2, two
    /// janitors with a maintainer quorum of 2, snapshot and timestamp.
    Janitors,
    /// One root key and one janitor; no snapshot, no timestamp.
    Bare,
}

/// A repository built by conex's tools.
pub struct Built {
    pub dir: PathBuf,
    pub anchors: Vec<String>,
    pub janitors: Vec<&'static str>,
    pub online: bool,
    pub quorum: usize,
}

/// Writes the packages: `(path below packages/, content)`.
pub fn write_packages(repo: &Path, files: &[(String, Vec<u8>)]) {
    for (p, c) in files {
        let f = repo.join("packages").join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
}

/// Builds a repository of `shape` in `repo` (its packages written already)
/// with conex's tools and keys in `h`.
pub fn build(h: &ConexHome, repo: &Path, shape: Shape) -> Built {
    let have = |id: &str| {
        h.home.join(".conex").is_dir()
            && std::fs::read_dir(h.home.join(".conex")).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{id}."))
            })
    };
    let key = |id: &str, alg: &str| {
        if !have(id) {
            h.ok("conex_key", &["--id", id, "--key-algorithm", alg], repo);
        }
    };
    let (roots, janitors, online): (Vec<(&str, &str)>, Vec<&'static str>, bool) = match shape {
        Shape::Production => (vec![("rootA", "ed25519")], vec!["m1"], true),
        Shape::Janitors => (
            vec![("rootR", "rsa"), ("rootB", "ed25519")],
            vec!["j1", "j2"],
            true,
        ),
        Shape::Bare => (vec![("rootA", "ed25519")], vec!["m1"], false),
    };
    for (r, alg) in &roots {
        key(r, alg);
    }
    for j in &janitors {
        key(j, "ed25519");
    }
    if online {
        key("snap", "ed25519");
        key("ts", "ed25519");
    }
    h.ok("conex_root", &["create"], repo);
    for (i, (r, _)) in roots.iter().enumerate() {
        let q = (i + 1).to_string();
        h.ok("conex_root", &["add-key", "--id", r, "--quorum", &q], repo);
    }
    for j in &janitors {
        h.ok(
            "conex_root",
            &["add-to-role", "--role", "maintainer", "--id", j],
            repo,
        );
    }
    if online {
        h.ok(
            "conex_root",
            &["add-to-role", "--role", "snapshot", "--id", "snap"],
            repo,
        );
        h.ok(
            "conex_root",
            &["add-to-role", "--role", "timestamp", "--id", "ts"],
            repo,
        );
    }
    if shape == Shape::Janitors {
        // a maintainer quorum of 2 (conex_root makes 1 of the list)
        let root = std::fs::read_to_string(repo.join("root")).unwrap();
        let at = root.find("maintainer").unwrap();
        let (a, b) = root.split_at(at);
        let b = b.replacen("(1", "(2", 1);
        std::fs::write(repo.join("root"), format!("{a}{b}")).unwrap();
    }
    for (i, (r, _)) in roots.iter().enumerate() {
        if i == 0 {
            h.ok("conex_root", &["sign", "--id", r], repo);
        } else {
            h.ok("conex_root", &["sign", "--id", r, "--no-incr"], repo);
        }
    }
    for j in &janitors {
        h.ok("conex_targets", &["create", "--id", j], repo);
    }
    let b = Built {
        dir: repo.to_path_buf(),
        anchors: roots.iter().map(|(r, _)| h.key_id(r)).collect(),
        janitors,
        online,
        quorum: roots.len(),
    };
    resign(h, &b, true);
    b
}

/// conex's update flow: every janitor recomputes and signs their targets
/// file, then the snapshot and the timestamp are signed. Panics if a tool
/// fails (see [`try_resign`]).
pub fn resign(h: &ConexHome, b: &Built, first: bool) {
    if let Err(e) = try_resign(h, b, first) {
        panic!("{e}");
    }
}

/// [`resign`], returning the first tool failure.
pub fn try_resign(h: &ConexHome, b: &Built, first: bool) -> Result<(), String> {
    for j in &b.janitors {
        try_ok(h, "conex_targets", &["compute", "--id", j], &b.dir)?;
        try_ok(h, "conex_targets", &["sign", "--id", j], &b.dir)?;
    }
    try_resign_online(h, b, first)
}

fn try_ok(h: &ConexHome, tool: &str, args: &[&str], cwd: &Path) -> Result<(), String> {
    let o = h.run(tool, args, cwd);
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {args:?} failed ({:?}): {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Refreshes (`create` recomputes the list of files) and signs the
/// snapshot and the timestamp (`sign` alone signs the old list).
pub fn resign_online(h: &ConexHome, b: &Built, first: bool) {
    if let Err(e) = try_resign_online(h, b, first) {
        panic!("{e}");
    }
}

fn try_resign_online(h: &ConexHome, b: &Built, first: bool) -> Result<(), String> {
    if !b.online {
        return Ok(());
    }
    let _ = first;
    try_ok(h, "conex_snapshot", &["create", "--id", "snap"], &b.dir)?;
    try_ok(h, "conex_snapshot", &["sign", "--id", "snap"], &b.dir)?;
    try_ok(h, "conex_timestamp", &["create", "--id", "ts"], &b.dir)?;
    try_ok(h, "conex_timestamp", &["sign", "--id", "ts"], &b.dir)
}

/// One verifier's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub out: String,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        self.code == Some(0)
    }
}

fn outcome(o: Output) -> Outcome {
    Outcome {
        code: o.status.code(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// Runs both of conex's verifiers with `args`: (openssl, mirage-crypto).
pub fn conex_verify(args: &[String]) -> (Outcome, Outcome) {
    let run = |tool: &str| {
        let mut c = Command::new(conex_tool(tool));
        c.args(args).env_remove("SOURCE_DATE_EPOCH");
        outcome(c.output().unwrap())
    };
    (
        run("conex_verify_openssl"),
        run("conex_verify_mirage_crypto"),
    )
}

/// Runs `arca verify` with `args`.
pub fn arca_verify(args: &[String]) -> Outcome {
    let mut v = vec!["verify".to_string()];
    v.extend(args.iter().cloned());
    outcome(arca(&v))
}

/// `--dir DIR -t anchors…` (and `--quorum`).
pub fn full_args(b: &Built, dir: &Path) -> Vec<String> {
    let mut v = vec!["--dir".to_string(), dir.display().to_string()];
    for a in &b.anchors {
        v.push("-t".into());
        v.push(a.clone());
    }
    v.push("--quorum".into());
    v.push(b.quorum.to_string());
    v
}

/// The same `git diff -M` a repository update travels as: `old` and `new`
/// committed one after the other in a scratch git repository.
pub fn git_diff(scratch: &Path, old: &Path, new: &Path) -> Vec<u8> {
    let g = scratch.join("git");
    let _ = std::fs::remove_dir_all(&g);
    std::fs::create_dir_all(&g).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "core.autocrlf=false",
            ])
            .args(args)
            .current_dir(&g)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    git(&["init", "-q"]);
    copy_all(old, &g);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "old", "--allow-empty"]);
    for e in std::fs::read_dir(&g).unwrap() {
        let e = e.unwrap();
        if e.file_name() != ".git" {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    copy_all(new, &g);
    git(&["add", "-A"]);
    git(&["diff", "--cached", "-M"])
}

/// Copies a tree, keeping symbolic links as links.
pub fn copy_all(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_all(&e.path(), &dst);
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}
