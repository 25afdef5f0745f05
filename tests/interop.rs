//! What arca makes, judged by conex's own tools: a repository built with
//! arca's verbs (full and incremental), a rehearsal's output, a bundle's
//! root — each verified by both of conex's verifiers — and a bundle opened
//! for the online side, whose key store conex's own signing tools use to
//! sign a repository that both verifiers accept.

#[path = "support/conex_repo.rs"]
mod conex_repo;
mod support;

use conex_repo::*;
use std::path::{Path, PathBuf};
use support::*;

/// Both of conex's verifiers accept (and so does arca).
fn all_accept(args: &[String]) {
    let (a, b) = conex_verify(args);
    for (name, o) in [
        ("conex_verify_openssl", &a),
        ("conex_verify_mirage_crypto", &b),
    ] {
        assert!(
            o.accepted(),
            "{name} {args:?} refused ({:?}):\n{}",
            o.code,
            o.out
        );
    }
    let me = arca_verify(args);
    assert!(me.accepted(), "arca {args:?} refused:\n{}", me.out);
}

fn dir_args(dir: &Path, anchors: &str, quorum: usize) -> Vec<String> {
    vec![
        "--dir".into(),
        dir.display().to_string(),
        "-t".into(),
        anchors.into(),
        "--quorum".into(),
        quorum.to_string(),
    ]
}

fn softhsm_present() -> bool {
    let m = std::env::var_os("ARCA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    if m.exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SoftHSM is missing in CI: .ci/run installs softhsm2"
    );
    eprintln!(
        "SoftHSM is not installed (apt-get install softhsm2): rehearsal interop test not run"
    );
    false
}

#[test]
#[cfg_attr(
    not(arca_conex_oracle),
    ignore = "needs conex's tools (../shared/oracle/build.sh)"
)]
fn a_repository_built_with_arcas_verbs_verifies_with_both_conex_verifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = vector_key_store(tmp.path());
    let repo = fresh_repo(tmp.path());
    let run = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            ks.display().to_string(),
        ]);
        ok(&arca(&v))
    };
    run(&["root", "create"]);
    run(&["root", "add-key", "--id", "rootA"]);
    run(&["root", "add-key", "--id", "rootB", "--quorum", "2"]);
    for (role, id) in [
        ("maintainer", "m1"),
        ("snapshot", "snap"),
        ("timestamp", "ts"),
    ] {
        run(&["root", "add-to-role", "--role", role, "--id", id]);
    }
    run(&["root", "sign", "--id", "rootA"]);
    run(&["root", "sign", "--id", "rootB"]);
    run(&["targets", "create", "--id", "m1"]);
    run(&["targets", "compute", "--id", "m1"]);
    run(&["targets", "sign", "--id", "m1"]);
    run(&["snapshot", "create", "--id", "snap"]);
    run(&["snapshot", "sign", "--id", "snap"]);
    run(&["timestamp", "create", "--id", "ts"]);
    run(&["timestamp", "sign", "--id", "ts"]);
    let anchors = format!("{ANCHOR_A},{ANCHOR_B}");
    all_accept(&dir_args(&repo, &anchors, 2));

    // an update made with arca's verbs, as the git diff opam applies
    let old = tmp.path().join("old");
    copy_all(&repo, &old);
    std::fs::create_dir_all(repo.join("packages/foo/foo.2.0.0")).unwrap();
    std::fs::write(
        repo.join("packages/foo/foo.2.0.0/opam"),
        "opam-version: \"2.0\"\nversion: \"2.0.0\"\n",
    )
    .unwrap();
    // and a version folder renamed, as opam-repository does
    std::fs::rename(
        repo.join("packages/bar/bar.0.1"),
        repo.join("packages/bar/bar.0.1-1"),
    )
    .unwrap();
    run(&["targets", "compute", "--id", "m1"]);
    run(&["targets", "sign", "--id", "m1"]);
    run(&["snapshot", "create", "--id", "snap"]);
    run(&["snapshot", "sign", "--id", "snap"]);
    run(&["timestamp", "create", "--id", "ts"]);
    run(&["timestamp", "sign", "--id", "ts"]);
    let patch = git_diff(tmp.path(), &old, &repo);
    let text = String::from_utf8_lossy(&patch);
    assert!(
        text.contains("rename from packages/bar/bar.0.1/opam"),
        "{text}"
    );
    let p = tmp.path().join("update.patch");
    std::fs::write(&p, &patch).unwrap();
    all_accept(&[
        "--incremental".into(),
        "--repository".into(),
        old.display().to_string(),
        "--patch".into(),
        p.display().to_string(),
        "-t".into(),
        anchors.clone(),
    ]);
    all_accept(&dir_args(&repo, &anchors, 2));
}

#[test]
#[cfg_attr(
    not(arca_conex_oracle),
    ignore = "needs conex's tools (../shared/oracle/build.sh)"
)]
fn a_rehearsals_root_verifies_with_both_conex_verifiers() {
    if !softhsm_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("rehearsal");
    let o = arca([
        "ceremony",
        "run",
        "--rehearse",
        "--yes",
        "--base",
        base.to_str().unwrap(),
    ]);
    ok(&o);
    // the built-in create-root ceremony's output folder
    let out = find_file(&base, "anchors.txt")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("no anchors.txt under {}", base.display()));
    let anchors = std::fs::read_to_string(out.join("anchors.txt"))
        .unwrap()
        .trim()
        .to_string();
    // the new root over the vectors' janitor, snapshot and timestamp files
    let repo = tmp.path().join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    std::fs::copy(out.join("root"), repo.join("root")).unwrap();
    all_accept(&dir_args(&repo, &anchors, 2));
    // the bundle's root is the same root, and root.img its padded bytes
    let bundle = out.join("bundle");
    let root = std::fs::read(out.join("root")).unwrap();
    assert_eq!(std::fs::read(bundle.join("root")).unwrap(), root);
    assert_eq!(
        std::fs::read(bundle.join("root.img")).unwrap(),
        arca::bundle::pad_512(&root)
    );
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut es: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    es.sort();
    for p in &es {
        if p.file_name().is_some_and(|n| n == name) && p.is_file() {
            return Some(p.clone());
        }
    }
    for p in es {
        if p.is_dir()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        }
    }
    None
}

#[test]
#[cfg_attr(
    not(arca_conex_oracle),
    ignore = "needs conex's tools (../shared/oracle/build.sh)"
)]
fn a_bundle_opened_online_signs_with_conex_tools_and_both_verifiers_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    // the online machine makes the maintainer's key (opam-mirror signs one
    // targets file for the whole repository)
    let online_ks = base.join("online-ks");
    let o = ok(&arca([
        "online",
        "keygen",
        "--id",
        "m1",
        "--key-store",
        online_ks.to_str().unwrap(),
    ]));
    let m1_key = o
        .lines()
        .find_map(|l| l.strip_prefix("# for the ceremony file: key = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .unwrap_or_else(|| panic!("no key printed:\n{o}"));
    // the ceremony, with key-file devices
    let ceremony = CreateRoot::with_root_b("interop root", "rsa")
        .generated_online()
        .janitor("m1", &m1_key);
    file_device_room(&base, &ceremony.text(), "a passphrase for the online keys");
    ok(&file_device_ceremony("run", &base));
    let bundle = base.join("out/bundle");
    let opened = base.join("opened");
    let o = ok(&arca([
        "bundle",
        "open",
        bundle.to_str().unwrap(),
        "--out",
        opened.to_str().unwrap(),
        "--passphrase-file",
        base.join("pass.txt").to_str().unwrap(),
    ]));
    assert!(o.contains("opam-mirror.txt"), "{o}");
    let ks = opened.join("key-store");
    // the maintainer key joins the online key store
    for e in std::fs::read_dir(&online_ks).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), ks.join(e.file_name())).unwrap();
    }
    // the start file names root.img and which key file goes where, and
    // holds no secret
    let start = std::fs::read_to_string(opened.join("opam-mirror.txt")).unwrap();
    assert!(start.contains("root.img"), "{start}");
    assert_eq!(
        std::fs::read(opened.join("root.img")).unwrap(),
        std::fs::read(bundle.join("root.img")).unwrap()
    );
    for (flag, id) in [
        ("--target-key", "m1"),
        ("--snapshot-key", "snap"),
        ("--timestamp-key", "ts"),
    ] {
        let line = start
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{flag}=")))
            .unwrap_or_else(|| panic!("no {flag} in\n{start}"));
        assert!(line.contains(&format!("/{id}.sha256=")), "{line}");
    }
    assert!(!start.contains("WARNING"), "{start}");
    for e in std::fs::read_dir(&ks).unwrap() {
        let pem = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let secret = pem.lines().nth(1).unwrap();
        assert!(!start.contains(secret), "a secret in opam-mirror.txt");
    }
    // conex's own tools sign a repository with that key store and root
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::symlink(&ks, home.join(".conex")).unwrap();
    let h = ConexHome { home };
    let repo = fresh_repo(&base);
    std::fs::copy(opened.join("root"), repo.join("root")).unwrap();
    h.ok("conex_targets", &["create", "--id", "m1"], &repo);
    h.ok("conex_targets", &["compute", "--id", "m1"], &repo);
    h.ok("conex_targets", &["sign", "--id", "m1"], &repo);
    h.ok("conex_snapshot", &["create", "--id", "snap"], &repo);
    h.ok("conex_snapshot", &["sign", "--id", "snap"], &repo);
    h.ok("conex_timestamp", &["create", "--id", "ts"], &repo);
    h.ok("conex_timestamp", &["sign", "--id", "ts"], &repo);
    let anchors = std::fs::read_to_string(opened.join("anchors.txt"))
        .unwrap()
        .trim()
        .to_string();
    all_accept(&dir_args(&repo, &anchors, 2));
}
