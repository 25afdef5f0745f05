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
    if !valid_path_str(t) {
        return Err(ConexError::msg(format!(
            "invalid path {s:?}: empty, '.' or '..' component"
        )));
    }
    Ok(t.split('/').map(str::to_string).collect())
}

/// Whether every `/`-separated component of `t` (a path without its
/// leading `/`) is a name: not empty, `.` or `..`.
pub fn valid_path_str(t: &str) -> bool {
    // the separators found eight bytes at a time (a targets file has a
    // path per entry); only a component of at most two bytes can be bad
    use super::swar::{equals, first, word_at};
    let b = t.as_bytes();
    let bad = |c: &[u8]| matches!(c, b"" | b"." | b"..");
    let (mut start, mut at) = (0, 0);
    while let Some(w) = word_at(b, at) {
        let mut slashes = equals(w, b'/');
        while slashes != 0 {
            let i = at + first(slashes);
            if bad(&b[start..i]) {
                return false;
            }
            start = i + 1;
            slashes &= slashes - 1;
        }
        at += 8;
    }
    for (i, _) in b.iter().enumerate().skip(at).filter(|(_, &c)| c == b'/') {
        if bad(&b[start..i]) {
            return false;
        }
        start = i + 1;
    }
    !bad(&b[start..])
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

mod root;
mod targets;
mod time;

pub use root::Root;
pub(in crate::conex) use targets::targets_of_parts;
pub use targets::{valid_opam_path_str, Delegation, Snapshot, Target, Targets, Timestamp};
pub use time::{conex_timestamp, format_time, parse_time};

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check of a path's components says what splitting it
    /// at `/` says, for every string of up to seven characters from
    /// `a`, `.`, `/` and `é`.
    #[test]
    fn a_path_is_checked_as_its_components_are() {
        let by_parts = |t: &str| !t.split('/').any(|p| p.is_empty() || p == "." || p == "..");
        let alphabet = ['a', '.', '/', 'é'];
        let mut strings = vec![String::new()];
        let mut checked = 0;
        for _ in 0..7 {
            strings = strings
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            for t in std::iter::once(&String::new()).chain(&strings) {
                assert_eq!(valid_path_str(t), by_parts(t), "{t:?}");
                checked += usize::from(by_parts(t));
            }
        }
        assert!(checked > 1000, "{checked}");
        for t in [
            "packages/a/a.1/opam",
            "packages/.../x",
            "a/.b",
            "..a",
            "a..",
            "a/./b",
        ] {
            assert_eq!(valid_path_str(t), by_parts(t), "{t:?}");
        }
    }

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
