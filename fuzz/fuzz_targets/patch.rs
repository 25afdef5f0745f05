//! Incremental verification's `git diff` parser and its in-memory
//! application: parsing and applying any patch over a small repository
//! (the conex-made vector files) never panics; every path a parsed patch
//! touches stays inside the repository; a file the patch creates or changes
//! reads back as the patch left it.
#![no_main]
use arca::conex::verify::{MemSource, Source};
use arca::incremental::{Patch, PatchedSource};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// The vector repository's files, in memory (built once).
fn base() -> &'static MemSource {
    static BASE: std::sync::OnceLock<MemSource> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let files: [(&str, &[u8]); 6] = [
            ("root", include_bytes!("../../tests/vectors/repo/root")),
            ("snap", include_bytes!("../../tests/vectors/repo/snap")),
            ("ts", include_bytes!("../../tests/vectors/repo/ts")),
            (
                "keys/m1",
                include_bytes!("../../tests/vectors/repo/keys/m1"),
            ),
            (
                "packages/foo/foo.1.0.0/opam",
                include_bytes!("../../tests/vectors/repo/packages/foo/foo.1.0.0/opam"),
            ),
            (
                "packages/bar/bar.0.1/opam",
                include_bytes!("../../tests/vectors/repo/packages/bar/bar.0.1/opam"),
            ),
        ];
        MemSource(BTreeMap::from(files.map(|(p, b)| {
            (p.split('/').map(String::from).collect(), b.to_vec())
        })))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(patch) = Patch::parse(data) else {
        return;
    };
    for path in patch.paths() {
        for c in path.iter() {
            assert!(
                !c.is_empty() && c != "." && c != ".." && !c.contains('/') && !c.contains('\0'),
                "unsafe component {c:?} in {path:?}"
            );
        }
        assert_ne!(path.first().map(String::as_str), Some(".git"));
    }
    let Ok(patched) = PatchedSource::apply(base(), None, &patch) else {
        return;
    };
    for (path, content) in patched.changes() {
        match content {
            Some(bytes) => assert_eq!(&patched.read(path).expect("changed file reads"), bytes),
            None => assert!(patched.read(path).is_err(), "deleted file still reads"),
        }
    }
});
