//! What the command line tells people, through the real binary: verdicts
//! that say what is wrong and what to do, the online routine as one
//! command, the epoch after a bump, status screens, and help that lists
//! only the options a command uses.

mod support;
use std::path::PathBuf;
use support::*;

const SNAP_KEY: &str = "sha256=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707";

struct Repo {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    ks: PathBuf,
}

fn vector_repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    let ks = vector_key_store(tmp.path());
    Repo {
        _tmp: tmp,
        repo,
        ks,
    }
}

impl Repo {
    /// `arca ARGS -r REPO --key-store KS`
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-r".into(),
            self.repo.display().to_string(),
            "--key-store".into(),
            self.ks.display().to_string(),
        ]);
        arca(&v)
    }
    /// A read-only command: `arca ARGS -r REPO` (no key store).
    fn show(&self, args: &[&str]) -> std::process::Output {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["-r".into(), self.repo.display().to_string()]);
        arca(&v)
    }
    fn verify(&self, extra: &[&str]) -> std::process::Output {
        let mut v = vec!["verify", "--dir", self.repo.to_str().unwrap()];
        v.extend_from_slice(extra);
        arca(&v)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }
}

fn anchors() -> String {
    format!("{ANCHOR_A},{ANCHOR_B}")
}

/// The one error line of a failed command, with its exit code.
fn failure(o: &std::process::Output) -> (i32, String) {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("arca: ")).collect();
    assert_eq!(lines.len(), 1, "not one error line:\n{err}");
    (o.status.code().unwrap(), lines[0].to_string())
}

#[test]
fn verify_without_anchors_says_none_were_given() {
    let r = vector_repo();
    let (code, msg) = failure(&r.verify(&[]));
    assert_eq!(code, 1);
    assert!(msg.contains("no trust anchors were given"), "{msg}");
    // with one of the two anchors the root's own quorum is not met, and
    // the message says how many counted
    let (_, msg) = failure(&r.verify(&["-t", ANCHOR_A]));
    assert!(
        msg.contains("1 valid signature(s) by trust anchors, the root needs 2 of [rootA, rootB]"),
        "{msg}"
    );
}

#[test]
fn verify_with_too_high_quorum_says_found_and_needed() {
    let r = vector_repo();
    let a = anchors();
    ok(&r.verify(&["-t", &a, "--quorum", "2"]));
    let (code, msg) = failure(&r.verify(&["-t", &a, "--quorum", "3"]));
    assert_eq!(code, 1);
    assert!(
        msg.contains(
            "provided quorum was not matched: 2 valid signature(s) by trust anchors, 3 needed"
        ),
        "{msg}"
    );
}

#[test]
fn janitor_resigned_before_the_online_signer_ran() {
    let r = vector_repo();
    let a = anchors();
    // m1 adds a package and re-signs; the snapshot still lists the old m1
    let pkg = r.path("packages/baz/baz.1");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("opam"), "opam-version: \"2.0\"\n").unwrap();
    ok(&r.run(&["targets", "compute", "--id", "m1"]));
    ok(&r.run(&["targets", "sign", "--id", "m1"]));
    // without -v the verdict gives the cause, not only the symptom
    let (code, msg) = failure(&r.verify(&["-t", &a]));
    assert_eq!(code, 1);
    assert!(msg.contains("only exists on disk"), "{msg}");
    assert!(msg.contains("no match in snapshot targets"), "{msg}");
    assert!(msg.contains("arca online sign"), "{msg}");
    // the online routine in one command
    let out = ok(&r.run(&["online", "sign"]));
    assert!(out.contains("snapshot snap: counter 2, epoch 0"), "{out}");
    assert!(out.contains("timestamp ts: counter 2, epoch 0"), "{out}");
    let v = ok(&r.verify(&["-t", &a]));
    assert!(v.contains("3 file(s) match"), "{v}");
    // and again: the counters move on, the repository still verifies
    let out = ok(&r.run(&["online", "sign"]));
    assert!(out.contains("snapshot snap: counter 3"), "{out}");
    ok(&r.verify(&["-t", &a]));
}

#[test]
fn an_unsigned_new_package_says_no_targets_file_signs_it() {
    let r = vector_repo();
    let pkg = r.path("packages/baz/baz.1");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("opam"), "opam-version: \"2.0\"\n").unwrap();
    let (_, msg) = failure(&r.verify(&["-t", &anchors()]));
    assert!(
        msg.contains("path packages/baz/baz.1/opam only exists on disk (no targets file signs it)"),
        "{msg}"
    );
}

#[test]
fn verify_before_the_online_signer_made_the_timestamp() {
    let r = vector_repo();
    std::fs::remove_file(r.path("ts")).unwrap();
    std::fs::remove_file(r.path("snap")).unwrap();
    let (code, msg) = failure(&r.verify(&["-t", &anchors()]));
    assert_eq!(code, 1);
    assert!(msg.contains("ts (type timestamp) was not found"), "{msg}");
    assert!(
        msg.contains("the online signer has not made the timestamp file yet"),
        "{msg}"
    );
    assert!(msg.contains("arca targets status --id"), "{msg}");
    // what it points to works for the janitor now
    let st = ok(&r.show(&["targets", "status", "--id", "m1"]));
    assert!(
        st.contains("signature m1 at") && st.contains(": valid"),
        "{st}"
    );
    // and the online signer's one command makes both files
    ok(&r.run(&["online", "sign"]));
    ok(&r.verify(&["-t", &anchors()]));
}

#[test]
fn after_bump_epoch_status_says_the_epoch_and_create_follows_the_root() {
    let r = vector_repo();
    let a = anchors();
    // the root holders move the snapshot role to epoch 1
    ok(&r.run(&[
        "root",
        "set-role",
        "--role",
        "snapshot",
        "--id",
        "snap",
        "--key-hash",
        SNAP_KEY,
        "--epoch",
        "1",
    ]));
    ok(&r.run(&["root", "sign", "--id", "rootA"]));
    ok(&r.run(&["root", "sign", "--id", "rootB"]));
    let (_, msg) = failure(&r.verify(&["-t", &a]));
    assert!(msg.contains("snapshot with bad epoch"), "{msg}");
    // status says what the root expects, and that verify refuses this file
    let st = ok(&r.show(&["snapshot", "status"]));
    assert!(st.contains("the root expects: epoch 1"), "{st}");
    assert!(
        st.contains("PROBLEM: the root expects epoch 1, this file has epoch 0"),
        "{st}"
    );
    let json = ok(&r.show(&["snapshot", "status", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["root_expects"]["epoch"], 1);
    // an explicit --epoch other than the root's is made, with a warning
    let o = r.run(&["snapshot", "create", "--epoch", "0"]);
    ok(&o);
    assert!(
        stderr(&o).contains("the root's snapshot role names epoch 1"),
        "{}",
        stderr(&o)
    );
    // without --epoch, create follows the root: epoch 1, counter restarts
    let o = r.run(&["snapshot", "create"]);
    ok(&o);
    assert!(stderr(&o).contains("epoch 0 -> 1"), "{}", stderr(&o));
    ok(&r.run(&["snapshot", "sign"]));
    let st = ok(&r.show(&["snapshot", "status"]));
    assert!(st.contains("counter 1, epoch 1"), "{st}");
    assert!(!st.contains("PROBLEM"), "{st}");
    ok(&r.run(&["timestamp", "create"]));
    ok(&r.run(&["timestamp", "sign"]));
    ok(&r.verify(&["-t", &a]));
}

#[test]
fn online_sign_after_bump_epoch_needs_no_epoch_flag() {
    let r = vector_repo();
    ok(&r.run(&[
        "root",
        "set-role",
        "--role",
        "snapshot",
        "--id",
        "snap",
        "--key-hash",
        SNAP_KEY,
        "--epoch",
        "1",
    ]));
    ok(&r.run(&["root", "sign", "--id", "rootA"]));
    ok(&r.run(&["root", "sign", "--id", "rootB"]));
    let out = ok(&r.run(&["online", "sign"]));
    assert!(out.contains("snapshot snap: counter 1, epoch 1"), "{out}");
    ok(&r.verify(&["-t", &anchors()]));
}

#[test]
fn root_status_names_each_role_once() {
    let r = vector_repo();
    let st = ok(&r.show(&["root", "status", "-t", &anchors()]));
    assert!(
        st.contains(
            "  maintainer: m1 sha256=0686abff33894b828b3b765b1b110918968a443ef46e58a51f60b9a437bfd7af epoch 0\n"
        ),
        "{st}"
    );
    assert!(!st.contains("m1 — m1"), "{st}");
    assert!(st.contains("  snapshot: snap sha256=ff38"), "{st}");
    // a quorum of janitors: the quorum, then each one
    ok(&r.run(&[
        "root",
        "add-to-role",
        "--role",
        "maintainer",
        "--id",
        "m2",
        "--key-hash",
        SNAP_KEY,
        "--quorum",
        "2",
    ]));
    let st = ok(&r.show(&["root", "status"]));
    let line = st
        .lines()
        .find(|l| l.starts_with("  maintainer: "))
        .unwrap();
    assert!(
        line.starts_with("  maintainer: 2 of [m1, m2] — m1 sha256="),
        "{line}"
    );
    assert!(line.contains("; m2 sha256=ff38"), "{line}");
}

fn help(args: &[&str]) -> String {
    let mut v: Vec<&str> = args.to_vec();
    v.push("--help");
    ok(&arca(&v))
}

#[test]
fn read_only_commands_do_not_offer_dry_run_or_created() {
    for c in [
        &["root", "status"][..],
        &["targets", "status"],
        &["targets", "hash"],
        &["snapshot", "status"],
        &["timestamp", "status"],
    ] {
        let h = help(c);
        assert!(!h.contains("--dry-run"), "{c:?} lists --dry-run:\n{h}");
        assert!(!h.contains("--created"), "{c:?} lists --created:\n{h}");
        assert!(h.contains("--repository"), "{c:?}:\n{h}");
        let o = arca([c[0], c[1], "--dry-run"]);
        assert_eq!(o.status.code(), Some(2), "{c:?} took --dry-run");
    }
    // key new writes a key whatever --dry-run says: it does not offer it
    let h = help(&["key", "new"]);
    assert!(!h.contains("--dry-run") && !h.contains("--created"), "{h}");
    // commands that write keep them
    for c in [
        &["root", "sign"][..],
        &["targets", "sign"],
        &["snapshot", "create"],
    ] {
        let h = help(c);
        assert!(
            h.contains("--dry-run") && h.contains("--created"),
            "{c:?}:\n{h}"
        );
    }
    let h = help(&["online", "sign"]);
    assert!(
        h.contains("--created") && h.contains("--snapshot-on"),
        "{h}"
    );
}

#[test]
fn qr_read_into_a_pipe_gives_the_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("codes");
    let text = format!("{ANCHOR_A},{ANCHOR_B}");
    ok(&arca([
        "qr",
        "write",
        "--text",
        &text,
        "--single",
        "--out",
        out.to_str().unwrap(),
    ]));
    let o = arca(["qr", "read", out.join("code.png").to_str().unwrap()]);
    assert_eq!(ok(&o), text, "no newline added into a pipe");
}

/// The repository's notices reach the person as they arise: a root change
/// says which signatures it removes, and a warning given before a command
/// fails is not lost with it.
#[test]
fn notices_are_never_lost() {
    let r = vector_repo();
    let o = r.run(&[
        "root",
        "add-to-role",
        "--role",
        "maintainer",
        "--id",
        "m9",
        "--key-hash",
        &format!("sha256={}", "1".repeat(64)),
    ]);
    ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains(
            "arca: this change invalidates the signatures of rootA, rootB: they are removed"
        ),
        "{e}"
    );
    assert!(e.contains("arca: wrote "), "{e}");
    // the epoch warning comes before the key is looked for; no key is there
    let empty = r._tmp.path().join("empty-store");
    std::fs::create_dir(&empty).unwrap();
    let o = arca([
        "snapshot",
        "create",
        "-r",
        r.repo.to_str().unwrap(),
        "--epoch",
        "5",
        "--key-store",
        empty.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(
        e.contains("arca: warning: the root's snapshot role names epoch 0; `arca verify` refuses a snapshot with epoch 5"),
        "{e}"
    );
    assert!(e.contains("no private key snap in"), "{e}");
}
