//! Ceremony journal lines (JSON, hash-chained): checking never panics.
#![no_main]
use arca::ceremony::journal::parse_chain;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_chain("journal.jsonl", text);
});
