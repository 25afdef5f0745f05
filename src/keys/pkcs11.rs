//! PKCS#11 tokens (to be implemented).
use super::{KeyError, KeySpec, SecretSource, Signer};
use crate::conex::PublicKey;
use std::fmt;

/// An RFC 7512 PKCS#11 URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The URI text.
    pub raw: String,
}
impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI.
    pub fn parse(s: &str) -> Result<Pkcs11Uri, KeyError> {
        Ok(Pkcs11Uri { raw: s.into() })
    }
}
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
/// A key on a PKCS#11 token.
pub struct Pkcs11Signer {
    pk: PublicKey,
}
impl Pkcs11Signer {
    /// Opens an existing key.
    pub fn open(_u: &Pkcs11Uri, _s: &mut dyn SecretSource) -> Result<Self, KeyError> {
        Err(KeyError::Unsupported("pkcs11 not yet implemented".into()))
    }
    /// Generates a key on the token.
    pub fn generate(_u: &Pkcs11Uri, _spec: KeySpec, _s: &mut dyn SecretSource) -> Result<Self, KeyError> {
        Err(KeyError::Unsupported("pkcs11 not yet implemented".into()))
    }
}
impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    fn sign_raw(&mut self, _msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unsupported("pkcs11 not yet implemented".into()))
    }
    fn describe(&self) -> String {
        "pkcs11".into()
    }
}
