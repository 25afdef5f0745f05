//! What the repository commands share: opening the repository, finding
//! keys, the `created` time, arguments read the same way everywhere.

use super::args::{Common, PubSource};
use crate::conex::resource::{format_time, parse_time};
use crate::conex::{Digest, KeyAlg, PublicKey, Role};
use crate::error::{ArcaError, Result};
use crate::keys::{self, file::FileLocation, KeyLocation, Signer};
use crate::repository::{Counter, Repo};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub(super) use crate::repository::now_secs;

/// The time a command signs with: `--created`, else `SOURCE_DATE_EPOCH`,
/// else now.
pub(super) fn created(given: Option<&str>) -> Result<String> {
    if let Some(c) = given {
        parse_time(c)
            .ok_or_else(|| ArcaError::Input(format!("--created {c:?}: not an RFC 3339 time")))?;
        return Ok(c.to_string());
    }
    if let Ok(s) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = s.trim().parse().map_err(|_| {
            ArcaError::Input(format!("SOURCE_DATE_EPOCH {s:?}: not a number of seconds"))
        })?;
        return Ok(format_time(secs));
    }
    Ok(format_time(now_secs()))
}

impl Common {
    pub(super) fn created(&self) -> Result<String> {
        created(self.created.as_deref())
    }
    pub(super) fn repo(&self) -> Result<Repo> {
        let mut r = Repo::new(self.repository.clone(), self.created()?, |n| {
            eprintln!("arca: {n}")
        });
        r.root_name = self.root.clone();
        r.dry_run = self.dry_run;
        Ok(r)
    }
    pub(super) fn store(&self) -> Result<PathBuf> {
        match &self.key_store {
            Some(d) => Ok(d.clone()),
            None => Ok(keys::file::default_dir()?),
        }
    }
    pub(super) fn location(&self, id: &str, on: Option<&str>) -> Result<KeyLocation> {
        match on {
            Some(on) => Ok(KeyLocation::parse(on)?),
            None => Ok(KeyLocation::File(FileLocation::Id {
                dir: self.store()?,
                id: id.into(),
            })),
        }
    }
    /// Opens the private key, returning it with the `created` time conex
    /// records for it (file keys: the file's modification time).
    pub(super) fn signer(&self, id: &str, on: Option<&str>) -> Result<(Box<dyn Signer>, String)> {
        let loc = self.location(id, on)?;
        let mut secrets = crate::operator::secrets();
        let created = match &loc {
            KeyLocation::File(FileLocation::Id { dir, id }) => {
                file_created(&keys::file::find(dir, id)?)
            }
            KeyLocation::File(FileLocation::Path(p)) => file_created(p),
            _ => self.created()?,
        };
        Ok((keys::open(&loc, secrets.as_mut())?, created))
    }
}

impl Common {
    /// The public key at a location: YubiKeys are read without a PIN.
    pub(super) fn public(&self, id: &str, on: Option<&str>) -> Result<(PublicKey, String)> {
        let loc = self.location(id, on)?;
        if let KeyLocation::Piv(p) = &loc {
            let mut secrets = crate::operator::secrets();
            return Ok((keys::piv::public_key(p, secrets.as_mut())?, self.created()?));
        }
        let (s, created) = self.signer(id, on)?;
        Ok((s.public_key().clone(), created))
    }
}

pub(super) fn file_created(p: &std::path::Path) -> String {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format_time(d.as_secs() as i64))
        .unwrap_or_else(|| format_time(0))
}

pub(super) fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        ArcaError::Input(format!(
            "--role {s:?}: expected maintainer (janitor), snapshot or timestamp"
        ))
    })
}

/// Trust anchors as given on the command line or pasted at a prompt: each
/// string may hold several, comma-separated (`-t a,b` or `-t a -t b`), with
/// spaces around them. A malformed anchor is bad command-line input (exit 2).
pub(crate) fn parse_anchors(v: &[String]) -> Result<BTreeSet<Digest>> {
    v.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let shown = crate::conex::shown_max(a, 80);
            if !a.starts_with("sha256=") {
                return Err(ArcaError::Input(format!(
                    "trust anchor \"{shown}\": expected sha256=<64 hex digits>"
                )));
            }
            Digest::parse_key_hash(a).map_err(|_| {
                ArcaError::Input(format!(
                    "trust anchor \"{shown}\": expected sha256=<64 hex digits>"
                ))
            })
        })
        .collect()
}

pub(super) fn read_pub(src: &PubSource, common: &Common) -> Result<PublicKey> {
    if let Some(f) = &src.key_data {
        let text = std::fs::read_to_string(f).map_err(|e| ArcaError::io(f, e))?;
        let text = text.trim_end_matches('\n');
        let pk = match &src.key_alg {
            Some(a) => PublicKey {
                alg: KeyAlg::parse(a).ok_or_else(|| {
                    ArcaError::Input(format!("--key-algorithm {a:?}: rsa or ed25519"))
                })?,
                data: text.to_string(),
            },
            None => PublicKey::parse_conex(text).map_err(|e| e.in_file(f.display()))?,
        };
        pk.validate()
            .map_err(|e| ArcaError::Input(format!("{}: {e}", f.display())))?;
        return Ok(pk);
    }
    Ok(common.public(&src.id, src.on.as_deref())?.0)
}

/// `--no-incr` for targets, snapshot and timestamp files.
pub(super) fn file_counter(no_incr: bool) -> Counter {
    if no_incr {
        Counter::Keep
    } else {
        Counter::Increment
    }
}
