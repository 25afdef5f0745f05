//! conex-made vectors: parse, re-print byte for byte, canonical strings,
//! stored signatures.

use arca::conex::resource::Resource;
use arca::conex::{Root, Snapshot, Targets, Timestamp};
use std::path::{Path, PathBuf};

fn vec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(p: &str) -> String {
    std::fs::read_to_string(vec_dir().join(p)).unwrap()
}

fn check_roundtrip<R: Resource>(path: &str) -> R {
    let text = read(path);
    let mut w = Vec::new();
    let r = R::parse(&text, &mut w).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(w.is_empty(), "{path}: warnings {w:?}");
    assert_eq!(
        r.to_file_string(),
        text,
        "{path} does not re-print byte for byte"
    );
    r
}

#[test]
fn every_vector_file_reprints_byte_for_byte() {
    for stage in std::fs::read_dir(vec_dir().join("stages")).unwrap() {
        let name = stage.unwrap().file_name().into_string().unwrap();
        let path = format!("stages/{name}");
        if name.starts_with("root") {
            check_roundtrip::<Root>(&path);
        } else if name.starts_with("m1") {
            check_roundtrip::<Targets>(&path);
        } else if name.starts_with("snap") {
            check_roundtrip::<Snapshot>(&path);
        } else {
            check_roundtrip::<Timestamp>(&path);
        }
    }
    check_roundtrip::<Root>("repo/root");
    check_roundtrip::<Targets>("repo/keys/m1");
    check_roundtrip::<Snapshot>("repo/snap");
    check_roundtrip::<Timestamp>("repo/ts");
}

fn check_canonical<R: Resource>(path: &str, stem: &str) {
    let r: R = check_roundtrip(path);
    assert_eq!(
        r.canonical_signed(),
        read(&format!("canonical/{stem}.wire_raw.txt")),
        "{stem} wire_raw"
    );
    assert_eq!(
        arca::conex::Wire::Map(r.file_wire()).canonical(),
        read(&format!("canonical/{stem}.wire_full.txt")),
        "{stem} wire_full"
    );
    for (id, sig) in r.signatures() {
        let tbs = r.to_be_signed(id, &sig.created, sig.alg);
        let expected =
            std::fs::read_to_string(vec_dir().join(format!("canonical/{stem}.tbs.{id}.txt")));
        if let Ok(expected) = expected {
            assert_eq!(tbs, expected, "{stem} tbs {id}");
        }
        let key = &r.keys()[id];
        key.key
            .verify_b64(sig.alg, tbs.as_bytes(), &sig.value)
            .unwrap_or_else(|e| panic!("{stem}: signature of {id}: {e}"));
    }
}

#[test]
fn canonical_strings_and_signatures_match_conex() {
    check_canonical::<Root>("repo/root", "root");
    check_canonical::<Targets>("repo/keys/m1", "m1");
    check_canonical::<Snapshot>("repo/snap", "snap");
    check_canonical::<Timestamp>("repo/ts", "ts");
}

#[path = "support/mod.rs"]
mod support;
use support::upstream_testrepo as upstream;

#[test]
#[cfg_attr(
    not(arca_shared_upstream),
    ignore = "needs ../shared/conex-vectors/upstream-testrepo (missing at build time; touch build.rs once it is there)"
)]
fn upstream_testrepo_reprints_and_verifies() {
    let dir = upstream();
    let files: Vec<(&str, &str)> = vec![
        ("root", "root"),
        ("snap", "snap"),
        ("timestamp", "timestamp"),
    ];
    for (f, _) in &files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let mut w = Vec::new();
        let again = match *f {
            "root" => Root::parse(&text, &mut w).unwrap().to_file_string(),
            "snap" => Snapshot::parse(&text, &mut w).unwrap().to_file_string(),
            _ => Timestamp::parse(&text, &mut w).unwrap().to_file_string(),
        };
        assert_eq!(again, text, "upstream {f} does not re-print byte for byte");
    }
    for k in std::fs::read_dir(dir.join("keys")).unwrap() {
        let k = k.unwrap().path();
        let text = std::fs::read_to_string(&k).unwrap();
        let t = Targets::parse(&text, &mut Vec::new()).unwrap();
        assert_eq!(
            t.to_file_string(),
            text,
            "{} does not re-print",
            k.display()
        );
        for (id, sig) in &t.signatures {
            let tbs = t.to_be_signed(id, &sig.created, sig.alg);
            t.keys[id]
                .key
                .verify_b64(sig.alg, tbs.as_bytes(), &sig.value)
                .unwrap();
        }
    }
    let root = Root::parse(
        &std::fs::read_to_string(dir.join("root")).unwrap(),
        &mut Vec::new(),
    )
    .unwrap();
    let tbs = root.to_be_signed(
        "rootA",
        &root.signatures["rootA"].created,
        root.signatures["rootA"].alg,
    );
    assert_eq!(
        tbs,
        std::fs::read_to_string(dir.join("canonical/root.tbs.rootA.txt")).unwrap()
    );
}
