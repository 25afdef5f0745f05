//! The PIV signer: opening, generating and signing with slot keys.

use super::device::{find_device, release, slot_id, version_at_least, yk_err};
use super::location::{PivLocation, PivTouch};
use super::mgm::{authenticate_mgm, MgmSource};
use super::pin::{unlock, verify_pin};
use super::pss::emsa_pss_sha256;
use super::pubkey::{alg_name, conex_public_key, slot_key};
use super::MAX_ED25519_MESSAGE;
use crate::conex::{KeyAlg, PublicKey};
use crate::keys::{KeyError, KeySpec, SecretSource, Signer};
use yubikey::piv::{self, AlgorithmId};
use yubikey::{PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

/// Reads the conex public key of the key in `loc`'s slot without the PIN
/// (for `arca key pub`).
pub fn public_key(
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
) -> Result<PublicKey, KeyError> {
    let mut yk = find_device(loc, secrets)?;
    let serial = yk.serial().0;
    let where_ = format!("slot {:02x} of YubiKey {serial}", loc.slot);
    let key = slot_key(&mut yk, loc.slot)?
        .ok_or_else(|| KeyError::NotFound(format!("{where_} holds no key")))?;
    let public = key
        .public
        .as_ref()
        .ok_or_else(|| KeyError::Device(format!("{where_}: the public key is not reported")))?;
    let pk = conex_public_key(key.alg, public, &where_)?;
    release(yk);
    Ok(pk)
}

/// A key in a YubiKey PIV slot.
pub struct PivSigner {
    yk: YubiKey,
    loc: PivLocation,
    slot: u8,
    alg: AlgorithmId,
    pk: PublicKey,
    pin: Zeroizing<String>,
    touch: bool,
}

impl PivSigner {
    /// Opens the key in `loc`'s slot: finds the YubiKey, reads the slot's
    /// public key, and checks the PIN once (it is verified again right
    /// before every signature).
    pub fn open(loc: &PivLocation, secrets: &mut dyn SecretSource) -> Result<Self, KeyError> {
        let mut yk = find_device(loc, secrets)?;
        let serial = yk.serial().0;
        let where_ = format!("slot {:02x} of YubiKey {serial}", loc.slot);
        let key = slot_key(&mut yk, loc.slot)?.ok_or_else(|| {
            KeyError::NotFound(format!(
                "{where_} holds no key; generate one with arca (piv:serial={serial};slot={:02x})",
                loc.slot
            ))
        })?;
        let public = key
            .public
            .as_ref()
            .ok_or_else(|| KeyError::Device(format!("{where_}: the public key is not reported")))?;
        let pk = conex_public_key(key.alg, public, &where_)?;
        let touch = !matches!(
            key.policy,
            Some((_, TouchPolicy::Never)) | Some((_, TouchPolicy::Default))
        );
        let pin = unlock(&mut yk, loc, secrets)?;
        if touch {
            secrets.notice(&format!(
                "YubiKey {serial} needs a touch for signatures with slot {:02x}: touch it when it blinks",
                loc.slot
            ));
        }
        Ok(PivSigner {
            loc: loc.with_serial(serial),
            slot: loc.slot,
            alg: key.alg,
            pk,
            pin,
            touch,
            yk,
        })
    }

    /// Generates a key in `loc`'s slot (PIN policy always, touch policy from
    /// the location). Refuses to overwrite a slot that holds a key.
    pub fn generate(
        loc: &PivLocation,
        spec: KeySpec,
        secrets: &mut dyn SecretSource,
    ) -> Result<Self, KeyError> {
        let mut yk = find_device(loc, secrets)?;
        let serial = yk.serial().0;
        let version = yk.version();
        let new57 = version_at_least(&yk, 5, 7);
        let alg = match spec {
            KeySpec::Ed25519 if new57 => AlgorithmId::Ed25519,
            KeySpec::Ed25519 => {
                return Err(KeyError::Unsupported(format!(
                    "Ed25519 in PIV needs YubiKey firmware 5.7 or later; YubiKey {serial} has \
                     {version}; use rsa2048"
                )))
            }
            KeySpec::Rsa(2048) => AlgorithmId::Rsa2048,
            KeySpec::Rsa(3072) if new57 => AlgorithmId::Rsa3072,
            KeySpec::Rsa(4096) if new57 => AlgorithmId::Rsa4096,
            KeySpec::Rsa(bits @ (3072 | 4096)) => {
                return Err(KeyError::Unsupported(format!(
                    "RSA-{bits} in PIV needs YubiKey firmware 5.7 or later; YubiKey {serial} has \
                     {version}; use rsa2048"
                )))
            }
            KeySpec::Rsa(bits) if bits < 2048 => {
                return Err(KeyError::Policy(format!(
                    "RSA-{bits} is too small for conex (at least 2048 bits)"
                )))
            }
            KeySpec::Rsa(bits) => {
                return Err(KeyError::Unsupported(format!(
                    "a YubiKey makes RSA keys of 2048, 3072 or 4096 bits, not {bits}"
                )))
            }
        };
        let where_ = format!("slot {:02x} of YubiKey {serial}", loc.slot);
        if let Some(existing) = slot_key(&mut yk, loc.slot)? {
            return Err(KeyError::Exists(format!(
                "{where_} already holds an {} key; arca does not overwrite keys (pick another slot)",
                alg_name(existing.alg)
            )));
        }
        let pin = unlock(&mut yk, loc, secrets)?;
        if authenticate_mgm(&mut yk, secrets)? == MgmSource::FactoryDefault {
            secrets.notice(&format!(
                "YubiKey {serial} still uses the factory management key; run `arca piv setup` to \
                 replace it and the default PIN/PUK"
            ));
        }
        let spki = piv::generate(
            &mut yk,
            slot_id(loc.slot)?,
            alg,
            PinPolicy::Always,
            loc.touch.policy(),
        )
        .map_err(|e| yk_err(e, &format!("generating a key in {where_}")))?;
        let pk = conex_public_key(alg, &spki, &where_)?;
        Ok(PivSigner {
            loc: loc.with_serial(serial),
            slot: loc.slot,
            alg,
            pk,
            pin,
            touch: loc.touch != PivTouch::Never,
            yk,
        })
    }

    /// Serial number of the YubiKey.
    pub fn serial(&self) -> u32 {
        self.yk.serial().0
    }

    /// Firmware version of the YubiKey (`5.7.1`).
    pub fn firmware(&self) -> String {
        self.yk.version().to_string()
    }

    /// The location with the serial filled in.
    pub fn location(&self) -> &PivLocation {
        &self.loc
    }

    fn sign_input(&self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self.pk.alg {
            KeyAlg::Ed25519 => {
                if msg.len() > MAX_ED25519_MESSAGE || msg.len() == 255 {
                    let why = if msg.len() == 255 {
                        "the yubikey crate cannot encode an Ed25519 message of exactly 255 bytes"
                            .to_string()
                    } else {
                        format!(
                            "the yubikey crate sends at most {MAX_ED25519_MESSAGE} bytes for an Ed25519 signature"
                        )
                    };
                    return Err(KeyError::Unsupported(format!(
                        "cannot sign this {}-byte message with the Ed25519 key in {}: {why}; use an \
                         RSA key on the YubiKey (arca pads RSA-PSS on the host, any length works)",
                        msg.len(),
                        self.describe()
                    )));
                }
                Ok(Zeroizing::new(msg.to_vec()))
            }
            KeyAlg::Rsa => {
                let bits = self.pk.bits().ok_or_else(|| {
                    KeyError::Device(format!("{}: unreadable RSA public key", self.describe()))
                })?;
                let mut salt = [0u8; 32];
                getrandom::fill(&mut salt).map_err(|e| {
                    KeyError::Device(format!("no randomness for the PSS salt: {e}"))
                })?;
                Ok(Zeroizing::new(emsa_pss_sha256(msg, bits, &salt)?))
            }
        }
    }
}

impl Signer for PivSigner {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    fn sign_raw(&mut self, msg: &[u8], _: crate::keys::CheckedPath) -> Result<Vec<u8>, KeyError> {
        let input = self.sign_input(msg)?;
        // PIN policy "always": the PIN right before each signature.
        verify_pin(&mut self.yk, &self.pin)?;
        let serial = self.serial();
        let sig =
            piv::sign_data(&mut self.yk, &input, self.alg, slot_id(self.slot)?).map_err(
                |e| match e {
                    yubikey::Error::AuthenticationError => KeyError::Device(format!(
                    "YubiKey {serial} refused to sign: security status not satisfied (the PIN was \
                     not accepted for this signature{})",
                    if self.touch { ", or the YubiKey was not touched" } else { "" }
                )),
                    yubikey::Error::GenericError if self.touch => KeyError::Device(format!(
                        "YubiKey {serial} did not sign; it needs a touch within 15 seconds of the \
                     request: touch it when it blinks and try again"
                    )),
                    e => yk_err(e, &format!("signing with {}", self.describe())),
                },
            )?;
        let mut sig = sig.to_vec();
        if self.pk.alg == KeyAlg::Rsa {
            let k = input.len();
            if sig.len() < k {
                let mut padded = vec![0u8; k - sig.len()];
                padded.extend_from_slice(&sig);
                sig = padded;
            }
        }
        Ok(sig)
    }

    fn describe(&self) -> String {
        self.loc.to_string()
    }
}
