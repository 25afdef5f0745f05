//! `pkcs11:` (RFC 7512), `piv:` and `file:` key locations. A parsed
//! location prints to a string that parses to the same location; a refused
//! one gets a one-line error.
#![no_main]
use arca::keys::KeyLocation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let loc = match KeyLocation::parse(s) {
        Ok(l) => l,
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains('\n'), "error on two lines: {e:?}");
            return;
        }
    };
    let printed = loc.to_string();
    if let Ok(again) = KeyLocation::parse(&printed) {
        assert_eq!(again.to_string(), printed, "printing is not a fixed point");
    }
});
