//! conex resources: root, targets, snapshot, timestamp; key and signature
//! triples; the signed-string wrapper.

use super::expr::Expr;
use super::key::{
    decode_b64_strict, encode_b64, Digest, DigestParseError, KeyAlg, PublicKey, SigAlg,
};
use super::opam;
use super::wire::{Wire, WireMap};
use super::ConexError;
use std::collections::BTreeMap;
use std::fmt;

/// A public key triple: `[id "created" "alg=keydata"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Key id (an identifier).
    pub id: String,
    /// When the key was created (free text, RFC 3339 by convention).
    pub created: String,
    /// The public key.
    pub key: PublicKey,
}

impl Key {
    fn to_wire(&self) -> Wire {
        Wire::List(vec![
            Wire::Ident(self.id.clone()),
            Wire::Data(self.created.clone()),
            Wire::Data(self.key.conex_string()),
        ])
    }

    /// The key id digest (`sha256=` of `alg=keydata`).
    pub fn key_id(&self) -> Digest {
        self.key.key_id()
    }
}

/// A signature triple: `[id "created" "sigalg=base64"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Signer id.
    pub id: String,
    /// Signature creation time (part of the signed string).
    pub created: String,
    /// Algorithm.
    pub alg: SigAlg,
    /// Base64 signature value.
    pub value: String,
}

impl Signature {
    fn to_wire(&self) -> Wire {
        Wire::List(vec![
            Wire::Ident(self.id.clone()),
            Wire::Data(self.created.clone()),
            Wire::Data(format!("{}={}", self.alg, self.value)),
        ])
    }

    /// Builds a signature triple from raw signature bytes.
    pub fn new(id: &str, created: &str, alg: SigAlg, raw: &[u8]) -> Signature {
        Signature {
            id: id.into(),
            created: created.into(),
            alg,
            value: encode_b64(raw),
        }
    }

    /// The raw signature bytes, if the base64 is well-formed.
    pub fn raw(&self) -> Option<Vec<u8>> {
        decode_b64_strict(&self.value)
    }
}

/// Parses `[id "created" "alg=data"]` lists into a map by id. Unknown
/// algorithms and repeated ids are skipped with a warning, as in conex.
fn triples(
    ws: &[Wire],
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, String, String, String)>, ConexError> {
    let mut out: Vec<(String, String, String, String)> = Vec::new();
    for (n, w) in ws.iter().enumerate() {
        let at = format!("[{n}]");
        let Wire::List(xs) = w else {
            return Err(ConexError::field(
                at,
                format!(
                    "a {what} must be a list [id \"created\" \"alg=data\"], found {}",
                    w.kind()
                ),
            ));
        };
        let [Wire::Ident(id), Wire::Data(created), Wire::Data(raw)] = xs.as_slice() else {
            return Err(ConexError::field(
                at,
                format!("a {what} must be [id \"created\" \"alg=data\"]"),
            ));
        };
        let Some((alg, data)) = raw.split_once('=') else {
            return Err(ConexError::field(
                at,
                format!("{what} {id}: data has no `alg=` prefix"),
            ));
        };
        if out.iter().any(|t| t.0 == *id) {
            warnings.push(format!("{what} with id {id} already present, ignoring"));
            continue;
        }
        out.push((
            id.clone(),
            created.clone(),
            alg.to_string(),
            data.to_string(),
        ));
    }
    Ok(out)
}

/// Parses triples whose `alg` is known to `parse`, building each entry with
/// `make`; unknown algorithms are skipped with a warning, as in conex.
fn known_triples<A, T>(
    ws: &[Wire],
    what: &str,
    warnings: &mut Vec<String>,
    parse: impl Fn(&str) -> Option<A>,
    unknown: impl Fn(&str, &str) -> String,
    make: impl Fn(String, String, A, String) -> T,
) -> Result<BTreeMap<String, T>, ConexError> {
    let mut m = BTreeMap::new();
    for (id, created, alg, data) in triples(ws, what, warnings)? {
        match parse(&alg) {
            Some(a) => {
                m.insert(id.clone(), make(id, created, a, data));
            }
            None => warnings.push(unknown(&alg, &id)),
        }
    }
    Ok(m)
}

fn keys_of_wire(
    ws: &[Wire],
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Key>, ConexError> {
    known_triples(
        ws,
        "key",
        warnings,
        KeyAlg::parse,
        |alg, id| {
            format!(
                "couldn't parse key algorithm {} of key {id}, ignoring",
                super::shown(alg)
            )
        },
        |id, created, alg, data| Key {
            id,
            created,
            key: PublicKey { alg, data },
        },
    )
}

fn sigs_of_wire(
    ws: &[Wire],
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Signature>, ConexError> {
    known_triples(
        ws,
        "signature",
        warnings,
        SigAlg::parse,
        |alg, id| {
            format!(
                "no support for signature algorithm {} of {id}, ignoring",
                super::shown(alg)
            )
        },
        |id, created, alg, value| Signature {
            id,
            created,
            alg,
            value,
        },
    )
}

/// conex writes key and signature lists in descending id order.
fn desc_list<T>(m: &BTreeMap<String, T>, f: impl Fn(&T) -> Wire) -> Wire {
    Wire::List(m.values().rev().map(f).collect())
}

/// The largest conex file arca reads (16 MiB). Real root, targets,
/// snapshot and timestamp files are kilobytes to a few megabytes; a larger
/// file is refused before it is read, so a hostile or corrupted file cannot
/// make the parser allocate without bound.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a conex file as UTF-8 text, refusing files over
/// [`MAX_FILE_BYTES`] (checked while reading, not only from the size the
/// file system reports, so a growing file or a device cannot get past it).
pub fn read_text_limited(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "file is larger than {} MiB, the limit for a conex file",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
    };
    let f = std::fs::File::open(path)?;
    if f.metadata()?.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A repository path (`packages/foo/foo.1.0/opam`) as components.
pub type Path = Vec<String>;

/// Parses a conex path: split on `/`, a leading `/` dropped, empty, `.` and
/// `..` components refused.
pub fn string_to_path(s: &str) -> Result<Path, ConexError> {
    let t = s.strip_prefix('/').unwrap_or(s);
    let parts: Vec<String> = t.split('/').map(str::to_string).collect();
    if parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(ConexError::msg(format!(
            "invalid path {s:?}: empty, '.' or '..' component"
        )));
    }
    Ok(parts)
}

/// Joins path components with `/`.
pub fn path_to_string(p: &[String]) -> String {
    p.join("/")
}

/// The header fields every resource has (inside `signed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Creation time (free text; the timestamp's is parsed).
    pub created: String,
    /// Counter, incremented on each signing round.
    pub counter: u64,
    /// Epoch (key generation).
    pub epoch: u64,
    /// Name; equals the file name.
    pub name: String,
}

fn get<'a>(m: &'a WireMap, k: &str) -> Result<&'a Wire, ConexError> {
    m.get(k).ok_or_else(|| ConexError::field(k, "missing"))
}
fn data(m: &WireMap, k: &str) -> Result<String, ConexError> {
    match get(m, k)? {
        Wire::Data(s) => Ok(s.clone()),
        w => Err(ConexError::field(
            k,
            format!("expected a string, found {}", w.kind()),
        )),
    }
}
fn uint(m: &WireMap, k: &str) -> Result<u64, ConexError> {
    match get(m, k)? {
        Wire::Bigint(v) => Ok(*v),
        w => Err(ConexError::field(
            k,
            format!("expected a 0x integer, found {}", w.kind()),
        )),
    }
}
fn list<'a>(m: &'a WireMap, k: &str) -> Result<&'a [Wire], ConexError> {
    match get(m, k)? {
        Wire::List(v) => Ok(v),
        w => Err(ConexError::field(
            k,
            format!("expected a list, found {}", w.kind()),
        )),
    }
}
fn opt_list<'a>(m: &'a WireMap, k: &str) -> Result<&'a [Wire], ConexError> {
    if m.contains_key(k) {
        list(m, k)
    } else {
        Ok(&[])
    }
}
fn path_field(m: &WireMap, k: &str) -> Result<Path, ConexError> {
    string_to_path(&data(m, k)?).map_err(|e| e.within(k))
}
fn expr_field(m: &WireMap, k: &str, warnings: &mut Vec<String>) -> Result<Expr, ConexError> {
    Expr::of_wire(get(m, k)?, warnings).map_err(|e| e.within(k))
}

fn check_keys(m: &WireMap, header: bool, extra: &[&str], what: &str) -> Result<(), ConexError> {
    const HEADER: [&str; 6] = ["created", "counter", "version", "epoch", "name", "typ"];
    for k in m.keys() {
        let known = extra.contains(&k.as_str()) || (header && HEADER.contains(&k.as_str()));
        if !known {
            let mut wanted: Vec<&str> = if header { HEADER.to_vec() } else { vec![] };
            wanted.extend_from_slice(extra);
            return Err(ConexError::field(
                k.clone(),
                format!("unknown field in {what} (allowed: {})", wanted.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Splits a file into its `signed` map and `signatures` list.
fn split_signed(file: &WireMap) -> Result<(&WireMap, &[Wire]), ConexError> {
    let signed = match file.get("signed") {
        None => {
            return Err(ConexError::field(
                "signed",
                "missing: this is not a signed conex file",
            ))
        }
        Some(Wire::Map(m)) => m,
        Some(w) => {
            return Err(ConexError::field(
                "signed",
                format!("expected a map, found {}", w.kind()),
            ))
        }
    };
    let sigs: &[Wire] = match file.get("signatures") {
        None => &[],
        Some(Wire::List(l)) => l,
        Some(w) => {
            return Err(ConexError::field(
                "signatures",
                format!("expected a list, found {}", w.kind()),
            ))
        }
    };
    Ok((signed, sigs))
}

fn header_of(signed: &WireMap, typ: &str, version: i64) -> Result<Header, ConexError> {
    let v = match get(signed, "version")? {
        Wire::Smallint(v) => *v,
        w => {
            return Err(ConexError::field(
                "version",
                format!("expected an integer, found {}", w.kind()),
            ))
        }
    };
    let created = data(signed, "created")?;
    let counter = uint(signed, "counter")?;
    let epoch = uint(signed, "epoch")?;
    let name = data(signed, "name")?;
    let t = match get(signed, "typ")? {
        Wire::Ident(t) => t.clone(),
        w => {
            return Err(ConexError::field(
                "typ",
                format!("expected an identifier, found {}", w.kind()),
            ))
        }
    };
    if !matches!(t.as_str(), "root" | "targets" | "snapshot" | "timestamp") {
        return Err(ConexError::field(
            "typ",
            format!("unknown resource type {t}"),
        ));
    }
    if v != version {
        return Err(ConexError::field(
            "version",
            format!("expected data version #{version}, found #{v}"),
        ));
    }
    if t != typ {
        return Err(ConexError::field(
            "typ",
            format!("expected resource type {typ}, found {t}"),
        ));
    }
    Ok(Header {
        created,
        counter,
        epoch,
        name,
    })
}

fn header_wire(h: &Header, typ: &str, version: i64) -> WireMap {
    let mut m = WireMap::new();
    m.insert("version".into(), Wire::Smallint(version));
    m.insert("created".into(), Wire::Data(h.created.clone()));
    m.insert("counter".into(), Wire::Bigint(h.counter));
    m.insert("epoch".into(), Wire::Bigint(h.epoch));
    m.insert("name".into(), Wire::Data(h.name.clone()));
    m.insert("typ".into(), Wire::Ident(typ.into()));
    m
}

/// What all four resource types share.
pub trait Resource: Sized + Clone {
    /// `root`, `targets`, `snapshot`, `timestamp`.
    const TYP: &'static str;
    /// Data version (root 1, others 0).
    const VERSION: i64;
    /// The header.
    fn header(&self) -> &Header;
    /// The header, mutable.
    fn header_mut(&mut self) -> &mut Header;
    /// Keys carried in the file (root keys, or the signer's own key).
    fn keys(&self) -> &BTreeMap<String, Key>;
    /// Signatures by signer id.
    fn signatures(&self) -> &BTreeMap<String, Signature>;
    /// Signatures, mutable.
    fn signatures_mut(&mut self) -> &mut BTreeMap<String, Signature>;
    /// The `signed` map (conex's `wire_raw`).
    fn signed_wire(&self) -> WireMap;
    /// Parses from the file's top-level map (`signed`, `signatures`).
    fn from_file_wire(file: &WireMap, warnings: &mut Vec<String>) -> Result<Self, ConexError>;

    /// The whole file as a wire map.
    fn file_wire(&self) -> WireMap {
        let mut m = WireMap::new();
        m.insert("signed".into(), Wire::Map(self.signed_wire()));
        m.insert(
            "signatures".into(),
            desc_list(self.signatures(), Signature::to_wire),
        );
        m
    }

    /// The file's bytes exactly as conex writes them.
    fn to_file_string(&self) -> String {
        opam::encode(&self.file_wire())
    }

    /// Parses file text. Warnings (ignored entries, duplicates) are pushed to
    /// `warnings`, as conex prints them.
    fn parse(text: &str, warnings: &mut Vec<String>) -> Result<Self, ConexError> {
        let file = opam::decode(text, warnings)?;
        Self::from_file_wire(&file, warnings)
    }

    /// The canonical string of the `signed` map.
    fn canonical_signed(&self) -> String {
        Wire::Map(self.signed_wire()).canonical()
    }

    /// The exact bytes a signature by `id` made at `created` covers.
    fn to_be_signed(&self, id: &str, created: &str, alg: SigAlg) -> String {
        to_be_signed(&self.signed_wire(), id, created, alg)
    }
}

/// The signature wrapper `{created; data; identifier; sigtype}` as a
/// canonical string.
pub fn to_be_signed(signed: &WireMap, id: &str, created: &str, alg: SigAlg) -> String {
    let mut m = WireMap::new();
    m.insert("created".into(), Wire::Data(created.into()));
    m.insert("identifier".into(), Wire::Ident(id.into()));
    m.insert("sigtype".into(), Wire::Ident(alg.as_str().into()));
    m.insert("data".into(), Wire::Map(signed.clone()));
    Wire::Map(m).canonical()
}

/// Roles the root delegates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The timestamp signer.
    Timestamp,
    /// The snapshot signer.
    Snapshot,
    /// Janitors (conex maintainers).
    Maintainer,
}

impl Role {
    /// The role's name in root files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Timestamp => "timestamp",
            Role::Snapshot => "snapshot",
            Role::Maintainer => "maintainer",
        }
    }
    /// Parses a role name (`janitor` is accepted for `maintainer`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "timestamp" => Some(Role::Timestamp),
            "snapshot" => Some(Role::Snapshot),
            "maintainer" | "janitor" => Some(Role::Maintainer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The root file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Header.
    pub header: Header,
    /// Data directory (`packages`).
    pub datadir: Path,
    /// Key directory (`keys`).
    pub keydir: Path,
    /// Root keys by id.
    pub keys: BTreeMap<String, Key>,
    /// Which root keys must sign.
    pub valid: Expr,
    /// Delegated roles.
    pub roles: BTreeMap<Role, Expr>,
    /// Signatures by id.
    pub signatures: BTreeMap<String, Signature>,
}

impl Root {
    /// A fresh root as `conex_root create` makes it.
    pub fn new(created: &str) -> Root {
        Root {
            header: Header {
                created: created.into(),
                counter: 0,
                epoch: 0,
                name: "root".into(),
            },
            datadir: vec!["packages".into()],
            keydir: vec!["keys".into()],
            keys: BTreeMap::new(),
            valid: Expr::Quorum(0, vec![]),
            roles: BTreeMap::new(),
            signatures: BTreeMap::new(),
        }
    }

    /// The single remote reference of the snapshot or timestamp role.
    pub fn single_role(&self, role: Role) -> Result<Option<(String, Digest, u64)>, String> {
        match self.roles.get(&role) {
            None => Ok(None),
            Some(Expr::Quorum(1, refs)) if refs.len() == 1 => match &refs[0] {
                super::KeyRef::Remote { id, digest, epoch } => {
                    Ok(Some((id.clone(), digest.clone(), *epoch)))
                }
                super::KeyRef::Local(_) => Err(format!(
                    "only a single remote key expression allowed for {role}"
                )),
            },
            Some(_) => Err(format!(
                "only a single key expression with quorum 1 allowed for {role}"
            )),
        }
    }
}

/// The accessors every resource implements the same way.
macro_rules! common_resource {
    () => {
        fn header(&self) -> &Header {
            &self.header
        }
        fn header_mut(&mut self) -> &mut Header {
            &mut self.header
        }
        fn keys(&self) -> &BTreeMap<String, Key> {
            &self.keys
        }
        fn signatures(&self) -> &BTreeMap<String, Signature> {
            &self.signatures
        }
        fn signatures_mut(&mut self) -> &mut BTreeMap<String, Signature> {
            &mut self.signatures
        }
    };
}

impl Resource for Root {
    const TYP: &'static str = "root";
    const VERSION: i64 = 1;
    common_resource!();
    fn signed_wire(&self) -> WireMap {
        let mut m = header_wire(&self.header, Self::TYP, Self::VERSION);
        m.insert("datadir".into(), Wire::Data(path_to_string(&self.datadir)));
        m.insert("keydir".into(), Wire::Data(path_to_string(&self.keydir)));
        m.insert("keys".into(), desc_list(&self.keys, Key::to_wire));
        m.insert("valid".into(), self.valid.to_wire());
        let roles = self
            .roles
            .iter()
            .map(|(r, e)| (r.as_str().to_string(), e.to_wire()))
            .collect();
        m.insert("roles".into(), Wire::Map(roles));
        m
    }
    fn from_file_wire(file: &WireMap, warnings: &mut Vec<String>) -> Result<Root, ConexError> {
        let (signed, sigs) = split_signed(file)?;
        let go = |warnings: &mut Vec<String>| -> Result<Root, ConexError> {
            check_keys(
                signed,
                true,
                &["datadir", "keydir", "keys", "roles", "valid"],
                "a root",
            )?;
            let header = header_of(signed, Self::TYP, Self::VERSION)?;
            let datadir = path_field(signed, "datadir")?;
            let keydir = path_field(signed, "keydir")?;
            let keys =
                keys_of_wire(list(signed, "keys")?, warnings).map_err(|e| e.within("keys"))?;
            let roles_w = match get(signed, "roles")? {
                Wire::Map(m) => m,
                w => {
                    return Err(ConexError::field(
                        "roles",
                        format!("expected a map, found {}", w.kind()),
                    ))
                }
            };
            let valid = expr_field(signed, "valid", warnings)?;
            check_keys(
                roles_w,
                false,
                &["timestamp", "snapshot", "maintainer"],
                "roles",
            )
            .map_err(|e| e.within("roles"))?;
            let mut roles = BTreeMap::new();
            for (k, v) in roles_w {
                let role = Role::parse(k)
                    .ok_or_else(|| ConexError::field(format!("roles.{k}"), "invalid role"))?;
                let e = Expr::of_wire(v, warnings).map_err(|e| e.within(k).within("roles"))?;
                roles.insert(role, e);
            }
            Ok(Root {
                header,
                datadir,
                keydir,
                keys,
                valid,
                roles,
                signatures: BTreeMap::new(),
            })
        };
        let mut root = go(warnings).map_err(|e| e.within("signed"))?;
        root.signatures = sigs_of_wire(sigs, warnings).map_err(|e| e.within("signatures"))?;
        Ok(root)
    }
}

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
                    super::shown(&a)
                )),
                Err(DigestParseError::Malformed) => {
                    return Err(ConexError::field(
                        format!("digest[{n}]"),
                        format!("\"{}\" is not alg=value", super::shown(s)),
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
        let Some(rest) = self.filename.strip_prefix(datadir) else {
            return false;
        };
        match rest {
            [p, v, o] if o == "opam" => v.starts_with(&format!("{p}.")),
            [p, v, f, _] if f == "files" => v.starts_with(&format!("{p}.")),
            [_, o] if o == "opam" => true,
            [_, f, _] if f == "files" => true,
            _ => false,
        }
    }

    /// Whether this is an opam file (the files conex requires to be signed).
    pub fn is_opam_file(&self, datadir: &[String]) -> bool {
        let Some(rest) = self.filename.strip_prefix(datadir) else {
            return false;
        };
        match rest {
            [p, v, o] if o == "opam" => v.starts_with(&format!("{p}.")),
            [_, o] if o == "opam" => true,
            _ => false,
        }
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
                        format!("unknown value \"{}\"", super::shown(x)),
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
    pub(super) fn signed_wire_without_targets(&self) -> WireMap {
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
    /// ([`super::targets_fast`]), the general one for anything else: the
    /// same targets file, warnings and errors either way.
    fn parse(text: &str, warnings: &mut Vec<String>) -> Result<Targets, ConexError> {
        if let Some((t, w)) = super::targets_fast::parse(text) {
            warnings.extend(w);
            return Ok(t);
        }
        let file = opam::decode(text, warnings)?;
        Self::from_file_wire(&file, warnings)
    }
    fn canonical_signed(&self) -> String {
        super::targets_fast::canonical_signed(self)
    }
}

/// A targets file from its `signed` map and its signatures, the entries
/// read by `entries` (from the `targets` field of `signed`, or read
/// beforehand by the borrowing parser; its errors are complete): the checks, warnings and errors of
/// the general path in its order.
pub(super) fn targets_of_parts(
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
                Delegation::of_wire(d, warnings)
                    .map_err(|e| e.within(&format!("delegations[{n}]")))
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

// ---------------------------------------------------------------- time

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Formats unix seconds as RFC 3339 UTC `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 time (`YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`) to unix
/// seconds, as conex parses a timestamp's `created`.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let off = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off)
}

/// conex 1.0's `timestamp_to_int64`, the reading of a timestamp's
/// `created` that decides its verdict: `YYYY-MM-DDTHH:MM:SS` then `Z` or
/// `+H:M` / `-H:M`, each field read by OCaml's `int_of_string` (so `7`,
/// `07`, `0x7` and `0_7` are all seven), month 1–12, day 1–31, hour 0–23,
/// minute 0–59, second 0–60, offset hour 0–23 and minute 0–59; the offset
/// is *added* (as conex does); the result must be after the epoch. No
/// fractional seconds, no lower-case `t` or `z`.
pub fn conex_timestamp(ts: &str) -> Option<i64> {
    let int = |s: &str| super::wire::ocaml_int_of_string(s.as_bytes());
    let (date, time) = ts.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    let [year, month, day] = d.as_slice() else {
        return None;
    };
    if year.len() != 4 {
        return None;
    }
    let (y, m, d) = (int(year)?, int(month)?, int(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (time, offset) = match time.split_once('Z') {
        Some((t, "")) => (t, 0i64),
        Some(_) => return None,
        None => {
            let (t, sign, off) = match (time.split_once('+'), time.split_once('-')) {
                (Some(_), Some(_)) | (None, None) => return None,
                (Some((t, o)), None) => (t, 1i64, o),
                (None, Some((t, o))) => (t, -1i64, o),
            };
            let (h, mi) = off.split_once(':')?;
            let (h, mi) = (int(h)?, int(mi)?);
            if !(0..=23).contains(&h) || !(0..=59).contains(&mi) {
                return None;
            }
            (t, sign * ((h * 60 + mi) * 60))
        }
    };
    let t: Vec<&str> = time.split(':').collect();
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    let (h, mi, s) = (int(hh)?, int(mm)?, int(ss)?);
    if !(0..=23).contains(&h) || !(0..=59).contains(&mi) || !(0..=60).contains(&s) {
        return None;
    }
    // the Julian day number formula conex uses, minus the POSIX epoch
    let a = (14 - m) / 12;
    let yy = y.checked_add(4800)?.checked_sub(a)?;
    let mm = m + 12 * a - 3;
    let days = d
        .checked_add((153 * mm + 2) / 5)?
        .checked_add(yy.checked_mul(365)?)?
        .checked_add(yy / 4)?
        .checked_sub(yy / 100)?
        .checked_add(yy / 400)?
        .checked_sub(32045)?
        .checked_sub(2440588)?;
    let r = days
        .checked_mul(86400)?
        .checked_add(h * 3600 + mi * 60 + s + offset)?;
    (r > 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conex_timestamps() {
        let t = conex_timestamp("2026-11-21T23:33:22Z").unwrap();
        assert_eq!(Some(t), parse_time("2026-11-21T23:33:22Z"));
        // forms conex reads
        assert_eq!(conex_timestamp("2026-11-21T23:33:2Z"), Some(t - 20));
        assert_eq!(conex_timestamp("2026-0xb-21T23:33:22Z"), Some(t));
        assert_eq!(conex_timestamp("2026-1_1-21T23:33:22Z"), Some(t));
        assert_eq!(conex_timestamp("2026-11-21T23:33:22+0:0"), Some(t));
        // the offset is added, as conex does
        assert_eq!(conex_timestamp("2026-11-21T23:33:22+01:00"), Some(t + 3600));
        // forms conex refuses
        for bad in [
            "2026-11-21T23:33:22.5Z",
            "2026-11-21t23:33:22Z",
            "2026-11-21T23:33:22z",
            "2026-11-21T23:33:22+24:00",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-21T23:33:22",
            "2026-11-21T23:33:22Z+01:00",
            "026-11-21T23:33:22Z",
        ] {
            assert_eq!(conex_timestamp(bad), None, "{bad}");
        }
        assert_eq!(conex_timestamp("1970-01-01T00:00:01Z"), Some(1));
    }

    #[test]
    fn time_roundtrip() {
        let t = parse_time("2026-11-21T23:33:22Z").unwrap();
        assert_eq!(format_time(t), "2026-11-21T23:33:22Z");
        assert_eq!(parse_time("2026-11-21T23:33:22+01:00"), Some(t - 3600));
        assert_eq!(parse_time("2026-11-21 23:33:22Z"), None);
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn paths() {
        assert_eq!(string_to_path("/here").unwrap(), vec!["here".to_string()]);
        assert!(string_to_path("a/../b").is_err());
        assert!(string_to_path("a//b").is_err());
        assert!(string_to_path("").is_err());
    }
}
