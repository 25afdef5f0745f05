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

mod attestation;
mod device;
mod list;
mod location;
mod mgm;
mod pin;
mod pss;
mod pubkey;
mod setup;
mod signer;
#[cfg(test)]
mod tests;

pub use self::attestation::{attest, Attestation};
pub use self::list::{list, probe, PivDeviceInfo, PivSlotInfo};
pub use self::location::{PivLocation, PivTouch};
pub use self::setup::{setup, PivSetupReport};
pub use self::signer::{public_key, PivSigner};

/// Longest message the `yubikey` crate (0.9.0-rc.0) can send for an Ed25519
/// signature (its GENERAL AUTHENTICATE buffer is 1024 bytes, 10 of which
/// are TLV headers). A message of exactly 255 bytes cannot be sent either.
pub const MAX_ED25519_MESSAGE: usize = 1014;

/// How many times arca looks again for a missing YubiKey (one second apart)
/// after asking the person to insert it.
const INSERT_POLLS: u32 = 3;
