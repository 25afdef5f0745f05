//! The bundle's MANIFEST. Parsing never panics and names every problem on
//! one line starting `MANIFEST`; a MANIFEST with no problem renders back to
//! exactly its text (one spelling per manifest, so one bundle digest); and a
//! manifest built from any set of valid paths parses back to itself.
#![no_main]
use arca::bundle::manifest::{path_problem, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (m, problems) = Manifest::parse(text);
    for p in &problems {
        assert!(p.starts_with("MANIFEST"), "problem not located: {p}");
        assert!(!p.contains('\n'), "problem on two lines: {p:?}");
    }
    if problems.is_empty() {
        assert_eq!(m.render(), text, "an accepted MANIFEST renders differently");
    }
    for l in &m.lines {
        assert!(
            path_problem(&l.path).is_none(),
            "accepted bad path {:?}",
            l.path
        );
        assert_ne!(l.path, "MANIFEST");
    }
    // Every line of the input taken as a path: the manifest of the valid
    // ones, each with its own name as content, parses back to itself.
    let mut seen = std::collections::BTreeSet::new();
    let files: Vec<(&str, &[u8])> = text
        .split('\n')
        .filter(|p| path_problem(p).is_none() && *p != "MANIFEST" && seen.insert(*p))
        .map(|p| (p, p.as_bytes()))
        .collect();
    let built = Manifest::of(files);
    let rendered = built.render();
    let (again, problems) = Manifest::parse(&rendered);
    assert!(problems.is_empty(), "{problems:?}\n{rendered}");
    assert_eq!(again, built);
});
