//! Every exit code of the README's table, provoked through the real binary
//! by what a person or a script would do.

mod support;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::*;

fn code(o: &Output) -> i32 {
    o.status.code().expect("arca exited, not killed")
}

/// Runs arca and checks its exit code and that the error is one line
/// naming `needle`.
fn expect<S: AsRef<str> + std::fmt::Debug>(args: &[S], want: i32, needle: &str) -> Output {
    let o = arca(args.iter().map(|a| a.as_ref()));
    let err = stderr(&o);
    assert_eq!(
        code(&o),
        want,
        "arca {args:?} exited {:?}, expected {want}:\n{err}",
        o.status.code()
    );
    assert!(
        err.contains(needle),
        "arca {args:?}: {needle:?} not in:\n{err}"
    );
    if want != 0 {
        // arca's own errors are one line; clap's start with "error: "
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("arca: ")).collect();
        assert!(
            lines.len() == 1 || err.starts_with("error: "),
            "not one error line:\n{err}"
        );
    }
    o
}

fn vector_repo(dir: &Path) -> String {
    let repo = dir.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    repo.display().to_string()
}

fn anchors() -> String {
    format!("{ANCHOR_A},{ANCHOR_B}")
}

#[test]
fn code_0_success() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    let o = expect(&["verify", "--dir", &repo, "-t", &anchors()], 0, "");
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified: root counter 1"));
}

#[test]
fn code_1_verification_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    // a file changed on the mirror
    std::fs::write(
        Path::new(&repo).join("packages/foo/foo.1.0.0/opam"),
        "opam-version: \"2.0\"\nbuild: [\"rm\" \"-rf\" \"/\"]\n",
    )
    .unwrap();
    expect(
        &["verify", "--dir", &repo, "-t", &anchors()],
        1,
        "verification failed: comparison failed: no matching digest for packages/foo/foo.1.0.0/opam",
    );
}

#[test]
fn code_1_tampered_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("journal.jsonl");
    let mut j = arca::journal::Journal::open(&p).unwrap();
    j.append(
        "create-root",
        "begin",
        serde_json::json!({}),
        BTreeMap::new(),
    )
    .unwrap();
    j.append(
        "create-root",
        "sign:rootA",
        serde_json::json!({"counter": 1}),
        BTreeMap::new(),
    )
    .unwrap();
    drop(j);
    let path = p.display().to_string();
    let o = expect(&["ceremony", "verify-transcript", &path], 0, "");
    assert!(String::from_utf8_lossy(&o.stdout).contains("chain intact"));
    // someone edits what rootA signed
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("rootA", "rootC");
    std::fs::write(&p, text).unwrap();
    expect(
        &["ceremony", "verify-transcript", &path],
        1,
        "verification failed: ",
    );
    // a journal that is not there is an I/O error, not a verdict
    let missing = tmp.path().join("nothing/journal.jsonl");
    expect(
        &["ceremony", "verify-transcript", missing.to_str().unwrap()],
        3,
        "nothing/journal.jsonl",
    );
}

/// A ceremony resumed from a journal someone edited stops with the
/// journal's verdict (1); a journal that cannot be read is I/O (3).
#[test]
fn code_1_resume_from_a_tampered_journal() {
    let r = room(&["alice", "bob", "carol"]);
    let out = r.base.join("out/create-root");
    std::fs::create_dir_all(&out).unwrap();
    let p = out.join("journal.jsonl");
    let mut j = arca::journal::Journal::open(&p).unwrap();
    j.append("t", "begin", serde_json::json!({}), BTreeMap::new())
        .unwrap();
    j.append("t", "done", serde_json::json!({}), BTreeMap::new())
        .unwrap();
    drop(j);
    let text = std::fs::read_to_string(&p).unwrap().replace("done", "dome");
    std::fs::write(&p, text).unwrap();
    let ceremony = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml");
    let resume = ceremony_args("resume", &ceremony, &r.profile, &r.answers, &r.base);
    expect(
        &resume,
        1,
        "journal.jsonl:2: the entry does not match its hash (edited?)",
    );
    // nothing was made from it
    assert!(!out.join("root").exists());
    // the journal's place holds a folder: it cannot be read
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    expect(&resume, 3, "journal.jsonl:0: ");
}

#[test]
fn code_1_bundle_with_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("bundle");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("root"), "not what a ceremony wrote\n").unwrap();
    let o = expect(
        &["bundle", "verify", b.to_str().unwrap()],
        1,
        "problem(s); do not use this bundle",
    );
    assert!(stderr(&o).contains("MANIFEST: missing"), "{}", stderr(&o));
}

#[test]
fn code_2_bad_command_line_input() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    // a cut anchor and an anchor without its prefix are the same mistake
    expect(
        &["verify", "--dir", &repo, "-t", "sha256=abc"],
        2,
        "trust anchor \"sha256=abc\": expected sha256=<64 hex digits>",
    );
    let bare = ANCHOR_A.trim_start_matches("sha256=");
    expect(
        &["verify", "--dir", &repo, "-t", bare],
        2,
        "expected sha256=<64 hex digits>",
    );
    // in a comma-separated list, the bad one is named
    expect(
        &[
            "verify",
            "--dir",
            &repo,
            "-t",
            &format!("{ANCHOR_A},sha256=12"),
        ],
        2,
        "trust anchor \"sha256=12\"",
    );
    expect(
        &["root", "status", "-r", &repo, "-t", "xyz"],
        2,
        "trust anchor",
    );
    expect(&["verify", "--no-such-flag"], 2, "--no-such-flag");
    expect(&["verify", "-t", &anchors()], 2, "give --dir DIR");
}

/// A ceremony file, device profile or answers file that is not valid, or
/// not there, is bad input: the line names file, line and field.
#[test]
fn code_2_bad_ceremony_profile_or_answers_file() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c.toml");
    std::fs::write(&c, "kind = \"create-root\"\ntitle = 3\n").unwrap();
    expect(
        &["ceremony", "check", c.to_str().unwrap()],
        2,
        "c.toml:2: invalid type: integer `3`, expected a string",
    );
    let none = tmp.path().join("none.toml");
    expect(
        &["ceremony", "check", none.to_str().unwrap()],
        2,
        "none.toml",
    );
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml");
    let profile = tmp.path().join("profile.toml");
    std::fs::write(&profile, "[holders]\nalice = \"nowhere:1\"\n").unwrap();
    expect(
        &[
            "ceremony",
            "check",
            good.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
        ],
        2,
        "profile.toml:2: ",
    );
    // an answers file that is not valid: nothing is asked, nothing made
    let profile = file_device_profile(tmp.path(), &["alice", "bob", "carol"]);
    let answers = tmp.path().join("answers.toml");
    std::fs::write(&answers, "confirm = \"perhaps\"\n").unwrap();
    expect(
        &ceremony_args("run", &good, &profile, &answers, tmp.path()),
        2,
        "answers.toml:1: confirm = \"perhaps\": expected \"yes\" or \"no\"",
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn code_3_malformed_file_or_io() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    std::fs::write(Path::new(&repo).join("root"), "signed: [\n  [counter\n").unwrap();
    expect(&["root", "status", "-r", &repo], 3, "root");
    let none = tmp.path().join("no-repo");
    expect(
        &[
            "targets",
            "status",
            "-r",
            none.to_str().unwrap(),
            "--id",
            "m1",
        ],
        3,
        "no-repo",
    );
    // a file that is there but not what it must be
    let t = tmp.path().join("bundle.tar");
    std::fs::write(&t, "not a tar file\n").unwrap();
    expect(
        &["bundle", "verify", t.to_str().unwrap()],
        3,
        "bundle.tar: tar entry: ",
    );
}

#[test]
fn code_4_key_or_device_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("empty-store");
    std::fs::create_dir(&ks).unwrap();
    expect(
        &[
            "key",
            "pub",
            "--id",
            "rootZ",
            "--key-store",
            ks.to_str().unwrap(),
        ],
        4,
        "rootZ",
    );
}

#[test]
fn code_5_declined() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    let ks = vector_key_store(tmp.path());
    // a person says no: the absent root holder declines the sign request
    let req = tmp.path().join("req.txt");
    ok(&arca([
        "sign-request",
        "export",
        "--id",
        "rootA",
        "-r",
        &repo,
        "--out",
        req.to_str().unwrap(),
    ]));
    let no = tmp.path().join("no.toml");
    std::fs::write(&no, "confirm = \"no\"\n").unwrap();
    let sig = tmp.path().join("rootA.signature");
    expect(
        &[
            "sign-request",
            "sign",
            req.to_str().unwrap(),
            "--id",
            "rootA",
            "--key-store",
            ks.to_str().unwrap(),
            "--answers",
            no.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
        5,
        "rootA declined to sign; nothing was signed",
    );
    assert!(!sig.exists());
    // no terminal to ask the people in the room
    let profile = file_device_profile(tmp.path(), &["alice", "bob", "carol"]);
    let o = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "ceremony",
            "run",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ceremonies/create-root.toml")
                .to_str()
                .unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--base",
            tmp.path().to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(stderr(&o).contains("no terminal to ask"), "{}", stderr(&o));
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn code_6_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = vector_repo(tmp.path());
    expect(&["root", "create", "-r", &repo], 6, "refused: ");
    // the signed root is untouched
    assert_eq!(
        std::fs::read(Path::new(&repo).join("root")).unwrap(),
        std::fs::read(vectors().join("repo/root")).unwrap()
    );
}

/// The README's table lists exactly the codes tested here.
#[test]
fn readme_table_is_the_tested_codes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README has an exit-code section");
    let codes: Vec<i32> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_matches('|').split('|').next()?.trim().parse().ok())
        .collect();
    assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6]);
}
