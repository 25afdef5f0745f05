//! The mechanisms a token needs for arca's key types and signatures.

use super::session::dev;
use super::PSS_SALT;
use crate::keys::{KeyError, KeySpec};
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

/// The mechanisms a key type needs on the token: the key-pair generation
/// mechanism and at least one of the signature mechanisms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MechanismNeeds {
    /// Key-pair generation mechanism.
    pub keygen: MechanismType,
    /// Acceptable signature mechanisms, best first.
    pub sign: Vec<MechanismType>,
}

impl MechanismNeeds {
    /// What arca needs for `spec`.
    pub fn for_spec(spec: KeySpec) -> MechanismNeeds {
        match spec {
            KeySpec::Rsa(_) => MechanismNeeds {
                keygen: MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                sign: vec![
                    MechanismType::SHA256_RSA_PKCS_PSS,
                    MechanismType::RSA_PKCS_PSS,
                ],
            },
            KeySpec::Ed25519 => MechanismNeeds {
                keygen: MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                sign: vec![MechanismType::EDDSA],
            },
        }
    }
}

pub(super) fn check_mechanisms(
    ctx: &Pkcs11,
    slot: Slot,
    label: &str,
    spec: KeySpec,
    needs: &MechanismNeeds,
) -> Result<(), KeyError> {
    let list = ctx
        .get_mechanism_list(slot)
        .map_err(|e| dev(format!("listing the mechanisms of token {label:?}"), e))?;
    if !list.contains(&needs.keygen) {
        return Err(KeyError::Unsupported(format!(
            "token {label:?} cannot generate {spec} keys: it lacks {}",
            needs.keygen
        )));
    }
    if let Ok(info) = ctx.get_mechanism_info(slot, needs.keygen) {
        if !info.generate_key_pair() {
            return Err(KeyError::Unsupported(format!(
                "token {label:?} lists {} but not for key-pair generation",
                needs.keygen
            )));
        }
        if let KeySpec::Rsa(bits) = spec {
            let (min, max) = (info.min_key_size(), info.max_key_size());
            if bits < min || (max > 0 && bits > max) {
                return Err(KeyError::Unsupported(format!(
                    "token {label:?} makes RSA keys of {min} to {max} bits, not {bits}"
                )));
            }
        }
    }
    if !needs.sign.iter().any(|m| list.contains(m)) {
        return Err(KeyError::Unsupported(format!(
            "token {label:?} cannot make conex {} signatures: it has none of {}",
            spec.alg().sig_alg(),
            needs
                .sign
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// How an RSA key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPssMode {
    /// `CKM_SHA256_RSA_PKCS_PSS`: the token hashes.
    Combined,
    /// `CKM_RSA_PKCS_PSS` over SHA-256 computed by arca.
    HostHash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SignMech {
    Rsa(RsaPssMode),
    Eddsa,
}

pub(super) fn pss_params() -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: PSS_SALT.into(),
    }
}
