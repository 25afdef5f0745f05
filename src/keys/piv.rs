//! Keys in YubiKey PIV slots, driven through the `yubikey` crate over PC/SC
//! (pcscd on Linux).
//!
//! Location syntax: `piv:serial=15835999;slot=9c;touch=always;pin-source=file:PATH`
//! — every attribute is optional:
//!
//! * `serial` picks the YubiKey when several are plugged in (needed then);
//! * `slot` is one of 9a, 9c (default), 9d, 9e, 82–95;
//! * `touch` (`always` default, `cached`, `never`) is the touch policy given
//!   to keys arca generates;
//! * `pin-source=file:PATH` reads the PIN from a file instead of asking.
//!   A PIN itself (`pin=`, `pin-value=`) is refused: it would end up in shell
//!   history and process lists.
//!
//! Signatures:
//!
//! * RSA (2048, and 3072/4096 on firmware ≥ 5.7): the EMSA-PSS block
//!   (SHA-256, MGF1-SHA-256, 32 random salt bytes, emBits = modBits − 1) is
//!   built here and the card performs the raw RSA operation on it.
//! * Ed25519 (firmware ≥ 5.7): the card signs the message itself (pure
//!   Ed25519). The `yubikey` crate 0.9.0-rc.0 sends the message in one
//!   GENERAL AUTHENTICATE built in a 1024-byte buffer: messages of at most
//!   [`MAX_ED25519_MESSAGE`] bytes work, longer ones fail before anything is
//!   sent, and a message of exactly 255 bytes trips an assertion in the crate
//!   (its TLV length bookkeeping is off by one for that size). arca refuses
//!   both cases with a clear error instead of calling the crate. conex
//!   signs whole resource files, which are usually longer than 1014 bytes,
//!   so RSA is the practical choice for YubiKey-held conex keys.
//!
//! Every key arca generates has PIN policy "always": the PIN is verified
//! right before every signature. The PIN typed (or read) at open time is
//! kept in a `Zeroizing` buffer for that. Note that the `yubikey` crate also
//! caches the last verified PIN inside its `YubiKey` handle (a plain
//! `Vec<u8>`, freed when the signer is dropped).

use super::{KeyError, KeySpec, SecretRequest, SecretSource, Signer};
use crate::conex::{KeyAlg, PublicKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, SlotAlgorithmId, SlotId};
use yubikey::{MgmAlgorithmId, MgmKey, PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

/// Longest message the `yubikey` crate (0.9.0-rc.0) can send for an Ed25519
/// signature (its GENERAL AUTHENTICATE buffer is 1024 bytes, 10 of which
/// are TLV headers). A message of exactly 255 bytes cannot be sent either.
pub const MAX_ED25519_MESSAGE: usize = 1014;

/// How many times arca looks again for a missing YubiKey (one second apart)
/// after asking the person to insert it.
const INSERT_POLLS: u32 = 3;

/// Touch policy of keys arca generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PivTouch {
    /// Touch for every signature (default).
    Always,
    /// Touch, cached for 15 seconds.
    Cached,
    /// No touch.
    Never,
}

impl PivTouch {
    fn as_str(self) -> &'static str {
        match self {
            PivTouch::Always => "always",
            PivTouch::Cached => "cached",
            PivTouch::Never => "never",
        }
    }
    fn policy(self) -> TouchPolicy {
        match self {
            PivTouch::Always => TouchPolicy::Always,
            PivTouch::Cached => TouchPolicy::Cached,
            PivTouch::Never => TouchPolicy::Never,
        }
    }
}

/// A `piv:` location: which YubiKey, which slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivLocation {
    /// Serial number of the YubiKey; `None` when exactly one is expected.
    pub serial: Option<u32>,
    /// PIV slot (0x9a, 0x9c, 0x9d, 0x9e, 0x82–0x95).
    pub slot: u8,
    /// Touch policy for keys generated here.
    pub touch: PivTouch,
    /// File holding the PIN (`pin-source=file:PATH`).
    pub pin_source: Option<PathBuf>,
}

fn valid_slot(slot: u8) -> bool {
    matches!(slot, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95)
}

impl PivLocation {
    /// Parses `piv:serial=N;slot=9c;touch=always;pin-source=file:PATH`.
    pub fn parse(s: &str) -> Result<PivLocation, KeyError> {
        // Never echo a PIN someone wrote into the location.
        let shown: String = s
            .split(';')
            .map(|part| match part.split_once('=') {
                Some((k, _)) if k.ends_with("pin") || k.ends_with("pin-value") => {
                    format!("{k}=(hidden)")
                }
                _ => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join(";");
        let err = |reason: String| KeyError::Location {
            location: shown.clone(),
            reason,
        };
        let rest = s
            .strip_prefix("piv:")
            .ok_or_else(|| err("a YubiKey location starts with piv:".into()))?;
        let mut loc = PivLocation {
            serial: None,
            slot: 0x9c,
            touch: PivTouch::Always,
            pin_source: None,
        };
        let mut seen: Vec<&str> = vec![];
        for part in rest.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{part:?} is not attribute=value")))?;
            if seen.contains(&key) {
                return Err(err(format!("{key} is given twice")));
            }
            seen.push(key);
            match key {
                "serial" => {
                    if value.is_empty()
                        || value.len() > 10
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(err(format!("serial {value:?} is not a decimal number")));
                    }
                    loc.serial = Some(
                        value
                            .parse()
                            .map_err(|_| err(format!("serial {value} is too large")))?,
                    );
                }
                "slot" => {
                    let slot = (value.len() == 2)
                        .then(|| u8::from_str_radix(value, 16).ok())
                        .flatten()
                        .ok_or_else(|| err(format!("slot {value:?} is not two hex digits")))?;
                    if !valid_slot(slot) {
                        return Err(err(format!(
                            "slot {value} cannot hold a signing key; use 9a, 9c, 9d, 9e or 82-95"
                        )));
                    }
                    loc.slot = slot;
                }
                "touch" => {
                    loc.touch = match value {
                        "always" => PivTouch::Always,
                        "cached" => PivTouch::Cached,
                        "never" => PivTouch::Never,
                        _ => {
                            return Err(err(format!(
                                "touch={value} is not one of always, cached, never"
                            )))
                        }
                    }
                }
                "pin-source" => {
                    let path = value.strip_prefix("file:").ok_or_else(|| {
                        err("pin-source must be file:PATH (a file holding the PIN)".into())
                    })?;
                    if path.is_empty() {
                        return Err(err("pin-source=file: needs a path".into()));
                    }
                    loc.pin_source = Some(PathBuf::from(path));
                }
                "pin" | "pin-value" => {
                    return Err(err(format!(
                        "{key}= is refused: a PIN written into a key location ends up in shell \
                         history, process lists and logs; use pin-source=file:PATH or type it \
                         when asked"
                    )))
                }
                _ => {
                    return Err(err(format!(
                        "unknown attribute {key:?} (known: serial, slot, touch, pin-source)"
                    )))
                }
            }
        }
        Ok(loc)
    }

    fn with_serial(&self, serial: u32) -> PivLocation {
        PivLocation {
            serial: Some(serial),
            ..self.clone()
        }
    }
}

impl fmt::Display for PivLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("piv:")?;
        if let Some(serial) = self.serial {
            write!(f, "serial={serial};")?;
        }
        write!(f, "slot={:02x}", self.slot)?;
        if self.touch != PivTouch::Always {
            write!(f, ";touch={}", self.touch.as_str())?;
        }
        if let Some(p) = &self.pin_source {
            write!(f, ";pin-source=file:{}", p.display())?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ errors

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
fn yk_err(e: yubikey::Error, what: &str) -> KeyError {
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

fn pin_locked(serial: u32) -> KeyError {
    KeyError::PinLocked(format!(
        "the PIN of YubiKey {serial} is blocked after too many wrong tries; unblock it with the \
         PUK (ykman piv access unblock-pin), or reset the PIV application if the PUK is blocked too"
    ))
}

// ------------------------------------------------------------ the devices

fn slot_id(slot: u8) -> Result<SlotId, KeyError> {
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
fn enumerate() -> Result<(Vec<YubiKey>, usize), KeyError> {
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

fn release(yk: YubiKey) {
    // Leave the card as it is (the default on drop resets it).
    let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
}

/// Finds the YubiKey `loc` names, asking the person to insert it when it is
/// missing and looking again a few times.
fn find_device(loc: &PivLocation, secrets: &mut dyn SecretSource) -> Result<YubiKey, KeyError> {
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

fn version_at_least(yk: &YubiKey, major: u8, minor: u8) -> bool {
    let v = yk.version();
    (v.major, v.minor) >= (major, minor)
}

// -------------------------------------------------------------------- PINs

fn read_pin_file(path: &std::path::Path) -> Result<Zeroizing<String>, KeyError> {
    super::read_secret_file(path, "PIN file")
}

fn check_pin_format(pin: &str, what: &str) -> Result<(), KeyError> {
    if !(6..=8).contains(&pin.len()) {
        return Err(KeyError::WrongPin(format!(
            "a YubiKey {what} has 6 to 8 characters; nothing was sent to the YubiKey and no try was used"
        )));
    }
    Ok(())
}

/// Asks for (or reads) the PIN, after showing the tries left; the final try
/// needs an explicit yes.
fn obtain_pin(
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
        Some(path) => read_pin_file(path)?,
        None => secrets.secret(&SecretRequest {
            what: what.to_string(),
            retries_left: Some(u32::from(retries)),
            final_try,
        })?,
    };
    check_pin_format(&pin, "PIN")?;
    Ok(pin)
}

fn verify_pin(yk: &mut YubiKey, pin: &str) -> Result<(), KeyError> {
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

fn unlock(
    yk: &mut YubiKey,
    loc: &PivLocation,
    secrets: &mut dyn SecretSource,
) -> Result<Zeroizing<String>, KeyError> {
    let what = format!("PIN of YubiKey {}", yk.serial());
    let pin = obtain_pin(yk, loc, secrets, &what)?;
    verify_pin(yk, &pin)?;
    Ok(pin)
}

// ---------------------------------------------------------- management key

/// Which management key opened the YubiKey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MgmSource {
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

fn mgm_alg_name(a: MgmAlgorithmId) -> &'static str {
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
fn authenticate_mgm(
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

// ------------------------------------------------------------- public keys

const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

fn alg_name(a: AlgorithmId) -> &'static str {
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
fn conex_public_key(
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
struct SlotKey {
    alg: AlgorithmId,
    public: Option<SubjectPublicKeyInfoOwned>,
    policy: Option<(PinPolicy, TouchPolicy)>,
    generated: Option<bool>,
}

fn slot_key(yk: &mut YubiKey, slot: u8) -> Result<Option<SlotKey>, KeyError> {
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

// ------------------------------------------------------------ RSA-PSS pad

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-256, MGF1-SHA-256 and the
/// given 32-byte salt, left-padded with zeros to the modulus length so the
/// card can apply the raw RSA operation.
fn emsa_pss_sha256(msg: &[u8], mod_bits: usize, salt: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
    const H_LEN: usize = 32;
    const S_LEN: usize = 32;
    if mod_bits < 8 * (H_LEN + S_LEN + 3) {
        return Err(KeyError::Policy(format!(
            "an RSA modulus of {mod_bits} bits is too small for PSS"
        )));
    }
    let k = mod_bits.div_ceil(8);
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let m_hash = Sha256::digest(msg);
    let mut h = Sha256::new();
    h.update([0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    let h = h.finalize();
    let db_len = em_len - H_LEN - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - S_LEN - 1] = 0x01;
    db[db_len - S_LEN..].copy_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1_sha256(&h, db_len)) {
        *d ^= m;
    }
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = vec![0u8; k - em_len];
    em.extend_from_slice(&db);
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}

// ---------------------------------------------------------------- signer

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

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
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

// ----------------------------------------------------------------- setup

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

// ----------------------------------------------------------- attestation

const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_YUBICO_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_YUBICO_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OBJ_ATTESTATION_CERT: u32 = 0x5f_ff01;

/// A slot's attestation: the certificate the YubiKey issues for the key in
/// the slot, signed by its attestation key (slot F9), and the F9 certificate.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// Serial number of the YubiKey that answered.
    pub serial: u32,
    /// Slot attested.
    pub slot: u8,
    /// The slot's attestation certificate (DER).
    pub certificate: Vec<u8>,
    /// The F9 attestation certificate (DER), the issuer of `certificate`.
    pub intermediate: Vec<u8>,
}

/// Reads the attestation certificate of `loc`'s slot and the YubiKey's F9
/// certificate. Needs no PIN.
pub fn attest(loc: &PivLocation) -> Result<Attestation, KeyError> {
    let mut notices = super::NoSecrets;
    let mut yk = find_device(loc, &mut notices)?;
    let serial = yk.serial().0;
    let where_ = format!("slot {:02x} of YubiKey {serial}", loc.slot);
    let cert = piv::attest(&mut yk, slot_id(loc.slot)?).map_err(|e| match e {
        yubikey::Error::NotSupported => KeyError::Unsupported(format!(
            "YubiKey {serial} does not support attestation (firmware 4.3 or later needed)"
        )),
        _ => KeyError::Device(format!(
            "{where_}: no attestation (the slot is empty or its key was imported, not generated on the YubiKey)"
        )),
    })?;
    let f9 = yk.fetch_object(OBJ_ATTESTATION_CERT).map_err(|e| {
        yk_err(
            e,
            &format!("reading the attestation certificate of YubiKey {serial}"),
        )
    })?;
    let intermediate = unwrap_cert_object(&f9).ok_or_else(|| {
        KeyError::Device(format!(
            "YubiKey {serial}: the F9 attestation certificate object is malformed"
        ))
    })?;
    release(yk);
    Ok(Attestation {
        serial,
        slot: loc.slot,
        certificate: cert.to_vec(),
        intermediate,
    })
}

/// A PIV certificate object is `70 L cert 71 01 info FE 00`; returns `cert`.
fn unwrap_cert_object(obj: &[u8]) -> Option<Vec<u8>> {
    if obj.first() == Some(&0x30) {
        return Some(obj.to_vec());
    }
    if obj.first() != Some(&0x70) {
        return None;
    }
    let (len, hdr) = match *obj.get(1)? {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (*obj.get(2)? as usize, 3),
        0x82 => (((*obj.get(2)? as usize) << 8) | *obj.get(3)? as usize, 4),
        _ => return None,
    };
    obj.get(hdr..hdr + len).map(|c| c.to_vec())
}

impl Attestation {
    fn parse(der: &[u8], what: &str) -> Result<x509_cert::Certificate, KeyError> {
        x509_cert::Certificate::from_der(der)
            .map_err(|e| KeyError::Policy(format!("the {what} does not parse: {e}")))
    }

    /// Checks that the attested key is `pk` (SubjectPublicKeyInfo compared
    /// key by key) and that the attestation certificate is signed by the F9
    /// certificate's key and names it as issuer, and that the serial number
    /// in Yubico's extension (when present) is this YubiKey's.
    ///
    /// Not checked: that the F9 certificate chains to Yubico's PIV root CA
    /// (arca ships no Yubico roots), validity periods, revocation. Without the
    /// chain this shows consistency with the device, not that the device is
    /// a genuine YubiKey.
    pub fn check(&self, pk: &PublicKey) -> Result<(), KeyError> {
        let cert = Attestation::parse(&self.certificate, "attestation certificate")?;
        let f9 = Attestation::parse(&self.intermediate, "F9 attestation certificate")?;
        let tbs = cert.tbs_certificate();
        let where_ = format!("slot {:02x} of YubiKey {}", self.slot, self.serial);

        // 1. The attested key is the key in use.
        let spki = tbs.subject_public_key_info();
        let same = match pk.alg {
            KeyAlg::Ed25519 => {
                let raw = crate::conex::key::decode_b64_strict(&pk.data);
                spki.algorithm.oid == OID_ED25519
                    && raw.is_some()
                    && spki.subject_public_key.as_bytes() == raw.as_deref()
            }
            KeyAlg::Rsa => {
                use rsa::pkcs8::DecodePublicKey;
                let want = rsa::RsaPublicKey::from_public_key_pem(&pk.data).ok();
                let got = spki
                    .to_der()
                    .ok()
                    .and_then(|d| rsa::RsaPublicKey::from_public_key_der(&d).ok());
                want.is_some() && want == got
            }
        };
        if !same {
            return Err(KeyError::Policy(format!(
                "the key attested by {where_} is not the key {}",
                pk.key_id()
            )));
        }

        // 2. Issued by the F9 key.
        let f9_tbs = f9.tbs_certificate();
        let issuer = tbs.issuer().to_der().ok();
        if issuer.is_none() || issuer != f9_tbs.subject().to_der().ok() {
            return Err(KeyError::Policy(format!(
                "the attestation certificate of {where_} does not name the F9 certificate as issuer"
            )));
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| KeyError::Policy(format!("attestation certificate: {e}")))?;
        let sig = cert.signature().as_bytes().ok_or_else(|| {
            KeyError::Policy("attestation certificate: signature is not whole bytes".into())
        })?;
        let f9_spki = f9_tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| KeyError::Policy(format!("F9 certificate: {e}")))?;
        verify_cert_signature(&cert.signature_algorithm().oid, &f9_spki, &tbs_der, sig).map_err(
            |reason| {
                KeyError::Policy(format!(
                    "the attestation certificate of {where_} is not signed by its F9 key: {reason}"
                ))
            },
        )?;

        // 3. The serial number Yubico puts in the certificate.
        if let Some(serial) = self.attested_serial()? {
            if serial != self.serial {
                return Err(KeyError::Policy(format!(
                    "the attestation certificate names YubiKey {serial}, not {}",
                    self.serial
                )));
            }
        }
        Ok(())
    }

    fn extension(&self, oid: &ObjectIdentifier) -> Result<Option<Vec<u8>>, KeyError> {
        let cert = Attestation::parse(&self.certificate, "attestation certificate")?;
        Ok(cert.tbs_certificate().extensions().and_then(|exts| {
            exts.iter()
                .find(|e| e.extn_id == *oid)
                .map(|e| e.extn_value.as_bytes().to_vec())
        }))
    }

    /// The serial number in Yubico's attestation extension, if present.
    pub fn attested_serial(&self) -> Result<Option<u32>, KeyError> {
        let Some(v) = self.extension(&OID_YUBICO_SERIAL)? else {
            return Ok(None);
        };
        let int = x509_cert::der::asn1::UintRef::from_der(&v)
            .map_err(|e| KeyError::Policy(format!("attested serial number: {e}")))?;
        let bytes = int.as_bytes();
        if bytes.len() > 4 {
            return Err(KeyError::Policy(
                "attested serial number is too large".into(),
            ));
        }
        Ok(Some(
            bytes.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)),
        ))
    }

    /// The PIN and touch policy bytes in Yubico's attestation extension
    /// (PIN: 1 never, 2 once, 3 always; touch: 1 never, 2 always, 3 cached).
    pub fn attested_policy(&self) -> Result<Option<(u8, u8)>, KeyError> {
        Ok(self
            .extension(&OID_YUBICO_POLICY)?
            .filter(|v| v.len() == 2)
            .map(|v| (v[0], v[1])))
    }
}

fn verify_cert_signature(
    alg: &ObjectIdentifier,
    issuer_spki: &[u8],
    tbs: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    if *alg == OID_SHA256_RSA {
        use rsa::pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_der(issuer_spki)
            .map_err(|e| format!("F9 key is not RSA: {e}"))?;
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(tbs),
            sig,
        )
        .map_err(|_| "bad signature".to_string())
    } else if *alg == OID_ECDSA_SHA256 {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(issuer_spki)
            .map_err(|e| format!("F9 key is not P-256: {e}"))?;
        let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| "malformed signature")?;
        key.verify(tbs, &sig)
            .map_err(|_| "bad signature".to_string())
    } else if *alg == OID_ECDSA_SHA384 {
        use p384::ecdsa::signature::Verifier;
        use p384::pkcs8::DecodePublicKey;
        let key = p384::ecdsa::VerifyingKey::from_public_key_der(issuer_spki)
            .map_err(|e| format!("F9 key is not P-384: {e}"))?;
        let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| "malformed signature")?;
        key.verify(tbs, &sig)
            .map_err(|_| "bad signature".to_string())
    } else {
        Err(format!("unsupported signature algorithm {alg}"))
    }
}

// ------------------------------------------------------------------ list

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
