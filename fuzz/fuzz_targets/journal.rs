//! Ceremony journal lines (JSON, hash-chained): checking never panics, and
//! a refused journal gets a one-line error.
#![no_main]
use arca::journal::parse_chain;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_chain("journal.jsonl", text) {
        let e = e.to_string();
        assert!(!e.contains('\n'), "error on two lines: {e:?}");
    }
});
