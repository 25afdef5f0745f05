//! PINs: where they come from, their format, and verifying them.

use super::device::{pin_locked, yk_err};
use super::location::PivLocation;
use crate::keys::{read_secret_file, KeyError, SecretRequest, SecretSource};
use yubikey::YubiKey;
use zeroize::Zeroizing;

pub(super) fn check_pin_format(pin: &str, what: &str) -> Result<(), KeyError> {
    if !(6..=8).contains(&pin.len()) {
        return Err(KeyError::WrongPin(format!(
            "a YubiKey {what} has 6 to 8 characters; nothing was sent to the YubiKey and no try was used"
        )));
    }
    Ok(())
}

/// Asks for (or reads) the PIN, after showing the tries left; the final try
/// needs an explicit yes.
pub(super) fn obtain_pin(
    yk: &mut YubiKey,
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
    what: &str,
) -> Result<Zeroizing<String>, KeyError> {
    let serial = yk.serial().0;
    let retries = yk
        .get_pin_retries()
        .map_err(|e| yk_err(e, "reading the PIN retry counter"))?;
    if retries == 0 {
        return Err(pin_locked(serial));
    }
    let final_try = retries == 1;
    if final_try {
        let q = format!(
            "Only one PIN try is left on YubiKey {serial}; a wrong PIN now blocks it (the PUK can \
             unblock it). Try anyway?"
        );
        if !secrets.confirm_risky(&q)? {
            return Err(KeyError::Declined(format!(
                "not using the last PIN try of YubiKey {serial}"
            )));
        }
    }
    let pin = match &loc.pin_source {
        Some(path) => read_secret_file(path, "PIN file")?,
        None => secrets.secret(&SecretRequest {
            what: what.to_string(),
            retries_left: Some(u32::from(retries)),
            final_try,
        })?,
    };
    check_pin_format(&pin, "PIN")?;
    Ok(pin)
}

pub(super) fn verify_pin(yk: &mut YubiKey, pin: &str) -> Result<(), KeyError> {
    let serial = yk.serial().0;
    match yk.verify_pin(pin.as_bytes()) {
        Ok(()) => Ok(()),
        Err(yubikey::Error::WrongPin { tries: 0 }) | Err(yubikey::Error::PinLocked) => {
            Err(pin_locked(serial))
        }
        Err(yubikey::Error::WrongPin { tries }) => Err(KeyError::WrongPin(format!(
            "wrong PIN for YubiKey {serial}: {tries} tr{} left before the PIN is blocked",
            if tries == 1 { "y" } else { "ies" }
        ))),
        Err(e) => Err(yk_err(e, &format!("verifying the PIN of YubiKey {serial}"))),
    }
}

pub(super) fn unlock(
    yk: &mut YubiKey,
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
) -> Result<Zeroizing<String>, KeyError> {
    let what = format!("PIN of YubiKey {}", yk.serial());
    let pin = obtain_pin(yk, loc, secrets, &what)?;
    verify_pin(yk, &pin)?;
    Ok(pin)
}
