//! Incremental verification (`--incremental --repository OLD --patch P`),
//! as conex 1.0 does it: the patch (a `git diff`) is applied with `-p1`
//! semantics *in memory* over the old repository (which is never
//! modified), the resulting tree is fully verified, and then conex's
//! `verify_diffs` rules are checked between the old and the new tree
//! ([`crate::conex::verify::verify_diffs`]). With a verified-state cache
//! of the old tree ([`crate::verify_cache`]), only what the patch changes
//! is verified. The verdict is returned; the command line reports it.

use crate::conex::resource::path_to_string;
use crate::conex::verify::{
    verify_diffs, DirSource, KnownHeaders, Options, SigCache, Summary, Verifier, VerifyError,
};
use crate::error::{ArcaError, Result};
use std::path::Path;
use std::sync::Arc;

pub use crate::patch::{
    apply_section, name_to_path, ApplyFailure, FilePatch, GitOnly, Operation, Patch, PatchError,
    PatchedSource,
};

impl From<PatchError> for ArcaError {
    fn from(e: PatchError) -> ArcaError {
        match e {
            PatchError::UnsafePath { .. } => ArcaError::Refused(format!("patch: {e}")),
            _ => ArcaError::Input(format!("patch: {e}")),
        }
    }
}

/// The outcome of an incremental verification.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// conex's verdict: the summary of the new tree, or why it is refused.
    pub result: std::result::Result<Summary, VerifyError>,
    /// Warnings (conex's, then arca's).
    pub warnings: Vec<String>,
    /// The files the patch changes.
    pub changed: Vec<String>,
}

/// Verifies `patch` against the old repository in `old`: applies it in
/// memory, fully verifies the new tree, then checks conex's rules between
/// the two trees. Errors are about the patch itself (malformed, does not
/// apply, unsafe paths); the verification outcome is in the [`Verdict`].
pub fn verify_patch(
    old: &Path,
    patch: &[u8],
    opts: Options,
) -> std::result::Result<Verdict, PatchError> {
    let base = DirSource(old.to_path_buf());
    let parsed = Patch::parse(patch)?;
    let new = PatchedSource::apply(&base, Some(old), &parsed)?;
    let changed: Vec<String> = parsed.paths().iter().map(|p| path_to_string(p)).collect();
    let sigs = Arc::new(SigCache::new());
    let mut v = Verifier::new(&new, opts.clone()).with_sig_cache(sigs);
    let (result, warnings) = verify_whole(&mut v, &base, &new, &parsed.paths(), &opts);
    Ok(Verdict {
        result,
        warnings,
        changed,
    })
}

/// Full verification of the patched tree `new` with `v`, then conex's
/// rules between each changed file and its old version in `base`: the
/// verdict and the warnings, in conex's order.
fn verify_whole(
    v: &mut Verifier<'_>,
    base: &DirSource,
    new: &PatchedSource,
    paths: &std::collections::BTreeSet<Vec<String>>,
    opts: &Options,
) -> (std::result::Result<Summary, VerifyError>, Vec<String>) {
    let full = v.verify_full();
    let mut warnings = std::mem::take(&mut v.warnings);
    let result = full.and_then(|summary| {
        verify_diffs(base, new, paths, opts, &mut warnings, &KnownHeaders::new())?;
        Ok(summary)
    });
    (result, warnings)
}

/// [`verify_patch`] with the verified-state cache `cache`
/// ([`crate::verify_cache`]): when the cache holds the verified state of
/// `old`, only what the patch changes is verified; otherwise the whole
/// patched tree is. On success the cache is replaced by the state of the
/// new tree. The notes say what happened to the cache (shown with `-v`).
pub fn verify_patch_cached(
    old: &Path,
    patch: &[u8],
    opts: Options,
    cache: &Path,
) -> std::result::Result<(Verdict, Vec<String>), PatchError> {
    let base = DirSource(old.to_path_buf());
    let sigs = Arc::new(SigCache::new());
    // applying the patch (then verifying the new root, timestamp and
    // snapshot) and reading the cache are independent: both at once, the
    // cache on a thread of its own from the start (a pool thread may take
    // milliseconds to pick it up here); a patch that does not apply is
    // its error either way
    let load = || crate::verify_cache::load(cache, old, &base, &opts);
    let apply = || -> std::result::Result<_, PatchError> {
        let parsed = Patch::parse(patch)?;
        let new = PatchedSource::apply(&base, Some(old), &parsed)?;
        let roles = crate::verify_cache::verify_roles(&new, &opts, sigs.clone());
        Ok((parsed, new, roles))
    };
    let (loaded, applied) = crate::conex::verify::beside_thread("arca-cache", load, apply);
    let (parsed, new, roles) = applied?;
    let paths = parsed.paths();
    let changed: Vec<String> = paths.iter().map(|p| path_to_string(p)).collect();
    let shown = cache.display();
    let mut notes = Vec::new();
    // while the changed targets files' signatures are checked, the new
    // state is written beside the cache (put in place only if the update
    // verifies) and conex's rules between the trees are checked
    let fast = loaded.and_then(|st| {
        crate::verify_cache::verify_from_state(
            &st,
            &new,
            &paths,
            &opts,
            sigs.clone(),
            roles?,
            |s, headers| {
                rayon::join(
                    || crate::verify_cache::stage(cache, s),
                    || {
                        let mut w = Vec::new();
                        let r = verify_diffs(&base, &new, &paths, &opts, &mut w, headers);
                        (r, w)
                    },
                )
            },
        )
    });
    let (result, warnings, state, staged) = match fast {
        Ok((f, (staged, (diffs, diff_warnings)))) => {
            notes.push(format!(
                "verified-state cache {shown}: used ({} path(s) checked again)",
                f.rechecked
            ));
            let mut warnings = f.warnings;
            warnings.extend(diff_warnings);
            (diffs.map(|()| f.summary), warnings, None, Some(staged))
        }
        Err(why) => {
            notes.push(format!(
                "verified-state cache {shown}: not used ({why}); verifying the whole tree"
            ));
            let mut v = Verifier::new(&new, opts.clone())
                .with_sig_cache(sigs)
                .capturing();
            let (result, warnings) = verify_whole(&mut v, &base, &new, &paths, &opts);
            let tree = v.take_verified_tree();
            let state = tree.and_then(|t| crate::verify_cache::State::of_tree(&new, &opts, &t));
            (result, warnings, state, None)
        }
    };
    if result.is_ok() {
        notes.push(match staged {
            Some(staged) => written_note(cache, staged.and_then(|s| s.commit(cache))),
            None => store_note(cache, state),
        });
    }
    Ok((
        Verdict {
            result,
            warnings,
            changed,
        },
        notes,
    ))
}

/// Writes a verified state (when there is one) and says what happened.
pub fn store_note(cache: &Path, state: Option<crate::verify_cache::State>) -> String {
    let shown = cache.display();
    match state {
        None => format!(
            "verified-state cache {shown}: not written (warnings, delegations, no snapshot or timestamp, or names it cannot hold)"
        ),
        Some(st) => written_note(cache, crate::verify_cache::store(cache, &st)),
    }
}

/// What writing the state to `cache` did.
fn written_note(
    cache: &Path,
    r: std::result::Result<(), crate::conex::verify::StateError>,
) -> String {
    let shown = cache.display();
    match r {
        Ok(()) => format!("verified-state cache {shown}: written"),
        Err(e) => format!("verified-state cache {shown}: not written ({e})"),
    }
}

/// The outcome of `arca verify --incremental`: the verdict, and notes for
/// `-v` (what happened to the cache, how many files the patch changes).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Lines for `-v`, in order.
    pub notes: Vec<String>,
}

/// `arca verify --incremental --repository OLD --patch P [--cache FILE]`:
/// reads the patch and verifies it. Errors are about the inputs (no such
/// folder, an unreadable or malformed patch); the verdict is in the
/// [`Outcome`], for the caller to report.
pub fn verify_incremental(
    old: &Path,
    patch: &Path,
    opts: Options,
    cache: Option<&Path>,
) -> Result<Outcome> {
    if !old.is_dir() {
        return Err(ArcaError::unusable(old, "not a directory"));
    }
    let data = std::fs::read(patch).map_err(|e| ArcaError::io(patch, e))?;
    let (verdict, mut notes) = match cache {
        None => (
            verify_patch(old, &data, opts).map_err(ArcaError::from)?,
            vec![],
        ),
        Some(c) => verify_patch_cached(old, &data, opts, c).map_err(ArcaError::from)?,
    };
    notes.push(format!(
        "patch {}: {} file(s) changed",
        patch.display(),
        verdict.changed.len()
    ));
    Ok(Outcome { verdict, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conex::resource::Path as CPath;
    use crate::conex::verify::Source;
    use std::collections::BTreeMap;
    use std::io;

    use crate::conex::verify::MemSource as Mem;

    fn p(s: &str) -> CPath {
        s.split('/').map(str::to_string).collect()
    }

    fn apply(
        old: &[(&str, &str)],
        patch: &str,
    ) -> std::result::Result<BTreeMap<CPath, Option<Vec<u8>>>, PatchError> {
        let m = Mem(old
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let patch = Patch::parse(patch.as_bytes())?;
        let s = PatchedSource::apply(&m, None, &patch)?;
        Ok(s.changes().clone())
    }

    #[test]
    fn modify_create_delete() {
        let patch = "\
diff --git a/f b/f
index 1..2 100644
--- a/f
+++ b/f
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
diff --git a/d/new b/d/new
new file mode 100644
index 0000000..1
--- /dev/null
+++ b/d/new
@@ -0,0 +1 @@
+x
\\ No newline at end of file
diff --git a/gone b/gone
deleted file mode 100644
index 1..0000000
--- a/gone
+++ /dev/null
@@ -1 +0,0 @@
-bye
";
        let c = apply(&[("f", "one\ntwo\nthree\n"), ("gone", "bye\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"one\nTWO\nthree\n"[..]));
        assert_eq!(c[&p("d/new")].as_deref(), Some(&b"x"[..]));
        assert_eq!(c[&p("gone")], None);
    }

    #[test]
    fn no_newline_markers() {
        let patch = "\
diff --git a/f b/f
--- a/f
+++ b/f
@@ -1,2 +1,2 @@
 a
-b
\\ No newline at end of file
+b
";
        let c = apply(&[("f", "a\nb")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"a\nb\n"[..]));
    }

    fn read(old: &[(&str, &str)], patch: &str, path: &str) -> io::Result<Vec<u8>> {
        let m = Mem(old
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let patch = Patch::parse(patch.as_bytes()).unwrap();
        let s = PatchedSource::apply(&m, None, &patch).unwrap();
        s.read(&p(path))
    }

    #[test]
    fn refusals() {
        let m = |s: &str| apply(&[("f", "a\n")], s).unwrap_err().to_string();
        let e = m("diff --git a/../x b/../x\n--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains("'..'"), "{e}");
        let e = m("diff --git a/.git/config b/.git/config\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains(".git"), "{e}");
        // where conex's patch parser fails, so does arca's
        let e = m("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n?b\n");
        assert!(e.contains("does not start with"), "{e}");
        let e = m("*** a/f\n--- b/f\n");
        assert!(e.contains("context diffs"), "{e}");
        let e = m("--- f\n+++ f\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(e.contains("no directory to strip"), "{e}");
        let e = m("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n");
        assert!(e.contains("ends inside the hunk"), "{e}");
        let e = m("--- a/f\n+++ b/f\n@@ -5 +5 @@\n-a\n+b\n");
        assert!(e.contains("malformed"), "{e}");
    }

    #[test]
    fn a_hunk_that_does_not_apply_fails_when_the_file_is_read() {
        let patch = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-z\n+b\n";
        let e = read(&[("f", "a\n")], patch, "f").unwrap_err().to_string();
        assert!(
            e.contains("@@ -1 +1 @@ (patch line 3) does not apply: line 1 differs"),
            "{e}"
        );
    }

    #[test]
    fn git_renames() {
        // a pure rename (git's `similarity index 100%`), and a rename with
        // a change, as real opam-repository updates move version folders
        let patch = "\
diff --git a/p/x.1/opam b/p/x.1-1/opam
similarity index 100%
rename from p/x.1/opam
rename to p/x.1-1/opam
diff --git a/p/y.1/opam b/p/y.2/opam
similarity index 80%
rename from p/y.1/opam
rename to p/y.2/opam
index 1..2 100644
--- a/p/y.1/opam
+++ b/p/y.2/opam
@@ -1,2 +1,2 @@
 one
-two
+TWO
";
        let c = apply(
            &[("p/x.1/opam", "x\n"), ("p/y.1/opam", "one\ntwo\n")],
            patch,
        )
        .unwrap();
        assert_eq!(c[&p("p/x.1-1/opam")].as_deref(), Some(&b"x\n"[..]));
        assert_eq!(c[&p("p/x.1/opam")], None);
        assert_eq!(c[&p("p/y.2/opam")].as_deref(), Some(&b"one\nTWO\n"[..]));
        assert_eq!(c[&p("p/y.1/opam")], None);
        let m = Mem([("p/x.1/opam", "x\n"), ("p/y.1/opam", "one\ntwo\n")]
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let parsed = Patch::parse(patch.as_bytes()).unwrap();
        let s = PatchedSource::apply(&m, None, &parsed).unwrap();
        let mut l = s.list(&p("p")).unwrap();
        l.sort();
        // conex lists the emptied old folders too (with nothing in them)
        assert_eq!(
            l,
            vec![
                ("x.1".to_string(), true),
                ("x.1-1".to_string(), true),
                ("y.1".to_string(), true),
                ("y.2".to_string(), true)
            ]
        );
        assert_eq!(s.list(&p("p/x.1")).unwrap(), vec![]);
    }

    #[test]
    fn symbolic_links_become_files_holding_the_link_text() {
        let patch = "diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+../etc\n\\ No newline at end of file\n";
        let c = apply(&[], patch).unwrap();
        assert_eq!(c[&p("l")].as_deref(), Some(&b"../etc"[..]));
    }

    #[test]
    fn tolerance_of_the_patch_library() {
        // no a/ b/ prefixes: the first component is stripped all the same
        let c = apply(&[("g", "a\n")], "--- f/g\n+++ f/g\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(c.unwrap()[&p("g")].as_deref(), Some(&b"b\n"[..]));
        // stray lines between and around sections are skipped
        let c = apply(
            &[("f", "a\n"), ("g", "c\n")],
            "hello\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\nnoise here\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\ntrailer\n",
        )
        .unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"b\n"[..]));
        assert_eq!(c[&p("g")].as_deref(), Some(&b"d\n"[..]));
        // a section with a damaged `---` header is dropped (its lines are
        // stray lines), as conex's parser does
        let c = apply(
            &[("f", "a\n"), ("g", "c\n")],
            "diff --git a/f b/f\n-- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\n",
        )
        .unwrap();
        assert!(!c.contains_key(&p("f")));
        assert_eq!(c[&p("g")].as_deref(), Some(&b"d\n"[..]));
        // `\ No newline at end of file` on the new side only
        let c = apply(
            &[("f", "a\nb\n")],
            "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\\ No newline at end of file\n",
        )
        .unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"a\nc"[..]));
        // the same identical section twice: the first one counts, and
        // applied in order the second does not apply (opam fails there)
        let sec = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        let c = apply(&[("f", "a\n")], &format!("{sec}{sec}")).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"b\n"[..]));
        // ... but two sections that applied in order give other bytes than
        // the first alone are refused (opam would install unverified bytes)
        let two = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-b\n+c\n";
        let e = apply(&[("f", "a\n")], two).unwrap_err().to_string();
        assert!(e.contains("changes this file twice"), "{e}");
        // a creation over an existing file replaces it, as conex does
        let c = apply(
            &[("f", "a\n")],
            "--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+n\n",
        )
        .unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"n\n"[..]));
        // binary sections are skipped (a new binary file is empty)
        let c = apply(
            &[],
            "diff --git a/bin b/bin\nnew file mode 100644\nindex 0000000..1\nGIT binary patch\nliteral 3\nKcmZQzWB>pF00031\n\nliteral 0\nHcmV?d00001\n\n",
        )
        .unwrap();
        assert_eq!(c[&p("bin")].as_deref(), Some(&b""[..]));
    }

    #[test]
    fn format_patch_mail_around_the_diff() {
        let patch = "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\n---\n f | 2 +-\n\ndiff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.5\n\n";
        let c = apply(&[("f", "a\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"b\n"[..]));
    }

    #[test]
    fn zero_length_hunks_and_crlf_content() {
        // the patch library places a hunk with no old lines at its start
        // line minus one (before line 1 for `-1,0`), and conex with it;
        // `+2` without a length is refused, as the library does
        let patch = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2,0 +3,1 @@\n+x\r\n";
        let c = apply(&[("f", "a\r\nb\r\n")], patch).unwrap();
        assert_eq!(c[&p("f")].as_deref(), Some(&b"a\r\nx\r\nb\r\n"[..]));
        let patch = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+x\r\n";
        assert!(apply(&[("f", "a\r\nb\r\n")], patch).is_err());
    }

    #[test]
    fn mangled_patches_give_errors_not_panics() {
        let base = include_str!("../tests/vectors/variants/incremental-update.patch");
        let old: Vec<(&str, &str)> = vec![
            ("keys/m1", include_str!("../tests/vectors/repo/keys/m1")),
            ("snap", include_str!("../tests/vectors/repo/snap")),
            ("ts", include_str!("../tests/vectors/repo/ts")),
        ];
        let mut applied = 0;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut b = base.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % b.len().max(1);
                match next() % 4 {
                    0 => b.truncate(at),
                    1 => {
                        if at < b.len() {
                            b[at] = (next() % 256) as u8;
                        }
                    }
                    2 => {
                        if at < b.len() {
                            b.remove(at);
                        }
                    }
                    _ => {
                        let junk = b"@- +\\\n/.";
                        b.insert(at.min(b.len()), junk[(next() as usize) % junk.len()])
                    }
                }
            }
            let m = Mem(old
                .iter()
                .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
                .collect());
            if let Ok(patch) = Patch::parse(&b) {
                if PatchedSource::apply(&m, None, &patch).is_ok() {
                    applied += 1;
                }
            }
        }
        assert!(applied > 0, "some mangled patches still apply");
        let m = Mem(old
            .iter()
            .map(|(k, v)| (p(k), v.as_bytes().to_vec()))
            .collect());
        let patch = Patch::parse(base.as_bytes()).unwrap();
        assert!(PatchedSource::apply(&m, None, &patch).is_ok());
    }

    #[test]
    fn empty_new_file_without_hunks() {
        let c = apply(
            &[],
            "diff --git a/e b/e\nnew file mode 100644\nindex 0000000..e69de29\n",
        )
        .unwrap();
        assert_eq!(c[&p("e")].as_deref(), Some(&b""[..]));
    }
}
