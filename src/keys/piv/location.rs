//! `piv:` key locations and the touch policy.

use crate::keys::KeyError;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use yubikey::TouchPolicy;

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
    pub(super) fn policy(self) -> TouchPolicy {
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

pub(super) fn valid_slot(slot: u8) -> bool {
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

    pub(super) fn with_serial(&self, serial: u32) -> PivLocation {
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
