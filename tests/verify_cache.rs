//! The verified-state cache of incremental verification (`arca verify
//! --cache FILE`), through the real binary: a cache that matches the old
//! tree is used and gives the verdict and messages of a verification
//! without it; a stale, truncated, tampered or badly owned cache is never
//! trusted (arca says so with `-v` and verifies the whole tree); an update
//! that does not verify gives the same refusal with and without a cache;
//! the state written after an incremental verification is the state a full
//! verification of the new tree writes.

mod support;
#[path = "support/synth.rs"]
mod synth;

use arca::conex::verify::{DirSource, Verifier};
use arca::conex::Targets;
use arca::incremental::{Patch, PatchedSource};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::*;

const NOW: &str = "2026-01-01T01:00:00Z";

struct Work {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    synth: synth::Synth,
    /// A one-package update of `synth` (new version, two janitors' targets
    /// files, snapshot and timestamp).
    patch: PathBuf,
    /// The cache folder (0700).
    cdir: PathBuf,
}

fn setup(seed: u64) -> Work {
    let mut spec = synth::Spec::tiny();
    spec.seed = seed;
    setup_with(spec)
}

fn setup_with(spec: synth::Spec) -> Work {
    let tmp = tempfile::tempdir().unwrap();
    let s = synth::generate(&tmp.path().join("repo"), &tmp.path().join("keys"), &spec).unwrap();
    let patch = tmp.path().join("update.patch");
    std::fs::write(
        &patch,
        synth::one_package_update(&s, &synth::package_name(1)).unwrap(),
    )
    .unwrap();
    let cdir = tmp.path().join("cache");
    std::fs::create_dir(&cdir).unwrap();
    std::fs::set_permissions(&cdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    Work {
        tmp: tmp.path().to_path_buf(),
        _tmp: tmp,
        synth: s,
        patch,
        cdir,
    }
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = arca(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    )
}

fn full(w: &Work, dir: &Path, cache: &Path) -> String {
    full_q(w, dir, cache, "2")
}

fn full_q(w: &Work, dir: &Path, cache: &Path, quorum: &str) -> String {
    let (code, out, err) = run(&[
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "-t",
        &w.synth.anchors_arg(),
        "--quorum",
        quorum,
        "--now",
        NOW,
        "--cache",
        cache.to_str().unwrap(),
        "-v",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    err
}

/// An incremental verification of `patch` over the old repository, with
/// `cache` or without.
fn incremental(w: &Work, patch: &Path, cache: Option<&Path>) -> (Option<i32>, String, String) {
    let anchors = w.synth.anchors_arg();
    let mut args = vec![
        "verify",
        "--incremental",
        "--repository",
        w.synth.dir.to_str().unwrap(),
        "--patch",
        patch.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
        "--now",
        NOW,
        "-v",
    ];
    if let Some(c) = cache {
        args.extend(["--cache", c.to_str().unwrap()]);
    }
    run(&args)
}

/// The cache notes, and the rest of stderr.
fn split_notes(err: &str) -> (Vec<String>, String) {
    let mut notes = Vec::new();
    let mut rest = String::new();
    for l in err.lines() {
        if l.starts_with("verified-state cache ") {
            notes.push(l.to_string());
        } else {
            rest.push_str(l);
            rest.push('\n');
        }
    }
    (notes, rest)
}

/// Runs the update with and without `cache`: same exit code, stdout and
/// stderr (but for the cache notes); returns the notes.
fn same_as_without(w: &Work, patch: &Path, cache: &Path) -> Vec<String> {
    let plain = incremental(w, patch, None);
    let cached = incremental(w, patch, Some(cache));
    let (notes, rest) = split_notes(&cached.2);
    assert_eq!(cached.0, plain.0, "exit code");
    assert_eq!(cached.1, plain.1, "stdout");
    assert_eq!(rest, plain.2, "stderr");
    notes
}

fn not_used(notes: &[String], why: &str) {
    assert!(
        notes.first().is_some_and(|n| n.contains(": not used (")
            && n.contains(why)
            && n.ends_with("; verifying the whole tree")),
        "expected the cache not to be used ({why}): {notes:?}"
    );
}

#[test]
fn a_matching_cache_is_used_with_the_same_verdict_and_messages() {
    let w = setup(7);
    let cache = w.cdir.join("state");
    let err = full(&w, &w.synth.dir, &cache);
    assert!(err.contains("verified-state cache"), "{err}");
    assert!(err.contains(": written"), "{err}");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let notes = same_as_without(&w, &w.patch, &cache);
    assert!(notes[0].contains(": used ("), "{notes:?}");
    assert!(notes[1].ends_with(": written"), "{notes:?}");
    // the state now describes the new tree: for the old tree it is stale
    let notes = same_as_without(&w, &w.patch, &cache);
    not_used(&notes, "stale");
}

#[test]
fn stale_truncated_tampered_or_foreign_caches_are_not_trusted() {
    let w = setup(7);
    let good = w.tmp.join("good-state");
    full(&w, &w.synth.dir, &good);
    let bytes = std::fs::read(&good).unwrap();
    let cache = w.cdir.join("state");
    let put = |b: &[u8]| {
        std::fs::write(&cache, b).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // missing
    not_used(&same_as_without(&w, &w.patch, &cache), "does not exist");
    // truncated
    put(&bytes[..bytes.len() / 2]);
    not_used(&same_as_without(&w, &w.patch, &cache), "end line");
    put(&bytes[..bytes.len() - 1]);
    not_used(&same_as_without(&w, &w.patch, &cache), "");
    put(b"");
    not_used(&same_as_without(&w, &w.patch, &cache), "empty or truncated");
    // tampered: one digest in a path line changed
    let text = String::from_utf8(bytes.clone()).unwrap();
    let i = text.find("\np\t").unwrap();
    let j = i + text[i..].find("sha256=").unwrap() + "sha256=".len();
    let mut t = text.clone().into_bytes();
    t[j] = if t[j] == b'0' { b'1' } else { b'0' };
    put(&t);
    not_used(
        &same_as_without(&w, &w.patch, &cache),
        "does not match its content",
    );
    // the version before (a SHA-256 end line) is still read; this
    // version's first line with that end line is not
    let body = &text[..text.rfind("end\t").unwrap()];
    let v1 = body.replacen("arca verified state\t2\n", "arca verified state\t1\n", 1);
    assert_ne!(v1, body, "the state is written as version 2");
    let sha = |b: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b.as_bytes()))
    };
    put(format!("{v1}end\t{}\n", sha(&v1)).as_bytes());
    let notes = same_as_without(&w, &w.patch, &cache);
    assert!(notes[0].contains(": used ("), "{notes:?}");
    put(format!("{body}end\t{}\n", sha(body)).as_bytes());
    not_used(
        &same_as_without(&w, &w.patch, &cache),
        "does not match its content",
    );
    put(format!("{v1}end\t{}\n", blake3::hash(v1.as_bytes()).to_hex()).as_bytes());
    not_used(
        &same_as_without(&w, &w.patch, &cache),
        "does not match its content",
    );
    // stale: the state of another repository (its own end line is right)
    let other = setup(8);
    let ocache = other.tmp.join("state");
    full(&other, &other.synth.dir, &ocache);
    put(&std::fs::read(&ocache).unwrap());
    not_used(&same_as_without(&w, &w.patch, &cache), "stale");
    // stale: made with other options (a quorum of 1)
    let q1 = w.tmp.join("q1-state");
    full_q(&w, &w.synth.dir, &q1, "1");
    put(&std::fs::read(&q1).unwrap());
    not_used(&same_as_without(&w, &w.patch, &cache), "stale");
    // someone else could write it, or its folder
    put(&bytes);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o666)).unwrap();
    not_used(
        &same_as_without(&w, &w.patch, &cache),
        "can be written by others",
    );
    put(&bytes);
    std::fs::set_permissions(&w.cdir, std::fs::Permissions::from_mode(0o777)).unwrap();
    not_used(
        &same_as_without(&w, &w.patch, &cache),
        "its folder can be written by others",
    );
    std::fs::set_permissions(&w.cdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // and the good one is used
    put(&bytes);
    let notes = same_as_without(&w, &w.patch, &cache);
    assert!(notes[0].contains(": used ("), "{notes:?}");
}

#[test]
fn updates_that_do_not_verify_are_refused_as_without_a_cache() {
    let w = setup(7);
    let good = w.tmp.join("good-state");
    full(&w, &w.synth.dir, &good);
    let cache = w.cdir.join("state");
    let text = std::fs::read_to_string(&w.patch).unwrap();
    let new_opam = "+++ b/packages/pkg0001/";
    assert!(text.contains(new_opam));
    // 1. the new opam file's content differs from what its janitors signed
    // 2. the snapshot is dropped from the patch (the timestamp names the new one)
    // 3. the targets files are dropped (the new file is signed by nobody)
    let mut cases: Vec<(String, String)> = Vec::new();
    let starts: Vec<usize> = text
        .match_indices("diff --git ")
        .map(|(i, _)| i)
        .filter(|i| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .collect();
    let sections: Vec<&str> = starts
        .iter()
        .enumerate()
        .map(|(k, i)| &text[*i..starts.get(k + 1).copied().unwrap_or(text.len())])
        .collect();
    let join = |keep: &dyn Fn(&str) -> bool| -> String {
        sections.iter().filter(|s| keep(s)).copied().collect()
    };
    let altered = text.replacen("+opam-version: \"2.0\"", "+opam-version: \"2.1\"", 1);
    assert_ne!(altered, text);
    cases.push(("changed opam file".into(), altered));
    cases.push((
        "no snapshot".into(),
        join(&|s: &str| !s.starts_with("diff --git a/snap ")),
    ));
    cases.push((
        "no targets files".into(),
        join(&|s: &str| !s.starts_with("diff --git a/keys/")),
    ));
    // 4.–6. updates a compromised online key signs: the snapshot vouches
    // for targets files that are not as their janitors signed them
    let tampered = |what: &str, f: &dyn Fn(&str, &mut Targets, bool)| {
        (
            what.to_string(),
            synth::one_package_update_with(&w.synth, &synth::package_name(1), f).unwrap(),
        )
    };
    cases.push(tampered(
        "a targets file without its signature",
        &|_, t, signed| {
            if signed {
                t.signatures.clear()
            }
        },
    ));
    cases.push(tampered(
        "a targets file changed after signing",
        &|_, t, signed| {
            if signed {
                t.targets[0].size += 1
            }
        },
    ));
    // 7. a janitor signs its targets file again without raising its counter
    cases.push(tampered(
        "a targets file signed with its old counter",
        &|_, t, signed| {
            if !signed {
                t.header.counter -= 1
            }
        },
    ));
    for (what, p) in cases {
        let pf = w.tmp.join("bad.patch");
        std::fs::write(&pf, &p).unwrap();
        std::fs::copy(&good, &cache).unwrap();
        let plain = incremental(&w, &pf, None);
        assert_ne!(plain.0, Some(0), "{what}: refused without a cache");
        let notes = same_as_without(&w, &pf, &cache);
        assert!(
            notes.iter().all(|n| !n.ends_with(": written")),
            "{what}: no state written after a refusal: {notes:?}"
        );
    }
}

/// The path lines of a state file, sorted, and its other lines.
fn state_lines(text: &str) -> (Vec<String>, Vec<String>) {
    let mut p: Vec<String> = Vec::new();
    let mut other = Vec::new();
    for l in text.lines() {
        if l.starts_with("p\t") {
            p.push(l.into());
        } else if !l.starts_with("end\t") {
            other.push(l.into());
        }
    }
    p.sort();
    (p, other)
}

#[test]
fn the_state_after_an_update_is_the_state_of_the_new_tree() {
    let w = setup(7);
    let cache = w.cdir.join("state");
    full(&w, &w.synth.dir, &cache);
    let notes = same_as_without(&w, &w.patch, &cache);
    assert!(notes[0].contains(": used ("), "{notes:?}");
    assert_state_of_new_tree(&w, &w.patch, &cache);
}

/// The state after an update, from the state of the old tree, is the state
/// a full verification of the new tree writes (the path lines compared as
/// sets: an update keeps the old lines' order).
fn assert_state_of_new_tree(w: &Work, patch: &Path, cache: &Path) {
    let after = std::fs::read_to_string(cache).unwrap();
    let base = DirSource(w.synth.dir.clone());
    let patch = Patch::parse(&std::fs::read(patch).unwrap()).unwrap();
    let new = PatchedSource::apply(&base, Some(&w.synth.dir), &patch).unwrap();
    let opts = arca::conex::verify::Options {
        now: arca::conex::resource::parse_time(NOW).unwrap(),
        ..w.synth.options()
    };
    let mut v = Verifier::new(&new, opts.clone()).capturing();
    v.verify_full().unwrap();
    let tree = v.take_verified_tree().expect("a clean verification");
    let st = arca::verify_cache::State::of_tree(&new, &opts, &tree).expect("a state");
    assert_eq!(state_lines(&after), state_lines(&st.render()));
}

/// The production shape: one janitor's targets file lists every file. Its
/// entries are matched with the state's lines in order, and whatever the
/// update does to that order (an entry added first, last, the entries
/// reversed, an entry dropped, listed twice or changed), the verdict and
/// messages are those without the cache and an accepted update leaves the
/// state of the new tree.
#[test]
fn one_large_targets_file_is_matched_with_the_state_in_any_order() {
    let w = setup_with(synth::Spec {
        packages: 150,
        files: 330,
        files_per_version: 1,
        file_size: 120,
        janitors: 1,
        quorum: 1,
        seed: 11,
        rsa_key: None,
    });
    let good = w.tmp.join("good-state");
    full(&w, &w.synth.dir, &good);
    let cache = w.cdir.join("state");
    type Tamper = Box<dyn Fn(&mut Targets)>;
    let cases: Vec<(&str, bool, Tamper)> = vec![
        ("the new entry first", true, Box::new(|_| {})),
        (
            "the new entry last",
            true,
            Box::new(|t| t.targets.rotate_left(1)),
        ),
        (
            "the new entry in the middle",
            true,
            Box::new(|t| t.targets[..200].rotate_left(1)),
        ),
        (
            "the entries reversed",
            true,
            Box::new(|t| t.targets.reverse()),
        ),
        (
            "two entries swapped",
            true,
            Box::new(|t| t.targets.swap(40, 41)),
        ),
        (
            "an entry listed twice",
            true,
            Box::new(|t| {
                let e = t.targets[7].clone();
                t.targets.push(e)
            }),
        ),
        (
            "an entry dropped",
            false,
            Box::new(|t| {
                t.targets.remove(100);
            }),
        ),
        (
            "an entry whose path is no opam file's",
            false,
            Box::new(|t| {
                let mut e = t.targets[5].clone();
                e.filename = vec!["packages".into(), "README".into()];
                t.targets.push(e)
            }),
        ),
        (
            "an entry changed",
            false,
            Box::new(|t| t.targets[250].size += 1),
        ),
        (
            "an entry moved far",
            false,
            Box::new(|t| {
                let e = t.targets.remove(20);
                t.targets.insert(300, e);
                t.targets[300].size += 1;
            }),
        ),
    ];
    for (what, accepted, f) in cases {
        let p =
            synth::one_package_update_with(&w.synth, &synth::package_name(3), &|_, t, signed| {
                if !signed {
                    f(t)
                }
            })
            .unwrap();
        let pf = w.tmp.join("case.patch");
        std::fs::write(&pf, p).unwrap();
        std::fs::copy(&good, &cache).unwrap();
        let (code, _, _) = incremental(&w, &pf, None);
        assert_eq!(
            code == Some(0),
            accepted,
            "{what}: the verdict without a cache"
        );
        let notes = same_as_without(&w, &pf, &cache);
        if accepted {
            assert!(notes[0].contains(": used ("), "{what}: {notes:?}");
            assert_state_of_new_tree(&w, &pf, &cache);
        } else {
            assert!(
                notes.iter().all(|n| !n.ends_with(": written")),
                "{what}: no state written after a refusal: {notes:?}"
            );
        }
    }
}

/// Beside the cache, the state before the last is kept as `FILE.spare`,
/// and the next state is written over it: after an update the spare holds
/// the old tree's state (owner-only); a spare that is a symbolic link, or
/// that others can read, is not written through or over, only replaced;
/// the verdicts stay those without a cache.
#[test]
fn the_spare_file_holds_the_state_before_and_is_never_followed() {
    use std::os::unix::fs::MetadataExt;
    let w = setup(7);
    let cache = w.cdir.join("state");
    let spare = w.cdir.join("state.spare");
    full(&w, &w.synth.dir, &cache);
    let good = std::fs::read(&cache).unwrap();
    // the first full verification had no state to keep
    assert!(!spare.exists());
    let check = |what: &str| {
        let notes = same_as_without(&w, &w.patch, &cache);
        assert!(notes[0].contains(": used ("), "{what}: {notes:?}");
        assert!(notes[1].ends_with(": written"), "{what}: {notes:?}");
        let m = std::fs::symlink_metadata(&spare).unwrap();
        assert!(m.file_type().is_file(), "{what}: the spare is a plain file");
        assert_eq!(m.mode() & 0o777, 0o600, "{what}");
        assert_eq!(
            std::fs::read(&spare).unwrap(),
            good,
            "{what}: the old state"
        );
        assert_state_of_new_tree(&w, &w.patch, &cache);
        assert_eq!(
            std::fs::read_dir(&w.cdir).unwrap().count(),
            2,
            "{what}: nothing else left in the folder"
        );
    };
    check("no spare yet");
    // the spare (now the old state) is written over with the new one
    let after = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &good).unwrap();
    std::fs::write(&spare, b"the state before").unwrap();
    std::fs::set_permissions(&spare, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let before = ino(&spare);
    check("a spare written over");
    assert_eq!(ino(&cache), before, "the new state is in the spare's file");
    assert_eq!(std::fs::read(&cache).unwrap(), after);
    // a link is not followed, an open spare is not used
    let victim = w.tmp.join("victim");
    std::fs::write(&victim, b"not a state").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&cache, &good).unwrap();
    std::fs::remove_file(&spare).unwrap();
    std::os::unix::fs::symlink(&victim, &spare).unwrap();
    check("a spare that is a link");
    assert_eq!(std::fs::read(&victim).unwrap(), b"not a state");
    std::fs::write(&cache, &good).unwrap();
    std::fs::set_permissions(&spare, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = ino(&spare);
    check("a spare others can read");
    assert_ne!(
        ino(&cache),
        before,
        "not written in a spare others can read"
    );
}
