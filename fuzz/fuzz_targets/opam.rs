//! The opam-file-format parser and conex's decoder. Whatever parses and
//! decodes without warnings must re-encode to text that decodes to the same
//! wire model, and that text must print identically a second time (a fixed
//! point). As in OCaml's opam printer, which conex uses, a top-level
//! variable whose value is `[]` or `[[]]` is not printed: those are
//! compared as absent.
#![no_main]
use arca::conex::opam;
use arca::conex::Wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if opam::parse(text).is_err() {
        return;
    }
    let mut warnings = Vec::new();
    let Ok(mut wire) = opam::decode(text, &mut warnings) else {
        return;
    };
    if !warnings.is_empty() {
        return;
    }
    wire.retain(|_, w| match w {
        Wire::List(l) => !(l.is_empty() || matches!(l.as_slice(), [Wire::List(x)] if x.is_empty())),
        _ => true,
    });
    let printed = opam::encode(&wire);
    let mut w2 = Vec::new();
    let again = opam::decode(&printed, &mut w2)
        .unwrap_or_else(|e| panic!("re-encoded text does not decode: {e}\n{printed}"));
    assert_eq!(wire, again, "decode(encode(w)) != w\n{printed}");
    assert!(w2.is_empty(), "re-encoded text warns: {w2:?}");
    assert_eq!(
        opam::encode(&again),
        printed,
        "printing is not a fixed point"
    );
});
