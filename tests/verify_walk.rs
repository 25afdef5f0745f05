//! The directory walk by handles (each directory and file opened relative
//! to its parent) lists, refuses and opens exactly what `DirSource`'s
//! path-based `list` and `open` do: the same entries in the same order,
//! the same errors with the same messages, the same bytes.

use arca::conex::verify::{sha256_reader, DirSource, Listed, Source};
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
    let listed = h.as_mut().map_err(|e| dup(e)).and_then(|d| d.list());
    let b = show(listed.as_ref().map(|v| dirs(v)).map_err(dup));
    assert_eq!(a, b, "listing {path:?}");
    if let (Ok(items), Ok(d)) = (listed, h.as_ref()) {
        for (name, listed) in items {
            let mut p = path.clone();
            p.push(name.clone());
            match listed {
                Listed::Dir => {
                    let x = show(src.list(&p));
                    let y = show(d.subdir(&name).and_then(|mut s| s.list()).map(|v| dirs(&v)));
                    assert_eq!(x, y, "listing {p:?}");
                }
                Listed::File { linked } => {
                    let x = show(src.open(&p).and_then(|mut r| sha256_reader(&mut r)));
                    let y = show(d.sha256_file(&name, linked));
                    assert_eq!(x, y, "reading {p:?}");
                    let link = std::fs::symlink_metadata(src.0.join(p.join("/"))).unwrap();
                    assert_eq!(linked, link.is_symlink(), "{p:?}");
                }
            }
        }
    }
    a
}

/// A listing by handles as `DirSource::list` gives it: (name, is_dir).
fn dirs(v: &[(String, Listed)]) -> Vec<(String, bool)> {
    v.iter().map(|(n, l)| (n.clone(), l.is_dir())).collect()
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
    // a file reached by a link that became a FIFO after the listing:
    // refused before it is read, as by path
    let h = src.open_dir(&["fifo".to_string()]).unwrap().unwrap();
    let e = h.sha256_file("f", true).unwrap_err();
    assert_eq!(e.to_string(), "not a regular file");
    let e2 = src
        .open(&["fifo".to_string(), "f".to_string()])
        .err()
        .unwrap();
    assert_eq!(e.to_string(), e2.to_string());
    // a regular file that became a FIFO after the listing: not waited for
    // (no writer: it reads as empty, which matches no signed digest of a
    // non-empty file), and refused once a writer fills the buffer
    assert_eq!(
        show(h.sha256_file("f", false)),
        show(sha256_reader(&mut std::io::empty()))
    );
    let fifo = d.join("fifo/f");
    // a reader held open, so that the writer never gets SIGPIPE
    let held = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec head -c 200000 /dev/zero > {}",
            fifo.display()
        ))
        .spawn()
        .unwrap();
    let mut tries = 0;
    let e = loop {
        // until the writer has filled the FIFO's buffer
        match h.sha256_file("f", false) {
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break e,
            _ if tries < 1000 => std::thread::sleep(std::time::Duration::from_millis(10)),
            r => panic!("the FIFO was read as {}", show(r)),
        }
        tries += 1;
    };
    assert_eq!(e.to_string(), "not a regular file");
    let _ = writer.kill();
    let _ = writer.wait();
    drop(held);
    // a regular file that became a link after the listing: not followed
    std::fs::remove_file(d.join("ok/opam")).unwrap();
    std::os::unix::fs::symlink("sub/file", d.join("ok/opam")).unwrap();
    let h = src.open_dir(&["ok".to_string()]).unwrap().unwrap();
    let e = h.sha256_file("opam", false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    assert!(h.sha256_file("opam", true).is_ok());
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
