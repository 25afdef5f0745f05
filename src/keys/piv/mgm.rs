//! The PIV management key.

use super::device::version_at_least;
use crate::keys::{KeyError, SecretRequest, SecretSource};
use yubikey::piv::{self, ManagementSlotId, SlotAlgorithmId, SlotId};
use yubikey::{MgmAlgorithmId, MgmKey, YubiKey};
use zeroize::Zeroizing;

/// Which management key opened the YubiKey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MgmSource {
    Protected,
    FactoryDefault,
    Typed,
}

fn mgm_algorithm(yk: &mut YubiKey) -> MgmAlgorithmId {
    match piv::metadata(yk, SlotId::Management(ManagementSlotId::Management)) {
        Ok(m) => match m.algorithm {
            SlotAlgorithmId::Management(a) => a,
            _ => MgmAlgorithmId::ThreeDes,
        },
        Err(_) if version_at_least(yk, 5, 7) => MgmAlgorithmId::Aes192,
        Err(_) => MgmAlgorithmId::ThreeDes,
    }
}

pub(super) fn mgm_alg_name(a: MgmAlgorithmId) -> &'static str {
    match a {
        MgmAlgorithmId::ThreeDes => "3des",
        MgmAlgorithmId::Aes128 => "aes128",
        MgmAlgorithmId::Aes192 => "aes192",
        MgmAlgorithmId::Aes256 => "aes256",
    }
}

/// Authenticates with the management key: the PIN-protected one stored on
/// the YubiKey (needs the PIN verified), else the factory default, else one
/// typed by the person (hex).
pub(super) fn authenticate_mgm(
    yk: &mut YubiKey,
    secrets: &mut dyn SecretSource,
) -> Result<MgmSource, KeyError> {
    let serial = yk.serial().0;
    if let Ok(k) = MgmKey::get_protected(yk) {
        if yk.authenticate(&k).is_ok() {
            return Ok(MgmSource::Protected);
        }
    }
    if let Ok(k) = MgmKey::get_default(yk) {
        if yk.authenticate(&k).is_ok() {
            return Ok(MgmSource::FactoryDefault);
        }
    }
    let alg = mgm_algorithm(yk);
    let typed = secrets.secret(&SecretRequest {
        what: format!(
            "management key of YubiKey {serial} ({}, hex)",
            mgm_alg_name(alg)
        ),
        retries_left: None,
        final_try: false,
    })?;
    let bytes = Zeroizing::new(hex::decode(typed.trim()).map_err(|_| {
        KeyError::Device(format!(
            "the management key for YubiKey {serial} must be hex digits"
        ))
    })?);
    let key = MgmKey::from_bytes(&bytes[..], Some(alg)).map_err(|_| {
        KeyError::Device(format!(
            "the management key for YubiKey {serial} has the wrong length for {}",
            mgm_alg_name(alg)
        ))
    })?;
    yk.authenticate(&key).map_err(|_| {
        KeyError::Device(format!(
            "YubiKey {serial} did not accept the management key"
        ))
    })?;
    Ok(MgmSource::Typed)
}
