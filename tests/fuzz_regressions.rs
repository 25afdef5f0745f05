//! Inputs the fuzz targets (fuzz/) found, kept as regression tests. Each
//! says what was found and what the behaviour is.

mod support;
use arca::conex::opam;
use arca::conex::resource::{Resource, Root};
use std::path::Path;
use support::*;

/// fuzz target `opam`: `signatures: []` decodes to an empty list, and the
/// printer (a port of OCaml's opam printer, as conex uses) leaves out a
/// top-level variable whose value is an empty list, so the printed text
/// decodes without it. For resources the two are the same: an absent
/// `signatures` is no signatures.
#[test]
fn empty_top_level_list_is_not_printed() {
    let mut w = Vec::new();
    let wire = opam::decode("signatures: []\n", &mut w).unwrap();
    assert!(w.is_empty());
    assert_eq!(wire.len(), 1);
    assert_eq!(opam::encode(&wire), "\n");
    let root = std::fs::read_to_string(vectors().join("stages/root.5-role-timestamp")).unwrap();
    assert!(!root.contains("signatures"));
    let with = format!("{root}signatures: []\n");
    let a = Root::parse(&root, &mut Vec::new()).unwrap();
    let b = Root::parse(&with, &mut Vec::new()).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.to_file_string(), root);
}

/// fuzz target `resources`: a role reference with an unknown digest
/// algorithm (`sha257=`) is skipped with a warning, as conex does, which
/// leaves the role as `(1 [])`, a quorum nobody can meet; printed, that
/// does not parse. arca never writes such a file: it refuses to rewrite a
/// file whose parse warned, with one line naming the file.
#[test]
fn role_reference_with_unknown_digest_is_refused_for_rewriting() {
    let text = std::fs::read_to_string(vectors().join("repo/root"))
        .unwrap()
        .replacen(
            "sha256=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707",
            "sha257=ff3858141882954fb50076cbe394de17ed2e3748322dc837fe0d46632a35a707",
            1,
        );
    let mut w = Vec::new();
    let r = Root::parse(&text, &mut w).unwrap();
    assert!(!w.is_empty(), "the skipped reference is not reported");
    assert!(Root::parse(&r.to_file_string(), &mut Vec::new()).is_err());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("root"), &text).unwrap();
    let ks = vector_key_store(tmp.path());
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["root", "status", "-r", d],
        vec![
            "root",
            "sign",
            "--id",
            "rootA",
            "-r",
            d,
            "--key-store",
            ks.to_str().unwrap(),
        ],
    ] {
        let o = arca(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("/root") && err.contains("sha257"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("root")).unwrap(),
        text
    );
}

/// fuzz target `expr` (input `e:[a "sha2a2d=238" 0x0]`): a bare remote
/// reference — the short form of a quorum of 1 — whose digest algorithm is
/// unknown is dropped with a warning, as conex's `Expression.of_wire` does,
/// leaving a quorum of 1 over no key. Written out, `(1 [])` would not
/// parse; the target's round trip now applies to expressions read without
/// warnings, as arca refuses to rewrite a file whose parse warned (previous
/// test). The expression is never satisfied: it fails closed.
#[test]
fn bare_reference_with_unknown_digest_is_a_quorum_nobody_meets() {
    use arca::conex::expr::Expr;
    let mut w = Vec::new();
    let file = opam::decode("e: [a \"sha2a2d=238\" 0x0]\n", &mut w).unwrap();
    let mut ws = Vec::new();
    let e = Expr::of_wire(&file["e"], &mut ws).unwrap();
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert!(ws[0].contains("sha2a2d"), "{ws:?}");
    assert_eq!(e, Expr::Quorum(1, vec![]));
    let everyone: std::collections::BTreeSet<String> = ["a".to_string()].into();
    assert!(!e.eval(&Default::default(), &everyone));
    let err = Expr::of_wire(&e.to_wire(), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("insufficient keys"), "{err}");
}

/// fuzz target `opam` (input `d: i|op|ip|i| …`, a chain of a few hundred
/// `|`): an operator chain was read in a loop without counting towards the
/// nesting limit, but built a tree as deep as the chain is long, printed
/// with a pair of parentheses per level, which did not read back ("values
/// nested too deeply"). A chain of a million operators would have
/// overflowed the stack when the tree was walked. Every operator of a chain
/// now counts as one level, and a left-leaning chain prints bare (as conex
/// prints it), so what is read prints back to text that reads the same.
#[test]
fn operator_chains_count_towards_the_nesting_limit() {
    let chain = |n: usize, op: &str| {
        let mut t = String::from("v: a");
        for _ in 0..n {
            t.push_str(op);
            t.push('a');
        }
        t.push('\n');
        t
    };
    for op in [" | ", " & "] {
        let ok = chain(150, op);
        let w = opam::decode(&ok, &mut Vec::new()).unwrap();
        let printed = opam::encode(&w);
        assert!(
            !printed.contains('('),
            "a left chain printed with parentheses"
        );
        assert_eq!(opam::decode(&printed, &mut Vec::new()).unwrap(), w);
        let err = opam::decode(&chain(300, op), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
        // a million operators: refused, not a stack overflow
        let err = opam::decode(&chain(1_000_000, op), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
    }
    // right-nested and mixed trees keep the parentheses they need
    for t in [
        "v: a | (b | c)\n",
        "v: (a | b) & c\n",
        "v: a & (b & c)\n",
        "v: a | b & c\n",
    ] {
        let w = opam::decode(t, &mut Vec::new()).unwrap();
        let printed = opam::encode(&w);
        assert_eq!(
            opam::decode(&printed, &mut Vec::new()).unwrap(),
            w,
            "{t} -> {printed}"
        );
    }
}

/// fuzz target `bundle` (a rehearsal bundle with one byte of `online.toml`
/// changed, kept in tests/fuzz-inputs): the toml crate's message for a bad
/// string spans two lines ("invalid string" / "expected `\"`, `'`"), and it
/// went into the bundle's problems as it was. TOML errors are now one line
/// (with the line they point at) wherever arca reads TOML: bundles,
/// ceremony files, profiles and answers files.
#[test]
fn toml_errors_are_one_line() {
    let tar = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-inputs/bundle-online-toml-bad-string.tar"),
    )
    .unwrap();
    let c = arca::bundle::verify_tar_bytes(&tar, Path::new("b.tar"), &Default::default()).unwrap();
    assert!(
        c.problems.iter().any(|p| p.starts_with("online.toml")),
        "{:?}",
        c.problems
    );
    for p in &c.problems {
        assert!(!p.contains('\n'), "{p:?}");
    }
    let bad = "kind = \"create-root\"\ntitle = \"x\n";
    let e = arca::ceremony::script::Ceremony::parse(Path::new("c.toml"), bad.to_string())
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n') && e.contains("c.toml:2"), "{e:?}");
    let e = arca::ceremony::profile::Profile::parse("p.toml", "[holders]\na = \"x\n")
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n') && e.contains("p.toml:2"), "{e:?}");
    let tmp = tempfile::tempdir().unwrap();
    let answers = tmp.path().join("answers.toml");
    std::fs::write(&answers, "confirm = \"yes\n").unwrap();
    let o = arca([
        "ceremony",
        "run",
        "ceremonies/create-root.toml",
        "--rehearse",
        "--answers",
        answers.to_str().unwrap(),
        "--base",
        tmp.path().to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("answers.toml:1"), "{err}");
}

/// fuzz target `bundle` (a rehearsal bundle whose root had bytes of a
/// key's `rsa=` changed, kept in tests/fuzz-inputs): the key's "algorithm"
/// became everything before the first `=` — NULs, newlines and 700 bytes of
/// PEM — and the warning quoted it whole: a many-line message, and a way
/// for a hostile file to send control characters to the terminal. Strings
/// from files are now quoted with control characters escaped and cut to 40
/// characters (`conex::shown`) in every message that echoes them.
#[test]
fn strings_from_files_are_quoted_escaped_and_short() {
    let (_, p) = fuzz_input_problem("bundle-key-algorithm-with-newlines.tar", "key algorithm");
    assert!(!p.chars().any(char::is_control), "{p:?}");
    assert!(p.len() < 200, "{p:?}");
    assert_eq!(arca::conex::shown("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    assert_eq!(
        arca::conex::shown(&"x".repeat(50)),
        format!("{}…", "x".repeat(40))
    );
}

/// fuzz target `bundle`, after 9.1 million executions (a rehearsal bundle
/// whose journal's first `prev` had PEM lines copied into it, kept in
/// tests/fuzz-inputs): the broken-chain message quoted the `prev` field
/// whole, newlines included. It is quoted through `conex::shown_max` now.
#[test]
fn journal_errors_quote_fields_on_one_line() {
    let (c, p) = fuzz_input_problem("bundle-journal-prev-with-newlines.tar", "chain broken");
    assert!(!p.chars().any(char::is_control), "{p:?}");
    let text = std::str::from_utf8(&c.files["journal.jsonl"]).unwrap();
    let e = arca::journal::parse_chain("journal.jsonl", text)
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n') && e.contains("chain broken"), "{e:?}");
}

/// fuzz target `bundle`, after 7 million executions of its next run (a
/// rehearsal bundle whose root's `name` holds a newline, kept in
/// tests/fuzz-inputs): the verifier's "is named" message quoted the name
/// whole. Names are quoted through `conex::shown` now, in the verifier and
/// in `Repo::read`.
#[test]
fn resource_names_are_quoted_on_one_line() {
    let (_, p) = fuzz_input_problem("bundle-root-name-with-newline.tar", "is named");
    assert!(!p.chars().any(char::is_control), "{p:?}");
}

/// fuzz target `sign_request`, within its first 65,000 executions (a sign
/// request whose root has a lone CR in it, kept in tests/fuzz-inputs): the
/// opam lexer's "is not a valid token" message quoted the character raw,
/// so a CR, an escape or any other control character in a file went to the
/// terminal as it was — for a sign request, to the absent holder's screen
/// before they decide to sign. The character is quoted through
/// `conex::shown` now. `tests/bad-inputs/lone-carriage-return` and
/// `escape-character` check the same for a root through the binary.
#[test]
fn invalid_tokens_are_quoted_escaped() {
    use arca::repository::sign_request::SignRequest;
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-inputs/sign-request-root-with-lone-cr.json"),
    )
    .unwrap();
    let req = SignRequest::parse(&text, "req.json").unwrap();
    assert!(req.root.contains('\r'));
    let e = req.open("req.json", &req.id).unwrap_err().to_string();
    assert!(e.starts_with("req.json (root): "), "{e:?}");
    assert!(e.contains("'\\r' is not a valid token"), "{e:?}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    for c in ['\r', '\u{1b}', '\u{7}', '\u{85}'] {
        let e = Root::parse(&format!("signed: [{c}]\n"), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a valid token"), "{c:?}: {e:?}");
        assert!(!e.chars().any(char::is_control), "{c:?}: {e:?}");
    }
}

/// fuzz target `opam`: a string holding CR LF was printed raw, and the
/// lexer reads a raw CR LF inside a string as LF (as OCaml's lexer does),
/// so the value changed on the way back — and with it the canonical string
/// signatures cover. The printer now writes that CR as `\r`; strings
/// without CR LF print exactly as before (as conex prints them).
#[test]
fn cr_lf_inside_a_string_survives_print_and_parse() {
    use arca::conex::Wire;
    // (values are trimmed when read, as conex trims them: no blank ends)
    for s in ["a\r\nb", "x\r\r\n\r\ny", "only\rcr", "a\r\n\r\n\r\nb"] {
        let mut m = arca::conex::wire::WireMap::new();
        m.insert("v".into(), Wire::Data(s.into()));
        m.insert(
            "l".into(),
            Wire::List(vec![Wire::Data(format!("k{s}k")), Wire::Ident("i".into())]),
        );
        let text = opam::encode(&m);
        let back = opam::decode(&text, &mut Vec::new()).unwrap();
        assert_eq!(back, m, "{s:?} printed as {text:?}");
    }
    let mut m = arca::conex::wire::WireMap::new();
    m.insert("v".into(), Wire::Data("plain\nnew line".into()));
    assert!(!opam::encode(&m).contains("\\r"));
}

/// fuzz target `key_location`: a pin-source path starting with `//` was
/// printed as `file://…`, which reads back with the `file://` prefix
/// stripped — a different (relative) path. Rehearsal profiles are written
/// by printing locations, so the path must survive.
#[test]
fn pin_source_path_with_leading_slashes_survives_printing() {
    use arca::keys::KeyLocation;
    for s in [
        "pkcs11:token=t?pin-source=file:////srv/pin",
        "pkcs11:token=t?pin-source=file:///srv/pin",
        "pkcs11:token=t?pin-source=file:/srv/pin",
        "pkcs11:token=t?pin-source=file:pins/alice",
        "pkcs11:id=%01%02%63%74%3D%6B?pin-source=file://///////pce%3Dfile:/n",
    ] {
        let a = KeyLocation::parse(s).unwrap();
        let printed = a.to_string();
        let b = KeyLocation::parse(&printed).unwrap();
        assert_eq!(a, b, "{s} printed as {printed}");
        assert_eq!(b.to_string(), printed);
    }
}

/// Verifies the bundle `tests/fuzz-inputs/<name>` and returns the outcome
/// and its problem that contains `needle`.
fn fuzz_input_problem(name: &str, needle: &str) -> (arca::bundle::Checked, String) {
    let tar = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-inputs")
            .join(name),
    )
    .unwrap();
    let c = arca::bundle::verify_tar_bytes(&tar, Path::new("b.tar"), &Default::default()).unwrap();
    let p = c
        .problems
        .iter()
        .find(|p| p.contains(needle))
        .unwrap_or_else(|| panic!("{:?}", c.problems))
        .clone();
    (c, p)
}
