//! The one decoder of clear PKCS#8 private keys, for key files
//! ([`super::file`]) and the online keys a bundle carries.
//!
//! Ed25519 (RFC 8410: version 1, or version 2 with the public key, which
//! must be the private key's) and RSA are accepted; anything else is refused.

use crate::conex::key::KeyDataError;
use crate::conex::PublicKey;
use ed25519_dalek::pkcs8::KeypairBytes;

/// A private key decoded from PKCS#8.
pub enum PrivateKey {
    /// An Ed25519 key.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// An RSA key.
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// Why a PKCS#8 document is not a key arca takes. The caller adds the file.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs8Error {
    /// A version 2 Ed25519 key whose public key is not the private key's.
    #[error("the embedded Ed25519 public key does not match the private key")]
    Ed25519Mismatch,
    /// Neither an Ed25519 nor an RSA key (the RSA decoder's reason).
    #[error("neither an Ed25519 nor an RSA PKCS#8 key: {0}")]
    Unsupported(String),
}

/// Decodes a clear PKCS#8 DER private key; an Ed25519 key's embedded public
/// key, when present, must match its private key.
pub fn decode(der: &[u8]) -> Result<PrivateKey, Pkcs8Error> {
    if let Ok(kp) = KeypairBytes::from_pkcs8_der(der) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&kp.secret_key);
        if let Some(pk) = kp.public_key {
            if pk.to_bytes() != sk.verifying_key().to_bytes() {
                return Err(Pkcs8Error::Ed25519Mismatch);
            }
        }
        return Ok(PrivateKey::Ed25519(Box::new(sk)));
    }
    use rsa::pkcs8::DecodePrivateKey as _;
    rsa::RsaPrivateKey::from_pkcs8_der(der)
        .map(|k| PrivateKey::Rsa(Box::new(k)))
        .map_err(|e| Pkcs8Error::Unsupported(e.to_string()))
}

impl PrivateKey {
    /// The conex public key of this private key.
    pub fn public_key(&self) -> Result<PublicKey, KeyDataError> {
        match self {
            PrivateKey::Ed25519(sk) => Ok(PublicKey::from_ed25519(&sk.verifying_key().to_bytes())),
            PrivateKey::Rsa(k) => PublicKey::from_rsa(&k.to_public_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, PublicKeyBytes};

    fn ed25519_v2(seed: [u8; 32], public: [u8; 32]) -> Vec<u8> {
        KeypairBytes {
            secret_key: seed,
            public_key: Some(PublicKeyBytes(public)),
        }
        .to_pkcs8_der()
        .unwrap()
        .as_bytes()
        .to_vec()
    }

    #[test]
    fn ed25519_embedded_key_must_match() {
        let seed = [7u8; 32];
        let own = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32])
            .verifying_key()
            .to_bytes();
        let k = decode(&ed25519_v2(seed, own)).unwrap();
        assert_eq!(k.public_key().unwrap(), PublicKey::from_ed25519(&own));
        let e = decode(&ed25519_v2(seed, other)).err().unwrap();
        assert!(matches!(e, Pkcs8Error::Ed25519Mismatch), "{e}");
        let e = decode(b"\x30\x03\x02\x01\x00").err().unwrap();
        assert!(
            e.to_string()
                .starts_with("neither an Ed25519 nor an RSA PKCS#8 key: "),
            "{e}"
        );
    }
}
