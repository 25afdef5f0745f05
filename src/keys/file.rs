//! placeholder
use super::{KeyError, KeySpec, SecretSource, Signer};
use crate::conex::PublicKey;
use std::fmt;
/// Where a key file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileLocation { /// explicit path
 Path(std::path::PathBuf) }
impl fmt::Display for FileLocation { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { match self { FileLocation::Path(p) => write!(f, "file:{}", p.display()) } } }
/// A key file.
pub struct FileSigner { pk: PublicKey }
impl FileSigner {
 /// open
 pub fn open(_l: &FileLocation, _s: &mut dyn SecretSource) -> Result<Self, KeyError> { Err(KeyError::Unsupported("todo".into())) }
 /// generate
 pub fn generate(_l: &FileLocation, _spec: KeySpec) -> Result<Self, KeyError> { Err(KeyError::Unsupported("todo".into())) }
}
impl Signer for FileSigner { fn public_key(&self) -> &PublicKey { &self.pk } fn sign_raw(&mut self, _m: &[u8]) -> Result<Vec<u8>, KeyError> { Err(KeyError::Unsupported("todo".into())) } fn describe(&self) -> String { "file".into() } }
