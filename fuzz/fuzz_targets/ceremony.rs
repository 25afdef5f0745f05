//! Ceremony files (TOML): parsing and validation never panic, and a
//! refused file gets a one-line error.
#![no_main]
use arca::ceremony::script::Ceremony;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Ceremony::parse(std::path::Path::new("fuzz.toml"), text.to_string());
    if let Err(e) = &parsed {
        let e = e.to_string();
        assert!(!e.contains('\n'), "error on two lines: {e:?}");
    }
    if let Ok(c) = parsed {
        let _ = c.output();
        let _ = c.kind();
        let _ = c.title();
        let _ = c.holders();
    }
});
