//! `pkcs11:` (RFC 7512), `piv:` and `file:` key locations. A parsed
//! location prints to a string that parses to the same location.
#![no_main]
use arca::keys::KeyLocation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loc) = KeyLocation::parse(s) else {
        return;
    };
    let printed = loc.to_string();
    if let Ok(again) = KeyLocation::parse(&printed) {
        assert_eq!(again.to_string(), printed, "printing is not a fixed point");
    }
});
