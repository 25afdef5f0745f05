//! Incremental verification (`arca verify --incremental --repository OLD
//! --patch P`) through the real binary: conex's vector patch, and for each
//! of conex's rules a patch it accepts and one it refuses. Patches are made
//! with `git diff --cached --no-renames` in a copy of the old repository.

mod support;
#[path = "support/synth.rs"]
mod synth;

use arca::conex::expr::{Expr, KeyRef};
use arca::conex::resource::Resource;
use arca::conex::{Role, Root, Snapshot, Targets, Timestamp};
use arca::keys::file::{FileLocation, FileSigner};
use arca::keys::{KeySpec, NoSecrets, Signer};
use arca::repository::{sign_into, Counter, Repo};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const NOW: &str = "2026-11-21T23:40:00Z";

struct Work {
    _tmp: tempfile::TempDir,
    /// The old repository (never modified by arca).
    old: PathBuf,
    /// A git work tree that starts as a copy of `old`.
    new: PathBuf,
    ks: PathBuf,
    tmp: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=arca tests",
            "-c",
            "user.email=tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.autocrlf=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The vector repository as `old` (after `prepare_old`), and a git copy.
fn setup_with(prepare_old: impl FnOnce(&Path, &Path)) -> Work {
    let tmp = tempfile::tempdir().unwrap();
    let ks = vector_key_store(tmp.path());
    let old = tmp.path().join("old");
    copy_tree(&vectors().join("repo"), &old);
    prepare_old(&old, &ks);
    let new = tmp.path().join("new");
    copy_tree(&old, &new);
    git(&new, &["init", "-q"]);
    git(&new, &["add", "-A"]);
    git(&new, &["commit", "-q", "-m", "old"]);
    Work {
        tmp: tmp.path().to_path_buf(),
        _tmp: tmp,
        old,
        new,
        ks,
    }
}

fn setup() -> Work {
    setup_with(|_, _| {})
}

fn signer(ks: &Path, id: &str) -> FileSigner {
    FileSigner::open(
        &FileLocation::Id {
            dir: ks.to_path_buf(),
            id: id.into(),
        },
        &mut NoSecrets,
    )
    .unwrap()
}

fn read_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Rewrites a targets file with `f`, signed again by its janitor.
fn edit_targets(dir: &Path, ks: &Path, id: &str, f: impl FnOnce(&mut Targets)) {
    let p = dir.join("keys").join(id);
    let mut t = Targets::parse(&read_text(&p), &mut Vec::new()).unwrap();
    f(&mut t);
    t.signatures.clear();
    sign_into(&mut t, id, NOW, &mut signer(ks, id)).unwrap();
    std::fs::write(&p, t.to_file_string()).unwrap();
}

/// Rewrites the root with `f`, signed again by rootA and rootB.
fn edit_root(dir: &Path, ks: &Path, f: impl FnOnce(&mut Root)) {
    let p = dir.join("root");
    let mut r = Root::parse(&read_text(&p), &mut Vec::new()).unwrap();
    f(&mut r);
    r.signatures.clear();
    for id in ["rootA", "rootB"] {
        sign_into(&mut r, id, NOW, &mut signer(ks, id)).unwrap();
    }
    std::fs::write(&p, r.to_file_string()).unwrap();
}

/// New snapshot and timestamp (counters + 1).
fn reseal(dir: &Path, ks: &Path) {
    let mut repo = Repo::new(dir, NOW.into(), |_| {});
    let mut snap = signer(ks, "snap");
    let mut ts = signer(ks, "ts");
    repo.snapshot_create("snap", snap.public_key().clone(), NOW, None)
        .unwrap();
    repo.online_sign::<Snapshot>("snap", &mut snap, Counter::Increment)
        .unwrap();
    repo.timestamp_create("ts", "snap", ts.public_key().clone(), NOW, None)
        .unwrap();
    repo.online_sign::<Timestamp>("ts", &mut ts, Counter::Increment)
        .unwrap();
}

/// Adds packages/foo/foo.<v>/opam and its entry in m1 (counter + `incr`).
fn add_foo_version(dir: &Path, ks: &Path, v: &str, counter: impl FnOnce(u64) -> u64) {
    let rel = format!("packages/foo/foo.{v}/opam");
    let body = format!("opam-version: \"2.0\"\nsynopsis: \"foo {v}\"\n");
    std::fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&rel), &body).unwrap();
    edit_targets(dir, ks, "m1", |t| {
        t.targets.insert(
            0,
            arca::conex::Target::of_bytes(
                rel.split('/').map(str::to_string).collect(),
                body.as_bytes(),
            ),
        );
        t.header.counter = counter(t.header.counter);
    });
}

fn maintainer_role(dir: &Path, refs: &[(&str, u64)]) -> Expr {
    let refs = refs.iter().map(|(id, epoch)| {
        let t = Targets::parse(&read_text(&dir.join("keys").join(id)), &mut Vec::new()).unwrap();
        KeyRef::Remote {
            id: id.to_string(),
            digest: t.valid_hash().unwrap(),
            epoch: *epoch,
        }
    });
    Expr::quorum(1, refs.collect::<Vec<_>>())
}

/// Sets m1's epoch and counter, and the root's reference to it (root
/// counter + 1), then reseals.
fn set_m1_epoch(dir: &Path, ks: &Path, epoch: u64, counter: u64) {
    edit_targets(dir, ks, "m1", |t| {
        t.header.epoch = epoch;
        t.header.counter = counter;
    });
    let role = maintainer_role(dir, &[("m1", epoch)]);
    edit_root(dir, ks, |r| {
        r.roles.insert(Role::Maintainer, role);
        r.header.counter += 1;
    });
    reseal(dir, ks);
}

/// Adds janitor m2 (a new Ed25519 key) signing nothing, to the maintainer
/// role (quorum 1 over m1, m2), root counter + 1, then reseals.
fn add_m2(dir: &Path, ks: &Path) {
    let m2 = match FileSigner::open(
        &FileLocation::Id {
            dir: ks.to_path_buf(),
            id: "m2".into(),
        },
        &mut NoSecrets,
    ) {
        Ok(s) => s,
        Err(_) => FileSigner::generate(
            &FileLocation::Id {
                dir: ks.to_path_buf(),
                id: "m2".into(),
            },
            KeySpec::Ed25519,
        )
        .unwrap(),
    };
    let mut repo = Repo::new(dir, NOW.into(), |_| {});
    repo.targets_create("m2", m2.public_key().clone(), NOW)
        .unwrap();
    let mut s = signer(ks, "m2");
    repo.targets_sign("m2", &mut s, Counter::Increment).unwrap();
    let role = maintainer_role(dir, &[("m1", 0), ("m2", 0)]);
    edit_root(dir, ks, |r| {
        r.roles.insert(Role::Maintainer, role);
        r.header.counter += 1;
    });
    reseal(dir, ks);
}

/// `git diff --cached --no-renames` of the work tree against the old state.
fn diff(w: &Work) -> PathBuf {
    git(&w.new, &["add", "-A"]);
    let d = git(&w.new, &["diff", "--cached", "--no-renames"]);
    let p = w.tmp.join("update.patch");
    std::fs::write(&p, d).unwrap();
    p
}

fn incremental(old: &Path, patch: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let anchors = format!("{ANCHOR_A},{ANCHOR_B}");
    let mut args = vec![
        "verify",
        "--incremental",
        "--repository",
        old.to_str().unwrap(),
        "--patch",
        patch.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
    ];
    args.extend(extra);
    let o = arca(&args);
    let (code, out, err) = (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    );
    // the same with a verified-state cache of the old tree (when the old
    // tree verifies cleanly one is written): the same verdict and messages
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("state");
    let cache_s = cache.to_str().unwrap();
    let _ = arca([
        "verify",
        "--dir",
        old.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
        "--cache",
        cache_s,
    ]);
    args.extend(["--cache", cache_s]);
    let o2 = arca(&args);
    let err2: String = stderr(&o2)
        .lines()
        .filter(|l| !l.starts_with("verified-state cache "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(o2.status.code(), code, "exit code with --cache");
    assert_eq!(
        String::from_utf8_lossy(&o2.stdout),
        out,
        "stdout with --cache"
    );
    assert_eq!(err2, err, "stderr with --cache");
    (code, out, err)
}

fn accepted(w: &Work) {
    let p = diff(w);
    let (code, out, err) = incremental(&w.old, &p, &[]);
    assert_eq!(code, Some(0), "expected acceptance:\n{out}\n{err}");
    assert!(out.contains("verified"), "{out}");
}

fn refused(w: &Work, msg: &str) -> String {
    let p = diff(w);
    let (code, out, err) = incremental(&w.old, &p, &[]);
    assert_ne!(code, Some(0), "expected refusal ({msg}):\n{out}");
    assert!(
        err.contains(msg),
        "expected {msg:?} in the error, got:\n{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    err
}

/// Every file of two trees, with contents.
fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut es: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
        es.sort_by_key(|e| e.file_name());
        for e in es {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v
}

#[test]
fn conex_vector_patch_is_accepted_and_the_old_repository_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    copy_tree(&vectors().join("repo"), &old);
    let before = snapshot_tree(&old);
    let patch = vectors().join("variants/incremental-update.patch");
    let (code, out, err) = incremental(&old, &patch, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(
            "verified: root counter 1 signed by rootA, rootB; 1 targets file(s); 3 file(s) match"
        ),
        "{out}"
    );
    assert_eq!(snapshot_tree(&old), before, "the old repository changed");
    assert!(!old.join("packages/foo/foo.1.0.1").exists());
    // JSON output
    let (code, out, _) = incremental(&old, &patch, &["--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["summary"]["files"], 3);
    // the same patch without one of the anchors fails like the full mode
    let o = arca([
        "verify",
        "--incremental",
        "--repository",
        old.to_str().unwrap(),
        "--patch",
        patch.to_str().unwrap(),
        "-t",
        ANCHOR_A,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("couldn't validate root role"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn package_update_made_with_git_is_accepted() {
    let w = setup();
    add_foo_version(&w.new, &w.ks, "1.0.2", |c| c + 1);
    reseal(&w.new, &w.ks);
    accepted(&w);
}

#[test]
fn update_without_new_snapshot_fails_full_verification() {
    let w = setup();
    add_foo_version(&w.new, &w.ks, "1.0.2", |c| c + 1);
    refused(&w, "verification failed: comparison failed");
    let (_, _, err) = incremental(&w.old, &diff(&w), &["-v"]);
    assert!(
        err.contains("couldn't validate target m1: no match in snapshot targets"),
        "{err}"
    );
}

#[test]
fn root_changed_needs_a_higher_counter() {
    let w = setup();
    edit_root(&w.new, &w.ks, |_| {});
    refused(&w, "root counter same, expected to increase");
    let w = setup();
    edit_root(&w.new, &w.ks, |r| r.header.counter += 1);
    accepted(&w);
}

#[test]
fn root_counter_must_not_decrease() {
    let w = setup_with(|old, ks| edit_root(old, ks, |r| r.header.counter = 5));
    edit_root(&w.new, &w.ks, |r| r.header.counter = 4);
    refused(&w, "root counter decremented");
}

#[test]
fn targets_same_epoch_same_counter_is_refused() {
    let w = setup();
    add_foo_version(&w.new, &w.ks, "1.0.2", |c| c);
    reseal(&w.new, &w.ks);
    refused(&w, "counter and epoch of m1 same");
}

#[test]
fn targets_same_epoch_counter_must_increase() {
    let prep = |old: &Path, ks: &Path| {
        edit_targets(old, ks, "m1", |t| t.header.counter = 3);
        reseal(old, ks);
    };
    let w = setup_with(prep);
    add_foo_version(&w.new, &w.ks, "1.0.2", |_| 2);
    reseal(&w.new, &w.ks);
    refused(&w, "counter of m1 is moving backwards");
    let w = setup_with(prep);
    add_foo_version(&w.new, &w.ks, "1.0.2", |_| 4);
    reseal(&w.new, &w.ks);
    accepted(&w);
}

#[test]
fn targets_higher_epoch_may_restart_the_counter() {
    let w = setup();
    set_m1_epoch(&w.new, &w.ks, 1, 0);
    accepted(&w);
}

#[test]
fn targets_epoch_must_not_decrease() {
    let w = setup_with(|old, ks| set_m1_epoch(old, ks, 1, 5));
    set_m1_epoch(&w.new, &w.ks, 0, 6);
    refused(&w, "epoch of m1 is moving backwards");
}

#[test]
fn new_targets_file_is_accepted_deleting_one_is_refused() {
    let w = setup();
    add_m2(&w.new, &w.ks);
    accepted(&w);
    let w = setup_with(add_m2);
    std::fs::remove_file(w.new.join("keys/m2")).unwrap();
    reseal(&w.new, &w.ks);
    // the new tree alone still verifies (m1 satisfies the quorum) ...
    let anchors = format!("{ANCHOR_A},{ANCHOR_B}");
    ok(&arca([
        "verify",
        "--dir",
        w.new.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
    ]));
    // ... but the update deletes a targets file
    refused(&w, "targets file keys/m2 is deleted");
}

#[test]
fn key_directory_must_not_change() {
    let w = setup();
    edit_root(&w.new, &w.ks, |r| {
        r.keydir = vec!["keys2".into()];
        r.header.counter += 1;
    });
    std::fs::create_dir_all(w.new.join("keys2")).unwrap();
    std::fs::rename(w.new.join("keys/m1"), w.new.join("keys2/m1")).unwrap();
    reseal(&w.new, &w.ks);
    refused(&w, "old and new key directories are different");
}

#[test]
fn patch_that_does_not_apply_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    copy_tree(&vectors().join("repo"), &old);
    let m1 = old.join("keys/m1");
    std::fs::write(
        &m1,
        read_text(&m1).replace("[counter 0x1]", "[counter 0x3]"),
    )
    .unwrap();
    let patch = vectors().join("variants/incremental-update.patch");
    // conex fails where it reads the file the hunk does not apply to (an
    // uncaught exception); arca refuses, and its warnings say why
    let (code, _, err) = incremental(&old, &patch, &["-v"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("m1 (type targets) cannot be read: @@ -41,12 +51,12 @@ signed: [ (patch line 22) does not apply: line 44 differs: expected \"  [counter 0x1]\", found \"  [counter 0x3]\""),
        "{err}"
    );
    // where the new package exists already, the patch's file replaces it,
    // as conex's patch provider does
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    copy_tree(&vectors().join("repo"), &old);
    std::fs::create_dir_all(old.join("packages/foo/foo.1.0.1")).unwrap();
    std::fs::write(old.join("packages/foo/foo.1.0.1/opam"), "x").unwrap();
    let (code, _, err) = incremental(&old, &patch, &[]);
    assert_eq!(code, Some(0), "{err}");
    // a truncated patch
    let text = read_text(&patch);
    let cut = tmp.path().join("cut.patch");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let (code, _, err) = incremental(&old, &cut, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("patch line"), "{err}");
}

#[test]
fn paths_leaving_the_repository_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    copy_tree(&vectors().join("repo"), &old);
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, old.join("packages/link")).unwrap();
    let cases = [
        ("b/../evil", "'..' components are refused"),
        ("b/packages/../../evil", "'..' components are refused"),
        ("b/.git/hooks/post-merge", "paths inside .git are refused"),
        (
            "b/packages/link/link.1/opam",
            "resolves outside the repository",
        ),
    ];
    for (path, msg) in cases {
        let dg = path.strip_prefix("b/").unwrap_or(path);
        let p = tmp.path().join("evil.patch");
        std::fs::write(
            &p,
            format!(
                "diff --git a/{dg} b/{dg}\nnew file mode 100644\n--- /dev/null\n+++ {path}\n@@ -0,0 +1 @@\n+x\n"
            ),
        )
        .unwrap();
        let (code, _, err) = incremental(&old, &p, &[]);
        assert_eq!(code, Some(6), "{path}: {err}");
        assert!(err.contains(msg), "{path}: {err}");
    }
    assert!(!tmp.path().join("evil").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn snapshot_counter_not_increasing_is_only_a_warning() {
    let w = setup();
    add_foo_version(&w.new, &w.ks, "1.0.2", |c| c + 1);
    let mut repo = Repo::new(&w.new, NOW.into(), |_| {});
    let mut snap = signer(&w.ks, "snap");
    let mut ts = signer(&w.ks, "ts");
    repo.snapshot_create("snap", snap.public_key().clone(), NOW, None)
        .unwrap();
    repo.online_sign::<Snapshot>("snap", &mut snap, Counter::Keep)
        .unwrap();
    repo.timestamp_create("ts", "snap", ts.public_key().clone(), NOW, None)
        .unwrap();
    repo.online_sign::<Timestamp>("ts", &mut ts, Counter::Increment)
        .unwrap();
    let p = diff(&w);
    let (code, out, err) = incremental(&w.old, &p, &["-v"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("arca: snapshot snap changed but its counter did not increase"),
        "{err}"
    );
}

#[test]
fn synthetic_repository_and_its_one_package_update() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = synth::Spec::tiny();
    spec.rsa_key = Some(
        vectors()
            .join("private-keys/rootA.sha256=02f4b9911e6a40314bcdd80ba24eb0342bdd96b1b80117f8c0deb8c3eddd238e.private"),
    );
    let s = synth::generate(&tmp.path().join("repo"), &tmp.path().join("keys"), &spec).unwrap();
    assert_eq!(s.files, 20);
    let out = ok(&arca([
        "verify",
        "--dir",
        s.dir.to_str().unwrap(),
        "-t",
        &s.anchors_arg(),
        "--quorum",
        "2",
    ]));
    assert!(out.contains("4 targets file(s); 20 file(s) match"), "{out}");
    let patch = synth::one_package_update(&s, &synth::package_name(1)).unwrap();
    let p = tmp.path().join("u.patch");
    std::fs::write(&p, &patch).unwrap();
    let o = arca([
        "verify",
        "--incremental",
        "--repository",
        s.dir.to_str().unwrap(),
        "--patch",
        p.to_str().unwrap(),
        "-t",
        &s.anchors_arg(),
        "--quorum",
        "2",
    ]);
    let out = ok(&o);
    assert!(out.contains("21 file(s) match"), "{out}");
    // the library verdict agrees
    let v = arca::incremental::verify_patch(&s.dir, patch.as_bytes(), s.options()).unwrap();
    assert!(v.result.is_ok(), "{:?}", v.result);
    assert_eq!(v.changed.len(), 5);
}
