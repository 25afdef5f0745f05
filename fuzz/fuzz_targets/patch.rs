//! Incremental verification's `git diff` parser and its in-memory
//! application: parsing and applying any patch over a small repository
//! (the conex-made vector files) never panics; every path a parsed patch
//! touches stays inside the repository; a file the patch creates or changes
//! reads back as the patch left it.
#![no_main]
use arca::conex::verify::Source;
use arca::incremental::{Patch, PatchedSource};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::io;

struct Mem(BTreeMap<Vec<String>, &'static [u8]>);

impl Source for Mem {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .map(|b| b.to_vec())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for k in self.0.keys() {
            if k.len() > path.len() && k.starts_with(path) {
                let e = (k[path.len()].clone(), k.len() > path.len() + 1);
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

fn base() -> Mem {
    let p = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
    Mem(BTreeMap::from([
        (
            p("root"),
            &include_bytes!("../../tests/vectors/repo/root")[..],
        ),
        (
            p("snap"),
            &include_bytes!("../../tests/vectors/repo/snap")[..],
        ),
        (p("ts"), &include_bytes!("../../tests/vectors/repo/ts")[..]),
        (
            p("keys/m1"),
            &include_bytes!("../../tests/vectors/repo/keys/m1")[..],
        ),
        (
            p("packages/foo/foo.1.0.0/opam"),
            &include_bytes!("../../tests/vectors/repo/packages/foo/foo.1.0.0/opam")[..],
        ),
        (
            p("packages/bar/bar.0.1/opam"),
            &include_bytes!("../../tests/vectors/repo/packages/bar/bar.0.1/opam")[..],
        ),
    ]))
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
    let base = base();
    let Ok(patched) = PatchedSource::apply(&base, None, &patch) else {
        return;
    };
    for (path, content) in patched.changes() {
        match content {
            Some(bytes) => assert_eq!(&patched.read(path).expect("changed file reads"), bytes),
            None => assert!(patched.read(path).is_err(), "deleted file still reads"),
        }
    }
});
