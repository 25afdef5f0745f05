//! Ceremony files (`ceremonies/*.toml`): parsed into typed, validated
//! ceremonies. Errors name the file and line.

use crate::conex::{PublicKey, Role};
use crate::keys::KeySpec;
use crate::repository::check_ident;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A root key of a ceremony: its id, who holds it, how it is made.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RootKeySpec {
    /// Key id in the root file.
    pub id: Spanned<String>,
    /// Holder name (the device profile maps it to a device).
    pub holder: Spanned<String>,
    /// `ed25519`, `rsa4096`, `rsa3072`, `rsa2048`.
    #[serde(default = "default_alg")]
    pub algorithm: Spanned<String>,
    /// Use a key that already exists on the device instead of generating.
    #[serde(default)]
    pub existing: bool,
}

fn default_alg() -> Spanned<String> {
    Spanned::new(0..0, "ed25519".to_string())
}

/// A delegated key given by its public key or by a holder's device.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DelegateSpec {
    /// Id (janitor id, snapshot or timestamp file name).
    pub id: Spanned<String>,
    /// The public key, `alg=keydata` as `arca key pub` prints it.
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// Or: the holder whose device has the key.
    #[serde(default)]
    pub holder: Option<Spanned<String>>,
    /// Epoch of the referenced file.
    #[serde(default)]
    pub epoch: u64,
    /// Or: generate the key in memory during the ceremony; it leaves only
    /// encrypted (PKCS#8, passphrase) in the bundle's `online-keys/`.
    #[serde(default)]
    pub generate: bool,
}

/// `kind = "create-root"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CreateRoot {
    /// The ceremony kind (the file's `kind`).
    pub kind: String,
    /// What this ceremony is, for people.
    pub title: String,
    /// Output folder (relative to where arca runs).
    pub output: Spanned<String>,
    /// Root keys and quorum.
    pub root: RootSection,
    /// Janitors (conex maintainers) and their quorum.
    #[serde(default)]
    pub maintainers: Option<MaintainerSection>,
    /// The snapshot key.
    #[serde(default)]
    pub snapshot: Option<DelegateSpec>,
    /// The timestamp key.
    #[serde(default)]
    pub timestamp: Option<DelegateSpec>,
}

/// Root keys and their quorum.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RootSection {
    /// How many root signatures a root needs.
    pub quorum: Spanned<i64>,
    /// The root keys.
    pub keys: Vec<RootKeySpec>,
}

/// Janitors and their quorum.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct MaintainerSection {
    /// How many janitors must sign each package.
    #[serde(default = "one")]
    pub quorum: Spanned<i64>,
    /// The janitors.
    pub janitors: Vec<DelegateSpec>,
}

fn one() -> Spanned<i64> {
    Spanned::new(0..0, 1)
}

/// Root holders who re-sign an existing root: root key id → holder.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Root key id.
    pub id: Spanned<String>,
    /// Holder name.
    pub holder: Spanned<String>,
}

/// `kind = "add-role"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AddRole {
    /// The ceremony kind (the file's `kind`).
    pub kind: String,
    /// Title.
    pub title: String,
    /// The current signed root.
    pub root: Spanned<String>,
    /// Output folder.
    pub output: Spanned<String>,
    /// maintainer (janitor), snapshot or timestamp.
    pub role: Spanned<String>,
    /// Keys to add to the role.
    pub add: Vec<DelegateSpec>,
    /// New quorum of the role.
    #[serde(default)]
    pub quorum: Option<Spanned<i64>>,
    /// Root holders.
    pub holders: Vec<Holder>,
}

/// `kind = "rotate-key"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The ceremony kind (the file's `kind`).
    pub kind: String,
    /// Title.
    pub title: String,
    /// The current signed root.
    pub root: Spanned<String>,
    /// Output folder.
    pub output: Spanned<String>,
    /// `root`, `snapshot`, `timestamp` or `janitor`.
    pub target: Spanned<String>,
    /// The compromised key's id.
    pub compromised: Spanned<String>,
    /// Replacement root key (target = root).
    #[serde(default)]
    pub new_root_key: Option<RootKeySpec>,
    /// Replacement delegated key (other targets).
    #[serde(default)]
    pub replacement: Option<DelegateSpec>,
    /// New root quorum (target = root) or janitor quorum (target = janitor).
    #[serde(default)]
    pub quorum: Option<Spanned<i64>>,
    /// Root holders (the compromised root key never signs).
    pub holders: Vec<Holder>,
}

/// `kind = "bump-epoch"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct BumpEpoch {
    /// The ceremony kind (the file's `kind`).
    pub kind: String,
    /// Title.
    pub title: String,
    /// The current signed root.
    pub root: Spanned<String>,
    /// Output folder.
    pub output: Spanned<String>,
    /// snapshot, timestamp or maintainer.
    pub role: Spanned<String>,
    /// The id whose epoch rises.
    pub id: Spanned<String>,
    /// Root holders.
    pub holders: Vec<Holder>,
}

/// A ceremony file.
#[derive(Debug, Clone)]
pub enum CeremonyFile {
    /// Create a root.
    CreateRoot(CreateRoot),
    /// Add keys to a role.
    AddRole(AddRole),
    /// Replace a compromised key.
    RotateKey(RotateKey),
    /// Raise a role file's epoch after a fast-forward attack.
    BumpEpoch(BumpEpoch),
}

/// A parsed ceremony with where it came from.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The file.
    pub path: PathBuf,
    /// Its bytes (their SHA-256 is the digest witnesses compare).
    pub text: String,
    /// The typed content.
    pub file: CeremonyFile,
}

/// A ceremony or profile problem, with file and line.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScriptError {
    /// The file.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub msg: String,
}

/// Reads a ceremony or profile file, as a [`ScriptError`] when it cannot.
pub fn read_text(path: &Path) -> Result<String, ScriptError> {
    std::fs::read_to_string(path).map_err(|e| ScriptError {
        file: path.display().to_string(),
        line: None,
        msg: e.to_string(),
    })
}

/// The line of a byte span in `text` (None for the empty span of defaults).
pub fn line_of(text: &str, span: &std::ops::Range<usize>) -> Option<usize> {
    if span.start == 0 && span.end == 0 {
        return None;
    }
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// A TOML error as (line, message on one line): the toml crate's messages
/// can span several lines, and arca's errors are one line each.
pub fn toml_error(text: &str, e: &toml::de::Error) -> (Option<usize>, String) {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    (e.span().and_then(|s| line_of(text, &s)), msg)
}

impl Ceremony {
    /// Reads and validates a ceremony file.
    pub fn load(path: &Path) -> Result<Ceremony, ScriptError> {
        Ceremony::parse(path, read_text(path)?)
    }

    /// Parses and validates ceremony text.
    pub fn parse(path: &Path, text: String) -> Result<Ceremony, ScriptError> {
        let file = path.display().to_string();
        let terr = |e: toml::de::Error| {
            let (line, msg) = toml_error(&text, &e);
            ScriptError {
                file: file.clone(),
                line,
                msg,
            }
        };
        let table: toml::Table = toml::from_str(&text).map_err(terr)?;
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.clone(),
            Some(_) => {
                return Err(ScriptError {
                    file,
                    line: None,
                    msg: "kind must be a string".into(),
                })
            }
            None => {
                return Err(ScriptError {
                    file,
                    line: None,
                    msg: "missing kind (create-root, add-role, rotate-key or bump-epoch)".into(),
                })
            }
        };
        let parsed = match kind.as_str() {
            "create-root" => CeremonyFile::CreateRoot(toml::from_str(&text).map_err(terr)?),
            "add-role" => CeremonyFile::AddRole(toml::from_str(&text).map_err(terr)?),
            "rotate-key" => CeremonyFile::RotateKey(toml::from_str(&text).map_err(terr)?),
            "bump-epoch" => CeremonyFile::BumpEpoch(toml::from_str(&text).map_err(terr)?),
            k => {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("kind"))
                    .map(|n| n + 1);
                return Err(ScriptError {
                    file,
                    line,
                    msg: format!(
                        "unknown kind {k:?}: create-root, add-role, rotate-key or bump-epoch"
                    ),
                });
            }
        };
        let c = Ceremony {
            path: path.to_path_buf(),
            text,
            file: parsed,
        };
        c.validate()?;
        Ok(c)
    }

    fn err<T>(
        &self,
        span: &std::ops::Range<usize>,
        msg: impl Into<String>,
    ) -> Result<T, ScriptError> {
        Err(ScriptError {
            file: self.path.display().to_string(),
            line: line_of(&self.text, span),
            msg: msg.into(),
        })
    }

    fn check_id(&self, id: &Spanned<String>) -> Result<(), ScriptError> {
        check_ident(id.get_ref()).or_else(|e| self.err(&id.span(), e.to_string()))
    }

    fn check_delegate(&self, d: &DelegateSpec) -> Result<(), ScriptError> {
        self.check_id(&d.id)?;
        match (&d.key, &d.holder) {
            (None, None) if d.generate => {}
            (Some(k), None) if !d.generate => {
                let pk = PublicKey::parse_conex(k.get_ref())
                    .or_else(|e| self.err(&k.span(), e.reason))?;
                pk.validate()
                    .or_else(|e| self.err(&k.span(), format!("key of {}: {e}", d.id.get_ref())))?;
            }
            (None, Some(_)) if !d.generate => {}
            _ => {
                return self.err(
                    &d.id.span(),
                    format!(
                    "{}: give exactly one of key = \"alg=…\", holder = \"…\" or generate = true",
                    d.id.get_ref()
                ),
                )
            }
        }
        Ok(())
    }

    fn no_generate(&self, d: &DelegateSpec) -> Result<(), ScriptError> {
        if d.generate {
            return self.err(
                &d.id.span(),
                format!(
                    "{}: generate = true is for snapshot and timestamp keys only (janitors hold their own keys)",
                    d.id.get_ref()
                ),
            );
        }
        Ok(())
    }

    fn check_root_key(&self, k: &RootKeySpec) -> Result<(), ScriptError> {
        self.check_id(&k.id)?;
        if KeySpec::parse(k.algorithm.get_ref()).is_none() {
            return self.err(
                &k.algorithm.span(),
                format!(
                    "algorithm {:?}: ed25519, rsa4096, rsa3072 or rsa2048",
                    k.algorithm.get_ref()
                ),
            );
        }
        if k.holder.get_ref().trim().is_empty() {
            return self.err(&k.holder.span(), "holder must not be empty");
        }
        Ok(())
    }

    fn check_output(&self, o: &Spanned<String>) -> Result<(), ScriptError> {
        let p = Path::new(o.get_ref());
        if o.get_ref().is_empty()
            || p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return self.err(&o.span(), "output must be a relative folder without '..' (a ceremony file holds no machine paths)");
        }
        Ok(())
    }

    fn check_holders(&self, hs: &[Holder]) -> Result<(), ScriptError> {
        let mut seen = std::collections::BTreeSet::new();
        for h in hs {
            self.check_id(&h.id)?;
            if !seen.insert(h.id.get_ref().clone()) {
                return self.err(
                    &h.id.span(),
                    format!("root key {} is listed twice", h.id.get_ref()),
                );
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ScriptError> {
        match &self.file {
            CeremonyFile::CreateRoot(c) => {
                self.check_output(&c.output)?;
                let mut ids = std::collections::BTreeSet::new();
                let mut holders = std::collections::BTreeSet::new();
                for k in &c.root.keys {
                    self.check_root_key(k)?;
                    if !ids.insert(k.id.get_ref().clone()) {
                        return self.err(
                            &k.id.span(),
                            format!("root key {} is listed twice", k.id.get_ref()),
                        );
                    }
                    if !holders.insert(k.holder.get_ref().clone()) {
                        return self.err(
                            &k.holder.span(),
                            format!(
                                "holder {} holds two root keys; one key per holder",
                                k.holder.get_ref()
                            ),
                        );
                    }
                }
                let q = *c.root.quorum.get_ref();
                if q < 1 || q > c.root.keys.len() as i64 {
                    return self.err(
                        &c.root.quorum.span(),
                        format!(
                            "root quorum {q} must be between 1 and the {} root key(s)",
                            c.root.keys.len()
                        ),
                    );
                }
                if let Some(m) = &c.maintainers {
                    for j in &m.janitors {
                        self.check_delegate(j)?;
                        self.no_generate(j)?;
                    }
                    let q = *m.quorum.get_ref();
                    if q < 1 || q > m.janitors.len() as i64 {
                        return self.err(
                            &m.quorum.span(),
                            format!(
                                "janitor quorum {q} must be between 1 and the {} janitor(s)",
                                m.janitors.len()
                            ),
                        );
                    }
                }
                for d in c.snapshot.iter().chain(c.timestamp.iter()) {
                    self.check_delegate(d)?;
                }
            }
            CeremonyFile::AddRole(c) => {
                self.check_output(&c.output)?;
                self.check_holders(&c.holders)?;
                if Role::parse(c.role.get_ref()).is_none() {
                    return self.err(
                        &c.role.span(),
                        format!(
                            "role {:?}: maintainer, snapshot or timestamp",
                            c.role.get_ref()
                        ),
                    );
                }
                if c.add.is_empty() {
                    return self.err(&c.role.span(), "add lists no key");
                }
                for d in &c.add {
                    self.check_delegate(d)?;
                    if c.role.get_ref() == "maintainer" || c.role.get_ref() == "janitor" {
                        self.no_generate(d)?;
                    }
                }
            }
            CeremonyFile::RotateKey(c) => {
                self.check_output(&c.output)?;
                self.check_holders(&c.holders)?;
                self.check_id(&c.compromised)?;
                match c.target.get_ref().as_str() {
                    "root" => match &c.new_root_key {
                        Some(k) => self.check_root_key(k)?,
                        None => {
                            return self
                                .err(&c.target.span(), "target = \"root\" needs [new_root_key]")
                        }
                    },
                    "snapshot" | "timestamp" | "janitor" => match &c.replacement {
                        Some(d) => {
                            self.check_delegate(d)?;
                            if c.target.get_ref() == "janitor" {
                                self.no_generate(d)?;
                            }
                        }
                        None => {
                            return self.err(&c.target.span(), "this target needs [replacement]")
                        }
                    },
                    t => {
                        return self.err(
                            &c.target.span(),
                            format!("target {t:?}: root, snapshot, timestamp or janitor"),
                        )
                    }
                }
                if c.holders
                    .iter()
                    .any(|h| h.id.get_ref() == c.compromised.get_ref())
                    && c.target.get_ref() == "root"
                {
                    return self.err(
                        &c.compromised.span(),
                        "the compromised root key must not be among the signing holders",
                    );
                }
            }
            CeremonyFile::BumpEpoch(c) => {
                self.check_output(&c.output)?;
                self.check_holders(&c.holders)?;
                self.check_id(&c.id)?;
                if Role::parse(c.role.get_ref()).is_none() {
                    return self.err(
                        &c.role.span(),
                        format!(
                            "role {:?}: maintainer, snapshot or timestamp",
                            c.role.get_ref()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The output folder.
    pub fn output(&self) -> &str {
        match &self.file {
            CeremonyFile::CreateRoot(c) => c.output.get_ref(),
            CeremonyFile::AddRole(c) => c.output.get_ref(),
            CeremonyFile::RotateKey(c) => c.output.get_ref(),
            CeremonyFile::BumpEpoch(c) => c.output.get_ref(),
        }
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match &self.file {
            CeremonyFile::CreateRoot(_) => "create-root",
            CeremonyFile::AddRole(_) => "add-role",
            CeremonyFile::RotateKey(_) => "rotate-key",
            CeremonyFile::BumpEpoch(_) => "bump-epoch",
        }
    }

    /// The title.
    pub fn title(&self) -> &str {
        match &self.file {
            CeremonyFile::CreateRoot(c) => &c.title,
            CeremonyFile::AddRole(c) => &c.title,
            CeremonyFile::RotateKey(c) => &c.title,
            CeremonyFile::BumpEpoch(c) => &c.title,
        }
    }

    /// Every holder the ceremony needs a device for.
    pub fn holders(&self) -> Vec<String> {
        let mut v: Vec<String> = match &self.file {
            CeremonyFile::CreateRoot(c) => {
                let mut v: Vec<String> = c
                    .root
                    .keys
                    .iter()
                    .map(|k| k.holder.get_ref().clone())
                    .collect();
                let ds = c
                    .maintainers
                    .iter()
                    .flat_map(|m| m.janitors.iter())
                    .chain(c.snapshot.iter())
                    .chain(c.timestamp.iter());
                v.extend(ds.filter_map(|d| d.holder.as_ref().map(|h| h.get_ref().clone())));
                v
            }
            CeremonyFile::AddRole(c) => {
                let mut v: Vec<String> = c
                    .holders
                    .iter()
                    .map(|h| h.holder.get_ref().clone())
                    .collect();
                v.extend(
                    c.add
                        .iter()
                        .filter_map(|d| d.holder.as_ref().map(|h| h.get_ref().clone())),
                );
                v
            }
            CeremonyFile::RotateKey(c) => {
                let mut v: Vec<String> = c
                    .holders
                    .iter()
                    .map(|h| h.holder.get_ref().clone())
                    .collect();
                v.extend(c.new_root_key.iter().map(|k| k.holder.get_ref().clone()));
                v.extend(
                    c.replacement
                        .iter()
                        .filter_map(|d| d.holder.as_ref().map(|h| h.get_ref().clone())),
                );
                v
            }
            CeremonyFile::BumpEpoch(c) => c
                .holders
                .iter()
                .map(|h| h.holder.get_ref().clone())
                .collect(),
        };
        v.sort();
        v.dedup();
        v
    }
}
