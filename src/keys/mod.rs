//! Where private keys live. Every kind of key is a [`Signer`]; ceremony code
//! never knows which one it holds.
//!
//! * `file:` — PKCS#8 files in conex's `~/.conex` layout ([`file`](mod@file));
//! * `pkcs11:` — keys on PKCS#11 tokens, RFC 7512 URIs ([`pkcs11`]);
//! * `piv:` — YubiKey PIV slots ([`piv`]).
//!
//! Beside them: [`secrets`] (how a backend asks for a PIN or passphrase, and
//! the one reader of PIN and passphrase files) and [`pkcs8`] (the one decoder
//! of clear PKCS#8 keys, for key files and a bundle's online keys).

pub mod file;
pub mod piv;
pub mod pkcs11;
pub mod pkcs8;
pub mod secrets;

use crate::conex::{KeyAlg, PublicKey, SigAlg};
use std::fmt;

pub use self::secrets::{
    read_secret_file, NoSecrets, SecretRequest, SecretSource, MAX_SECRET_BYTES,
};

/// What can go wrong with a private key or a device holding one.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key location string does not parse.
    #[error("key location {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// Why it does not parse.
        reason: String,
    },
    /// No such key.
    #[error("{0}")]
    NotFound(String),
    /// A key with this id/label exists already.
    #[error("{0}")]
    Exists(String),
    /// Reading or writing a key file failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The device (token, YubiKey) refused or failed.
    #[error("{0}")]
    Device(String),
    /// Wrong PIN / passphrase.
    #[error("{0}")]
    WrongPin(String),
    /// The PIN is blocked.
    #[error("{0}")]
    PinLocked(String),
    /// The person declined (e.g. the final PIN try).
    #[error("{0}")]
    Declined(String),
    /// The device lacks something arca needs (mechanism, algorithm).
    #[error("{0}")]
    Unsupported(String),
    /// A key does not satisfy arca's rules (extractable, too small…).
    #[error("{0}")]
    Policy(String),
    /// A signature made by the device did not verify with its public key.
    #[error("the signature just made by {signer} does not verify with its public key: {reason}")]
    SelfCheck {
        /// The signer's description.
        signer: String,
        /// The verification failure.
        reason: String,
    },
}

/// A private key that can sign conex resources.
///
/// Signatures are made only through [`sign_checked`]: `sign_raw` takes a
/// [`CheckedPath`], which only `sign_checked` can make, so any crate may
/// implement a signer but none can get an unchecked signature out of one.
pub trait Signer {
    /// The conex public key of this signer.
    fn public_key(&self) -> &PublicKey;
    /// Signs `msg` with the key's conex algorithm (`rsapss-sha256`: PSS,
    /// SHA-256, MGF1-SHA-256, salt 32 over SHA-256(msg); `ed25519`: pure) and
    /// returns the raw signature bytes. Called by [`sign_checked`] only.
    fn sign_raw(&mut self, msg: &[u8], via: CheckedPath) -> Result<Vec<u8>, KeyError>;
    /// Where the key lives, for people (`pkcs11:token=root-1;object=rootA`).
    fn describe(&self) -> String;
}

/// What [`sign_checked`] hands to [`Signer::sign_raw`]. It cannot be made
/// outside this module, so `sign_raw` cannot be called around the check:
///
/// ```compile_fail
/// fn unchecked(s: &mut dyn arca::keys::Signer) {
///     let _ = s.sign_raw(b"msg", arca::keys::CheckedPath(()));
/// }
/// ```
pub struct CheckedPath(());

/// Signs and verifies the fresh signature with the public key before
/// returning it: every signature arca hands out has been checked.
pub fn sign_checked(signer: &mut dyn Signer, msg: &[u8]) -> Result<(SigAlg, Vec<u8>), KeyError> {
    let sig = signer.sign_raw(msg, CheckedPath(()))?;
    let pk = signer.public_key();
    let alg = pk.sig_alg();
    pk.verify(alg, msg, &sig).map_err(|e| KeyError::SelfCheck {
        signer: signer.describe(),
        reason: e.to_string(),
    })?;
    Ok((alg, sig))
}

/// Which key type to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// Ed25519.
    Ed25519,
    /// RSA with the given modulus size.
    Rsa(usize),
}

impl KeySpec {
    /// The conex key algorithm of this spec.
    pub fn alg(self) -> KeyAlg {
        match self {
            KeySpec::Ed25519 => KeyAlg::Ed25519,
            KeySpec::Rsa(_) => KeyAlg::Rsa,
        }
    }
    /// Parses `ed25519`, `rsa` (4096), `rsa2048`, `rsa3072`, `rsa4096`.
    pub fn parse(s: &str) -> Option<KeySpec> {
        match s {
            "ed25519" => Some(KeySpec::Ed25519),
            "rsa" | "rsa4096" => Some(KeySpec::Rsa(4096)),
            "rsa3072" => Some(KeySpec::Rsa(3072)),
            "rsa2048" => Some(KeySpec::Rsa(2048)),
            _ => None,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Ed25519 => f.write_str("ed25519"),
            KeySpec::Rsa(bits) => write!(f, "rsa{bits}"),
        }
    }
}

/// A parsed key location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLocation {
    /// A conex key file, by id in a conex key directory or by explicit path.
    File(file::FileLocation),
    /// A PKCS#11 token object (RFC 7512 URI).
    Pkcs11(pkcs11::Pkcs11Uri),
    /// A YubiKey PIV slot.
    Piv(piv::PivLocation),
}

impl KeyLocation {
    /// Parses `pkcs11:…`, `piv:…`, `file:PATH`; anything else is an error.
    pub fn parse(s: &str) -> Result<KeyLocation, KeyError> {
        if s.starts_with("pkcs11:") {
            Ok(KeyLocation::Pkcs11(pkcs11::Pkcs11Uri::parse(s)?))
        } else if s.starts_with("piv:") {
            Ok(KeyLocation::Piv(piv::PivLocation::parse(s)?))
        } else if let Some(path) = s.strip_prefix("file:") {
            Ok(KeyLocation::File(file::FileLocation::Path(path.into())))
        } else {
            Err(KeyError::Location {
                location: s.into(),
                reason: "expected pkcs11:…, piv:… or file:PATH".into(),
            })
        }
    }
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::File(l) => write!(f, "{l}"),
            KeyLocation::Pkcs11(u) => write!(f, "{u}"),
            KeyLocation::Piv(p) => write!(f, "{p}"),
        }
    }
}

/// Opens the signer at `loc`, asking `secrets` for PINs as needed.
pub fn open(
    loc: &KeyLocation,
    secrets: &mut dyn SecretSource,
) -> Result<Box<dyn Signer>, KeyError> {
    match loc {
        KeyLocation::File(l) => Ok(Box::new(file::FileSigner::open(l, secrets)?)),
        KeyLocation::Pkcs11(u) => Ok(Box::new(pkcs11::Pkcs11Signer::open(u, secrets)?)),
        KeyLocation::Piv(p) => Ok(Box::new(piv::PivSigner::open(p, secrets)?)),
    }
}

/// Generates a new key at `loc` (label/id for tokens, slot for PIV, path for
/// files) and returns its signer.
pub fn generate(
    loc: &KeyLocation,
    spec: KeySpec,
    secrets: &mut dyn SecretSource,
) -> Result<Box<dyn Signer>, KeyError> {
    match loc {
        KeyLocation::File(l) => Ok(Box::new(file::FileSigner::generate(l, spec)?)),
        KeyLocation::Pkcs11(u) => Ok(Box::new(pkcs11::Pkcs11Signer::generate(u, spec, secrets)?)),
        KeyLocation::Piv(p) => Ok(Box::new(piv::PivSigner::generate(p, spec, secrets)?)),
    }
}

/// Checks that the device of a location is reachable, without a PIN;
/// returns what was found, for preflight lists.
pub fn probe(loc: &KeyLocation) -> Result<String, KeyError> {
    match loc {
        KeyLocation::File(file::FileLocation::Id { dir, .. }) => {
            if dir.is_dir() || !dir.exists() {
                Ok(format!("key directory {}", dir.display()))
            } else {
                Err(KeyError::NotFound(format!(
                    "{} is not a directory",
                    dir.display()
                )))
            }
        }
        KeyLocation::File(file::FileLocation::Path(p)) => {
            let parent = p
                .parent()
                .filter(|x| !x.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if p.is_dir() || parent.is_dir() {
                Ok(format!("key file {}", p.display()))
            } else {
                Err(KeyError::NotFound(format!(
                    "{} does not exist",
                    parent.display()
                )))
            }
        }
        KeyLocation::Pkcs11(u) => pkcs11::probe(u),
        KeyLocation::Piv(p) => piv::probe(p),
    }
}

impl KeyLocation {
    /// A short description for people (`token root-1`, `YubiKey 15835999
    /// slot 9c`), without module paths.
    pub fn short(&self) -> String {
        match self {
            KeyLocation::Pkcs11(u) => match &u.token {
                Some(t) => format!("token {t}"),
                None => "PKCS#11 token".into(),
            },
            KeyLocation::Piv(p) => match p.serial {
                Some(s) => format!("YubiKey {s} slot {:02x}", p.slot),
                None => format!("YubiKey slot {:02x}", p.slot),
            },
            KeyLocation::File(f) => f.to_string(),
        }
    }

    /// The location of key `id` on this device: a key store directory gets
    /// the conex file name, a token URI without `object=` gets `object=id`.
    pub fn for_key(&self, id: &str) -> Result<KeyLocation, KeyError> {
        match self {
            KeyLocation::File(file::FileLocation::Path(p))
                if p.is_dir() || p.to_string_lossy().ends_with('/') =>
            {
                Ok(KeyLocation::File(file::FileLocation::Id {
                    dir: p.clone(),
                    id: id.into(),
                }))
            }
            KeyLocation::Pkcs11(u) => {
                let mut u = u.clone();
                if u.object.is_none() && u.id.is_none() {
                    u.object = Some(id.into());
                }
                Ok(KeyLocation::Pkcs11(u))
            }
            other => Ok(other.clone()),
        }
    }
}
