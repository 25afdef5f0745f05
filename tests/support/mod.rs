//! Shared helpers for the integration tests: run the real `arca` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ANCHOR_A: &str =
    "sha256=02f4b9911e6a40314bcdd80ba24eb0342bdd96b1b80117f8c0deb8c3eddd238e";
pub const ANCHOR_B: &str =
    "sha256=d98556b24c02da8a71431d3282e6423e7edb65bceee168be26f57619aae6d2ea";

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

pub fn arca<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run arca")
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "arca failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies a directory tree (files made writable).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let mut p = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            p.set_readonly(false);
            std::fs::set_permissions(&dst, p).unwrap();
        }
    }
}

/// A key store with the vector keys, their mtimes set to the time conex
/// created them (conex records a key's mtime as its `created`).
pub fn vector_key_store(dir: &Path) -> PathBuf {
    let ks = dir.join("ks");
    copy_tree(&vectors().join("private-keys"), &ks);
    let t = filetime(1795303994); // 2026-11-21T23:33:14Z
    for e in std::fs::read_dir(&ks).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(t).unwrap();
    }
    ks
}

pub fn filetime(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// A fresh repository with the vectors' two packages.
pub fn fresh_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    copy_tree(&vectors().join("repo/packages"), &repo.join("packages"));
    repo
}

/// The folder beside the clone with other projects' public data
/// (`$ARCA_SHARED` when set at build time, else `../shared`), as build.rs
/// found it.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("ARCA_SHARED_DIR"))
}

/// The repository signed by upstream conex (public data of another project,
/// never copied into this repository). Tests that read it carry
/// `#[cfg_attr(not(arca_shared_upstream), ignore = "…")]`: build.rs sets the
/// cfg when the folder is there, so without it they are listed as ignored.
pub fn upstream_testrepo() -> PathBuf {
    let dir = shared_dir().join("conex-vectors/upstream-testrepo");
    assert!(
        dir.is_dir(),
        "{} is missing (it was there when the tests were built)",
        dir.display()
    );
    dir
}

/// One of conex's own tools (`../shared/oracle/build.sh` installs them).
/// Tests that run them carry
/// `#[cfg_attr(not(arca_conex_oracle), ignore = "…")]`.
pub fn conex_tool(name: &str) -> PathBuf {
    let dir = env!("ARCA_CONEX_BIN_DIR");
    assert!(
        !dir.is_empty(),
        "conex's tools were not found when the tests were built"
    );
    let tool = Path::new(dir).join(name);
    assert!(tool.is_file(), "{} is missing", tool.display());
    tool
}

/// The janitor flow through the binary: the root holders rootA and rootB
/// (the vector key store) delegate `maintainer` to janitor j1's key at `on`
/// and sign the root, then j1 creates, computes and signs their targets
/// file. `run` runs one arca command on the repository and returns its
/// stdout; the output of `targets sign` is returned.
#[allow(dead_code)]
pub fn delegate_and_sign_targets(run: &dyn Fn(&[&str]) -> String, on: &str) -> String {
    run(&[
        "root",
        "add-to-role",
        "--role",
        "maintainer",
        "--id",
        "j1",
        "--on",
        on,
    ]);
    run(&["root", "sign", "--id", "rootA"]);
    run(&["root", "sign", "--id", "rootB"]);
    run(&["targets", "create", "--id", "j1", "--on", on]);
    run(&["targets", "compute", "--id", "j1"]);
    run(&["targets", "sign", "--id", "j1", "--on", on])
}

/// Writes `base/profile.toml` giving each holder a key-file device folder
/// `base/devices/<holder>/` (created), and returns the profile's path.
#[allow(dead_code)]
pub fn file_device_profile(base: &Path, holders: &[&str]) -> PathBuf {
    let mut profile = String::from("[holders]\n");
    for h in holders {
        let d = base.join("devices").join(h);
        std::fs::create_dir_all(&d).unwrap();
        profile.push_str(&format!("{h} = \"file:{}/\"\n", d.display()));
    }
    let path = base.join("profile.toml");
    std::fs::write(&path, profile).unwrap();
    path
}

/// The public key of the janitor `m1` the ceremony tests delegate to.
pub const M1_KEY: &str = "ed25519=XE99Nq6FqHtIKtYiTLPb/yoZkft9WH4pyXETYbGV0ks=";

/// A create-root ceremony file written to `out`: a 2-of-2 root of `rootA`
/// (holder alice, Ed25519) and `rootB` (holder bob), then the sections in
/// the order they are added.
pub struct CreateRoot {
    text: String,
}

impl CreateRoot {
    /// Both root keys Ed25519.
    pub fn new(title: &str) -> Self {
        Self::with_root_b(title, "ed25519")
    }

    /// `rootB` of `algorithm`.
    pub fn with_root_b(title: &str, algorithm: &str) -> Self {
        CreateRoot {
            text: format!(
                "kind = \"create-root\"\ntitle = \"{title}\"\noutput = \"out\"\n\n[root]\nquorum = 2\nkeys = [\n  {{ id = \"rootA\", holder = \"alice\", algorithm = \"ed25519\" }},\n  {{ id = \"rootB\", holder = \"bob\", algorithm = \"{algorithm}\" }},\n]\n"
            ),
        }
    }

    /// `[maintainers]` with the one janitor `id` of public key `key`.
    pub fn janitor(mut self, id: &str, key: &str) -> Self {
        self.text.push_str(&format!(
            "\n[maintainers]\njanitors = [\n  {{ id = \"{id}\", key = \"{key}\" }},\n]\n"
        ));
        self
    }

    /// Online keys `snap` and `ts` generated at the ceremony.
    pub fn generated_online(mut self) -> Self {
        self.text.push_str(
            "\n[snapshot]\nid = \"snap\"\ngenerate = true\n\n[timestamp]\nid = \"ts\"\ngenerate = true\n",
        );
        self
    }

    /// Online keys `snap` and `ts` given by their public keys.
    pub fn given_online(mut self, snapshot_key: &str, timestamp_key: &str) -> Self {
        self.text.push_str(&format!(
            "\n[snapshot]\nid = \"snap\"\nkey = \"{snapshot_key}\"\n\n[timestamp]\nid = \"ts\"\nkey = \"{timestamp_key}\"\n"
        ));
        self
    }

    pub fn text(&self) -> String {
        self.text.clone()
    }
}

/// Makes `base` a ceremony room with key-file devices: a device profile for
/// alice and bob (`profile.toml`), `pass.txt` holding `passphrase`, an
/// answers file (`answers.toml`) that confirms and names `pass.txt` as the
/// online keys' passphrase, and the ceremony file `c.toml` holding
/// `ceremony`.
pub fn file_device_room(base: &Path, ceremony: &str, passphrase: &str) {
    file_device_profile(base, &["alice", "bob"]);
    std::fs::write(base.join("pass.txt"), format!("{passphrase}\n")).unwrap();
    std::fs::write(
        base.join("answers.toml"),
        "confirm = \"yes\"\n[secrets]\n\"passphrase:online-keys\" = \"pass.txt\"\n",
    )
    .unwrap();
    std::fs::write(base.join("c.toml"), ceremony).unwrap();
}

/// `arca ceremony <verb>` (run or resume) on the room `file_device_room`
/// made in `base`.
pub fn file_device_ceremony(verb: &str, base: &Path) -> Output {
    arca(ceremony_args(
        verb,
        &base.join("c.toml"),
        &base.join("profile.toml"),
        &base.join("answers.toml"),
        base,
    ))
}

/// The arguments of `arca ceremony <verb> FILE --profile PROFILE --answers
/// ANSWERS --base BASE`.
pub fn ceremony_args(
    verb: &str,
    file: &Path,
    profile: &Path,
    answers: &Path,
    base: &Path,
) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        "ceremony".into(),
        verb.into(),
        path(file),
        "--profile".into(),
        path(profile),
        "--answers".into(),
        path(answers),
        "--base".into(),
        path(base),
    ]
}

/// Rewrites a bundle's MANIFEST so it matches its files again (a careful
/// forger).
pub fn remanifest(dir: &Path) {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
                if rel != "MANIFEST" {
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    let m =
        arca::bundle::manifest::Manifest::of(files.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
    std::fs::write(dir.join("MANIFEST"), m.render()).unwrap();
}

pub struct Room {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub profile: PathBuf,
    pub answers: PathBuf,
}

pub fn room(holders: &[&str]) -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    file_device_profile(&base, holders);
    std::fs::write(base.join("answers.toml"), "confirm = \"yes\"\n").unwrap();
    Room {
        profile: base.join("profile.toml"),
        answers: base.join("answers.toml"),
        base,
        _tmp: tmp,
    }
}

impl Room {
    pub fn ceremony(&self, verb: &str, file: &Path) -> std::process::Output {
        self.ceremony_answering(verb, file, &self.answers)
    }
    /// `ceremony` with another answers file.
    pub fn ceremony_answering(&self, verb: &str, file: &Path, answers: &Path) -> Output {
        arca(ceremony_args(
            verb,
            file,
            &self.profile,
            answers,
            &self.base,
        ))
    }
    pub fn check(&self, file: &Path) -> std::process::Output {
        arca([
            "ceremony",
            "check",
            file.to_str().unwrap(),
            "--profile",
            self.profile.to_str().unwrap(),
        ])
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.base.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A bump-epoch ceremony for the snapshot role of the root a create-root
/// ceremony wrote to `out/create-root`, signed by rootA (alice) and rootB
/// (bob), written to `out/bump`.
pub const BUMP_SNAPSHOT_EPOCH: &str = r#"kind = "bump-epoch"
title = "snapshot counter was pushed to the maximum"
root = "out/create-root/root"
output = "out/bump"
role = "snapshot"
id = "snap"
holders = [ { id = "rootA", holder = "alice" }, { id = "rootB", holder = "bob" } ]
"#;

/// A person's own SoftHSM store in `store`: its `softhsm2.conf` and
/// `tokens/`, with one token `mine` (SO PIN 12345678, user PIN 1234) made
/// by `softhsm2-util`. Returns the configuration file's path.
pub fn softhsm_store_with_one_token(store: &Path) -> PathBuf {
    std::fs::create_dir_all(store.join("tokens")).unwrap();
    let conf = store.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            store.join("tokens").display()
        ),
    )
    .unwrap();
    let o = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "mine",
            "--so-pin",
            "12345678",
            "--pin",
            "1234",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    conf
}
