//! Unit tests of the PKCS#11 backend.

use super::objects::{ed25519_point, is_ed25519_params};
use super::pin::{prepare_pin_request, PinFlags};
use super::uri::{resolve_module, Pkcs11Uri};
use super::{ED25519_NAME, ED25519_OID, MODULE_ENV};
use crate::keys::{KeyError, SecretRequest, SecretSource};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[test]
fn a_refused_pin_value_is_not_echoed() {
    let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=123456&module-path=/m.so")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("123456"), "{e}");
    assert!(e.contains("pin-value=(hidden)"), "{e}");
    let e = Pkcs11Uri::parse("pkcs11:token=t;pin-value=654321")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("654321"), "{e}");
}

#[test]
fn module_resolution_order() {
    let p = resolve_module(Some(Path::new("/a.so")), Some("/b.so".into())).unwrap();
    assert_eq!(p, PathBuf::from("/a.so"));
    let p = resolve_module(None, Some("/b.so".into())).unwrap();
    assert_eq!(p, PathBuf::from("/b.so"));
    let e = resolve_module(None, None).unwrap_err().to_string();
    assert!(e.contains("module-path") && e.contains(MODULE_ENV), "{e}");
    assert!(resolve_module(None, Some("".into())).is_err());
    let e = resolve_module(Some(Path::new("libsofthsm2.so")), None).unwrap_err();
    assert!(e.to_string().contains("must be absolute"), "{e}");
}

/// A scripted person.
#[derive(Default)]
struct Person {
    confirm: bool,
    questions: Vec<String>,
    notices: Vec<String>,
}

impl SecretSource for Person {
    fn secret(&mut self, _req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        panic!("prepare_pin_request never asks for the PIN itself")
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        self.questions.push(question.into());
        Ok(self.confirm)
    }
    fn notice(&mut self, message: &str) {
        self.notices.push(message.into());
    }
}

fn flags() -> PinFlags {
    PinFlags {
        initialized: true,
        ..PinFlags::default()
    }
}

#[test]
fn pin_state_normal() {
    let mut p = Person::default();
    let r = prepare_pin_request("root-1", flags(), &mut p).unwrap();
    assert_eq!(r.what, "user PIN for token \"root-1\"");
    assert_eq!((r.retries_left, r.final_try), (None, false));
    assert!(p.questions.is_empty() && p.notices.is_empty());
}

#[test]
fn pin_state_count_low_is_told() {
    let mut p = Person::default();
    let f = PinFlags {
        count_low: true,
        ..flags()
    };
    let r = prepare_pin_request("root-1", f, &mut p).unwrap();
    assert!(!r.final_try);
    assert_eq!(p.notices.len(), 1);
    assert!(
        p.notices[0].contains("wrong PIN was entered"),
        "{:?}",
        p.notices
    );
    assert!(!p.notices[0].contains("few tries"), "{:?}", p.notices);
}

#[test]
fn pin_state_final_try_needs_a_yes() {
    let f = PinFlags {
        final_try: true,
        count_low: true,
        ..flags()
    };
    let mut no = Person::default();
    let e = prepare_pin_request("root-2", f, &mut no).unwrap_err();
    assert!(matches!(e, KeyError::Declined(_)), "{e:?}");
    assert!(e.to_string().contains("\"root-2\""), "{e}");
    assert_eq!(no.questions.len(), 1);
    assert!(no.questions[0].contains("FINAL"), "{:?}", no.questions);
    let mut yes = Person {
        confirm: true,
        ..Person::default()
    };
    let r = prepare_pin_request("root-2", f, &mut yes).unwrap();
    assert_eq!((r.retries_left, r.final_try), (Some(1), true));
    // Without a person (e.g. only a pin-source file), the final try is
    // never spent.
    let e = prepare_pin_request("root-2", f, &mut crate::keys::NoSecrets).unwrap_err();
    assert!(matches!(e, KeyError::Declined(_)), "{e:?}");
}

#[test]
fn pin_state_locked_and_unset() {
    let mut p = Person::default();
    let e = prepare_pin_request(
        "root-3",
        PinFlags {
            locked: true,
            ..flags()
        },
        &mut p,
    )
    .unwrap_err();
    assert!(matches!(e, KeyError::PinLocked(_)), "{e:?}");
    assert!(p.questions.is_empty());
    let e = prepare_pin_request("root-3", PinFlags::default(), &mut p).unwrap_err();
    assert!(e.to_string().contains("no user PIN"), "{e}");
}

#[test]
fn ed25519_point_forms() {
    let raw = [7u8; 32];
    let mut der = vec![0x04, 0x20];
    der.extend_from_slice(&raw);
    assert_eq!(ed25519_point(&der), Some(raw));
    assert_eq!(ed25519_point(&raw), Some(raw));
    assert_eq!(ed25519_point(&der[..33]), None);
    assert!(is_ed25519_params(ED25519_OID) && is_ed25519_params(ED25519_NAME));
}
