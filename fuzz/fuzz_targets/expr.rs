//! Quorum expressions: every top-level value of an opam file goes through
//! `Expr::of_wire`; an expression accepted without warnings converts back
//! to a wire value that yields the same expression, and its helpers do not
//! panic.
#![no_main]
use arca::conex::expr::Expr;
use arca::conex::opam;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut warnings = Vec::new();
    let Ok(file) = opam::decode(text, &mut warnings) else {
        return;
    };
    for w in file.values() {
        let mut ws = Vec::new();
        let Ok(e) = Expr::of_wire(w, &mut ws) else {
            continue;
        };
        // As conex, a reference with an unknown digest algorithm is dropped
        // with a warning, which can leave a quorum over fewer keys than it
        // needs (never satisfied); arca does not write back what warned.
        if ws.is_empty() {
            let mut ws2 = Vec::new();
            let again = Expr::of_wire(&e.to_wire(), &mut ws2)
                .unwrap_or_else(|err| panic!("to_wire of {e} does not parse: {err}"));
            assert_eq!(e, again);
        }
        let _ = e.to_string();
        let _ = e.min_signers();
        let _ = e.local_ids();
        let _ = e.remotes();
        let keys: BTreeMap<String, String> = e
            .local_ids()
            .into_iter()
            .map(|id| {
                (
                    id,
                    "ed25519=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string(),
                )
            })
            .collect();
        let _ = e.hash(&keys);
    }
});
