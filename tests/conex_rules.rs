//! One regression case for each rule where arca once gave another verdict
//! than conex 1.0 (docs/conex-differences.md): arca's verdict is asserted
//! always, conex's own verifiers' verdict too where they are installed.

mod support;

use arca::conex::resource::Resource;
use arca::conex::Timestamp;
use arca::keys::file::{FileLocation, FileSigner};
use arca::keys::NoSecrets;
use arca::repository::sign_into;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const NOW: &str = "2026-11-21T23:40:00Z";

/// Which verdict a case must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum V {
    Accept,
    Reject,
    /// conex ends in an uncaught exception (exit 125); arca's own verdict
    /// is given separately.
    ConexCrash,
}

fn run_with_timeout(cmd: &mut Command) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let f = std::fs::File::create(&out).unwrap();
    let mut child = cmd
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} hung (killed after 30 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&out).unwrap_or_default())
}

/// Asserts arca's verdict and, with conex's tools installed, that both of
/// conex's verifiers give `conex`.
fn check(what: &str, args: &[String], arca_v: V, conex_v: V) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
    c.arg("verify").args(args);
    let (code, out) = run_with_timeout(&mut c);
    let arca_got = if code == Some(0) {
        V::Accept
    } else {
        V::Reject
    };
    assert_eq!(arca_got, arca_v, "{what}: arca {code:?}:\n{out}");
    if !cfg!(arca_conex_oracle) {
        return;
    }
    for tool in ["conex_verify_openssl", "conex_verify_mirage_crypto"] {
        let mut c = Command::new(conex_tool(tool));
        c.args(args);
        let (code, out) = run_with_timeout(&mut c);
        let got = match code {
            Some(0) => V::Accept,
            Some(125) => V::ConexCrash,
            _ => V::Reject,
        };
        let want_ok = match conex_v {
            V::ConexCrash => got == V::ConexCrash,
            V::Accept => got == V::Accept,
            V::Reject => got != V::Accept,
        };
        assert!(
            want_ok,
            "{what}: {tool} {code:?}, expected {conex_v:?}:\n{out}"
        );
    }
}

fn full(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--dir".into(),
        dir.display().to_string(),
        "-t".into(),
        format!("{ANCHOR_A},{ANCHOR_B}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn incr(old: &Path, patch: &Path) -> Vec<String> {
    vec![
        "--incremental".into(),
        "--repository".into(),
        old.display().to_string(),
        "--patch".into(),
        patch.display().to_string(),
        "-t".into(),
        format!("{ANCHOR_A},{ANCHOR_B}"),
    ]
}

struct W {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    ks: PathBuf,
    repo: PathBuf,
}

fn work() -> W {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let ks = vector_key_store(&base);
    let repo = base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    W {
        _tmp: tmp,
        base,
        ks,
        repo,
    }
}

impl W {
    fn arca(&self, dir: &Path, args: &[&str]) {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-r".into(),
            dir.display().to_string(),
            "--key-store".into(),
            self.ks.display().to_string(),
        ]);
        // `key new` makes no file with a time in it and takes no --created
        if args.first() != Some(&"key") {
            v.extend(["--created".into(), NOW.into()]);
        }
        ok(&arca(&v));
    }

    /// The janitor, the snapshot and the timestamp sign `dir` again.
    fn resign(&self, dir: &Path) {
        self.arca(dir, &["targets", "compute", "--id", "m1"]);
        self.arca(dir, &["targets", "sign", "--id", "m1"]);
        self.arca(dir, &["snapshot", "create", "--id", "snap"]);
        self.arca(dir, &["snapshot", "sign", "--id", "snap"]);
        self.arca(dir, &["timestamp", "create", "--id", "ts"]);
        self.arca(dir, &["timestamp", "sign", "--id", "ts"]);
    }

    fn copy(&self, name: &str) -> PathBuf {
        let d = self.base.join(name);
        copy_tree(&self.repo, &d);
        d
    }

    /// `git diff -M` from `old` to `new`.
    fn diff(&self, old: &Path, new: &Path, tweak: impl FnOnce(&Path)) -> PathBuf {
        let g = self.base.join("git");
        let _ = std::fs::remove_dir_all(&g);
        copy_tree(old, &g);
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(&g)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-qm", "old"]);
        for e in std::fs::read_dir(&g).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() != ".git" {
                if p.is_dir() {
                    std::fs::remove_dir_all(p).unwrap();
                } else {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        copy_tree(new, &g);
        tweak(&g);
        git(&["add", "-A"]);
        let p = self.base.join("update.patch");
        std::fs::write(&p, git(&["diff", "--cached", "-M"])).unwrap();
        p
    }
}

fn add_package(dir: &Path, rel: &str, body: &str) {
    let p = dir.join("packages").join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// The timestamp's `created` rewritten and signed again by its key.
fn timestamp_created(w: &W, dir: &Path, created: &str) {
    let p = dir.join("ts");
    let mut ts = Timestamp::parse(&std::fs::read_to_string(&p).unwrap(), &mut Vec::new()).unwrap();
    ts.header.created = created.into();
    ts.signatures.clear();
    let mut s = FileSigner::open(
        &FileLocation::Id {
            dir: w.ks.clone(),
            id: "ts".into(),
        },
        &mut NoSecrets,
    )
    .unwrap();
    sign_into(&mut ts, "ts", NOW, &mut s).unwrap();
    std::fs::write(&p, ts.to_file_string()).unwrap();
}

#[test]
fn c01_ignore_missing_compares_the_first_path_component() {
    let w = work();
    add_package(
        &w.repo,
        "unsigned/unsigned.1/opam",
        "opam-version: \"2.0\"\n",
    );
    for flag in ["--ignore-missing", "--nostrict"] {
        check(flag, &full(&w.repo, &[flag]), V::Reject, V::Reject);
    }
    check("strict", &full(&w.repo, &[]), V::Reject, V::Reject);
}

#[test]
fn c02_c09_timestamp_created_as_conex_reads_it() {
    let w = work();
    for (created, v) in [
        ("2026-11-21T23:33:22.5Z", V::Reject),
        ("2026-11-21t23:33:22Z", V::Reject),
        ("2026-11-21T23:33:22z", V::Reject),
        ("2026-11-21T23:33:22+24:00", V::Reject),
        ("1970-01-01T00:00:00Z", V::Reject),
        ("2026-1-2T3:4:5Z", V::Accept),
        ("2026-11-21T23:33:22+0:0", V::Accept),
        ("2026-0x1-0x1T0x1:0_1:01Z", V::Accept),
    ] {
        let d = w.copy("c");
        timestamp_created(&w, &d, created);
        check(created, &full(&d, &[]), v, v);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn c03_a_section_with_a_damaged_header_is_dropped() {
    let w = work();
    let old = w.copy("old");
    add_package(&w.repo, "foo/foo.2/opam", "opam-version: \"2.0\"\n");
    w.resign(&w.repo);
    let p = w.diff(&old, &w.repo, |_| {});
    check("intact", &incr(&old, &p), V::Accept, V::Accept);
    let t = std::fs::read_to_string(&p).unwrap();
    for damaged in [
        t.replace(
            "+++ b/packages/foo/foo.2/opam",
            "++ b/packages/foo/foo.2/opam",
        ),
        t.replace("--- /dev/null\n+++ b/packages", "--- \n+++ b/packages"),
    ] {
        assert_ne!(damaged, t);
        std::fs::write(&p, damaged).unwrap();
        check("damaged", &incr(&old, &p), V::Reject, V::Reject);
    }
}

#[test]
fn c04_anchors_are_compared_exactly() {
    let w = work();
    let upper = format!(
        "sha256={},sha256={}",
        ANCHOR_A[7..].to_uppercase(),
        ANCHOR_B[7..].to_uppercase()
    );
    let a = |t: String| {
        vec![
            "--dir".to_string(),
            w.repo.display().to_string(),
            "-t".into(),
            t,
        ]
    };
    check("upper-case", &a(upper), V::Reject, V::Reject);
    // a space after the comma spoils the second anchor: the root's quorum
    // of two is then short of one
    check(
        "space",
        &a(format!("{ANCHOR_A}, {ANCHOR_B}")),
        V::Reject,
        V::Reject,
    );
    check(
        "exact",
        &a(format!("{ANCHOR_A},{ANCHOR_B}")),
        V::Accept,
        V::Accept,
    );
}

#[test]
fn c05_a_lexer_error_in_a_targets_file_not_needed() {
    let w = work();
    // a second janitor m2 beside m1 (one of them is enough)
    w.arca(&w.repo, &["key", "new", "--id", "m2"]);
    w.arca(
        &w.repo,
        &["root", "add-to-role", "--role", "maintainer", "--id", "m2"],
    );
    w.arca(&w.repo, &["root", "sign", "--id", "rootA"]);
    w.arca(&w.repo, &["root", "sign", "--id", "rootB"]);
    std::fs::write(w.repo.join("keys/m2"), "signed: [ [name \"m2 ]\n").unwrap();
    w.resign(&w.repo);
    // conex ends in an uncaught exception; arca skips the file (as conex
    // does for every other parse error) and m1's signatures suffice
    check("lexer error", &full(&w.repo, &[]), V::Accept, V::ConexCrash);
}

#[test]
fn c06_c07_c08_git_renames_symlinks_and_no_newline_in_patches() {
    let w = work();
    let old = w.copy("old");
    // a version folder renamed (git diff -M), a file without a final
    // newline changed, and a symbolic link (signed as the file holding the
    // link text, which is what conex and opam make of it)
    std::fs::rename(
        w.repo.join("packages/foo/foo.1.0.0"),
        w.repo.join("packages/foo/foo.1.0.0-1"),
    )
    .unwrap();
    add_package(&w.repo, "bar/bar.0.1/files/nonl", "one\ntwo");
    add_package(&w.repo, "bar/bar.0.1/files/link", "../opam");
    w.resign(&w.repo);
    let p = w.diff(&old, &w.repo, |g| {
        let l = g.join("packages/bar/bar.0.1/files/link");
        std::fs::remove_file(&l).unwrap();
        std::os::unix::fs::symlink("../opam", &l).unwrap();
    });
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains("rename from packages/foo/foo.1.0.0/opam"), "{t}");
    assert!(t.contains("new file mode 120000"), "{t}");
    assert!(t.contains("\\ No newline at end of file"), "{t}");
    check(
        "rename, symlink, no newline",
        &incr(&old, &p),
        V::Accept,
        V::Accept,
    );
    // without a/ b/ prefixes, the first component is stripped all the same
    // (and the files land outside packages/): refused
    std::fs::write(&p, t.replace(" a/", " ").replace(" b/", " ")).unwrap();
    check("no prefixes", &incr(&old, &p), V::Reject, V::Reject);
    // stray lines between sections change nothing
    std::fs::write(
        &p,
        t.replace("\ndiff --git", "\nnot a diff line\ndiff --git"),
    )
    .unwrap();
    check("stray lines", &incr(&old, &p), V::Accept, V::Accept);
    // the same section twice: the first counts, in order the second does
    // not apply
    let first = t
        .split_inclusive("\ndiff --git ")
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&p, format!("{t}{first}")).unwrap();
    check("a section twice", &incr(&old, &p), V::Accept, V::Accept);
}

#[test]
fn c10_c11_c12_token_spellings_conex_reads() {
    let w = work();
    let ts = w.repo.join("ts");
    let t = std::fs::read_to_string(&ts).unwrap();
    // 0x1 as 0x0_1: the same counter (the signature covers the value)
    let d = w.copy("c10");
    assert!(t.contains("[counter 0x1]"));
    std::fs::write(d.join("ts"), t.replace("[counter 0x1]", "[counter 0x0_1]")).unwrap();
    check("0x0_1", &full(&d, &[]), V::Accept, V::Accept);
    // the unused bits of a signature's base64 set: the same signature
    let d = w.copy("c11");
    let i = t.rfind("==\"").unwrap();
    let c = t.as_bytes()[i - 1];
    let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let v = abc.iter().position(|x| *x == c).unwrap();
    let n = abc[v ^ 1] as char;
    std::fs::write(d.join("ts"), format!("{}{n}{}", &t[..i - 1], &t[i..])).unwrap();
    check("trailing bits", &full(&d, &[]), V::Accept, V::Accept);
    // a byte that is not UTF-8 in a signature nobody needs
    let d = w.copy("c12");
    let mut b = t.clone().into_bytes();
    let at = t.rfind(']').unwrap();
    let extra = b"  [ other \"2026-11-21T23:40:00Z\" \"ed25519=\xff\xfe==\" ]\n";
    b.splice(at..at, extra.iter().copied());
    std::fs::write(d.join("ts"), b).unwrap();
    check("non-UTF-8 signature", &full(&d, &[]), V::Accept, V::Accept);
}

#[test]
fn fifo_in_a_package_is_refused_without_blocking() {
    let w = work();
    // copies first (copying a FIFO would block the test itself)
    let old = w.copy("old");
    let new = w.copy("new");
    add_package(&new, "foo/foo.2/opam", "opam-version: \"2.0\"\n");
    w.resign(&new);
    let p = w.diff(&w.repo, &new, |_| {});
    let d = w.copy("rootfifo");
    let mkfifo = |p: &Path| assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    mkfifo(&w.repo.join("packages/foo/foo.1.0.0/fifo"));
    check("full, FIFO", &full(&w.repo, &[]), V::Reject, V::Reject);
    // incremental: the FIFO in the old repository
    mkfifo(&old.join("packages/foo/foo.1.0.0/fifo"));
    check("incremental, FIFO", &incr(&old, &p), V::Reject, V::Reject);
    // a FIFO in place of the root is not opened either
    std::fs::remove_file(d.join("root")).unwrap();
    mkfifo(&d.join("root"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
    c.arg("verify").args(full(&d, &[]));
    let (code, out) = run_with_timeout(&mut c);
    assert_eq!(code, Some(1), "{out}");
}
