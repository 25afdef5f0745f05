//! Setting up a YubiKey for arca: new PIN, PUK and management key.

use super::device::{find_device, release, yk_err};
use super::location::PivLocation;
use super::mgm::{authenticate_mgm, mgm_alg_name, MgmSource};
use super::pin::{check_pin_format, obtain_pin, verify_pin};
use crate::keys::{KeyError, SecretRequest, SecretSource};
use serde::Serialize;
use yubikey::piv::{self, ManagementSlotId, SlotId};
use yubikey::MgmKey;
use zeroize::Zeroizing;

/// What `arca piv setup` did.
#[derive(Clone, Debug, Serialize)]
pub struct PivSetupReport {
    /// Serial number of the YubiKey.
    pub serial: u32,
    /// Firmware version.
    pub firmware: String,
    /// Whether the factory-default management key was in place.
    pub had_default_management_key: bool,
    /// Algorithm of the new management key (`3des`, `aes192`).
    pub management_key_algorithm: String,
}

fn new_secret_twice(
    secrets: &mut dyn SecretSource,
    what: &str,
    factory: &str,
) -> Result<Zeroizing<String>, KeyError> {
    let first = secrets.secret(&SecretRequest {
        what: format!("new {what} (6 to 8 characters)"),
        retries_left: None,
        final_try: false,
    })?;
    check_pin_format(&first, what)?;
    if first.as_str() == factory {
        return Err(KeyError::Policy(format!(
            "the new {what} is the factory default; choose another"
        )));
    }
    let second = secrets.secret(&SecretRequest {
        what: format!("new {what} again"),
        retries_left: None,
        final_try: false,
    })?;
    if first.as_str() != second.as_str() {
        return Err(KeyError::Declined(format!(
            "the two new {what}s differ; nothing changed"
        )));
    }
    Ok(first)
}

/// Prepares a YubiKey for arca: replaces the management key by a random
/// one stored PIN-protected on the YubiKey (detecting the factory default),
/// then changes the PIN and the PUK (new values asked twice). Nothing
/// secret is written to disk.
pub fn setup(
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
) -> Result<PivSetupReport, KeyError> {
    let mut yk = find_device(loc, secrets)?;
    let serial = yk.serial().0;
    let what = format!("current PIN of YubiKey {serial} (factory default 123456)");
    let pin = obtain_pin(&mut yk, loc, secrets, &what)?;
    verify_pin(&mut yk, &pin)?;
    let source = authenticate_mgm(&mut yk, secrets)?;
    if source == MgmSource::FactoryDefault {
        secrets.notice(&format!(
            "YubiKey {serial} has the factory management key; replacing it with a random one \
             stored PIN-protected on the YubiKey"
        ));
    }
    let mut rng = getrandom::SysRng;
    let new_key = MgmKey::generate_for(&yk, &mut rng)
        .map_err(|e| yk_err(e, "making a new management key"))?;
    new_key.set_protected(&mut yk).map_err(|e| {
        yk_err(
            e,
            &format!("storing the new management key on YubiKey {serial}"),
        )
    })?;
    // Check that the stored key opens the YubiKey before touching PIN/PUK.
    let stored = MgmKey::get_protected(&mut yk)
        .map_err(|e| yk_err(e, "reading back the protected management key"))?;
    yk.authenticate(&stored)
        .map_err(|e| yk_err(e, "authenticating with the new management key"))?;

    let new_pin = new_secret_twice(secrets, "PIN", "123456")?;
    yk.change_pin(pin.as_bytes(), new_pin.as_bytes())
        .map_err(|e| match e {
            yubikey::Error::WrongPin { .. } | yubikey::Error::PinLocked => {
                KeyError::WrongPin(format!("YubiKey {serial} did not accept the current PIN"))
            }
            e => yk_err(e, "changing the PIN"),
        })?;

    let puk_tries = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Puk))
        .ok()
        .and_then(|m| m.retries)
        .map(|r| u32::from(r.remaining_count));
    if puk_tries == Some(0) {
        return Err(KeyError::PinLocked(format!(
            "the PUK of YubiKey {serial} is blocked; the PIN was changed, the PUK cannot be"
        )));
    }
    let puk = secrets.secret(&SecretRequest {
        what: format!("current PUK of YubiKey {serial} (factory default 12345678)"),
        retries_left: puk_tries,
        final_try: puk_tries == Some(1),
    })?;
    check_pin_format(&puk, "PUK")?;
    let new_puk = new_secret_twice(secrets, "PUK", "12345678")?;
    yk.change_puk(puk.as_bytes(), new_puk.as_bytes())
        .map_err(|e| match e {
            yubikey::Error::WrongPin { tries } => KeyError::WrongPin(format!(
                "wrong PUK for YubiKey {serial}: {tries} tr{} left (the PIN was changed already)",
                if tries == 1 { "y" } else { "ies" }
            )),
            yubikey::Error::PinLocked => KeyError::PinLocked(format!(
                "the PUK of YubiKey {serial} is blocked (the PIN was changed already)"
            )),
            e => yk_err(e, "changing the PUK"),
        })?;
    let report = PivSetupReport {
        serial,
        firmware: yk.version().to_string(),
        had_default_management_key: source == MgmSource::FactoryDefault,
        management_key_algorithm: mgm_alg_name(new_key.algorithm_id()).into(),
    };
    release(yk);
    Ok(report)
}
