//! Keys on PKCS#11 tokens (HSMs, smart cards, SoftHSM), named by RFC 7512
//! `pkcs11:` URIs.
//!
//! * A token is chosen by its label and/or serial number, never by slot
//!   index (slot ids are not stable: SoftHSM gives random-looking ones).
//! * A key is chosen by `object=` (CKA_LABEL) and/or `id=` (CKA_ID).
//! * The PKCS#11 module comes from `module-path=` in the URI or from the
//!   `ARCA_PKCS11_MODULE` environment variable.
//! * PINs never appear in URIs (`pin-value` is refused); they come from the
//!   person through a [`SecretSource`](crate::keys::SecretSource) or from a `pin-source=file:PATH`.
//!
//! Generated private keys are `CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE`, not
//! extractable and usable only for signing; arca reads the attributes back
//! after generation and deletes the pair if the token did not honour them.
//!
//! Signatures: RSA with `CKM_SHA256_RSA_PKCS_PSS` (SHA-256, MGF1-SHA-256,
//! salt 32), or `CKM_RSA_PKCS_PSS` over a SHA-256 computed here when the token
//! lacks the combined mechanism; Ed25519 with `CKM_EDDSA` (pure).

mod listing;
mod mechanisms;
mod objects;
mod pin;
mod session;
mod signer;
#[cfg(test)]
mod tests;
mod token_init;
mod uri;

pub use self::listing::{
    can_generate, key_present, list_keys, list_tokens, probe, TokenInfo, TokenKeyInfo,
};
pub use self::mechanisms::{MechanismNeeds, RsaPssMode};
pub use self::objects::KeyFlags;
pub use self::signer::{id_for_label, Pkcs11Signer};
pub use self::token_init::init_token;
pub use self::uri::{ObjectType, Pkcs11Uri};

/// Environment variable naming the PKCS#11 module when the URI has no
/// `module-path`.
pub const MODULE_ENV: &str = "ARCA_PKCS11_MODULE";

/// DER OID 1.3.101.112 (Ed25519), the CKA_EC_PARAMS arca writes.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString "edwards25519", the older CKA_EC_PARAMS form (read only).
const ED25519_NAME: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];
/// conex's RSA-PSS salt length.
const PSS_SALT: u64 = 32;
