//! Targets files (with their entries and delegations), snapshot and
//! timestamp.

use super::*;

/// One signed file entry: path, digests and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Path relative to the repository.
    pub filename: Path,
    /// Digests (sha256).
    pub digest: Vec<Digest>,
    /// Size in bytes.
    pub size: u64,
}

impl Target {
    /// The entry for `bytes` at `filename`.
    pub fn of_bytes(filename: Path, bytes: &[u8]) -> Target {
        Target {
            filename,
            digest: vec![Digest::sha256(bytes)],
            size: bytes.len() as u64,
        }
    }

    fn to_wire(&self) -> Wire {
        let mut m = WireMap::new();
        m.insert(
            "filename".into(),
            Wire::Data(path_to_string(&self.filename)),
        );
        m.insert("size".into(), Wire::Bigint(self.size));
        m.insert(
            "digest".into(),
            Wire::List(
                self.digest
                    .iter()
                    .map(|d| Wire::Data(d.to_string()))
                    .collect(),
            ),
        );
        Wire::Map(m)
    }

    fn of_wire(w: &Wire, warnings: &mut Vec<String>) -> Result<Target, ConexError> {
        let Wire::Map(m) = w else {
            return Err(ConexError::msg(format!(
                "a target must be a map, found {}",
                w.kind()
            )));
        };
        check_keys(m, false, &["filename", "digest", "size"], "a target")?;
        let filename = path_field(m, "filename")?;
        let size = uint(m, "size")?;
        let mut digest = Vec::new();
        for (n, d) in list(m, "digest")?.iter().enumerate() {
            let Wire::Data(s) = d else {
                return Err(ConexError::field(
                    format!("digest[{n}]"),
                    "expected a string",
                ));
            };
            match Digest::parse(s) {
                Ok(d) => digest.push(d),
                Err(DigestParseError::UnknownAlg(a)) => warnings.push(format!(
                    "ignoring unknown digest algorithm {}",
                    crate::conex::shown(&a)
                )),
                Err(DigestParseError::Malformed) => {
                    return Err(ConexError::field(
                        format!("digest[{n}]"),
                        format!("\"{}\" is not alg=value", crate::conex::shown(s)),
                    ))
                }
            }
        }
        Ok(Target {
            filename,
            digest,
            size,
        })
    }

    /// Same path, size and digest set (conex's `Target.equal`).
    pub fn same(&self, other: &Target) -> bool {
        self.filename == other.filename
            && self.size == other.size
            && self.digest.len() == other.digest.len()
            && self.digest.iter().all(|d| other.digest.contains(d))
    }

    /// Whether the path has the opam repository shape below `datadir`:
    /// `<p>/<p>.<v>/opam`, `<p>/<p>.<v>/files/<f>`, `<p.v>/opam`, `<p.v>/files/<f>`.
    pub fn valid_opam_path(&self, datadir: &[String]) -> bool {
        self.filename
            .strip_prefix(datadir)
            .is_some_and(|rest| opam_rest(rest, false))
    }

    /// Whether this is an opam file (the files conex requires to be signed).
    pub fn is_opam_file(&self, datadir: &[String]) -> bool {
        self.filename
            .strip_prefix(datadir)
            .is_some_and(|rest| opam_rest(rest, true))
    }
}

/// [`Target::valid_opam_path`] of a path given as its components joined
/// by `/`.
pub fn valid_opam_path_str(path: &str, datadir: &[String]) -> bool {
    let mut rest = path;
    for d in datadir {
        match rest
            .strip_prefix(d.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(r) => rest = r,
            None => return false,
        }
    }
    let mut parts = [""; 4];
    let mut n = 0;
    for c in rest.split('/') {
        if n == parts.len() {
            return false;
        }
        parts[n] = c;
        n += 1;
    }
    opam_rest(&parts[..n], false)
}

/// Whether the components below the data directory are a package's opam
/// file (`pkg/pkg.version/opam`, `pkg/opam`) or, unless `opam_only`, one of
/// its files (`pkg/pkg.version/files/f`, `pkg/files/f`).
fn opam_rest<S: AsRef<str>>(rest: &[S], opam_only: bool) -> bool {
    let versioned = |p: &S, v: &S| {
        v.as_ref()
            .strip_prefix(p.as_ref())
            .is_some_and(|r| r.starts_with('.'))
    };
    match rest {
        [p, v, o] if o.as_ref() == "opam" => versioned(p, v),
        [p, v, f, _] if !opam_only && f.as_ref() == "files" => versioned(p, v),
        [_, o] if o.as_ref() == "opam" => true,
        [_, f, _] if !opam_only && f.as_ref() == "files" => true,
        _ => false,
    }
}

fn targets_of_wire(ws: &[Wire], warnings: &mut Vec<String>) -> Result<Vec<Target>, ConexError> {
    ws.iter()
        .enumerate()
        .map(|(n, w)| Target::of_wire(w, warnings).map_err(|e| e.within(&format!("[{n}]"))))
        .collect()
}

/// A delegation inside a targets file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    /// Delegated paths.
    pub paths: Vec<Path>,
    /// Who may sign them.
    pub valid: Expr,
    /// Whether further delegations are ignored.
    pub terminating: bool,
}

impl Delegation {
    fn to_wire(&self) -> Wire {
        let mut m = WireMap::new();
        m.insert(
            "paths".into(),
            Wire::List(
                self.paths
                    .iter()
                    .map(|p| Wire::Data(path_to_string(p)))
                    .collect(),
            ),
        );
        m.insert("valid".into(), self.valid.to_wire());
        m.insert(
            "terminating".into(),
            Wire::Data(if self.terminating { "true" } else { "false" }.into()),
        );
        Wire::Map(m)
    }
    fn of_wire(w: &Wire, warnings: &mut Vec<String>) -> Result<Delegation, ConexError> {
        let Wire::Map(m) = w else {
            return Err(ConexError::msg(format!(
                "a delegation must be a map, found {}",
                w.kind()
            )));
        };
        check_keys(m, false, &["paths", "valid", "terminating"], "a delegation")?;
        let paths_w = list(m, "paths")?;
        let valid = expr_field(m, "valid", warnings)?;
        let terminating = match m.get("terminating") {
            None => true,
            Some(Wire::Data(s)) => match s.as_str() {
                "true" | "yes" => true,
                "false" | "no" => false,
                x => {
                    return Err(ConexError::field(
                        "terminating",
                        format!("unknown value \"{}\"", crate::conex::shown(x)),
                    ))
                }
            },
            Some(w) => {
                return Err(ConexError::field(
                    "terminating",
                    format!("expected a string, found {}", w.kind()),
                ))
            }
        };
        let mut paths = Vec::new();
        for (n, p) in paths_w.iter().enumerate() {
            let Wire::Data(s) = p else {
                return Err(ConexError::field(
                    format!("paths[{n}]"),
                    "expected a string",
                ));
            };
            paths.push(string_to_path(s).map_err(|e| e.within(&format!("paths[{n}]")))?);
        }
        Ok(Delegation {
            paths,
            valid,
            terminating,
        })
    }
}

/// A janitor's targets file (`keys/<id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Header.
    pub header: Header,
    /// The janitor's key(s).
    pub keys: BTreeMap<String, Key>,
    /// Which of those keys must sign.
    pub valid: Expr,
    /// Delegations.
    pub delegations: Vec<Delegation>,
    /// Signed files.
    pub targets: Vec<Target>,
    /// Signatures.
    pub signatures: BTreeMap<String, Signature>,
}

impl Targets {
    /// The `signed` map without its `targets` field.
    pub(in crate::conex) fn signed_wire_without_targets(&self) -> WireMap {
        let mut m = header_wire(&self.header, Self::TYP, Self::VERSION);
        m.insert("keys".into(), desc_list(&self.keys, Key::to_wire));
        m.insert("valid".into(), self.valid.to_wire());
        m.insert(
            "delegations".into(),
            Wire::List(self.delegations.iter().map(Delegation::to_wire).collect()),
        );
        m
    }

    /// The digest the root's maintainer role must reference: the hash of
    /// the `valid` expression over this file's keys.
    pub fn valid_hash(&self) -> Result<Digest, ConexError> {
        let keys = self
            .keys
            .iter()
            .map(|(id, k)| (id.clone(), k.key.conex_string()))
            .collect();
        self.valid.hash(&keys)
    }
}

impl Resource for Targets {
    const TYP: &'static str = "targets";
    const VERSION: i64 = 0;
    common_resource!();
    fn signed_wire(&self) -> WireMap {
        let mut m = self.signed_wire_without_targets();
        m.insert(
            "targets".into(),
            Wire::List(self.targets.iter().map(Target::to_wire).collect()),
        );
        m
    }
    fn from_file_wire(file: &WireMap, warnings: &mut Vec<String>) -> Result<Targets, ConexError> {
        let (signed, sigs) = split_signed(file)?;
        targets_of_parts(signed, sigs, warnings, |warnings| {
            targets_of_wire(list(signed, "targets")?, warnings).map_err(|e| e.within("targets"))
        })
    }
    /// The borrowing parser for the common shape
    /// ([`crate::conex::targets_fast`]), the general one for anything else: the
    /// same targets file, warnings and errors either way.
    fn parse(text: &str, warnings: &mut Vec<String>) -> Result<Targets, ConexError> {
        if let Some((t, w)) = crate::conex::targets_fast::parse(text) {
            warnings.extend(w);
            return Ok(t);
        }
        let file = opam::decode(text, warnings)?;
        Self::from_file_wire(&file, warnings)
    }
    fn canonical_signed(&self) -> String {
        crate::conex::targets_fast::canonical_signed(self)
    }
}

/// A targets file from its `signed` map and its signatures, the entries
/// read by `entries` (from the `targets` field of `signed`, or read
/// beforehand by the borrowing parser; its errors are complete): the checks, warnings and errors of
/// the general path in its order.
pub(in crate::conex) fn targets_of_parts(
    signed: &WireMap,
    sigs: &[Wire],
    warnings: &mut Vec<String>,
    entries: impl FnOnce(&mut Vec<String>) -> Result<Vec<Target>, ConexError>,
) -> Result<Targets, ConexError> {
    let go = |warnings: &mut Vec<String>| -> Result<Targets, ConexError> {
        check_keys(
            signed,
            true,
            &["keys", "valid", "delegations", "targets"],
            "a targets file",
        )?;
        let header = header_of(signed, Targets::TYP, Targets::VERSION)?;
        let keys =
            keys_of_wire(opt_list(signed, "keys")?, warnings).map_err(|e| e.within("keys"))?;
        let valid = expr_field(signed, "valid", warnings)?;
        let delegations = list(signed, "delegations")?
            .iter()
            .enumerate()
            .map(|(n, d)| {
                Delegation::of_wire(d, warnings).map_err(|e| e.within(&format!("delegations[{n}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let targets = entries(warnings)?;
        Ok(Targets {
            header,
            keys,
            valid,
            delegations,
            targets,
            signatures: BTreeMap::new(),
        })
    };
    let mut t = go(warnings).map_err(|e| e.within("signed"))?;
    t.signatures = sigs_of_wire(sigs, warnings).map_err(|e| e.within("signatures"))?;
    Ok(t)
}

/// Snapshot and timestamp share one shape.
macro_rules! online_resource {
    ($name:ident, $typ:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Header.
            pub header: Header,
            /// The signer's key.
            pub keys: BTreeMap<String, Key>,
            /// Signed files.
            pub targets: Vec<Target>,
            /// Signatures.
            pub signatures: BTreeMap<String, Signature>,
        }

        impl Resource for $name {
            const TYP: &'static str = $typ;
            const VERSION: i64 = 0;
            common_resource!();
            fn signed_wire(&self) -> WireMap {
                let mut m = header_wire(&self.header, Self::TYP, Self::VERSION);
                m.insert("keys".into(), desc_list(&self.keys, Key::to_wire));
                m.insert(
                    "targets".into(),
                    Wire::List(self.targets.iter().map(Target::to_wire).collect()),
                );
                m
            }
            fn from_file_wire(
                file: &WireMap,
                warnings: &mut Vec<String>,
            ) -> Result<$name, ConexError> {
                let (signed, sigs) = split_signed(file)?;
                let go = |warnings: &mut Vec<String>| -> Result<$name, ConexError> {
                    check_keys(
                        signed,
                        true,
                        &["keys", "targets"],
                        concat!("a ", $typ, " file"),
                    )?;
                    let header = header_of(signed, Self::TYP, Self::VERSION)?;
                    let keys = keys_of_wire(opt_list(signed, "keys")?, warnings)
                        .map_err(|e| e.within("keys"))?;
                    let targets = targets_of_wire(list(signed, "targets")?, warnings)
                        .map_err(|e| e.within("targets"))?;
                    Ok($name {
                        header,
                        keys,
                        targets,
                        signatures: BTreeMap::new(),
                    })
                };
                let mut t = go(warnings).map_err(|e| e.within("signed"))?;
                t.signatures = sigs_of_wire(sigs, warnings).map_err(|e| e.within("signatures"))?;
                Ok(t)
            }
        }
    };
}

online_resource!(
    Snapshot,
    "snapshot",
    "The snapshot file: digests of every targets file."
);
online_resource!(
    Timestamp,
    "timestamp",
    "The timestamp file: the digest of the snapshot."
);
