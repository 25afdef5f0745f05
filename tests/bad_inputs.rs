//! Every file in tests/bad-inputs/<case>/root is refused by the real binary
//! with one line naming the file and what is wrong; nothing is written and
//! nothing panics.

mod support;
use std::path::{Path, PathBuf};
use support::*;

#[test]
fn bad_inputs_are_refused_with_one_clear_line() {
    let mut n = 0;
    for (case, name) in cases() {
        if !case.join("root").exists() {
            continue; // a ceremony or targets case: see the tests below
        }
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        let expected = expected.trim();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(case.join("root"), tmp.path().join("root")).unwrap();
        let before = std::fs::read(tmp.path().join("root")).unwrap();
        let r = tmp.path().to_str().unwrap();
        for args in [
            vec!["root", "status", "-r", r],
            vec!["root", "remove-key", "--id", "rootB", "-r", r],
            vec![
                "root",
                "add-to-role",
                "--role",
                "snapshot",
                "--id",
                "s",
                "--key-hash",
                &"a".repeat(64),
                "-r",
                r,
            ],
        ] {
            refused_with_one_line(&name, &args, expected, "/root");
            assert_eq!(
                std::fs::read(tmp.path().join("root")).unwrap(),
                before,
                "{name}: file changed"
            );
            let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert_eq!(leftovers.len(), 1, "{name}: stray files left behind");
        }
        n += 1;
    }
    assert!(n >= 60, "only {n} cases");
}

/// The folders of tests/bad-inputs and their names.
fn cases() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|case| {
            let case = case.unwrap().path();
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            (case, name)
        })
        .collect()
}

/// The arguments of `arca sign-request sign REQUEST --id rootA` with the
/// vector key store made in `dir` and an answers file there saying yes to
/// every question, the signature going to `dir/out.json`; and that path.
fn sign_as_root_a(dir: &Path, request: &Path) -> (Vec<String>, PathBuf) {
    let ks = vector_key_store(dir);
    let yes = dir.join("yes.toml");
    std::fs::write(&yes, "confirm = \"yes\"\n").unwrap();
    let out = dir.join("out.json");
    let args = [
        "sign-request",
        "sign",
        request.to_str().unwrap(),
        "--id",
        "rootA",
        "--key-store",
        ks.to_str().unwrap(),
        "--answers",
        yes.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    (args, out)
}

/// Runs `args` and checks the refusal: non-zero exit, one stderr line with
/// `expected` and `file` in it, no panic.
fn refused_with_one_line(name: &str, args: &[&str], expected: &str, file: &str) -> Option<i32> {
    let o = arca(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{name}: {args:?} succeeded");
    assert!(!err.contains("panicked"), "{name}: panic: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{name}: not one line: {err}"
    );
    no_control_characters(name, &err);
    assert!(
        err.contains(expected),
        "{name}: expected {expected:?} in {err:?}"
    );
    assert!(err.contains(file), "{name}: {file} is not named: {err}");
    o.status.code()
}

/// A message quotes what is in a file escaped: no carriage return, escape
/// sequence or other control character reaches the terminal.
fn no_control_characters(name: &str, err: &str) {
    let line = err.strip_suffix('\n').unwrap_or(err);
    assert!(
        !line.chars().any(char::is_control),
        "{name}: control character in {err:?}"
    );
}

/// `<case>/keys/<id>` targets files: `targets status` and `targets sign`
/// refuse them, next to the vectors' valid root; nothing is written.
#[test]
fn bad_targets_files_are_refused_with_one_clear_line() {
    let mut n = 0;
    for (case, name) in cases() {
        let Ok(keys) = std::fs::read_dir(case.join("keys")) else {
            continue;
        };
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        for k in keys {
            let k = k.unwrap().path();
            let id = k.file_name().unwrap().to_string_lossy().into_owned();
            let tmp = tempfile::tempdir().unwrap();
            let repo = tmp.path().join("repo");
            copy_tree(&vectors().join("repo"), &repo);
            std::fs::copy(&k, repo.join("keys").join(&id)).unwrap();
            let before = std::fs::read(repo.join("keys").join(&id)).unwrap();
            let ks = vector_key_store(tmp.path());
            let r = repo.to_str().unwrap();
            for args in [
                vec!["targets", "status", "--id", &id, "-r", r],
                vec![
                    "targets",
                    "sign",
                    "--id",
                    &id,
                    "-r",
                    r,
                    "--key-store",
                    ks.to_str().unwrap(),
                ],
            ] {
                refused_with_one_line(&name, &args, expected.trim(), &format!("keys/{id}"));
            }
            assert_eq!(
                std::fs::read(repo.join("keys").join(&id)).unwrap(),
                before,
                "{name}: file changed"
            );
            n += 1;
        }
    }
    assert!(n >= 3, "only {n} targets cases");
}

/// `<case>/ceremony.toml`: `arca ceremony check` refuses it with one line
/// naming the file.
#[test]
fn bad_ceremony_files_are_refused_with_one_clear_line() {
    let mut n = 0;
    for (case, name) in cases() {
        let file = case.join("ceremony.toml");
        if !file.exists() {
            continue;
        }
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        refused_with_one_line(
            &name,
            &["ceremony", "check", file.to_str().unwrap()],
            expected.trim(),
            "ceremony.toml",
        );
        n += 1;
    }
    assert!(n >= 5, "only {n} ceremony cases");
}

/// `<case>/sign-request.json`: `arca sign-request sign` refuses it as
/// rootA (with rootA's key at hand and a yes to every question) with one
/// line naming the file; no signature is written. `<case>/signature.json`:
/// `arca sign-request import` refuses it for the pending root the seeds'
/// requests were made from (the vectors' `stages/root.5-role-timestamp`);
/// the root is not changed.
#[test]
fn bad_sign_requests_and_signatures_are_refused_with_one_clear_line() {
    let (mut requests, mut signatures) = (0, 0);
    for (case, name) in cases() {
        let req = case.join("sign-request.json");
        let sig = case.join("signature.json");
        if !req.exists() && !sig.exists() {
            continue;
        }
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        // exit codes (README): a file that is not a request or signature
        // file is bad input (2), a root inside that does not parse is a
        // malformed file (3), a well-formed file that does not fit is refused (6)
        let code = if expected.contains("(root)") {
            3
        } else if expected.starts_with("not a ") || expected.starts_with("format ") {
            2
        } else {
            6
        };
        let tmp = tempfile::tempdir().unwrap();
        if req.exists() {
            let (args, out) = sign_as_root_a(tmp.path(), &req);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let c = refused_with_one_line(&name, &args, expected.trim(), "sign-request.json");
            assert_eq!(c, Some(code), "{name}: exit code");
            assert!(!out.exists(), "{name}: a signature was written");
            requests += 1;
        }
        if sig.exists() {
            let root = tmp.path().join("root");
            std::fs::copy(vectors().join("stages/root.5-role-timestamp"), &root).unwrap();
            let before = std::fs::read(&root).unwrap();
            let c = refused_with_one_line(
                &name,
                &[
                    "sign-request",
                    "import",
                    sig.to_str().unwrap(),
                    "-r",
                    tmp.path().to_str().unwrap(),
                ],
                expected.trim(),
                "signature.json",
            );
            assert_eq!(c, Some(code), "{name}: exit code");
            assert_eq!(
                std::fs::read(&root).unwrap(),
                before,
                "{name}: root changed"
            );
            let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert_eq!(files.len(), 1, "{name}: stray files left behind");
            signatures += 1;
        }
    }
    assert!(requests >= 15, "only {requests} sign-request cases");
    assert!(signatures >= 10, "only {signatures} signature cases");
}

/// The sign requests and signatures the bad-input cases were made from
/// (the fuzz seeds, as arca wrote them) are good: rootA's request signs,
/// and rootA's signature imports into the pending root.
#[test]
fn the_sign_request_seeds_are_good() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sign_request");
    let tmp = tempfile::tempdir().unwrap();
    let (args, out) = sign_as_root_a(tmp.path(), &seeds.join("request-rootA-rsa.json"));
    let o = arca(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::copy(
        vectors().join("stages/root.5-role-timestamp"),
        repo.join("root"),
    )
    .unwrap();
    for sig in [out, seeds.join("signature-rootA-rsa.json")] {
        let o = arca([
            "sign-request",
            "import",
            sig.to_str().unwrap(),
            "-r",
            repo.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// arca refuses to sign a root whose quorum is 0 or negative, or whose
/// role has quorum 0 (conex would accept such a root with no signature).
/// `root status` shows these files; signing them is refused.
#[test]
fn quorum_zero_is_refused_by_root_sign() {
    let valid = std::fs::read_to_string(vectors().join("repo/root")).unwrap();
    let snap_ref = "[\n        snapshot\n        [\n          snap\n          \"sha256=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707\"\n          0x0\n        ]\n      ]";
    assert!(valid.contains(snap_ref));
    for (name, text, expected) in [
        (
            "quorum 0",
            valid.replace("[valid (2 [rootA rootB])]", "[valid (0 [rootA rootB])]"),
            "quorum 0",
        ),
        (
            "negative quorum",
            valid.replace("[valid (2 [rootA rootB])]", "[valid (-1 [rootA rootB])]"),
            "quorum 0",
        ),
        (
            "role quorum 0",
            valid.replace(
                snap_ref,
                "[\n        snapshot\n        (0 [[snap \"sha256=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707\" 0x0]])\n      ]",
            ),
            "the snapshot role has quorum 0",
        ),
        (
            "valid names a missing key",
            valid.replace("[valid (2 [rootA rootB])]", "[valid (2 [rootA rootC])]"),
            "rootC, which is not a root key",
        ),
    ] {
        assert_ne!(text, valid, "{name}: not applied");
        let tmp = tempfile::tempdir().unwrap();
        let ks = vector_key_store(tmp.path());
        std::fs::write(tmp.path().join("root"), &text).unwrap();
        let o = arca([
            "root",
            "sign",
            "--id",
            "rootA",
            "-r",
            tmp.path().to_str().unwrap(),
            "--key-store",
            ks.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{name}: signed");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("root")).unwrap(),
            text,
            "{name}: file changed"
        );
    }
}

/// A file over 16 MiB is refused before it is parsed; a 4 MiB file of
/// padding is handled in reasonable time.
#[test]
fn oversized_files_are_refused_and_large_ones_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::read_to_string(vectors().join("repo/root")).unwrap();
    let huge = format!("{root}{}", " ".repeat(17 * 1024 * 1024));
    std::fs::write(tmp.path().join("root"), &huge).unwrap();
    let r = tmp.path().to_str().unwrap();
    for args in [
        vec!["root", "status", "-r", r],
        vec!["root", "remove-key", "--id", "rootB", "-r", r],
    ] {
        refused_with_one_line("oversized", &args, "larger than 16 MiB", "/root");
    }
    assert_eq!(
        std::fs::metadata(tmp.path().join("root")).unwrap().len(),
        huge.len() as u64
    );
    let large = format!("{root}# {}\n", "x".repeat(4 * 1024 * 1024));
    std::fs::write(tmp.path().join("root"), &large).unwrap();
    let t = std::time::Instant::now();
    let o = arca(["root", "status", "-r", r]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "a 4 MiB file took {:?}",
        t.elapsed()
    );
}

/// A root saved with CRLF line endings is not a bad input: CR LF is a line
/// break, between tokens and inside strings (as in OCaml's lexer), so it
/// reads as the same root with the same valid signatures; arca writes LF.
#[test]
fn crlf_files_read_like_lf_files() {
    use arca::conex::resource::{Resource, Root};
    let lf = std::fs::read_to_string(vectors().join("repo/root")).unwrap();
    let crlf = lf.replace('\n', "\r\n");
    let a = Root::parse(&lf, &mut Vec::new()).unwrap();
    let mut w = Vec::new();
    let b = Root::parse(&crlf, &mut w).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(a, b);
    assert_eq!(b.to_file_string(), lf);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("root"), &crlf).unwrap();
    let o = arca(["root", "status", "-r", tmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The verifier refuses an oversized conex file without reading it whole.
#[test]
fn verify_refuses_an_oversized_root() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let mut big = std::fs::read(vectors().join("repo/root")).unwrap();
    big.extend(std::iter::repeat_n(b' ', 17 * 1024 * 1024));
    std::fs::write(repo.join("root"), big).unwrap();
    let o = arca(["verify", "--dir", repo.to_str().unwrap(), "-t", ANCHOR_A]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("larger than 16 MiB"), "{}", stderr(&o));
}
