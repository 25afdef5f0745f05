//! The conex 1.0 model: wire values and their canonical strings, the on-disk
//! opam-file-format syntax, keys, quorum expressions, resources and
//! verification. This module imports nothing else of arca.

pub mod expr;
pub mod key;
pub mod opam;
pub mod resource;
mod swar;
pub mod targets_fast;
pub mod verify;
pub mod wire;

pub use expr::{Expr, KeyRef};
pub use key::{Digest, KeyAlg, PublicKey, SigAlg};
pub use resource::{
    Delegation, Header, Key, Resource, Role, Root, Signature, Snapshot, Target, Targets, Timestamp,
};
pub use wire::Wire;

use std::fmt;

/// An error about conex data: which file, which field, and why.
/// Displayed on one line: `FILE: FIELD: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConexError {
    /// The file, when known.
    pub file: Option<String>,
    /// The field path inside the file (`signed.keys[1]`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl ConexError {
    /// An error about a field.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> ConexError {
        ConexError {
            file: None,
            field: Some(field.into()),
            reason: reason.into(),
        }
    }
    /// An error with no field.
    pub fn msg(reason: impl Into<String>) -> ConexError {
        ConexError {
            file: None,
            field: None,
            reason: reason.into(),
        }
    }
    /// Sets the file if none is set yet.
    pub fn in_file(mut self, file: impl fmt::Display) -> ConexError {
        if self.file.is_none() {
            self.file = Some(file.to_string());
        }
        self
    }
    /// Prefixes the field path with an outer field.
    pub fn within(mut self, outer: &str) -> ConexError {
        self.field = Some(match self.field.take() {
            None => outer.to_string(),
            Some(f) if f.starts_with('[') => format!("{outer}{f}"),
            Some(f) => format!("{outer}.{f}"),
        });
        self
    }
}

impl fmt::Display for ConexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// A string from a file as it is quoted in a message: control characters
/// escaped (a hostile file cannot break the one-line message or send
/// escape sequences to the terminal) and cut to 40 characters.
pub fn shown(s: &str) -> String {
    shown_max(s, 40)
}

/// [`shown`], cut to `max` characters.
pub fn shown_max(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
