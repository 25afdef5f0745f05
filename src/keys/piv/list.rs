//! Listing YubiKeys and their slots, and the probe preflight makes.

use super::device::{enumerate, release};
use super::location::PivLocation;
use super::pubkey::{alg_name, conex_public_key, slot_key};
use crate::keys::KeyError;
use serde::Serialize;
use yubikey::{PinPolicy, TouchPolicy};

/// A YubiKey seen by [`list`].
#[derive(Clone, Debug, Serialize)]
pub struct PivDeviceInfo {
    /// PC/SC reader name.
    pub reader: String,
    /// Serial number.
    pub serial: u32,
    /// Firmware version.
    pub firmware: String,
    /// PIN tries left.
    pub pin_retries: Option<u8>,
    /// Slots holding a key.
    pub slots: Vec<PivSlotInfo>,
}

/// A slot holding a key.
#[derive(Clone, Debug, Serialize)]
pub struct PivSlotInfo {
    /// Slot (`9c`).
    pub slot: String,
    /// Algorithm (`ed25519`, `rsa2048`, `ecdsa-p256`…).
    pub algorithm: String,
    /// PIN policy (`always`, `once`, `never`, `default`).
    pub pin_policy: Option<String>,
    /// Touch policy (`always`, `cached`, `never`, `default`).
    pub touch_policy: Option<String>,
    /// Whether the key was generated on the YubiKey (not imported).
    pub generated_on_device: Option<bool>,
    /// Whether conex can use the key (RSA ≥ 2048 or Ed25519).
    pub usable_for_conex: bool,
    /// Its conex key id, when usable.
    pub key_id: Option<String>,
}

fn pin_policy_name(p: PinPolicy) -> &'static str {
    match p {
        PinPolicy::Default => "default",
        PinPolicy::Never => "never",
        PinPolicy::Once => "once",
        PinPolicy::Always => "always",
    }
}

fn touch_policy_name(t: TouchPolicy) -> &'static str {
    match t {
        TouchPolicy::Default => "default",
        TouchPolicy::Never => "never",
        TouchPolicy::Always => "always",
        TouchPolicy::Cached => "cached",
    }
}

/// Lists the connected YubiKeys and their key slots (no PIN needed).
pub fn list() -> Result<Vec<PivDeviceInfo>, KeyError> {
    let mut out = vec![];
    for mut yk in enumerate()?.0 {
        let serial = yk.serial().0;
        let mut slots = vec![];
        let candidates = [0x9a, 0x9c, 0x9d, 0x9e].into_iter().chain(0x82..=0x95);
        for slot in candidates {
            let key = match slot_key(&mut yk, slot) {
                Ok(Some(k)) => k,
                Ok(None) => continue,
                Err(KeyError::Unsupported(_)) => break,
                Err(e) => return Err(e),
            };
            let pk = key
                .public
                .as_ref()
                .and_then(|spki| conex_public_key(key.alg, spki, "").ok());
            slots.push(PivSlotInfo {
                slot: format!("{slot:02x}"),
                algorithm: alg_name(key.alg).into(),
                pin_policy: key.policy.map(|(p, _)| pin_policy_name(p).into()),
                touch_policy: key.policy.map(|(_, t)| touch_policy_name(t).into()),
                generated_on_device: key.generated,
                usable_for_conex: pk.is_some(),
                key_id: pk.map(|k| k.key_id().to_string()),
            });
        }
        let pin_retries = yk.get_pin_retries().ok();
        out.push(PivDeviceInfo {
            reader: yk.name().to_string(),
            serial,
            firmware: yk.version().to_string(),
            pin_retries,
            slots,
        });
        release(yk);
    }
    Ok(out)
}

/// Checks a YubiKey for the location is present, without a PIN; describes
/// it for preflight lists.
pub fn probe(loc: &PivLocation) -> Result<String, KeyError> {
    let devices = list()?;
    let d = match loc.serial {
        Some(s) => devices.iter().find(|d| d.serial == s),
        None => devices.first(),
    };
    match d {
        Some(d) => Ok(format!(
            "YubiKey serial {} firmware {}, PIN tries left {:?}",
            d.serial, d.firmware, d.pin_retries
        )),
        None => Err(KeyError::NotFound(match loc.serial {
            Some(s) => format!("insert the YubiKey with serial {s}"),
            None => "no YubiKey is present".into(),
        })),
    }
}
