//! Public key data and signatures: `validate` and `verify` never panic,
//! whatever the key data and signature bytes. The input is split at the
//! first 0xFF byte: key data before, signature after; the first byte picks
//! the algorithm.
#![no_main]
use arca::conex::key::{KeyAlg, PublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let alg = if sel & 1 == 0 {
        KeyAlg::Ed25519
    } else {
        KeyAlg::Rsa
    };
    let (key, sig) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(key) = std::str::from_utf8(key) else {
        return;
    };
    let pk = PublicKey {
        alg,
        data: key.to_string(),
    };
    let valid = pk.validate().is_ok();
    let _ = pk.bits();
    let _ = pk.key_id();
    let _ = pk.verify(pk.sig_alg(), b"conex", sig);
    if let Ok(s) = std::str::from_utf8(sig) {
        let _ = pk.verify_b64(pk.sig_alg(), b"conex", s);
    }
    if let Ok(parsed) = PublicKey::parse_conex(&pk.conex_string()) {
        assert_eq!(parsed, pk);
    }
    if valid {
        assert!(pk.bits().is_some());
    }
});
