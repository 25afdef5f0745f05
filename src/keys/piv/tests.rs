//! Unit tests of the PIV backend.

use super::device::yk_err;
use super::location::{PivLocation, PivTouch};
use super::pss::emsa_pss_sha256;
use sha2::{Digest as _, Sha256};

#[test]
fn location_round_trip() {
    let l = PivLocation::parse("piv:serial=15835999;slot=9c").unwrap();
    assert_eq!(l.serial, Some(15835999));
    assert_eq!(l.slot, 0x9c);
    assert_eq!(l.touch, PivTouch::Always);
    assert_eq!(l.to_string(), "piv:serial=15835999;slot=9c");
    let d = PivLocation::parse("piv:").unwrap();
    assert_eq!((d.serial, d.slot), (None, 0x9c));
    let full = "piv:serial=7;slot=8a;touch=cached;pin-source=file:/run/pin";
    let l = PivLocation::parse(full).unwrap();
    assert_eq!(l.to_string(), full);
    assert_eq!(PivLocation::parse(&l.to_string()).unwrap(), l);
    for slot in ["9a", "9c", "9d", "9e", "82", "95", "9C"] {
        assert!(
            PivLocation::parse(&format!("piv:slot={slot}")).is_ok(),
            "{slot}"
        );
    }
}

#[test]
fn pcsc_errors_in_words() {
    let e = yk_err(
        yubikey::Error::PcscError {
            inner: Some(pcsc::Error::NoService),
        },
        "looking for YubiKeys",
    );
    assert_eq!(e.to_string(), "no PC/SC service (pcscd) is running");
    let e = yk_err(
        yubikey::Error::PcscError {
            inner: Some(pcsc::Error::RemovedCard),
        },
        "signing",
    );
    assert!(e.to_string().contains("removed"), "{e}");
    let e = yk_err(yubikey::Error::AuthenticationError, "signing");
    assert!(
        e.to_string().contains("security status not satisfied"),
        "{e}"
    );
}

#[test]
fn location_rejects() {
    for bad in [
        "pkcs11:x",
        "piv:slot=9b",
        "piv:slot=f9",
        "piv:slot=96",
        "piv:slot=81",
        "piv:slot=9",
        "piv:serial=abc",
        "piv:serial=99999999999",
        "piv:serial=1;serial=2",
        "piv:touch=sometimes",
        "piv:pin-source=/tmp/pin",
        "piv:pin-source=file:",
        "piv:colour=blue",
        "piv:serial",
    ] {
        assert!(PivLocation::parse(bad).is_err(), "{bad}");
    }
    for bad in ["piv:pin=123456", "piv:slot=9c;pin-value=123456"] {
        let e = PivLocation::parse(bad).unwrap_err().to_string();
        assert!(e.contains("pin-source=file:PATH"), "{e}");
        assert!(!e.contains("123456"), "{e}");
    }
}

#[test]
fn pss_block_layout() {
    // emBits = modBits - 1: a 2049-bit modulus gives a 256-byte EM,
    // sent to the card as 257 bytes with a leading zero.
    let em = emsa_pss_sha256(b"m", 2049, &[1u8; 32]).unwrap();
    assert_eq!(em.len(), 257);
    assert_eq!(em[0], 0);
    assert_eq!(em[256], 0xbc);
    let em = emsa_pss_sha256(b"m", 4096, &[1u8; 32]).unwrap();
    assert_eq!(em.len(), 512);
    assert_eq!(em[0] & 0x80, 0);
    assert!(emsa_pss_sha256(b"m", 0, &[1u8; 32]).is_err());
    assert!(emsa_pss_sha256(b"m", 512, &[1u8; 32]).is_err());
}

#[test]
fn pss_encoding_verifies_with_salt_32() {
    use rsa::traits::PublicKeyParts;
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let msg = b"conex resource bytes";
    let em = emsa_pss_sha256(msg, 2048, &[7u8; 32]).unwrap();
    assert_eq!(em.len(), 256);
    assert_eq!(em[0] & 0x80, 0);
    let m = rsa::BoxedUint::from_be_slice(&em, key.n().bits_precision()).unwrap();
    let s = rsa::hazmat::rsa_decrypt_and_check(
        &key,
        None::<&mut rsa::rand_core::UnwrapErr<getrandom::SysRng>>,
        &m,
    )
    .unwrap();
    let sig = s.to_be_bytes_trimmed_vartime();
    let mut sig_full = vec![0u8; 256 - sig.len()];
    sig_full.extend_from_slice(&sig);
    key.to_public_key()
        .verify(
            rsa::Pss::<Sha256>::new_with_salt(32),
            &Sha256::digest(msg),
            &sig_full,
        )
        .unwrap();
    // A salt length other than 32 must not verify.
    assert!(key
        .to_public_key()
        .verify(
            rsa::Pss::<Sha256>::new_with_salt(20),
            &Sha256::digest(msg),
            &sig_full
        )
        .is_err());
}
