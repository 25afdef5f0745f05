//! The directory walk by handles (each directory and file opened relative
//! to its parent) lists, refuses and opens exactly what `DirSource`'s
//! path-based `list` and `open` do: the same entries in the same order,
//! the same errors with the same messages, the same bytes.

use arca::conex::verify::{hash_reader, DirSource, Source};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

fn show<T: std::fmt::Debug>(r: std::io::Result<T>) -> String {
    match r {
        Ok(x) => format!("ok {x:?}"),
        Err(e) => format!("error {:?}: {e}", e.kind()),
    }
}

/// Compares the two ways of listing `path` and of reading each of its
/// files; returns the listing's outcome.
fn same(src: &DirSource, path: &[&str]) -> String {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    let dup = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
    let by_path = src.list(&path);
    let mut h = src
        .open_dir(&path)
        .expect("a directory source walks by handles");
    let a = show(by_path.as_ref().map(|v| v.clone()).map_err(dup));
    let b = show(h.as_mut().map_err(|e| dup(e)).and_then(|d| d.list()));
    assert_eq!(a, b, "listing {path:?}");
    if let (Ok(items), Ok(d)) = (by_path, h.as_ref()) {
        for (name, is_dir) in items {
            let mut p = path.clone();
            p.push(name.clone());
            if is_dir {
                let x = show(src.list(&p));
                let y = show(d.subdir(&name).and_then(|mut s| s.list()));
                assert_eq!(x, y, "listing {p:?}");
            } else {
                let x = show(src.open(&p).and_then(|mut r| hash_reader(&mut r)));
                let y = show(d.open_file(&name).and_then(|mut f| hash_reader(&mut f)));
                assert_eq!(x, y, "reading {p:?}");
            }
        }
    }
    a
}

#[test]
fn handles_list_and_open_what_paths_do() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mk = |p: &str| std::fs::create_dir_all(d.join(p)).unwrap();
    let put = |p: &str, b: &[u8]| std::fs::write(d.join(p), b).unwrap();
    // regular files, directories, links to each
    mk("ok/sub/deeper");
    put("ok/opam", b"opam-version: \"2.0\"\n");
    put("ok/sub/file", b"");
    put("ok/sub/deeper/big", &vec![7u8; 100_000]);
    std::os::unix::fs::symlink("opam", d.join("ok/alias")).unwrap();
    std::os::unix::fs::symlink("sub", d.join("ok/subalias")).unwrap();
    let ok = same(&DirSource(d.into()), &["ok"]);
    assert!(
        ok.starts_with("ok ")
            && ok.contains("\"alias\", false")
            && ok.contains("\"subalias\", true"),
        "{ok}"
    );
    // a dangling link, a FIFO, a link to a FIFO, a name that is not UTF-8
    mk("dangling");
    std::os::unix::fs::symlink("missing", d.join("dangling/x")).unwrap();
    mk("fifo");
    mkfifo(&d.join("fifo/f"));
    mk("fifolink");
    mkfifo(&d.join("fifolink.f"));
    std::os::unix::fs::symlink("../fifolink.f", d.join("fifolink/l")).unwrap();
    mk("latin1");
    std::fs::write(
        d.join("latin1")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9")),
        b"x",
    )
    .unwrap();
    let src = DirSource(d.into());
    for (dir, msg) in [
        ("dangling", "No such file or directory"),
        ("fifo", "f is not a regular file or a directory"),
        ("fifolink", "l is not a regular file or a directory"),
        ("latin1", "is not UTF-8"),
    ] {
        let r = same(&src, &[dir]);
        assert!(r.starts_with("error") && r.contains(msg), "{dir}: {r}");
    }
    // not there, not a directory
    assert!(same(&src, &["nowhere"]).contains("No such file or directory"));
    assert!(same(&src, &["ok", "opam"]).contains("Not a directory"));
    // a file replaced by a FIFO after the listing: refused, not waited for
    let h = src.open_dir(&["fifo".to_string()]).unwrap().unwrap();
    let e = h.open_file("f").unwrap_err();
    assert_eq!(e.to_string(), "not a regular file");
    let e2 = src
        .open(&["fifo".to_string(), "f".to_string()])
        .err()
        .unwrap();
    assert_eq!(e.to_string(), e2.to_string());
}

#[test]
fn unreadable_entries_fail_the_same_way() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("p/locked")).unwrap();
    std::fs::write(d.join("p/secret"), b"x").unwrap();
    std::fs::set_permissions(d.join("p/locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(d.join("p/secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // as root both are readable anyway; either way the two walks agree
    let r = same(&DirSource(d.into()), &["p"]);
    assert!(r.starts_with("ok "), "{r}");
    std::fs::set_permissions(d.join("p/locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}
