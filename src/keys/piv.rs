//! YubiKey PIV (to be implemented).
use super::{KeyError, KeySpec, SecretSource, Signer};
use crate::conex::PublicKey;
use std::fmt;

/// A `piv:` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivLocation {
    /// The URI text.
    pub raw: String,
}
impl PivLocation {
    /// Parses a `piv:` location.
    pub fn parse(s: &str) -> Result<PivLocation, KeyError> {
        Ok(PivLocation { raw: s.into() })
    }
}
impl fmt::Display for PivLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
/// A key on a YubiKey.
pub struct PivSigner {
    pk: PublicKey,
}
impl PivSigner {
    /// Opens an existing key.
    pub fn open(_u: &PivLocation, _s: &mut dyn SecretSource) -> Result<Self, KeyError> {
        Err(KeyError::Unsupported("piv not yet implemented".into()))
    }
    /// Generates a key on the token.
    pub fn generate(
        _u: &PivLocation,
        _spec: KeySpec,
        _s: &mut dyn SecretSource,
    ) -> Result<Self, KeyError> {
        Err(KeyError::Unsupported("piv not yet implemented".into()))
    }
}
impl Signer for PivSigner {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    fn sign_raw(&mut self, _msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unsupported("piv not yet implemented".into()))
    }
    fn describe(&self) -> String {
        "piv".into()
    }
}

/// Checks the device is present (placeholder until the backend lands).
pub fn probe(_u: &PivLocation) -> Result<String, KeyError> {
    Err(KeyError::Unsupported("piv not yet implemented".into()))
}
