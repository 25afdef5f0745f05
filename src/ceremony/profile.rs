//! The device profile: machine-local, never committed. Maps holders to key
//! locations.
//!
//! ```toml
//! [holders]
//! alice = "pkcs11:token=root-1;object=rootA?module-path=/usr/lib/softhsm/libsofthsm2.so"
//! bob = "piv:serial=15835999;slot=9c"
//! ```

use super::script::ScriptError;
use crate::keys::KeyLocation;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    holders: BTreeMap<String, toml::Spanned<String>>,
}

/// Holders and where their keys live.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Holder → key location.
    pub holders: BTreeMap<String, KeyLocation>,
}

impl Profile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Profile, ScriptError> {
        Profile::parse(
            &path.display().to_string(),
            &super::script::read_text(path)?,
        )
    }

    /// Parses profile text.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ScriptError> {
        let line = |s: std::ops::Range<usize>| crate::repository::line_of(text, &s);
        let p: ProfileFile = toml::from_str(text).map_err(|e| {
            let (line, msg) = crate::repository::toml_error(text, &e);
            ScriptError {
                file: file.into(),
                line,
                msg,
            }
        })?;
        let mut holders = BTreeMap::new();
        for (h, loc) in p.holders {
            let l = KeyLocation::parse(loc.get_ref()).map_err(|e| ScriptError {
                file: file.into(),
                line: line(loc.span()),
                msg: format!("holder {h}: {e}"),
            })?;
            holders.insert(h, l);
        }
        Ok(Profile { holders })
    }

    /// Checks every needed holder has a device.
    pub fn check_holders(&self, file: &str, needed: &[String]) -> Result<(), ScriptError> {
        let missing: Vec<&String> = needed
            .iter()
            .filter(|h| !self.holders.contains_key(*h))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ScriptError {
                file: file.into(),
                line: None,
                msg: format!(
                    "no device for holder(s) {} in the profile",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    }
}
