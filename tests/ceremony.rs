//! Ceremonies through the real binary with key files as devices: create a
//! root, kill it after every step and resume, rotate a compromised key,
//! bump an epoch — and show the attack each answers failing afterwards.

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

fn ceremony_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ceremonies")
        .join(name)
}

/// ceremonies/create-root.toml with Ed25519 root keys (RSA-4096 key files
/// take seconds each to make).
fn create_root_file_in(base: &Path) -> PathBuf {
    let p = base.join("create-root.toml");
    if !p.exists() {
        let t = std::fs::read_to_string(ceremony_file("create-root.toml")).unwrap();
        assert!(t.contains("\"rsa4096\""));
        std::fs::write(&p, t.replace("\"rsa4096\"", "\"ed25519\"")).unwrap();
    }
    p
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
    let c = ok(&r.check(&create_root_file_in(&r.base)));
    // the digest witnesses read aloud, in groups of four
    let d = c
        .split("digest sha256=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert!(c.contains(&format!("    {} {}", &d[..4], &d[4..8])), "{c}");
    assert!(c.contains("13 steps"), "{c}");
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
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
    let o = r.ceremony("run", &create_root_file_in(&r.base));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("output folder"), "{}", stderr(&o));
}

fn journal_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn rotating_a_compromised_root_key_drops_its_vote() {
    let r = room(&["alice", "bob", "carol", "dave"]);
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
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
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
    let a = anchors(&r.base.join("out/create-root"));
    let bump = r.write("bump.toml", BUMP_SNAPSHOT_EPOCH);
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
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
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
        stderr(&o).contains("bad.toml:6: the root has quorum 3, which exceeds the 1 root key(s)"),
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
    let o = r.ceremony("run", &create_root_file_in(&r.base));
    assert!(
        stderr(&o).contains("no device for holder(s) alice, bob, carol"),
        "{}",
        stderr(&o)
    );
    assert!(!r.base.join("out").exists());
}

/// The step names of a ceremony's plan, from `ceremony check --json`.
fn plan_of(file: &Path) -> Vec<String> {
    let o = ok(&arca([
        "ceremony",
        "check",
        file.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn journal_steps(journal: &Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["step"].as_str().unwrap().to_string()
        })
        .collect()
}

fn output_of(file: &Path) -> String {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    t["output"].as_str().unwrap().to_string()
}

/// Every kind, in the order the example files follow each other: killed
/// with SIGKILL after every step of its plan (the bundle included) and
/// resumed; the journal's steps are the plan; a resume after a kill at
/// the first signature shows the change summary again before it.
#[test]
fn every_kind_follows_its_plan_through_a_kill_after_every_step() {
    let r = room(&["alice", "bob", "carol", "dave"]);
    let files = [
        create_root_file_in(&r.base),
        ceremony_file("add-role.toml"),
        ceremony_file("rotate-key.toml"),
        ceremony_file("bump-epoch.toml"),
    ];
    for f in &files {
        let plan = plan_of(f);
        assert_eq!(plan.first().map(String::as_str), Some("begin"));
        assert_eq!(&plan[plan.len() - 3..], ["outputs", "bundle", "done"]);
        let out = r.base.join(output_of(f));
        let journal = out.join("journal.jsonl");
        let first_sign = plan.iter().position(|s| s.starts_with("sign:")).unwrap();
        for kill_at in 1..plan.len() {
            let verb = if journal.exists() { "resume" } else { "run" };
            let log = r.base.join(format!("run-{kill_at}.log"));
            let mut child = Command::new(env!("CARGO_BIN_EXE_arca"))
                .args(["ceremony", verb, f.to_str().unwrap()])
                .args(["--profile", r.profile.to_str().unwrap()])
                .args(["--answers", r.answers.to_str().unwrap()])
                .args(["--base", r.base.to_str().unwrap()])
                .env("ARCA_CEREMONY_STEP_DELAY_MS", "100")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                if journal_lines(&journal) >= kill_at {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
                if let Some(st) = child.try_wait().unwrap() {
                    panic!(
                        "{}: ended ({st}) before step {kill_at}: {}",
                        f.display(),
                        std::fs::read_to_string(&log).unwrap()
                    );
                }
                assert!(std::time::Instant::now() < deadline, "no progress");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            child.wait().unwrap();
            ok(&arca([
                "ceremony",
                "verify-transcript",
                journal.to_str().unwrap(),
            ]));
            let text = std::fs::read_to_string(&log).unwrap();
            // the run that started with the first signature still to do
            if kill_at == first_sign + 1 {
                let summary = text.find("What this root changes").unwrap_or(usize::MAX);
                let question = text.find("! sign:").unwrap();
                assert!(
                    summary < question,
                    "{}: resumed at the first signature without the summary:\n{text}",
                    f.display()
                );
                assert!(text.contains("signed content"), "{text}");
            }
            for l in text.lines().filter(|l| l.starts_with('[')) {
                if let Some((k, n)) = l[1..].split(']').next().and_then(|c| c.split_once('/')) {
                    let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
                    assert!(
                        k <= n && n == plan.len(),
                        "counter {l} for {} steps",
                        plan.len()
                    );
                }
            }
        }
        let o = r.ceremony("resume", f);
        ok(&o);
        assert_eq!(journal_steps(&journal), plan, "{}", f.display());
        // resumed once more: finished, outputs named, nothing replayed
        let o = r.ceremony("resume", f);
        let out_text = ok(&o);
        assert!(out_text.contains("finished before"), "{out_text}");
        assert!(
            stderr(&o).contains("This ceremony is finished"),
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("[1/"), "{}", stderr(&o));
        assert_eq!(journal_steps(&journal), plan);
    }
    // one key per holder device: nothing generated twice
    for h in ["alice", "bob", "carol", "dave"] {
        let n = std::fs::read_dir(r.base.join("devices").join(h))
            .unwrap()
            .count();
        assert_eq!(n, 1, "{h} has {n} keys");
    }
    // the bump-epoch's bundle tells the online side the exact command
    let ns = std::fs::read_to_string(r.base.join("out/bump-epoch/bundle/NEXT-STEPS.txt")).unwrap();
    assert!(ns.contains("arca snapshot create --epoch 1"), "{ns}");
    let repo = repo_with_root(&r.base, &r.base.join("out/rotate-key/root"));
    let (good, msg) = verify(&repo, &anchors(&r.base.join("out/rotate-key")));
    assert!(good, "{msg}");
}

/// What needs no PIN is checked before any step: an input root of another
/// repository, holders who cannot reach the quorum, a holder who is not a
/// key of the root, root key ids taken on their devices, answers files
/// that address prompts by their wording. Each is refused with the file
/// and line, and leaves no output folder.
#[test]
fn what_needs_no_pin_is_refused_before_the_first_step() {
    let r = room(&["alice", "bob", "carol"]);
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
    let refused = |name: &str, text: &str, needle: &str| {
        let f = r.write(name, text);
        let o = r.ceremony("run", &f);
        let e = stderr(&o);
        assert!(!o.status.success(), "{name}: {e}");
        assert!(e.contains(needle), "{name}: {e}");
        assert!(!e.contains("[1/"), "{name}: a step ran: {e}");
        assert!(!r.base.join("out/x").exists(), "{name}: output left behind");
    };
    let add = std::fs::read_to_string(ceremony_file("add-role.toml"))
        .unwrap()
        .replace("out/add-role", "out/x");
    // a root from another repository (its own anchors.txt next to it)
    let other = r.base.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut root = std::fs::read_to_string(vectors().join("repo/root")).unwrap();
    root = root.replace("rootA", "rootAnn");
    std::fs::write(other.join("root"), &root).unwrap();
    std::fs::write(
        other.join("anchors.txt"),
        anchors(&r.base.join("out/create-root")),
    )
    .unwrap();
    refused(
        "other-repo.toml",
        &add.replace("out/create-root/root", "other/root"),
        "other-repo.toml:5: ",
    );
    // the same repository's anchors pinned, another root
    let pinned = add.replace(
        "root = \"out/create-root/root\"",
        &format!(
            "root = \"out/create-root/root\"\nanchors = \"{}\"",
            "sha256=1111111111111111111111111111111111111111111111111111111111111111"
        ),
    );
    refused(
        "pinned.toml",
        &pinned,
        "does not verify with the trust anchors",
    );
    // a holder who is no key of the root
    refused(
        "stranger.toml",
        &add.replace(
            "{ id = \"rootB\", holder = \"bob\" }",
            "{ id = \"rootAnn\", holder = \"bob\" }",
        ),
        "rootAnn is not a key of the root out/create-root/root",
    );
    // one holder for a quorum of 2
    let one = add.replace("  { id = \"rootB\", holder = \"bob\" },\n", "");
    assert_ne!(one, add);
    refused("one.toml", &one, "cannot reach the root quorum 2");
    // create-root again with the same devices: the key ids are taken
    let again = std::fs::read_to_string(create_root_file_in(&r.base))
        .unwrap()
        .replace("out/create-root", "out/x");
    refused(
        "again.toml",
        &again,
        "again.toml:14: a key rootA already exists",
    );
    // answers that name the wording of a prompt
    let bad = r.write(
        "bad-answers.toml",
        "confirm = \"yes\"\n[secrets]\n\"token root-1\" = \"pin\"\n",
    );
    let o = r.ceremony_answering("run", &create_root_file_in(&r.base), &bad);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains("bad-answers.toml:3: \"token root-1\" is not a question subject"),
        "{e}"
    );
    let bad = r.write(
        "bad-answers2.toml",
        "[answers]\n\"alice: sign the root\" = \"yes\"\n",
    );
    let o = r.ceremony_answering("run", &create_root_file_in(&r.base), &bad);
    assert!(
        stderr(&o).contains("bad-answers2.toml:2:"),
        "{}",
        stderr(&o)
    );
}

/// Answers files address questions by subject: a "no" for one holder's
/// signature stops there, with the step and the command to resume.
#[test]
fn an_answer_by_subject_stops_at_its_step() {
    let r = room(&["alice", "bob", "carol"]);
    std::fs::write(
        &r.answers,
        "confirm = \"yes\"\n[answers]\n\"sign:rootB\" = \"no\"\n",
    )
    .unwrap();
    let f = create_root_file_in(&r.base);
    let o = r.ceremony("run", &f);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("bob declined to sign"), "{e}");
    assert!(e.contains("Stopped at step 8/13 (sign:rootB)"), "{e}");
    assert!(e.contains("arca ceremony resume"), "{e}");
    std::fs::write(&r.answers, "confirm = \"yes\"\n").unwrap();
    ok(&r.ceremony("resume", &f));
}

/// One key for snapshot and timestamp is refused, with the reason, by the
/// one root check ceremonies and `arca root` verbs share.
#[test]
fn one_key_for_snapshot_and_timestamp_is_refused() {
    let r = room(&["alice", "bob", "carol"]);
    let t = std::fs::read_to_string(create_root_file_in(&r.base)).unwrap();
    let snap_key = "ed25519=BUVOg/jmubenrkMNnX0BYeZoG7NcvGlQDtH14EMbxLc=";
    let ts_key = "ed25519=25JCcdwCHl9PK2n41yxwLJzOqVBYEdyn5owS9WW8JII=";
    assert!(t.contains(ts_key));
    let same = r.write("same.toml", &t.replace(ts_key, snap_key));
    let o = r.check(&same);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = t.lines().position(|l| l.contains(ts_key)).unwrap() + 1;
    assert!(
        stderr(&o).contains(&format!(
            "same.toml:{line}: the snapshot and timestamp roles have the same key"
        )),
        "{}",
        stderr(&o)
    );
    let repo = r.base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    let before = std::fs::read(repo.join("root")).unwrap();
    let o = arca([
        "root",
        "set-role",
        "-r",
        repo.to_str().unwrap(),
        "--role",
        "timestamp",
        "--id",
        "ts2",
        "--key-hash",
        "sha256=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("whoever steals it signs both files"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(repo.join("root")).unwrap(), before);
}

/// `ceremony resume --help` speaks of resuming, and the bump-epoch run
/// tells the online side the exact command on its standard output.
#[test]
fn resume_help_and_the_online_sides_command() {
    let h = ok(&arca(["ceremony", "resume", "--help"]));
    assert!(h.contains("journal"), "{h}");
    assert!(!h.contains("is rehearsed"), "{h}");
    let r = room(&["alice", "bob", "carol"]);
    ok(&r.ceremony("run", &create_root_file_in(&r.base)));
    let bump = r.write("bump.toml", BUMP_SNAPSHOT_EPOCH);
    let o = r.ceremony("run", &bump);
    let out = ok(&o);
    assert!(out.contains("  arca snapshot create --epoch 1\n"), "{out}");
    assert!(
        stderr(&o).contains("The online side must now"),
        "{}",
        stderr(&o)
    );
}

/// A token that is not there: preflight names the tokens present, without
/// an empty entry for a free slot.
#[test]
fn a_missing_token_is_named_with_the_tokens_present() {
    let module = Path::new("/usr/lib/softhsm/libsofthsm2.so");
    if !module.exists() {
        assert!(std::env::var_os("CI").is_none(), "SoftHSM missing in CI");
        return;
    }
    let r = room(&["alice", "bob", "carol"]);
    let store = r.base.join("hsm");
    let conf = softhsm_store_with_one_token(&store);
    let profile = std::fs::read_to_string(&r.profile).unwrap();
    let line = profile
        .lines()
        .find(|l| l.starts_with("alice"))
        .unwrap()
        .to_string();
    std::fs::write(
        &r.profile,
        profile.replace(
            &line,
            &format!(
                "alice = \"pkcs11:token=nope?module-path={}\"",
                module.display()
            ),
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "ceremony",
            "run",
            create_root_file_in(&r.base).to_str().unwrap(),
        ])
        .args([
            "--profile",
            r.profile.to_str().unwrap(),
            "--answers",
            r.answers.to_str().unwrap(),
        ])
        .args(["--base", r.base.to_str().unwrap()])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("token nope is not present (present: mine)"),
        "{e}"
    );
    assert!(!e.contains(", )"), "{e}");
    assert!(!r.base.join("out/create-root").exists());
}

/// `ceremony check` warns, without refusing, when the root a create-root
/// ceremony makes cannot be served by opam-mirror (conex's production
/// online signer): two janitors, an RSA snapshot key.
#[test]
fn check_warns_when_opam_mirror_cannot_serve_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let good = ceremony_file("create-root.toml");
    let o = arca(["ceremony", "check", good.to_str().unwrap()]);
    ok(&o);
    assert!(
        !stderr(&o).contains("opam-mirror"),
        "the example warns: {}",
        stderr(&o)
    );

    let text = std::fs::read_to_string(&good).unwrap();
    let rsa = std::fs::read_to_string(vectors().join("repo/root")).unwrap();
    // an RSA public key as conex writes it in a root: rsa=-----BEGIN …
    let start = rsa.find("rsa=-----BEGIN PUBLIC KEY-----").unwrap();
    let end = rsa[start..].find("-----END PUBLIC KEY-----").unwrap() + start + 24;
    let rsa_key = rsa[start..end].replace('\n', "\\n");
    let bad = text
        .replace(
            "  { id = \"m1\", key = \"ed25519=XE99Nq6FqHtIKtYiTLPb/yoZkft9WH4pyXETYbGV0ks=\" },",
            "  { id = \"m1\", key = \"ed25519=XE99Nq6FqHtIKtYiTLPb/yoZkft9WH4pyXETYbGV0ks=\" },\n  { id = \"m2\", key = \"ed25519=gEcW+q7yWFuxeaiU5eSd3RZWGqpj2yLmJkYmzzS32XU=\" },",
        )
        .replace(
            "key = \"ed25519=BUVOg/jmubenrkMNnX0BYeZoG7NcvGlQDtH14EMbxLc=\"",
            &format!("key = \"{rsa_key}\""),
        );
    assert_ne!(bad, text, "the example ceremony changed: update this test");
    let f = tmp.path().join("create-root.toml");
    std::fs::write(&f, bad).unwrap();
    let o = arca(["ceremony", "check", f.to_str().unwrap()]);
    let out = ok(&o);
    let err = stderr(&o);
    assert!(out.contains("is valid"), "{out}");
    assert!(
        err.contains("opam-mirror cannot serve the root this ceremony makes: the maintainer role has 2 key(s)"),
        "{err}"
    );
    assert!(
        err.contains("the snapshot key snap is rsa; opam-mirror takes Ed25519 keys only"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
}
