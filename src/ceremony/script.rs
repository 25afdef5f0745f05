//! Ceremony files (`ceremonies/*.toml`): read once into typed ceremonies
//! ([`Kind`], [`Target`], [`Role`], [`KeySpec`], [`Source`]); a ceremony that
//! passed [`Ceremony::parse`] cannot hold an unknown kind, target, role,
//! algorithm or a quorum out of bounds. Errors name the file and line.

use crate::conex::{Digest, KeyAlg, PublicKey, Role};
use crate::keys::KeySpec;
use crate::repository::{check_ident, line_of, quorum_bounds, toml_error};
use std::path::{Path, PathBuf};
use toml::Spanned;

mod raw {
    //! The file as written, with spans for error lines.
    use serde::Deserialize;
    use toml::Spanned;

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RootKey {
        pub id: Spanned<String>,
        pub holder: Spanned<String>,
        #[serde(default)]
        pub algorithm: Option<Spanned<String>>,
        #[serde(default)]
        pub existing: bool,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct Delegate {
        pub id: Spanned<String>,
        #[serde(default)]
        pub key: Option<Spanned<String>>,
        #[serde(default)]
        pub holder: Option<Spanned<String>>,
        #[serde(default)]
        pub epoch: u64,
        #[serde(default)]
        pub generate: bool,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct CreateRoot {
        pub kind: String,
        pub title: String,
        pub output: Spanned<String>,
        pub root: RootSection,
        #[serde(default)]
        pub maintainers: Option<Maintainers>,
        #[serde(default)]
        pub snapshot: Option<Delegate>,
        #[serde(default)]
        pub timestamp: Option<Delegate>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RootSection {
        pub quorum: Spanned<i64>,
        pub keys: Vec<RootKey>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct Maintainers {
        #[serde(default)]
        pub quorum: Option<Spanned<i64>>,
        pub janitors: Vec<Delegate>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct Holder {
        pub id: Spanned<String>,
        pub holder: Spanned<String>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct AddRole {
        pub kind: String,
        pub title: String,
        pub root: Spanned<String>,
        #[serde(default)]
        pub anchors: Option<Spanned<String>>,
        pub output: Spanned<String>,
        pub role: Spanned<String>,
        pub add: Vec<Delegate>,
        #[serde(default)]
        pub quorum: Option<Spanned<i64>>,
        pub holders: Vec<Holder>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RotateKey {
        pub kind: String,
        pub title: String,
        pub root: Spanned<String>,
        #[serde(default)]
        pub anchors: Option<Spanned<String>>,
        pub output: Spanned<String>,
        pub target: Spanned<String>,
        pub compromised: Spanned<String>,
        #[serde(default)]
        pub new_root_key: Option<RootKey>,
        #[serde(default)]
        pub replacement: Option<Delegate>,
        #[serde(default)]
        pub quorum: Option<Spanned<i64>>,
        pub holders: Vec<Holder>,
    }

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct BumpEpoch {
        pub kind: String,
        pub title: String,
        pub root: Spanned<String>,
        #[serde(default)]
        pub anchors: Option<Spanned<String>>,
        pub output: Spanned<String>,
        pub role: Spanned<String>,
        pub id: Spanned<String>,
        pub holders: Vec<Holder>,
    }
}

/// A root key of a ceremony: its id, who holds it, how it is made.
#[derive(Debug, Clone)]
pub struct RootKey {
    /// Key id in the root file.
    pub id: String,
    /// Holder name (the device profile maps it to a device).
    pub holder: String,
    /// What to generate.
    pub spec: KeySpec,
    /// Use a key that already exists on the device instead of generating.
    pub existing: bool,
    /// Where it is written.
    pub line: Option<usize>,
}

/// Where a delegated key comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Its public key is written in the file.
    Key(PublicKey),
    /// It is read from this holder's device.
    Holder(String),
    /// It is generated in memory during the ceremony and leaves only
    /// encrypted (PKCS#8, passphrase) in the bundle's `online-keys/`.
    Generate,
}

/// A delegated key (janitor, snapshot, timestamp).
#[derive(Debug, Clone)]
pub struct Delegate {
    /// Id (janitor id, snapshot or timestamp file name).
    pub id: String,
    /// Where its public key comes from.
    pub source: Source,
    /// Epoch of the referenced file.
    pub epoch: u64,
    /// Where it is written.
    pub line: Option<usize>,
}

impl Delegate {
    /// The holder whose device has the key, if any.
    pub fn holder(&self) -> Option<&str> {
        match &self.source {
            Source::Holder(h) => Some(h),
            _ => None,
        }
    }
}

/// A root holder who signs: root key id and holder.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Root key id.
    pub id: String,
    /// Holder name.
    pub holder: String,
    /// Where it is written.
    pub line: Option<usize>,
}

/// The current root a ceremony changes, and the anchors it must verify with.
#[derive(Debug, Clone)]
pub struct InputRoot {
    /// The root file, relative to the base folder.
    pub path: String,
    /// Where `root =` is written.
    pub line: Option<usize>,
    /// Trust anchors given in the file (`anchors = "sha256=…,…"`); without
    /// them, the `anchors.txt` next to the root (a previous ceremony's
    /// output) is used.
    pub anchors: Option<Vec<Digest>>,
    /// Where `anchors =` is written.
    pub anchors_line: Option<usize>,
}

/// Janitors and their quorum.
#[derive(Debug, Clone)]
pub struct Janitors {
    /// How many janitors must sign each package.
    pub quorum: i64,
    /// The janitors.
    pub keys: Vec<Delegate>,
}

/// `kind = "create-root"`.
#[derive(Debug, Clone)]
pub struct CreateRoot {
    /// How many root signatures a root needs.
    pub quorum: i64,
    /// The root keys.
    pub keys: Vec<RootKey>,
    /// Janitors (conex maintainers).
    pub maintainers: Option<Janitors>,
    /// The snapshot key.
    pub snapshot: Option<Delegate>,
    /// The timestamp key.
    pub timestamp: Option<Delegate>,
}

/// `kind = "add-role"`.
#[derive(Debug, Clone)]
pub struct AddRole {
    /// The current root.
    pub root: InputRoot,
    /// The role keys are added to.
    pub role: Role,
    /// Keys to add.
    pub add: Vec<Delegate>,
    /// New quorum of the role.
    pub quorum: Option<(i64, Option<usize>)>,
    /// Root holders who sign.
    pub holders: Vec<Holder>,
}

/// What a rotate-key ceremony replaces.
#[derive(Debug, Clone)]
pub enum Target {
    /// A root key: removed, the new key generated, re-signed without it.
    Root {
        /// The replacement root key.
        new_key: RootKey,
        /// New root quorum.
        quorum: Option<(i64, Option<usize>)>,
    },
    /// The snapshot key (its epoch rises).
    Snapshot(Delegate),
    /// The timestamp key (its epoch rises).
    Timestamp(Delegate),
    /// A janitor.
    Janitor {
        /// The replacement janitor key.
        replacement: Delegate,
        /// New janitor quorum.
        quorum: Option<(i64, Option<usize>)>,
    },
}

/// `kind = "rotate-key"`.
#[derive(Debug, Clone)]
pub struct RotateKey {
    /// The current root.
    pub root: InputRoot,
    /// The compromised key's id.
    pub compromised: String,
    /// Where `compromised =` is written.
    pub compromised_line: Option<usize>,
    /// What is replaced.
    pub target: Target,
    /// Root holders who sign (never the compromised root key).
    pub holders: Vec<Holder>,
}

/// `kind = "bump-epoch"`.
#[derive(Debug, Clone)]
pub struct BumpEpoch {
    /// The current root.
    pub root: InputRoot,
    /// The role.
    pub role: Role,
    /// The id whose epoch rises.
    pub id: String,
    /// Where `id =` is written.
    pub id_line: Option<usize>,
    /// Root holders who sign.
    pub holders: Vec<Holder>,
}

/// The kind of a ceremony, with what it needs.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Create a root.
    CreateRoot(CreateRoot),
    /// Add keys to a role.
    AddRole(AddRole),
    /// Replace a compromised key.
    RotateKey(RotateKey),
    /// Raise a role file's epoch after a fast-forward attack.
    BumpEpoch(BumpEpoch),
}

/// A parsed, validated ceremony with where it came from.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The file.
    pub path: PathBuf,
    /// Its bytes (their SHA-256 is the digest witnesses compare).
    pub text: String,
    /// What this ceremony is, for people.
    pub title: String,
    /// Output folder (relative to the base folder).
    pub output: String,
    /// Where `output =` is written.
    pub output_line: Option<usize>,
    /// The typed content.
    pub kind: Kind,
}

/// A ceremony or profile problem, with file and line.
pub use crate::error::ScriptError;

/// Reads a ceremony or profile file, as a [`ScriptError`] when it cannot.
pub fn read_text(path: &Path) -> Result<String, ScriptError> {
    std::fs::read_to_string(path).map_err(|e| ScriptError {
        file: path.display().to_string(),
        line: None,
        msg: e.to_string(),
    })
}

struct Reader<'a> {
    file: String,
    text: &'a str,
}

impl Reader<'_> {
    fn line(&self, span: &std::ops::Range<usize>) -> Option<usize> {
        line_of(self.text, span)
    }
    fn err<T>(
        &self,
        span: &std::ops::Range<usize>,
        msg: impl Into<String>,
    ) -> Result<T, ScriptError> {
        Err(ScriptError {
            file: self.file.clone(),
            line: self.line(span),
            msg: msg.into(),
        })
    }
    fn id(&self, id: &Spanned<String>) -> Result<String, ScriptError> {
        check_ident(id.get_ref()).or_else(|e| self.err(&id.span(), e.to_string()))?;
        Ok(id.get_ref().clone())
    }
    fn holder_name(&self, h: &Spanned<String>) -> Result<String, ScriptError> {
        if h.get_ref().trim().is_empty() {
            return self.err(&h.span(), "holder must not be empty");
        }
        Ok(h.get_ref().clone())
    }
    fn root_key(&self, k: &raw::RootKey) -> Result<RootKey, ScriptError> {
        let id = self.id(&k.id)?;
        let spec = match &k.algorithm {
            None => KeySpec::Ed25519,
            Some(a) => match KeySpec::parse(a.get_ref()) {
                Some(s) => s,
                None => {
                    return self.err(
                        &a.span(),
                        format!(
                            "algorithm \"{}\": ed25519, rsa4096, rsa3072 or rsa2048",
                            crate::conex::shown(a.get_ref())
                        ),
                    )
                }
            },
        };
        Ok(RootKey {
            id,
            holder: self.holder_name(&k.holder)?,
            spec,
            existing: k.existing,
            line: self.line(&k.id.span()),
        })
    }
    fn delegate(&self, d: &raw::Delegate, may_generate: bool) -> Result<Delegate, ScriptError> {
        let id = self.id(&d.id)?;
        let source = match (&d.key, &d.holder, d.generate) {
            (None, None, true) if may_generate => Source::Generate,
            (None, None, true) => {
                return self.err(
                    &d.id.span(),
                    format!("{id}: generate = true is for snapshot and timestamp keys only (janitors hold their own keys)"),
                )
            }
            (Some(k), None, false) => {
                let pk = PublicKey::parse_conex(k.get_ref())
                    .or_else(|e| self.err(&k.span(), e.reason))?;
                pk.validate()
                    .or_else(|e| self.err(&k.span(), format!("key of {id}: {e}")))?;
                Source::Key(pk)
            }
            (None, Some(h), false) => Source::Holder(self.holder_name(h)?),
            _ => {
                return self.err(
                    &d.id.span(),
                    format!("{id}: give exactly one of key = \"alg=…\", holder = \"…\" or generate = true"),
                )
            }
        };
        Ok(Delegate {
            id,
            source,
            epoch: d.epoch,
            line: self.line(&d.id.span()),
        })
    }
    fn holders(&self, hs: &[raw::Holder]) -> Result<Vec<Holder>, ScriptError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for h in hs {
            let id = self.id(&h.id)?;
            if !seen.insert(id.clone()) {
                return self.err(&h.id.span(), format!("root key {id} is listed twice"));
            }
            out.push(Holder {
                id,
                holder: self.holder_name(&h.holder)?,
                line: self.line(&h.id.span()),
            });
        }
        if out.is_empty() {
            return Err(ScriptError {
                file: self.file.clone(),
                line: None,
                msg: "holders lists nobody to sign the new root".into(),
            });
        }
        Ok(out)
    }
    fn output(&self, o: &Spanned<String>) -> Result<String, ScriptError> {
        let p = Path::new(o.get_ref());
        if o.get_ref().is_empty()
            || p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return self.err(&o.span(), "output must be a relative folder without '..' (a ceremony file holds no machine paths)");
        }
        Ok(o.get_ref().clone())
    }
    fn input_root(
        &self,
        root: &Spanned<String>,
        anchors: &Option<Spanned<String>>,
    ) -> Result<InputRoot, ScriptError> {
        if root.get_ref().is_empty() || Path::new(root.get_ref()).is_absolute() {
            return self.err(
                &root.span(),
                "root must be a relative path to the current signed root",
            );
        }
        let parsed = match anchors {
            None => None,
            Some(a) => {
                let mut v = Vec::new();
                for part in a
                    .get_ref()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    v.push(Digest::parse(part).or_else(|_| {
                        self.err(
                            &a.span(),
                            format!(
                                "anchors: \"{}\" is not sha256=<64 hex digits>",
                                crate::conex::shown(part)
                            ),
                        )
                    })?);
                }
                if v.is_empty() {
                    return self.err(&a.span(), "anchors lists no trust anchor");
                }
                Some(v)
            }
        };
        Ok(InputRoot {
            path: root.get_ref().clone(),
            line: self.line(&root.span()),
            anchors: parsed,
            anchors_line: anchors.as_ref().and_then(|a| self.line(&a.span())),
        })
    }
    fn quorum(&self, q: &Option<Spanned<i64>>) -> Option<(i64, Option<usize>)> {
        q.as_ref().map(|q| (*q.get_ref(), self.line(&q.span())))
    }
    fn role(&self, r: &Spanned<String>) -> Result<Role, ScriptError> {
        Role::parse(r.get_ref()).map_or_else(
            || {
                self.err(
                    &r.span(),
                    format!(
                        "role \"{}\": maintainer, snapshot or timestamp",
                        crate::conex::shown(r.get_ref())
                    ),
                )
            },
            Ok,
        )
    }
    fn bounds(
        &self,
        span: &std::ops::Range<usize>,
        what: &str,
        n: i64,
        keys: usize,
        noun: &str,
    ) -> Result<(), ScriptError> {
        quorum_bounds(what, n, keys, noun).or_else(|m| self.err(span, m))
    }

    fn create_root(&self, c: raw::CreateRoot) -> Result<Kind, ScriptError> {
        let mut keys = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        let mut holders = std::collections::BTreeSet::new();
        for k in &c.root.keys {
            let rk = self.root_key(k)?;
            if !ids.insert(rk.id.clone()) {
                return self.err(&k.id.span(), format!("root key {} is listed twice", rk.id));
            }
            if !holders.insert(rk.holder.clone()) {
                return self.err(
                    &k.holder.span(),
                    format!(
                        "holder {} holds two root keys; one key per holder",
                        rk.holder
                    ),
                );
            }
            keys.push(rk);
        }
        let q = *c.root.quorum.get_ref();
        self.bounds(
            &c.root.quorum.span(),
            "the root",
            q,
            keys.len(),
            "root key(s)",
        )?;
        let maintainers = match &c.maintainers {
            None => None,
            Some(m) => {
                let mut js = Vec::new();
                for j in &m.janitors {
                    js.push(self.delegate(j, false)?);
                }
                let (q, span) = match &m.quorum {
                    Some(q) => (*q.get_ref(), q.span()),
                    None => (1, 0..0),
                };
                self.bounds(&span, "the maintainer role", q, js.len(), "janitor(s)")?;
                Some(Janitors {
                    quorum: q,
                    keys: js,
                })
            }
        };
        let snapshot = c
            .snapshot
            .as_ref()
            .map(|d| self.delegate(d, true))
            .transpose()?;
        let timestamp = c
            .timestamp
            .as_ref()
            .map(|d| self.delegate(d, true))
            .transpose()?;
        if let (Some(s), Some(t)) = (&c.snapshot, &c.timestamp) {
            if let (Some(a), Some(b)) = (&s.key, &t.key) {
                if a.get_ref().trim() == b.get_ref().trim() {
                    return self.err(&b.span(), crate::repository::SAME_ONLINE_KEY);
                }
            }
        }
        Ok(Kind::CreateRoot(CreateRoot {
            quorum: q,
            keys,
            maintainers,
            snapshot,
            timestamp,
        }))
    }
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
        let r = Reader {
            file: file.clone(),
            text: &text,
        };
        let (title, output, kind) = match kind.as_str() {
            "create-root" => {
                let c: raw::CreateRoot = toml::from_str(&text).map_err(terr)?;
                let _ = &c.kind;
                r.output(&c.output)?;
                (c.title.clone(), c.output.clone(), r.create_root(c)?)
            }
            "add-role" => {
                let c: raw::AddRole = toml::from_str(&text).map_err(terr)?;
                let _ = &c.kind;
                r.output(&c.output)?;
                let role = r.role(&c.role)?;
                if c.add.is_empty() {
                    return r.err(&c.role.span(), "add lists no key");
                }
                let mut add = Vec::new();
                for d in &c.add {
                    add.push(r.delegate(d, role != Role::Maintainer)?);
                }
                if role != Role::Maintainer && add.len() > 1 {
                    return r.err(
                        &c.role.span(),
                        format!("the {role} role is exactly one key; add one key"),
                    );
                }
                (
                    c.title.clone(),
                    c.output.clone(),
                    Kind::AddRole(AddRole {
                        root: r.input_root(&c.root, &c.anchors)?,
                        role,
                        add,
                        quorum: r.quorum(&c.quorum),
                        holders: r.holders(&c.holders)?,
                    }),
                )
            }
            "rotate-key" => {
                let c: raw::RotateKey = toml::from_str(&text).map_err(terr)?;
                let _ = &c.kind;
                r.output(&c.output)?;
                let compromised = r.id(&c.compromised)?;
                let need_replacement = |c: &raw::RotateKey| match &c.replacement {
                    Some(d) => Ok(d.clone()),
                    None => r.err(&c.target.span(), "this target needs [replacement]"),
                };
                let target = match c.target.get_ref().as_str() {
                    "root" => match &c.new_root_key {
                        Some(k) => Target::Root {
                            new_key: r.root_key(k)?,
                            quorum: r.quorum(&c.quorum),
                        },
                        None => {
                            return r
                                .err(&c.target.span(), "target = \"root\" needs [new_root_key]")
                        }
                    },
                    "snapshot" => Target::Snapshot(r.delegate(&need_replacement(&c)?, true)?),
                    "timestamp" => Target::Timestamp(r.delegate(&need_replacement(&c)?, true)?),
                    "janitor" | "maintainer" => Target::Janitor {
                        replacement: r.delegate(&need_replacement(&c)?, false)?,
                        quorum: r.quorum(&c.quorum),
                    },
                    t => {
                        return r.err(
                            &c.target.span(),
                            format!(
                                "target \"{}\": root, snapshot, timestamp or janitor",
                                crate::conex::shown(t)
                            ),
                        )
                    }
                };
                let holders = r.holders(&c.holders)?;
                if matches!(target, Target::Root { .. })
                    && holders.iter().any(|h| h.id == compromised)
                {
                    return r.err(
                        &c.compromised.span(),
                        "the compromised root key must not be among the signing holders",
                    );
                }
                (
                    c.title.clone(),
                    c.output.clone(),
                    Kind::RotateKey(RotateKey {
                        root: r.input_root(&c.root, &c.anchors)?,
                        compromised,
                        compromised_line: r.line(&c.compromised.span()),
                        target,
                        holders,
                    }),
                )
            }
            "bump-epoch" => {
                let c: raw::BumpEpoch = toml::from_str(&text).map_err(terr)?;
                let _ = &c.kind;
                r.output(&c.output)?;
                (
                    c.title.clone(),
                    c.output.clone(),
                    Kind::BumpEpoch(BumpEpoch {
                        root: r.input_root(&c.root, &c.anchors)?,
                        role: r.role(&c.role)?,
                        id: r.id(&c.id)?,
                        id_line: r.line(&c.id.span()),
                        holders: r.holders(&c.holders)?,
                    }),
                )
            }
            k => {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("kind"))
                    .map(|n| n + 1);
                return Err(ScriptError {
                    file,
                    line,
                    msg: format!(
                        "unknown kind \"{}\": create-root, add-role, rotate-key or bump-epoch",
                        crate::conex::shown(k)
                    ),
                });
            }
        };
        let out = r.output(&output)?;
        let output_line = r.line(&output.span());
        Ok(Ceremony {
            path: path.to_path_buf(),
            title,
            output: out,
            output_line,
            kind,
            text,
        })
    }

    /// An error about this ceremony file at `line`.
    pub fn error(&self, line: Option<usize>, msg: impl Into<String>) -> ScriptError {
        ScriptError {
            file: self.path.display().to_string(),
            line,
            msg: msg.into(),
        }
    }

    /// The output folder.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match &self.kind {
            Kind::CreateRoot(_) => "create-root",
            Kind::AddRole(_) => "add-role",
            Kind::RotateKey(_) => "rotate-key",
            Kind::BumpEpoch(_) => "bump-epoch",
        }
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The current root a re-signing ceremony changes.
    pub fn input_root(&self) -> Option<&InputRoot> {
        match &self.kind {
            Kind::CreateRoot(_) => None,
            Kind::AddRole(c) => Some(&c.root),
            Kind::RotateKey(c) => Some(&c.root),
            Kind::BumpEpoch(c) => Some(&c.root),
        }
    }

    /// Root keys this ceremony generates (or takes with `existing`).
    pub fn root_keys(&self) -> Vec<&RootKey> {
        match &self.kind {
            Kind::CreateRoot(c) => c.keys.iter().collect(),
            Kind::RotateKey(RotateKey {
                target: Target::Root { new_key, .. },
                ..
            }) => vec![new_key],
            _ => Vec::new(),
        }
    }

    /// Delegated keys this ceremony puts into the root, in order.
    pub fn delegates(&self) -> Vec<&Delegate> {
        match &self.kind {
            Kind::CreateRoot(c) => c
                .maintainers
                .iter()
                .flat_map(|m| m.keys.iter())
                .chain(c.snapshot.iter())
                .chain(c.timestamp.iter())
                .collect(),
            Kind::AddRole(c) => c.add.iter().collect(),
            Kind::RotateKey(c) => match &c.target {
                Target::Root { .. } => Vec::new(),
                Target::Snapshot(d) | Target::Timestamp(d) => vec![d],
                Target::Janitor { replacement, .. } => vec![replacement],
            },
            Kind::BumpEpoch(_) => Vec::new(),
        }
    }

    /// Who signs the new root, in order: (root key id, holder).
    pub fn signers(&self) -> Vec<(String, String)> {
        match &self.kind {
            Kind::CreateRoot(c) => c
                .keys
                .iter()
                .map(|k| (k.id.clone(), k.holder.clone()))
                .collect(),
            Kind::AddRole(AddRole { holders, .. })
            | Kind::RotateKey(RotateKey { holders, .. })
            | Kind::BumpEpoch(BumpEpoch { holders, .. }) => holders
                .iter()
                .map(|h| (h.id.clone(), h.holder.clone()))
                .collect(),
        }
    }

    /// The listed signing holders of a re-signing ceremony.
    pub fn holder_entries(&self) -> &[Holder] {
        match &self.kind {
            Kind::CreateRoot(_) => &[],
            Kind::AddRole(c) => &c.holders,
            Kind::RotateKey(c) => &c.holders,
            Kind::BumpEpoch(c) => &c.holders,
        }
    }

    /// Ids of delegated keys generated in memory during the ceremony.
    pub fn generated_ids(&self) -> Vec<String> {
        self.delegates()
            .into_iter()
            .filter(|d| matches!(d.source, Source::Generate))
            .map(|d| d.id.clone())
            .collect()
    }

    /// Every holder the ceremony needs a device for.
    pub fn holders(&self) -> Vec<String> {
        let mut v: Vec<String> = self.signers().into_iter().map(|(_, h)| h).collect();
        v.extend(self.root_keys().iter().map(|k| k.holder.clone()));
        v.extend(
            self.delegates()
                .iter()
                .filter_map(|d| d.holder().map(String::from)),
        );
        v.sort();
        v.dedup();
        v
    }
}

impl Ceremony {
    /// Why conex's production online signer, opam-mirror, could not serve
    /// the root a create-root ceremony makes, one line per role (empty when
    /// it can, and for the other kinds, whose root depends on the input
    /// root: `bundle open` checks the signed root itself). opam-mirror signs
    /// one maintainer targets file for the whole repository, the snapshot
    /// and the timestamp, each with exactly one Ed25519 key given to it as
    /// a PKCS#8 file (`--target-key`, `--snapshot-key`, `--timestamp-key`).
    pub fn opam_mirror_problems(&self) -> Vec<String> {
        let Kind::CreateRoot(c) = &self.kind else {
            return vec![];
        };
        let mut out = Vec::new();
        let mut one = |what: &str, keys: &[&Delegate], quorum: i64| {
            if keys.len() != 1 || quorum != 1 {
                out.push(format!(
                    "the {what} role has {} key(s) and quorum {quorum}; opam-mirror signs with exactly one",
                    keys.len()
                ));
                return;
            }
            let d = keys[0];
            match &d.source {
                Source::Key(pk) if pk.alg != KeyAlg::Ed25519 => out.push(format!(
                    "the {what} key {} is {}; opam-mirror takes Ed25519 keys only",
                    d.id, pk.alg
                )),
                Source::Holder(h) => out.push(format!(
                    "the {what} key {} is on {h}'s device; opam-mirror takes its key as a PKCS#8 file",
                    d.id
                )),
                _ => {}
            }
        };
        match &c.maintainers {
            Some(m) => one("maintainer", &m.keys.iter().collect::<Vec<_>>(), m.quorum),
            None => one("maintainer", &[], 0),
        }
        one("snapshot", &c.snapshot.iter().collect::<Vec<_>>(), 1);
        one("timestamp", &c.timestamp.iter().collect::<Vec<_>>(), 1);
        out
    }
}
