//! Ceremonies through the real binary with key files as devices: create a
//! root, kill it after every step and resume, rotate a compromised key,
//! bump an epoch — and show the attack each answers failing afterwards.

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

struct Room {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    profile: PathBuf,
    answers: PathBuf,
}

fn room(holders: &[&str]) -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    support::file_device_profile(&base, holders);
    std::fs::write(base.join("answers.toml"), "confirm = \"yes\"\n").unwrap();
    Room {
        profile: base.join("profile.toml"),
        answers: base.join("answers.toml"),
        base,
        _tmp: tmp,
    }
}

impl Room {
    fn ceremony(&self, verb: &str, file: &Path) -> std::process::Output {
        arca([
            "ceremony",
            verb,
            file.to_str().unwrap(),
            "--profile",
            self.profile.to_str().unwrap(),
            "--answers",
            self.answers.to_str().unwrap(),
            "--base",
            self.base.to_str().unwrap(),
        ])
    }
    fn check(&self, file: &Path) -> std::process::Output {
        arca([
            "ceremony",
            "check",
            file.to_str().unwrap(),
            "--profile",
            self.profile.to_str().unwrap(),
        ])
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.base.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn create_root_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml")
}

fn anchors(out: &Path) -> String {
    std::fs::read_to_string(out.join("anchors.txt"))
        .unwrap()
        .trim()
        .to_string()
}

/// The vectors' repository (janitor m1, snapshot snap, timestamp ts: the
/// keys the example ceremony delegates to) under a new root.
fn repo_with_root(base: &Path, root: &Path) -> PathBuf {
    let repo = base.join("repo");
    if !repo.exists() {
        copy_tree(&vectors().join("repo"), &repo);
    }
    std::fs::copy(root, repo.join("root")).unwrap();
    repo
}

fn verify(repo: &Path, anchors: &str) -> (bool, String) {
    let o = arca([
        "verify",
        "--dir",
        repo.to_str().unwrap(),
        "-t",
        anchors,
        "--quorum",
        "2",
    ]);
    (
        o.status.success(),
        format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o)),
    )
}

#[test]
fn create_root_then_the_repository_verifies() {
    let r = room(&["alice", "bob", "carol"]);
    ok(&r.check(&create_root_file()));
    ok(&r.ceremony("run", &create_root_file()));
    let out = r.base.join("out/create-root");
    for f in [
        "root",
        "anchors.txt",
        "opam.txt",
        "ceremony.toml",
        "journal.jsonl",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let a = anchors(&out);
    assert_eq!(a.matches("sha256=").count(), 3);
    let repo = repo_with_root(&r.base, &out.join("root"));
    let (good, msg) = verify(&repo, &a);
    assert!(good, "{msg}");
    let t = ok(&arca([
        "ceremony",
        "verify-transcript",
        out.to_str().unwrap(),
    ]));
    assert!(t.contains("chain intact"), "{t}");
    // running again into the same output is refused before anything happens
    let o = r.ceremony("run", &create_root_file());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("output folder"), "{}", stderr(&o));
}

fn journal_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn killed_after_every_step_resumes_to_the_same_root() {
    let r = room(&["alice", "bob", "carol"]);
    let out = r.base.join("out/create-root");
    let journal = out.join("journal.jsonl");
    let mut kills = 0;
    for kill_at in 1..=11 {
        let verb = if journal.exists() { "resume" } else { "run" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["ceremony", verb, create_root_file().to_str().unwrap()])
            .args([
                "--profile",
                r.profile.to_str().unwrap(),
                "--answers",
                r.answers.to_str().unwrap(),
            ])
            .args(["--base", r.base.to_str().unwrap()])
            .env("ARCA_CEREMONY_STEP_DELAY_MS", "150")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if journal_lines(&journal) >= kill_at {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("ceremony ended ({st}) before step {kill_at}");
            }
            assert!(std::time::Instant::now() < deadline, "no progress");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().unwrap();
        // the chain is intact after every kill
        ok(&arca([
            "ceremony",
            "verify-transcript",
            journal.to_str().unwrap(),
        ]));
    }
    assert_eq!(kills, 11);
    ok(&r.ceremony("resume", &create_root_file()));
    // one key per holder: nothing generated twice
    for h in ["alice", "bob", "carol"] {
        let n = std::fs::read_dir(r.base.join("devices").join(h))
            .unwrap()
            .count();
        assert_eq!(n, 1, "{h} has {n} keys");
    }
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<&str> = entries
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    let mut uniq = steps.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), steps.len(), "a step ran twice: {steps:?}");
    assert_eq!(steps.last(), Some(&"done"));
    // every key recorded in the journal is in the root, and the root verifies
    let root_text = std::fs::read_to_string(out.join("root")).unwrap();
    for e in entries
        .iter()
        .filter(|e| e["step"].as_str().unwrap().starts_with("root-key:"))
    {
        let public = e["detail"]["public"].as_str().unwrap();
        let data = public.split_once('=').unwrap().1;
        let first_line = data.lines().nth(1).unwrap_or(data);
        assert!(
            root_text.contains(first_line),
            "key of {} missing from the root",
            e["step"]
        );
    }
    let repo = repo_with_root(&r.base, &out.join("root"));
    let (good, msg) = verify(&repo, &anchors(&out));
    assert!(good, "{msg}");
}

#[test]
fn rotating_a_compromised_root_key_drops_its_vote() {
    let r = room(&["alice", "bob", "carol", "dave"]);
    ok(&r.ceremony("run", &create_root_file()));
    let first = r.base.join("out/create-root");
    let rotate = r.write(
        "rotate.toml",
        r#"kind = "rotate-key"
title = "bob's key was lost"
root = "out/create-root/root"
output = "out/rotate"
target = "root"
compromised = "rootB"
new_root_key = { id = "rootD", holder = "dave", algorithm = "ed25519" }
holders = [ { id = "rootA", holder = "alice" }, { id = "rootC", holder = "carol" } ]
"#,
    );
    let o = r.ceremony("run", &rotate);
    ok(&o);
    assert!(stderr(&o).contains("Clients must change their trust anchors"));
    let out = r.base.join("out/rotate");
    let new_anchors = anchors(&out);
    let old_anchors = anchors(&first);
    let bob = old_anchors.split(',').nth(1).unwrap().to_string();
    assert!(!new_anchors.contains(&bob));
    let repo = repo_with_root(&r.base, &out.join("root"));
    let (good, msg) = verify(&repo, &new_anchors);
    assert!(good, "{msg}");
    // the attack: the thief signs the new root with rootB; with only one
    // honest signature left, a client that still trusts rootB must refuse
    let root = std::fs::read_to_string(out.join("root")).unwrap();
    let mut w = Vec::new();
    use arca::conex::resource::Resource;
    let mut root = arca::conex::Root::parse(&root, &mut w).unwrap();
    root.signatures.retain(|id, _| id == "rootA");
    let bob_key = std::fs::read_dir(r.base.join("devices/bob"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut s = arca::keys::file::FileSigner::open(
        &arca::keys::file::FileLocation::Path(bob_key),
        &mut arca::keys::NoSecrets,
    )
    .unwrap();
    arca::repository::sign_into(&mut root, "rootB", "2026-11-22T00:00:00Z", &mut s).unwrap();
    std::fs::write(repo.join("root"), root.to_file_string()).unwrap();
    let all = format!("{old_anchors},{new_anchors}");
    let (good, msg) = verify(&repo, &all);
    assert!(
        !good && msg.contains("couldn't validate root role"),
        "{msg}"
    );
}

#[test]
fn bump_epoch_refuses_the_fast_forwarded_snapshot() {
    let r = room(&["alice", "bob", "carol"]);
    ok(&r.ceremony("run", &create_root_file()));
    let a = anchors(&r.base.join("out/create-root"));
    let bump = r.write(
        "bump.toml",
        r#"kind = "bump-epoch"
title = "snapshot counter was pushed to the maximum"
root = "out/create-root/root"
output = "out/bump"
role = "snapshot"
id = "snap"
holders = [ { id = "rootA", holder = "alice" }, { id = "rootB", holder = "bob" } ]
"#,
    );
    ok(&r.ceremony("run", &bump));
    let repo = repo_with_root(&r.base, &r.base.join("out/bump/root"));
    // the old-epoch snapshot is now refused
    let (good, msg) = verify(&repo, &a);
    assert!(!good && msg.contains("snapshot with bad epoch"), "{msg}");
    // the online signer re-makes it at epoch 1 (counter restarts) and it verifies
    let ks = vector_key_store(&r.base);
    let c = |v: &[&str]| {
        let mut x: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        x.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            ks.display().to_string(),
        ]);
        ok(&arca(&x))
    };
    c(&["snapshot", "create", "--epoch", "1"]);
    c(&["snapshot", "sign"]);
    c(&["timestamp", "create"]);
    c(&["timestamp", "sign"]);
    let snap = std::fs::read_to_string(repo.join("snap")).unwrap();
    assert!(
        snap.contains("[epoch 0x1]") && snap.contains("[counter 0x1]"),
        "{snap}"
    );
    let (good, msg) = verify(&repo, &a);
    assert!(good, "{msg}");
}

#[test]
fn rotating_the_timestamp_key_refuses_the_old_key() {
    let r = room(&["alice", "bob", "carol"]);
    ok(&r.ceremony("run", &create_root_file()));
    let a = anchors(&r.base.join("out/create-root"));
    let ks = r.base.join("online-keys");
    ok(&arca([
        "key",
        "new",
        "--id",
        "ts2",
        "--key-store",
        ks.to_str().unwrap(),
    ]));
    let p = ok(&arca([
        "key",
        "pub",
        "--id",
        "ts2",
        "--key-store",
        ks.to_str().unwrap(),
    ]));
    let conex = p
        .lines()
        .next()
        .unwrap()
        .rsplit('"')
        .nth(1)
        .unwrap()
        .to_string();
    let rotate = r.write(
        "rotate-ts.toml",
        &format!(
            r#"kind = "rotate-key"
title = "timestamp key compromised"
root = "out/create-root/root"
output = "out/rotate-ts"
target = "timestamp"
compromised = "ts"
replacement = {{ id = "ts2", key = "{conex}" }}
holders = [ {{ id = "rootA", holder = "alice" }}, {{ id = "rootC", holder = "carol" }} ]
"#
        ),
    );
    ok(&r.ceremony("run", &rotate));
    let repo = repo_with_root(&r.base, &r.base.join("out/rotate-ts/root"));
    let (good, msg) = verify(&repo, &a);
    assert!(!good && msg.contains("not found"), "{msg}");
    // the old key's file, renamed to the new id, is refused too
    std::fs::copy(repo.join("ts"), repo.join("ts2")).unwrap();
    let (good, _) = verify(&repo, &a);
    assert!(!good);
    std::fs::remove_file(repo.join("ts2")).unwrap();
    let vks = vector_key_store(&r.base);
    let base_args = |v: &[&str], store: &Path| {
        let mut x: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        x.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            store.display().to_string(),
        ]);
        ok(&arca(&x))
    };
    base_args(&["timestamp", "create", "--epoch", "1"], &ks);
    base_args(&["timestamp", "sign"], &ks);
    let _ = vks;
    let (good, msg) = verify(&repo, &a);
    assert!(good, "{msg}");
}

#[test]
fn a_bad_ceremony_file_is_refused_with_its_line() {
    let r = room(&["alice"]);
    let bad = r.write(
        "bad.toml",
        "kind = \"create-root\"\ntitle = \"t\"\noutput = \"out/x\"\n\n[root]\nquorum = 3\nkeys = [ { id = \"rootA\", holder = \"alice\" } ]\n",
    );
    let o = r.check(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.toml:6: root quorum 3 must be between 1 and the 1 root key(s)"),
        "{}",
        stderr(&o)
    );
    let bad2 = r.write(
        "bad2.toml",
        "kind = \"create-root\"\ntitle = \"t\"\noutput = \"/abs\"\n[root]\nquorum = 1\nkeys = []\n",
    );
    assert!(stderr(&r.check(&bad2)).contains("bad2.toml:3: output must be a relative folder"));
    let bad3 = r.write("bad3.toml", "kind = \"create-root\"\ntitle = \"t\"\noutput = \"o\"\npin = \"1234\"\n[root]\nquorum = 1\nkeys = []\n");
    assert!(stderr(&r.check(&bad3)).contains("bad3.toml:4: unknown field `pin`"));
    // a profile without a device for a holder: refused before any device is opened
    std::fs::write(&r.profile, "[holders]\n").unwrap();
    let o = r.ceremony("run", &create_root_file());
    assert!(
        stderr(&o).contains("no device for holder(s) alice, bob, carol"),
        "{}",
        stderr(&o)
    );
    assert!(!r.base.join("out").exists());
}
