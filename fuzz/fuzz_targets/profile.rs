//! Device profiles (TOML mapping holders to key locations).
#![no_main]
use arca::ceremony::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Profile::parse("fuzz.toml", text) {
        let holders: Vec<String> = p.holders.keys().cloned().collect();
        let _ = p.check_holders("fuzz.toml", &holders);
        for l in p.holders.values() {
            let _ = l.to_string();
        }
    }
});
