//! Device profiles (TOML mapping holders to key locations): never a
//! panic, and a refused profile gets a one-line error.
#![no_main]
use arca::ceremony::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Profile::parse("fuzz.toml", text);
    if let Err(e) = &parsed {
        let e = e.to_string();
        assert!(!e.contains('\n'), "error on two lines: {e:?}");
    }
    if let Ok(p) = parsed {
        let holders: Vec<String> = p.holders.keys().cloned().collect();
        let _ = p.check_holders("fuzz.toml", &holders);
        for l in p.holders.values() {
            let _ = l.to_string();
        }
    }
});
