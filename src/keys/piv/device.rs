//! Error words for PC/SC and `yubikey` failures, and finding the device.

use super::location::{valid_slot, PivLocation};
use super::INSERT_POLLS;
use crate::keys::{KeyError, SecretSource};
use std::time::Duration;
use yubikey::piv::SlotId;
use yubikey::YubiKey;

fn pcsc_words(e: pcsc::Error) -> String {
    match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
            "no PC/SC service (pcscd) is running".into()
        }
        pcsc::Error::NoReadersAvailable => "no smart card reader or YubiKey is connected".into(),
        pcsc::Error::RemovedCard | pcsc::Error::ResetCard | pcsc::Error::NoSmartcard => {
            "the YubiKey was removed or reset while arca was using it".into()
        }
        pcsc::Error::SharingViolation => {
            "another program holds the YubiKey exclusively (close it and retry)".into()
        }
        other => format!("PC/SC error: {other}"),
    }
}

/// Maps a `yubikey` crate error to one line a person understands.
pub(super) fn yk_err(e: yubikey::Error, what: &str) -> KeyError {
    use yubikey::Error as E;
    match e {
        E::PcscError { inner: Some(p) } => {
            let words = pcsc_words(p);
            if matches!(p, pcsc::Error::NoService | pcsc::Error::ServiceStopped) {
                KeyError::Device(words)
            } else {
                KeyError::Device(format!("{what}: {words}"))
            }
        }
        E::PcscError { inner: None } => KeyError::Device(format!("{what}: PC/SC error")),
        E::WrongPin { tries } => KeyError::WrongPin(format!(
            "{what}: wrong PIN, {tries} tr{} left",
            if tries == 1 { "y" } else { "ies" }
        )),
        E::PinLocked => KeyError::PinLocked(format!(
            "{what}: the PIN or PUK is blocked; unblock the PIN with the PUK (ykman piv access unblock-pin)"
        )),
        E::AuthenticationError => KeyError::Device(format!(
            "{what}: the YubiKey refused (security status not satisfied: PIN or management key not accepted)"
        )),
        E::NotSupported | E::AlgorithmError => {
            KeyError::Unsupported(format!("{what}: not supported by this YubiKey"))
        }
        E::NotFound => KeyError::NotFound(format!("{what}: not found on the YubiKey")),
        other => KeyError::Device(format!("{what}: {other}")),
    }
}

pub(super) fn pin_locked(serial: u32) -> KeyError {
    KeyError::PinLocked(format!(
        "the PIN of YubiKey {serial} is blocked after too many wrong tries; unblock it with the \
         PUK (ykman piv access unblock-pin), or reset the PIV application if the PUK is blocked too"
    ))
}

pub(super) fn slot_id(slot: u8) -> Result<SlotId, KeyError> {
    SlotId::try_from(slot)
        .ok()
        .filter(|_| valid_slot(slot))
        .ok_or_else(|| KeyError::Location {
            location: format!("slot={slot:02x}"),
            reason: "not a PIV key slot".into(),
        })
}

/// Every YubiKey PC/SC can see (none when no reader is connected), and
/// how many readers had a card another program holds exclusively.
pub(super) fn enumerate() -> Result<(Vec<YubiKey>, usize), KeyError> {
    let no_readers = |e: &yubikey::Error| {
        matches!(
            e,
            yubikey::Error::PcscError {
                inner: Some(pcsc::Error::NoReadersAvailable)
            }
        )
    };
    let mut ctx = match yubikey::reader::Context::open() {
        Ok(c) => c,
        Err(e) if no_readers(&e) => return Ok((vec![], 0)),
        Err(e) => return Err(yk_err(e, "looking for YubiKeys")),
    };
    let readers = match ctx.iter() {
        Ok(r) => r,
        Err(e) if no_readers(&e) => return Ok((vec![], 0)),
        Err(e) => return Err(yk_err(e, "looking for YubiKeys")),
    };
    let mut found = vec![];
    let mut busy = 0;
    for reader in readers {
        match reader.open() {
            Ok(yk) => found.push(yk),
            Err(yubikey::Error::PcscError {
                inner: Some(pcsc::Error::SharingViolation),
            }) => busy += 1,
            Err(_) => {}
        }
    }
    Ok((found, busy))
}

pub(super) fn release(yk: YubiKey) {
    // Leave the card as it is (the default on drop resets it).
    let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
}

/// Finds the YubiKey `loc` names, asking the person to insert it when it is
/// missing and looking again a few times.
pub(super) fn find_device(
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
) -> Result<YubiKey, KeyError> {
    let mut polls = 0;
    loop {
        let (mut found, busy) = enumerate()?;
        let missing = match loc.serial {
            Some(serial) => {
                if let Some(i) = found.iter().position(|yk| yk.serial().0 == serial) {
                    let yk = found.swap_remove(i);
                    found.into_iter().for_each(release);
                    return Ok(yk);
                }
                format!("insert the YubiKey with serial {serial}")
            }
            None => match found.len() {
                0 => "insert the YubiKey".to_string(),
                1 => return Ok(found.remove(0)),
                _ => {
                    let serials: Vec<String> =
                        found.iter().map(|yk| yk.serial().to_string()).collect();
                    found.into_iter().for_each(release);
                    return Err(KeyError::Device(format!(
                        "several YubiKeys are connected (serials {}); add serial=… to the location",
                        serials.join(", ")
                    )));
                }
            },
        };
        found.into_iter().for_each(release);
        if polls == INSERT_POLLS {
            if busy > 0 {
                return Err(KeyError::Device(
                    "a smart card is held exclusively by another program (often gpg's \
                     scdaemon: gpgconf --kill scdaemon); close it and retry"
                        .into(),
                ));
            }
            return Err(KeyError::NotFound(match loc.serial {
                Some(s) => format!("no YubiKey with serial {s} is connected"),
                None => "no YubiKey is connected".into(),
            }));
        }
        if polls == 0 {
            secrets.notice(&missing);
        }
        polls += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub(super) fn version_at_least(yk: &YubiKey, major: u8, minor: u8) -> bool {
    let v = yk.version();
    (v.major, v.minor) >= (major, minor)
}
