//! The air-gap bundle through the real binary: written by a ceremony,
//! carried (copied, packed as tar), verified on the other side; every kind
//! of tampering refused with a line naming the file; QR frames round-trip;
//! online keys cross the gap encrypted only.

mod support;
use std::path::{Path, PathBuf};
use std::process::Output;
use support::*;

struct Room {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

const SNAP_KEY: &str = "ed25519=BUVOg/jmubenrkMNnX0BYeZoG7NcvGlQDtH14EMbxLc=";
const TS_KEY: &str = "ed25519=25JCcdwCHl9PK2n41yxwLJzOqVBYEdyn5owS9WW8JII=";

/// The ceremony of these tests: a 2-of-2 Ed25519 root and janitor m1.
fn root() -> CreateRoot {
    CreateRoot::new("bundle test root").janitor("m1", M1_KEY)
}

const PASSPHRASE: &str = "correct horse battery staple";

/// Runs the create-root ceremony `ceremony` with key-file devices; returns
/// the room and the bundle digest the ceremony showed.
fn ceremony(ceremony: CreateRoot) -> (Room, String) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    file_device_room(&base, &ceremony.text(), PASSPHRASE);
    let o = file_device_ceremony("run", &base);
    ok(&o);
    let err = stderr(&o);
    let digest = err
        .lines()
        .find_map(|l| l.strip_prefix("[QR] bundle digest: "))
        .unwrap_or_else(|| panic!("no bundle digest shown:\n{err}"))
        .trim()
        .to_string();
    (Room { _tmp: tmp, base }, digest)
}

fn verify(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["bundle", "verify", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    arca(args)
}

fn refused(o: &Output, naming: &str) {
    let e = stderr(o);
    assert!(
        !o.status.success(),
        "accepted, expected a line naming {naming}"
    );
    assert!(
        e.lines().any(|l| l.contains(naming)),
        "no line names {naming}:\n{e}"
    );
}

fn fresh_copy(from: &Path, to: &Path) -> PathBuf {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    copy_tree(from, to);
    to.to_path_buf()
}

#[test]
fn a_ceremony_bundle_verifies_after_copying_and_as_tar() {
    let (r, digest) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let bundle = r.base.join("out/bundle");
    for f in [
        "MANIFEST",
        "root",
        "root.img",
        "anchors.txt",
        "opam.txt",
        "online.toml",
        "journal.jsonl",
    ] {
        assert!(bundle.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        std::fs::read(bundle.join("root")).unwrap(),
        std::fs::read(r.base.join("out/root")).unwrap()
    );
    let img = std::fs::read(bundle.join("root.img")).unwrap();
    assert_eq!(img.len() % 512, 0);
    let online = std::fs::read_to_string(bundle.join("online.toml")).unwrap();
    assert!(
        online.contains("id = \"snap\"") && online.contains("id = \"ts\""),
        "{online}"
    );
    assert!(!bundle.join("online-keys").exists());
    let manifest = std::fs::read_to_string(bundle.join("MANIFEST")).unwrap();
    assert!(!manifest.contains(" /") && !manifest.contains(".."));
    // carried across: a copy verifies, with the digest shown at the end
    let copy = fresh_copy(&bundle, &r.base.join("usb/bundle"));
    let out = ok(&verify(&copy, &["--expect-digest", &digest]));
    assert!(out.contains("bundle verified"), "{out}");
    assert!(out.contains(&digest), "{out}");
    // the digest as people read it aloud (groups of four) is accepted too
    let grouped = arca::repository::grouped(&digest);
    ok(&verify(&copy, &["--expect-digest", &grouped]));
    let e = verify(
        &copy,
        &["--expect-digest", &format!("sha256={}", "0".repeat(64))],
    );
    refused(&e, "MANIFEST: digest");
    // one tar file: same MANIFEST, same digest
    let tar = r.base.join("usb/bundle.tar");
    ok(&arca([
        "bundle",
        "pack",
        copy.to_str().unwrap(),
        "--out",
        tar.to_str().unwrap(),
    ]));
    ok(&verify(&tar, &["--expect-digest", &digest]));
    // a bundle is never written over
    let o = arca([
        "bundle",
        "pack",
        copy.to_str().unwrap(),
        "--out",
        tar.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    // the online side opens it: root and settings, no keys to decrypt
    let opened = r.base.join("online");
    let o = ok(&arca([
        "bundle",
        "open",
        tar.to_str().unwrap(),
        "--out",
        opened.to_str().unwrap(),
        "--expect-digest",
        &digest,
    ]));
    assert!(o.contains("settings written"), "{o}");
    assert_eq!(
        std::fs::read(opened.join("root")).unwrap(),
        std::fs::read(r.base.join("out/root")).unwrap()
    );
    // the journal step records the bundle digest
    let j = std::fs::read_to_string(r.base.join("out/journal.jsonl")).unwrap();
    assert!(j.contains(&digest));
}

#[test]
fn every_kind_of_tampering_is_refused_with_a_line_naming_it() {
    let (r, digest) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let bundle = r.base.join("out/bundle");
    let work = r.base.join("work");
    let files = [
        "root",
        "root.img",
        "anchors.txt",
        "opam.txt",
        "online.toml",
        "journal.jsonl",
        "MANIFEST",
    ];
    // one flipped byte in any file
    for f in files {
        let c = fresh_copy(&bundle, &work);
        let mut b = std::fs::read(c.join(f)).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x01;
        std::fs::write(c.join(f), &b).unwrap();
        let o = verify(&c, &["--expect-digest", &digest]);
        refused(&o, f);
    }
    // a dropped file
    for f in files {
        let c = fresh_copy(&bundle, &work);
        std::fs::remove_file(c.join(f)).unwrap();
        refused(&verify(&c, &[]), f);
    }
    // an added file
    let c = fresh_copy(&bundle, &work);
    std::fs::write(c.join("extra.sh"), "rm -rf /\n").unwrap();
    refused(&verify(&c, &[]), "extra.sh: not listed in MANIFEST");
    // a symbolic link in place of a file
    let c = fresh_copy(&bundle, &work);
    std::fs::remove_file(c.join("anchors.txt")).unwrap();
    std::os::unix::fs::symlink(bundle.join("anchors.txt"), c.join("anchors.txt")).unwrap();
    refused(&verify(&c, &[]), "anchors.txt: a symbolic link");
    // MANIFEST entries that escape the bundle
    for bad in ["../../etc/passwd", "/etc/passwd", "a/./b"] {
        let c = fresh_copy(&bundle, &work);
        let mut m = std::fs::read_to_string(c.join("MANIFEST")).unwrap();
        m.push_str(&format!(
            "sha256={} 0 {bad}\n",
            arca::bundle::manifest::sha256_hex(b"")
        ));
        std::fs::write(c.join("MANIFEST"), m).unwrap();
        refused(&verify(&c, &[]), bad);
    }
    // another validly signed root (conex's test vector), MANIFEST redone
    let c = fresh_copy(&bundle, &work);
    let other = std::fs::read(vectors().join("repo/root")).unwrap();
    std::fs::write(c.join("root"), &other).unwrap();
    std::fs::write(c.join("root.img"), arca::bundle::pad_512(&other)).unwrap();
    remanifest(&c);
    let o = verify(&c, &[]);
    refused(&o, "root: does not verify against the trust anchors");
    refused(&o, "journal.jsonl: the ceremony wrote a root");
    refused(
        &verify(&c, &["--expect-digest", &digest]),
        "MANIFEST: digest",
    );
    // ... even with the anchors swapped too, the digest people compare differs
    std::fs::write(c.join("anchors.txt"), format!("{ANCHOR_A},{ANCHOR_B}\n")).unwrap();
    remanifest(&c);
    refused(
        &verify(&c, &["--expect-digest", &digest]),
        "MANIFEST: digest",
    );
    // a clear private key slipped into online-keys/
    let c = fresh_copy(&bundle, &work);
    std::fs::create_dir_all(c.join("online-keys")).unwrap();
    std::fs::copy(
        std::fs::read_dir(vectors().join("private-keys"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        c.join("online-keys/snap.private"),
    )
    .unwrap();
    remanifest(&c);
    refused(
        &verify(&c, &[]),
        "online-keys/snap.private: not an encrypted PKCS#8 key",
    );
}

fn tar_with(entries: &[(&str, tar::EntryType, &[u8])], base: &Path) -> Vec<u8> {
    // start from a good bundle's files, then add raw entries
    let mut b = tar::Builder::new(Vec::new());
    let mut names: Vec<_> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let bytes = std::fs::read(&p).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path(p.file_name().unwrap()).unwrap();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, bytes.as_slice()).unwrap();
    }
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        // write the name bytes directly: set_path refuses '..'
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(if kind.is_file() { data.len() as u64 } else { 0 });
        h.set_mode(0o644);
        if kind.is_symlink() {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        let body: &[u8] = if kind.is_file() { data } else { &[] };
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn tar_entries_with_links_or_escaping_paths_are_refused() {
    let (r, _) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let bundle = r.base.join("out/bundle");
    let good = tar_with(&[], &bundle);
    std::fs::write(r.base.join("good.tar"), &good).unwrap();
    ok(&verify(&r.base.join("good.tar"), &[]));
    for (name, kind, naming) in [
        ("../evil", tar::EntryType::Regular, "../evil: '..'"),
        ("/etc/evil", tar::EntryType::Regular, "/etc/evil: absolute"),
        ("link", tar::EntryType::Symlink, "link: a link"),
        ("hard", tar::EntryType::Link, "hard: a link"),
    ] {
        let t = tar_with(&[(name, kind, b"x")], &bundle);
        let p = r.base.join("bad.tar");
        std::fs::write(&p, t).unwrap();
        refused(&verify(&p, &[]), naming);
    }
}

#[test]
fn bytes_of_a_tar_file_reach_the_terminal_escaped() {
    let (r, _) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let bundle = r.base.join("out/bundle");
    let no_control = |o: &Output| {
        let e = stderr(o);
        assert!(
            !e.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reached the terminal: {e:?}"
        );
    };
    // an entry whose name holds an escape sequence
    let t = tar_with(&[("evil\x1b[2J", tar::EntryType::Regular, b"x")], &bundle);
    let p = r.base.join("escape.tar");
    std::fs::write(&p, t).unwrap();
    let o = verify(&p, &[]);
    refused(&o, "evil\\u{1b}[2J: control character");
    no_control(&o);
    // a header the tar reader cannot read, whose size field holds one
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..4].copy_from_slice(b"file");
    h.as_old_mut().size.copy_from_slice(b"\x1b]0;owned\x07\0\0");
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(&p, bytes).unwrap();
    let o = verify(&p, &[]);
    assert!(!o.status.success(), "a broken tar file was accepted");
    no_control(&o);
}

#[test]
fn qr_frames_of_a_root_read_back_to_the_same_bytes() {
    let (r, digest) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let root = r.base.join("out/root");
    let frames = r.base.join("frames");
    let o = ok(&arca([
        "qr",
        "write",
        root.to_str().unwrap(),
        "--out",
        frames.to_str().unwrap(),
        "--chunk",
        "300",
    ]));
    let mut pngs: Vec<PathBuf> = o
        .lines()
        .filter(|l| l.ends_with(".png"))
        .map(PathBuf::from)
        .collect();
    assert!(pngs.len() >= 2, "expected several frames: {o}");
    pngs.reverse(); // any order
    let back = r.base.join("root.back");
    let mut args = vec!["qr".to_string(), "read".into()];
    args.extend(pngs.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), back.display().to_string()]);
    ok(&arca(&args));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&root).unwrap());
    // a missing frame is named
    let o = arca(["qr", "read", pngs[0].to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing frame"), "{}", stderr(&o));
    // zbarimg (installed here and in CI) reads each frame byte for byte
    let frame_bytes = arca::bundle::qr::frames(&std::fs::read(&root).unwrap(), 300);
    let mut sorted = pngs.clone();
    sorted.sort();
    for (png, want) in sorted.iter().zip(&frame_bytes) {
        let z =
            arca::bundle::qr::zbarimg(png).expect("zbarimg (zbar-tools) is installed and reads it");
        assert_eq!(&z, want, "zbarimg read {}", png.display());
    }
    // a single plain code: the bundle digest
    let single = r.base.join("digest-qr");
    ok(&arca([
        "qr",
        "write",
        "--text",
        &digest,
        "--single",
        "--out",
        single.to_str().unwrap(),
    ]));
    let o = ok(&arca([
        "qr",
        "read",
        single.join("code.png").to_str().unwrap(),
    ]));
    assert_eq!(o, digest);
}

fn files_under(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn generated_online_keys_cross_encrypted_and_open_only_with_the_passphrase() {
    use std::os::unix::fs::PermissionsExt as _;
    let (r, digest) = ceremony(root().generated_online());
    let out = r.base.join("out");
    let bundle = out.join("bundle");
    // no clear private key anywhere in the ceremony's output
    let mut all = Vec::new();
    files_under(&out, &mut all);
    let mut encrypted = 0;
    for f in &all {
        let b = std::fs::read(f).unwrap();
        let t = String::from_utf8_lossy(&b);
        assert!(
            !t.contains("BEGIN PRIVATE KEY") && !t.contains("BEGIN RSA PRIVATE KEY"),
            "clear private key in {}",
            f.display()
        );
        if t.contains("BEGIN ENCRYPTED PRIVATE KEY") && f.starts_with(&bundle) {
            encrypted += 1;
        }
    }
    assert_eq!(encrypted, 2, "snap and ts travel encrypted");
    ok(&verify(&bundle, &["--expect-digest", &digest]));
    // wrong passphrase: refused, no key written
    std::fs::write(r.base.join("wrong.txt"), "not the passphrase\n").unwrap();
    let online = r.base.join("online");
    let o = arca([
        "bundle",
        "open",
        bundle.to_str().unwrap(),
        "--out",
        online.to_str().unwrap(),
        "--passphrase-file",
        r.base.join("wrong.txt").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    assert!(!online.join("key-store").exists());
    // the right one: keys in conex's layout, 0700/0400, matching the root
    let o = ok(&arca([
        "bundle",
        "open",
        bundle.to_str().unwrap(),
        "--out",
        online.to_str().unwrap(),
        "--passphrase-file",
        r.base.join("pass.txt").to_str().unwrap(),
    ]));
    let ks = online.join("key-store");
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let settings = std::fs::read_to_string(online.join("online.toml")).unwrap();
    for id in ["snap", "ts"] {
        let pubs = ok(&arca([
            "key",
            "pub",
            "--id",
            id,
            "--key-store",
            ks.to_str().unwrap(),
        ]));
        let key_id = pubs
            .split_whitespace()
            .find(|w| w.starts_with("sha256="))
            .unwrap()
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '=')
            .to_string();
        assert!(
            settings.contains(&key_id),
            "{id}: {key_id} not in\n{settings}"
        );
        assert!(o.contains(&format!("{id}.{key_id}.private")), "{o}");
        let f = ks.join(format!("{id}.{key_id}.private"));
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o400
        );
    }
}

#[test]
fn online_keygen_prints_public_keys_for_the_ceremony_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("online-ks");
    let qr = tmp.path().join("qr");
    let o = ok(&arca([
        "online",
        "keygen",
        "--id",
        "snap",
        "--id",
        "ts",
        "--key-store",
        ks.to_str().unwrap(),
        "--qr-out",
        qr.to_str().unwrap(),
    ]));
    let keys: Vec<&str> = o
        .lines()
        .filter_map(|l| l.strip_prefix("# for the ceremony file: key = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(keys.len(), 2, "{o}");
    assert!(o.contains("[ snap \"") && o.contains("[ ts \""), "{o}");
    // the QR code carries exactly the key the ceremony file takes
    let read = ok(&arca(["qr", "read", qr.join("snap.png").to_str().unwrap()]));
    assert_eq!(read, keys[0]);
    // and a ceremony file with that key validates
    let c = tmp.path().join("c.toml");
    std::fs::write(&c, root().given_online(keys[0], keys[1]).text()).unwrap();
    ok(&arca(["ceremony", "check", c.to_str().unwrap()]));
    // generating again never replaces a key
    let o = arca([
        "online",
        "keygen",
        "--id",
        "snap",
        "--key-store",
        ks.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
}

#[test]
fn a_rehearsal_generates_online_keys_with_a_passphrase_shown_once() {
    if !Path::new("/usr/lib/softhsm/libsofthsm2.so").exists()
        && std::env::var_os("ARCA_PKCS11_MODULE").is_none()
    {
        assert!(std::env::var_os("CI").is_none(), "SoftHSM is missing in CI");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c.toml");
    std::fs::write(&c, root().generated_online().text()).unwrap();
    let o = arca([
        "ceremony",
        "run",
        c.to_str().unwrap(),
        "--rehearse",
        "--base",
        tmp.path().to_str().unwrap(),
    ]);
    ok(&o);
    let e = stderr(&o);
    assert!(e.contains("Rehearsal passphrase"), "{e}");
    let bundle = tmp.path().join("out/bundle");
    ok(&verify(&bundle, &[]));
    let mut all = Vec::new();
    files_under(&bundle.join("online-keys"), &mut all);
    assert_eq!(all.len(), 2);
}

#[test]
fn a_ceremony_interrupted_after_writing_the_bundle_resumes_without_rewriting_it() {
    let (r, digest) = ceremony(root().generated_online());
    let out = r.base.join("out");
    let journal = out.join("journal.jsonl");
    let manifest = std::fs::read(out.join("bundle/MANIFEST")).unwrap();
    // as if killed after the rename but before the journal line
    let text = std::fs::read_to_string(&journal).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("\"step\":\"bundle\""))
        .collect();
    std::fs::write(&journal, format!("{}\n", kept.join("\n"))).unwrap();
    let resume = |r: &Room| file_device_ceremony("resume", &r.base);
    let o = resume(&r);
    ok(&o);
    assert!(stderr(&o).contains(&digest), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(out.join("bundle/MANIFEST")).unwrap(),
        manifest
    );
    // a different bundle in its place is never written over
    std::fs::write(&journal, format!("{}\n", kept.join("\n"))).unwrap();
    std::fs::write(out.join("bundle/anchors.txt"), "sha256=00\n").unwrap();
    let o = resume(&r);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("never writes over"), "{}", stderr(&o));
}

#[test]
fn anchors_and_quorum_given_on_the_online_side_override_the_bundle() {
    let (r, _) = ceremony(root().given_online(SNAP_KEY, TS_KEY));
    let bundle = r.base.join("out/bundle");
    let own = std::fs::read_to_string(bundle.join("anchors.txt")).unwrap();
    ok(&verify(&bundle, &["-t", own.trim(), "--quorum", "2"]));
    // anchors the clients already have (here: another root's) refuse it
    let o = verify(&bundle, &["-t", &format!("{ANCHOR_A},{ANCHOR_B}")]);
    refused(&o, "root: does not verify against the trust anchors");
    // a quorum above the signatures present refuses it
    refused(&verify(&bundle, &["--quorum", "3"]), "with quorum 3");
}

#[test]
fn janitor_keys_are_never_generated_by_a_ceremony() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c.toml");
    std::fs::write(
        &c,
        root().text().replace(
            &format!("{{ id = \"m1\", key = \"{M1_KEY}\" }}"),
            "{ id = \"m1\", generate = true }",
        ),
    )
    .unwrap();
    let o = arca(["ceremony", "check", c.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("generate = true is for snapshot and timestamp keys only"),
        "{}",
        stderr(&o)
    );
}
