//! Public keys in slots, as conex keys.

use super::device::{slot_id, yk_err};
use crate::conex::PublicKey;
use crate::keys::KeyError;
use x509_cert::der::Encode;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};
use yubikey::piv::{self, AlgorithmId, SlotAlgorithmId};
use yubikey::{PinPolicy, TouchPolicy, YubiKey};

pub(super) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

pub(super) fn alg_name(a: AlgorithmId) -> &'static str {
    match a {
        AlgorithmId::Rsa1024 => "rsa1024",
        AlgorithmId::Rsa2048 => "rsa2048",
        AlgorithmId::Rsa3072 => "rsa3072",
        AlgorithmId::Rsa4096 => "rsa4096",
        AlgorithmId::EccP256 => "ecdsa-p256",
        AlgorithmId::EccP384 => "ecdsa-p384",
        AlgorithmId::Ed25519 => "ed25519",
        AlgorithmId::X25519 => "x25519",
    }
}

/// The conex public key for a PIV public key; refuses what conex can't
/// verify (ECDSA, X25519, RSA below 2048 bits).
pub(super) fn conex_public_key(
    alg: AlgorithmId,
    spki: &SubjectPublicKeyInfoOwned,
    where_: &str,
) -> Result<PublicKey, KeyError> {
    let bad = |reason: String| KeyError::Device(format!("{where_}: {reason}"));
    let pk = match alg {
        AlgorithmId::Ed25519 => {
            let raw: [u8; 32] = spki
                .subject_public_key
                .as_bytes()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("malformed Ed25519 public key".into()))?;
            PublicKey::from_ed25519(&raw)
        }
        AlgorithmId::Rsa2048 | AlgorithmId::Rsa3072 | AlgorithmId::Rsa4096 => {
            use rsa::pkcs8::DecodePublicKey;
            let der = spki.to_der().map_err(|e| bad(format!("public key: {e}")))?;
            let key = rsa::RsaPublicKey::from_public_key_der(&der)
                .map_err(|e| bad(format!("RSA public key: {e}")))?;
            PublicKey::from_rsa(&key).map_err(|e| bad(e.to_string()))?
        }
        AlgorithmId::Rsa1024 => {
            return Err(KeyError::Policy(format!(
                "{where_} holds an RSA-1024 key; conex needs at least 2048 bits"
            )))
        }
        other => {
            return Err(KeyError::Unsupported(format!(
                "{where_} holds an {} key; conex signatures are RSA-PSS or Ed25519 only",
                alg_name(other)
            )))
        }
    };
    pk.validate()
        .map_err(|e| KeyError::Policy(format!("{where_}: {e}")))?;
    Ok(pk)
}

/// What a slot holds, from GET METADATA (firmware ≥ 5.3).
pub(super) struct SlotKey {
    pub(super) alg: AlgorithmId,
    pub(super) public: Option<SubjectPublicKeyInfoOwned>,
    pub(super) policy: Option<(PinPolicy, TouchPolicy)>,
    pub(super) generated: Option<bool>,
}

pub(super) fn slot_key(yk: &mut YubiKey, slot: u8) -> Result<Option<SlotKey>, KeyError> {
    let serial = yk.serial().0;
    match piv::metadata(yk, slot_id(slot)?) {
        Ok(m) => match m.algorithm {
            SlotAlgorithmId::Asymmetric(alg) => Ok(Some(SlotKey {
                alg,
                public: m.public,
                policy: m.policy,
                generated: m.origin.map(|o| o == piv::Origin::Generated),
            })),
            _ => Ok(None),
        },
        Err(yubikey::Error::NotFound) => Ok(None),
        Err(yubikey::Error::NotSupported) => Err(KeyError::Unsupported(format!(
            "YubiKey {serial} (firmware {}) cannot report the public key of a slot; arca needs \
             firmware 5.3 or later",
            yk.version()
        ))),
        Err(e) => Err(yk_err(
            e,
            &format!("reading slot {slot:02x} of YubiKey {serial}"),
        )),
    }
}
