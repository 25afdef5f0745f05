//! The borrowing targets-file parser (`arca::conex::targets_fast`) against
//! the general parser (`opam::decode` + `Targets::from_file_wire`): the
//! same targets file, the same warnings and the same error message, byte
//! for byte, on every file of the test vectors, on generated repositories,
//! and on randomly damaged and randomly built targets files. The fast path
//! must also be taken on the files conex writes (else it would be dead
//! weight and this test would prove nothing).

#[path = "support/synth.rs"]
mod synth;

use arca::conex::expr::Expr;
use arca::conex::opam;
use arca::conex::resource::{Header, Resource};
use arca::conex::targets_fast;
use arca::conex::wire::Wire;
use arca::conex::{Digest, Key, PublicKey, SigAlg, Signature, Target, Targets};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Outcome = (Result<Targets, String>, Vec<String>);

fn general(text: &str) -> Outcome {
    let mut w = Vec::new();
    let r = opam::decode(text, &mut w)
        .and_then(|f| Targets::from_file_wire(&f, &mut w))
        .map_err(|e| e.to_string());
    (r, w)
}

fn parsed(text: &str) -> Outcome {
    let mut w = Vec::new();
    let r = Targets::parse(text, &mut w).map_err(|e| e.to_string());
    (r, w)
}

fn same(text: &str) -> Result<(), TestCaseError> {
    let (g, p) = (general(text), parsed(text));
    prop_assert_eq!(&g, &p, "general vs parse on {:?}", text);
    if let Some((t, w)) = targets_fast::parse(text) {
        prop_assert_eq!(Ok(&t), g.0.as_ref(), "fast path on {:?}", text);
        prop_assert_eq!(&w, &g.1);
    }
    // the view read in place: the same entries, the same canonical bytes
    // (the signed bytes) as the general path's targets file
    if let Some((view, w)) = targets_fast::parse_view(text) {
        let Ok(t) = &g.0 else {
            return Err(TestCaseError::fail(format!(
                "the view reads a file the general path refuses: {text:?}"
            )));
        };
        prop_assert_eq!(&w, &g.1);
        prop_assert!(view.head.targets.is_empty());
        let mut head = t.clone();
        head.targets.clear();
        prop_assert_eq!(&view.head, &head);
        let entries: Vec<(String, Vec<String>, u64)> = view
            .entries
            .iter()
            .map(|e| {
                let ds = view.digests(e).iter().map(|d| d.to_string()).collect();
                (e.path.to_string(), ds, e.size)
            })
            .collect();
        let want: Vec<(String, Vec<String>, u64)> = t
            .targets
            .iter()
            .map(|e| {
                let ds = e.digest.iter().map(|d| d.to_string()).collect();
                (e.filename.join("/"), ds, e.size)
            })
            .collect();
        prop_assert_eq!(entries, want);
        prop_assert_eq!(
            view.canonical_signed(),
            Wire::Map(t.signed_wire()).canonical()
        );
    }
    Ok(())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

#[test]
#[cfg_attr(
    not(arca_shared_upstream),
    ignore = "needs ../shared/conex-vectors (or $ARCA_SHARED)"
)]
fn every_vector_file_parses_the_same_and_targets_take_the_fast_path() {
    let shared = PathBuf::from(env!("ARCA_SHARED_DIR")).join("conex-vectors");
    let mut files = Vec::new();
    files_under(&shared, &mut files);
    assert!(files.len() > 20, "{} files", files.len());
    let mut fast = 0;
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        same(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let is_targets = f.parent().is_some_and(|d| d.ends_with("keys"));
        if is_targets && general(&text).0.is_ok() {
            assert!(
                targets_fast::parse(&text).is_some(),
                "{}: a targets file conex wrote must take the fast path",
                f.display()
            );
            fast += 1;
        }
    }
    assert!(fast >= 2, "{fast} targets files on the fast path");
}

#[test]
fn generated_repository_targets_take_the_fast_path() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = synth::Spec::tiny();
    let s = synth::generate(&tmp.path().join("r"), &tmp.path().join("k"), &spec).unwrap();
    assert!(s.files > 0);
    let mut n = 0;
    for e in std::fs::read_dir(tmp.path().join("r/keys")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        same(&text).unwrap();
        assert!(targets_fast::parse(&text).is_some());
        n += 1;
    }
    assert!(n > 1);
}

fn sample() -> Targets {
    let d = |c: char| Digest {
        alg: "sha256".into(),
        data: std::iter::repeat_n(c, 64).collect(),
    };
    let key = Key {
        id: "m1".into(),
        created: "2026-11-21T23:33:14Z".into(),
        key: PublicKey {
            alg: arca::conex::KeyAlg::Ed25519,
            data: "XE99Nq6FqHtIKtYiTLPb/yoZkft9WH4pyXETYbGV0ks=".into(),
        },
    };
    Targets {
        header: Header {
            created: "2026-11-21T23:33:22Z".into(),
            counter: 3,
            epoch: 0,
            name: "m1".into(),
        },
        keys: BTreeMap::from([("m1".to_string(), key)]),
        valid: Expr::of_wire(&Wire::Ident("m1".into()), &mut Vec::new()).unwrap(),
        delegations: vec![],
        targets: vec![
            Target {
                filename: vec!["packages".into(), "foo".into(), "foo.1.0".into(), "opam".into()],
                digest: vec![d('a')],
                size: 0x31,
            },
            Target {
                filename: vec!["packages".into(), "bär".into(), "bär.0.1".into(), "opam".into()],
                digest: vec![d('b'), d('c')],
                size: 0,
            },
            Target {
                filename: vec!["packages".into(), "e".into(), "e.1".into(), "files".into(), "x y".into()],
                digest: vec![],
                size: u64::MAX,
            },
        ],
        signatures: BTreeMap::from([(
            "m1".to_string(),
            Signature {
                id: "m1".into(),
                created: "2026-11-21T23:33:22Z".into(),
                alg: SigAlg::Ed25519,
                value: "cWU+26u/6lC2v6vioGvdedeX+95/ilH8UOjV7O730OVemdEzWnqwts4v+jHE7GlhqhEfoYbnEWfQfa5JHdgRDQ==".into(),
            },
        )]),
    }
}

#[test]
fn a_file_arca_writes_takes_the_fast_path_and_reads_back_equal() {
    let t = sample();
    let text = t.to_file_string();
    let (back, w) = targets_fast::parse(&text).expect("fast path");
    assert_eq!(back, t);
    assert!(w.is_empty());
    same(&text).unwrap();
    assert_eq!(t.canonical_signed(), Wire::Map(t.signed_wire()).canonical());
}

#[test]
fn unusual_but_valid_syntax_falls_back_with_the_same_result() {
    let text = sample().to_file_string();
    for (from, to) in [
        ("[size 0x31]", "[size 0x3_1]"),
        ("[size 0x31]", "[size 0x31] # a comment\n"),
        ("signed: [", "(* c *) signed: ["),
        ("\n", "\r\n"),
        (
            "\"packages/foo/foo.1.0/opam\"",
            "\"packages/foo/foo.1.0/\\111pam\"",
        ),
        (
            "\"packages/foo/foo.1.0/opam\"",
            "\"  packages/foo/foo.1.0/opam \"",
        ),
        ("[size 0x31]", "[size 0x31] [size 0x32]"),
        ("[size 0x31]", "[size 49]"),
        ("[size 0x31]", "[size emptymap]"),
        ("\"sha256=aaaa", "\"md5=aaaa"),
        ("\"sha256=aaaa", "\"sha256aaaa"),
        ("[delegations []]", "[delegations [] ] [delegations []]"),
        ("[valid m1]", "[valid (1 [m1])]"),
        ("[valid m1]", "[valid m1 & m1]"),
        ("signatures: [", "extra: 1\nsignatures: ["),
        ("signatures: [", "signed: []\nsignatures: ["),
        ("[version 0]", "[version 1]"),
        ("[version 0]", "[version true]"),
        ("[typ targets]", "[typ root]"),
        ("[name \"m1\"]", "[name \"m1\"] [name+x \"m1\"]"),
        // an entry's field names, and words that start like them
        ("[size 0x31]", "[size: 0x31]"),
        ("[size 0x31]", "[size+ 0x31]"),
        ("[size 0x31]", "[sizes 0x31]"),
        ("[size 0x31]", "[size_ 0x31]"),
        ("[size 0x31]", "[size-1 0x31]"),
        ("[size 0x31]", "[\tsize\t0x31]"),
        ("[size 0x31]", "[size\"\" 0x31]"),
        ("[size 0x31]", "[size[] 0x31]"),
        ("[size 0x31]", "[si 0x31]"),
        ("[size 0x31]", "[size0x31]"),
        ("[filename ", "[filename: "),
        ("[filename ", "[filenames "),
        ("[filename ", "[filename+"),
        ("digest", "digest:"),
        ("digest", "digestx"),
        ("digest", "digest+"),
        ("digest", "digest\t"),
        ("[size 0x31]", "[size\n0x31]"),
    ] {
        assert!(text.contains(from), "{from}");
        let t2 = text.replacen(from, to, 1);
        same(&t2).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    }
}

const NOISE: &[&str] = &[
    "[",
    "]",
    "\"",
    "\\",
    "\r",
    "\n",
    " ",
    "(",
    ")",
    "#",
    ":",
    "+",
    "&",
    "|",
    "0",
    "x",
    "_",
    "-",
    "true",
    "false",
    "0x",
    "0xZ",
    "emptymap",
    "\"\"\"",
    "(*",
    "*)",
    "é",
    "\u{0}",
    "[]",
    "[size 0x1]",
    "[digest []]",
    "[filename \"a\"]",
    "\"/\"",
    "\"a//b\"",
    "\"..\"",
    "=",
    "{",
    "}",
    "!",
    "?",
    "~",
    "18446744073709551616",
    "0x10000000000000000",
    "123456789012345678901",
    "signed:",
    "targets",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn damaged_files_parse_the_same(
        edits in prop::collection::vec((0usize..10_000, 0usize..NOISE.len(), 0usize..4, 0usize..3), 1..4)
    ) {
        let mut text = sample().to_file_string().into_bytes();
        for (pos, noise, del, kind) in edits {
            let pos = pos % (text.len() + 1);
            match kind {
                0 => { text.splice(pos..pos, NOISE[noise].bytes()); }
                1 => { let end = (pos + del + 1).min(text.len()); text.splice(pos..end, NOISE[noise].bytes()); }
                _ => { let end = (pos + del + 1).min(text.len()); text.drain(pos..end); }
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        same(&text)?;
    }

    #[test]
    fn built_files_take_the_fast_path(
        entries in prop::collection::vec(
            (prop::collection::vec("[a-zA-Z0-9._ é+-]{1,12}", 1..5), prop::collection::vec("[0-9a-f]{0,64}", 0..3), any::<u64>()),
            0..20),
        counter in any::<u64>(),
        created in "[ -~]{0,30}",
    ) {
        let mut t = sample();
        t.header.counter = counter;
        t.header.created = created.trim().to_string();
        t.targets = entries.into_iter()
            .filter(|(p, _, _)| p.iter().all(|c| c != "." && c != ".." && c.trim() == c.as_str()))
            .map(|(p, ds, size)| Target {
                filename: p,
                digest: ds.into_iter().map(|data| Digest { alg: "sha256".into(), data }).collect(),
                size,
            })
            .collect();
        let text = t.to_file_string();
        same(&text)?;
        prop_assert_eq!(t.canonical_signed(), Wire::Map(t.signed_wire()).canonical());
        let (back, _) = targets_fast::parse(&text).expect("fast path");
        prop_assert_eq!(back, t);
    }
}
