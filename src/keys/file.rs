//! Private keys in files, in conex's layout: `<dir>/<id>.sha256=<keyid>.private`
//! (directory 0700, file 0400, PEM PKCS#8; PKCS#1 RSA and encrypted PKCS#8
//! are read too). The default directory is `$HOME/.conex`.

use super::pkcs8::{self as pkcs8_key, PrivateKey as Secret};
use super::{KeyError, KeySpec, SecretRequest, SecretSource, Signer};
use crate::conex::resource::format_time;
use crate::conex::{KeyAlg, PublicKey};
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes};
use ed25519_dalek::Signer as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::LineEnding;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where a key file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileLocation {
    /// An explicit file.
    Path(PathBuf),
    /// A key id in a conex key directory.
    Id {
        /// The key directory (`~/.conex`).
        dir: PathBuf,
        /// The key id.
        id: String,
    },
}

impl fmt::Display for FileLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileLocation::Path(p) => write!(f, "file:{}", p.display()),
            FileLocation::Id { dir, id } => write!(f, "{id} in {}", dir.display()),
        }
    }
}

/// The default conex key directory: `$HOME/.conex`.
pub fn default_dir() -> Result<PathBuf, KeyError> {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".conex"))
        .ok_or_else(|| KeyError::NotFound("HOME is not set: cannot find ~/.conex".into()))
}

fn ferr(path: &Path, reason: impl fmt::Display) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// A private key loaded from a file.
pub struct FileSigner {
    id: String,
    path: PathBuf,
    created: String,
    pk: PublicKey,
    secret: Secret,
}

/// Finds the key file for `id` in `dir`: `<id>.private`, else the single
/// file named `<id>.*.private`.
pub fn find(dir: &Path, id: &str) -> Result<PathBuf, KeyError> {
    let exact = dir.join(format!("{id}.private"));
    if exact.is_file() {
        return Ok(exact);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| ferr(dir, e))?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{id}.")) && n.ends_with(".private"))
        })
        .collect();
    match found.len() {
        0 => Err(KeyError::NotFound(format!(
            "no private key {id} in {} (expected {id}.sha256=….private)",
            dir.display()
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(KeyError::NotFound(format!(
            "several private keys for {id} in {}; remove the stale ones",
            dir.display()
        ))),
    }
}

/// The id of a key file: the file name up to the first `.`.
pub fn id_of_path(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').next().unwrap_or(n).to_string())
        .unwrap_or_default()
}

fn rng() -> getrandom::rand_core::UnwrapErr<getrandom::SysRng> {
    getrandom::rand_core::UnwrapErr(getrandom::SysRng)
}

fn parse_pem(path: &Path, pem: &str, secrets: &mut dyn SecretSource) -> Result<Secret, KeyError> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let pass = secrets.secret(&SecretRequest {
            what: format!("passphrase for {}", path.display()),
            retries_left: None,
            final_try: false,
        })?;
        let doc = pkcs8::EncryptedPrivateKeyInfoRef::try_from(
            pkcs8::der::Document::from_pem(pem)
                .map_err(|e| ferr(path, format!("not a PEM document: {e}")))?
                .1
                .as_bytes(),
        )
        .map_err(|e| ferr(path, format!("not an encrypted PKCS#8 key: {e}")))?
        .decrypt(pass.as_bytes())
        .map_err(|_| KeyError::WrongPin(format!("wrong passphrase for {}", path.display())))?;
        return parse_der(path, doc.as_bytes());
    }
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let k = rsa::RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|e| ferr(path, format!("not a PKCS#1 RSA key: {e}")))?;
        return Ok(Secret::Rsa(Box::new(k)));
    }
    let (label, doc) = pkcs8::der::Document::from_pem(pem)
        .map_err(|e| ferr(path, format!("not a PEM private key: {e}")))?;
    if label != "PRIVATE KEY" {
        return Err(ferr(path, format!("unexpected PEM label {label}")));
    }
    parse_der(path, doc.as_bytes())
}

fn parse_der(path: &Path, der: &[u8]) -> Result<Secret, KeyError> {
    pkcs8_key::decode(der).map_err(|e| ferr(path, e))
}

fn public_of(secret: &Secret) -> Result<PublicKey, KeyError> {
    secret
        .public_key()
        .map_err(|e| KeyError::Policy(e.to_string()))
}

fn mtime(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format_time(d.as_secs() as i64))
        .unwrap_or_else(|| format_time(0))
}

impl FileSigner {
    /// Loads the key at `loc` (asking for a passphrase if it is encrypted).
    pub fn open(
        loc: &FileLocation,
        secrets: &mut dyn SecretSource,
    ) -> Result<FileSigner, KeyError> {
        let path = match loc {
            FileLocation::Path(p) => p.clone(),
            FileLocation::Id { dir, id } => find(dir, id)?,
        };
        let pem = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| ferr(&path, e))?);
        let secret = parse_pem(&path, &pem, secrets)?;
        let pk = public_of(&secret)?;
        pk.validate().map_err(|e| ferr(&path, e))?;
        let id = match loc {
            FileLocation::Id { id, .. } => id.clone(),
            FileLocation::Path(p) => id_of_path(p),
        };
        Ok(FileSigner {
            id,
            created: mtime(&path),
            path,
            pk,
            secret,
        })
    }

    /// Generates a key and writes it in conex's layout (never over an
    /// existing key file).
    pub fn generate(loc: &FileLocation, spec: KeySpec) -> Result<FileSigner, KeyError> {
        let secret = match spec {
            KeySpec::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut())
                    .map_err(|e| KeyError::Device(format!("no randomness: {e}")))?;
                Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeySpec::Rsa(bits) => {
                if bits < crate::conex::key::MIN_RSA_BITS {
                    return Err(KeyError::Policy(format!(
                        "RSA keys need at least 2048 bits, not {bits}"
                    )));
                }
                let k = rsa::RsaPrivateKey::new(&mut rng(), bits)
                    .map_err(|e| KeyError::Device(format!("RSA key generation failed: {e}")))?;
                Secret::Rsa(Box::new(k))
            }
        };
        let pk = public_of(&secret)?;
        let pem: Zeroizing<String> = match &secret {
            Secret::Ed25519(sk) => {
                // PKCS#8 v1 (no public key), as conex and OpenSSL write it
                KeypairBytes {
                    secret_key: sk.to_bytes(),
                    public_key: None,
                }
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Device(e.to_string()))?
            }
            Secret::Rsa(k) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                k.to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| KeyError::Device(e.to_string()))?
            }
        };
        let (dir, id, path) = match loc {
            FileLocation::Id { dir, id } => {
                if let Ok(existing) = find(dir, id) {
                    return Err(KeyError::Exists(format!(
                        "a private key for {id} exists already: {}",
                        existing.display()
                    )));
                }
                let name = format!("{id}.{}.private", pk.key_id());
                (dir.clone(), id.clone(), dir.join(name))
            }
            FileLocation::Path(p) => (
                p.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(".")),
                id_of_path(p),
                p.clone(),
            ),
        };
        write_private(&dir, &path, pem.as_bytes())?;
        Ok(FileSigner {
            id,
            created: mtime(&path),
            path,
            pk,
            secret,
        })
    }

    /// The key id this file belongs to.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The key's creation time (file modification time, as conex uses).
    pub fn created(&self) -> &str {
        &self.created
    }
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.pk.alg
    }
}

/// Writes a private key: directory 0700, file 0400, created exclusively
/// (never replacing a file) and synced.
pub fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    std::fs::create_dir_all(dir).map_err(|e| ferr(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ferr(dir, e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(|e| ferr(path, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| {
        let _ = std::fs::remove_file(path);
        ferr(path, e)
    })?;
    Ok(())
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    fn sign_raw(&mut self, msg: &[u8], _: crate::keys::CheckedPath) -> Result<Vec<u8>, KeyError> {
        match &self.secret {
            Secret::Ed25519(sk) => Ok(sk.sign(msg).to_bytes().to_vec()),
            Secret::Rsa(k) => {
                let hashed = Sha256::digest(msg);
                k.sign_with_rng(&mut rng(), rsa::Pss::<Sha256>::new_with_salt(32), &hashed)
                    .map_err(|e| KeyError::Device(format!("RSA signing failed: {e}")))
            }
        }
    }
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{sign_checked, NoSecrets};

    #[test]
    fn conex_vector_keys_load_and_sign() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/private-keys");
        for id in ["rootA", "rootB", "m1"] {
            let mut s = FileSigner::open(
                &FileLocation::Id {
                    dir: dir.clone(),
                    id: id.into(),
                },
                &mut NoSecrets,
            )
            .unwrap();
            let name = find(&dir, id).unwrap();
            assert!(name.to_string_lossy().contains(&s.pk.key_id().data));
            sign_checked(&mut s, b"hello").unwrap();
        }
    }

    #[test]
    fn generate_writes_conex_layout_and_refuses_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".conex");
        let loc = FileLocation::Id {
            dir: dir.clone(),
            id: "j1".into(),
        };
        let mut s = FileSigner::generate(&loc, KeySpec::Ed25519).unwrap();
        sign_checked(&mut s, b"x").unwrap();
        let meta = std::fs::metadata(s.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o400);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(matches!(
            FileSigner::generate(&loc, KeySpec::Ed25519),
            Err(KeyError::Exists(_))
        ));
        let again = FileSigner::open(&loc, &mut NoSecrets).unwrap();
        assert_eq!(again.public_key(), s.public_key());
    }
}
