//! Ceremony files (TOML): parsing and validation never panic.
#![no_main]
use arca::ceremony::script::Ceremony;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Ceremony::parse(std::path::Path::new("fuzz.toml"), text.to_string()) {
        let _ = c.output();
        let _ = c.kind();
        let _ = c.title();
        let _ = c.holders();
    }
});
