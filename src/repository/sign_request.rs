//! Sign requests: a root signature made on another machine.
//!
//! An absent root holder gets a *sign request* (JSON, `arca-sign-request/1`):
//! the pending root, its counter, the `sha256=` of its canonical signed
//! content and a summary for people. Their machine checks that the root
//! inside has exactly that digest and counter, signs it with the one
//! root-signing path ([`super::sign_root`]) and writes a *signature file*
//! (`arca-signature/1`). Back on the offline machine the signature is added
//! to the pending root only if it covers exactly its current signed content
//! and verifies ([`super::add_root_signature`]).
//!
//! Both files cross between machines: [`SignRequest::parse`] and
//! [`SignatureFile::parse`] take any bytes and refuse what is not exactly
//! such a file with one line naming the file, the field and the reason.

use super::{add_root_signature, rules::is_ident, sign_root, write_atomic, Counter};
use crate::conex::resource::{parse_time, Resource};
use crate::conex::{shown, ConexError, Digest, Root, SigAlg, Signature};
use crate::error::ArcaError;
use crate::keys::Signer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` of a sign request.
pub const REQUEST_FORMAT: &str = "arca-sign-request/1";
/// The `format` of a signature file.
pub const SIGNATURE_FORMAT: &str = "arca-signature/1";
/// The largest sign request or signature file arca reads.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a sign request or signature file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SignRequestError {
    /// The file could not be read (or is too large, or not UTF-8).
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Not a sign request or signature file: what is wrong, and in which
    /// field when it is one.
    #[error("{file}: not a {what}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// `sign request` or `signature file`.
        what: &'static str,
        /// The field and what is wrong with it.
        reason: String,
    },
    /// Another kind of file, or another version of the format.
    #[error("{file}: format \"{found}\", expected {expected}")]
    Format {
        /// The file.
        file: String,
        /// The format it gives (quoted with [`shown`]).
        found: String,
        /// The format expected.
        expected: &'static str,
    },
    /// The holder id is not a key of the root to export.
    #[error("{id} is not a key of {file}")]
    NotAKey {
        /// The holder id.
        id: String,
        /// The root file.
        file: String,
    },
    /// The request is for another holder.
    #[error("{file}: the request is for {found}, not {wanted}")]
    OtherHolder {
        /// The request.
        file: String,
        /// The holder it names.
        found: String,
        /// The holder signing.
        wanted: String,
    },
    /// A root file, or the root inside a request, does not parse.
    #[error("{0}")]
    Root(ConexError),
    /// A root file read with warnings: arca does not sign or rewrite it.
    #[error("{file}: {warning}")]
    RootWarning {
        /// The root file.
        file: String,
        /// The first warning.
        warning: String,
    },
    /// The root inside a request is not the one its digest and counter name.
    #[error("{file}: the root inside does not match the request's digest/counter (digest {digest}, counter {counter}); do not sign")]
    RootMismatch {
        /// The request.
        file: String,
        /// The signed-content digest of the root inside.
        digest: String,
        /// The counter of the root inside.
        counter: u64,
    },
    /// The holder is not a key of the requested root.
    #[error("{file}: {id} is not a key of the requested root")]
    NotInRequestedRoot {
        /// The request.
        file: String,
        /// The holder id.
        id: String,
    },
    /// Signing made no signature of the holder.
    #[error("no signature of {id} was made")]
    NotSigned {
        /// The holder id.
        id: String,
    },
    /// A signature over another counter than the pending root's.
    #[error("{file}: the signature of {id} is over counter {signed}, the pending root is at counter {pending}; not added")]
    OtherCounter {
        /// The signature file.
        file: String,
        /// The signer.
        id: String,
        /// The counter signed.
        signed: u64,
        /// The pending root's counter.
        pending: u64,
    },
    /// A signature over other signed content than the pending root's.
    #[error("{file}: the signature of {id} covers signed content {signed}, the pending root's is {pending}; not added")]
    OtherContent {
        /// The signature file.
        file: String,
        /// The signer.
        id: String,
        /// The signed-content digest signed.
        signed: String,
        /// The pending root's.
        pending: String,
    },
    /// The root refused the signature (not a key, does not verify, …).
    #[error("{file}: {reason}")]
    NotAdded {
        /// The signature file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Reading the root, signing or writing failed.
    #[error(transparent)]
    Repository(#[from] ArcaError),
}

impl From<SignRequestError> for ArcaError {
    fn from(e: SignRequestError) -> ArcaError {
        use SignRequestError as E;
        match e {
            E::Read { file, source } => ArcaError::io(file, source),
            E::Root(c) => ArcaError::Conex(c),
            E::Repository(a) => a,
            E::Malformed { .. } | E::Format { .. } | E::NotAKey { .. } => {
                ArcaError::Input(e.to_string())
            }
            E::OtherHolder { .. }
            | E::RootWarning { .. }
            | E::RootMismatch { .. }
            | E::NotInRequestedRoot { .. }
            | E::NotSigned { .. }
            | E::OtherCounter { .. }
            | E::OtherContent { .. }
            | E::NotAdded { .. } => ArcaError::Refused(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, SignRequestError>;

/// What one absent root holder signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The holder's root key id.
    pub id: String,
    /// Counter of the pending root.
    pub counter: u64,
    /// `sha256=` of the canonical signed content of the pending root.
    pub signed_digest: String,
    /// For people: what changes, keys, who signed already.
    pub summary: String,
    /// The pending root file.
    pub root: String,
}

/// A detached root signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// The signer's root key id.
    pub id: String,
    /// Counter of the root signed.
    pub counter: u64,
    /// `sha256=` of the canonical signed content signed.
    pub signed_digest: String,
    /// The signature's time (RFC 3339).
    pub created: String,
    /// The signature algorithm.
    pub alg: SigAlg,
    /// The signature, base64.
    pub value: String,
}

/// `sha256=` of a root's canonical signed content: what a request names.
pub fn signed_digest(root: &Root) -> String {
    Digest::sha256(root.canonical_signed().as_bytes()).to_string()
}

/// Reads a root file for export or import: one that parses without a
/// warning (arca does not sign or rewrite a file with content it would
/// drop).
pub fn read_root(path: &Path) -> Result<Root> {
    let text = std::fs::read_to_string(path).map_err(|e| ArcaError::io(path, e))?;
    let mut w = Vec::new();
    let r = Root::parse(&text, &mut w)
        .map_err(|e| SignRequestError::Root(e.in_file(path.display())))?;
    if let Some(x) = w.first() {
        return Err(SignRequestError::RootWarning {
            file: path.display().to_string(),
            warning: x.clone(),
        });
    }
    Ok(r)
}

/// The root's keys with their key ids (grouped for reading aloud), and who
/// has signed it.
pub fn keys_text(root: &Root) -> String {
    let mut s = String::new();
    for (id, k) in &root.keys {
        s.push_str(&format!(
            "key {id} ({}): {}\n    {}\n",
            k.key.alg,
            k.key_id(),
            super::grouped(&k.key_id().data)
        ));
    }
    let signed: Vec<&str> = root.signatures.keys().map(String::as_str).collect();
    s.push_str(&format!(
        "signatures present: {}\n",
        if signed.is_empty() {
            "none".to_string()
        } else {
            signed.join(", ")
        }
    ));
    s
}

impl SignRequest {
    /// The request for holder `id` to sign the root at `root_path`.
    /// `describe` says what changes from the last signed root (at `last`,
    /// when given); the summary adds the keys and the signed-content digest.
    pub fn export(
        root_path: &Path,
        id: &str,
        last: Option<&Path>,
        describe: impl FnOnce(Option<&Root>, &Root) -> String,
    ) -> Result<SignRequest> {
        let r = read_root(root_path)?;
        if !r.keys.contains_key(id) {
            return Err(SignRequestError::NotAKey {
                id: id.into(),
                file: root_path.display().to_string(),
            });
        }
        let old = last.map(read_root).transpose()?;
        let d = signed_digest(&r);
        let summary = format!(
            "{}{}signed content: {d}\n    {}\n",
            describe(old.as_ref(), &r),
            keys_text(&r),
            super::grouped(&d)
        );
        Ok(SignRequest {
            id: id.into(),
            counter: r.header.counter,
            signed_digest: d,
            summary,
            root: r.to_file_string(),
        })
    }

    /// The request as arca writes it (pretty JSON, a final newline).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            format: &'a str,
            id: &'a str,
            counter: u64,
            signed_digest: &'a str,
            summary: &'a str,
            root: &'a str,
        }
        to_json(&Wire {
            format: REQUEST_FORMAT,
            id: &self.id,
            counter: self.counter,
            signed_digest: &self.signed_digest,
            summary: &self.summary,
            root: &self.root,
        })
    }

    /// Reads a sign request ([`SignRequest::parse`]).
    pub fn read(path: &Path) -> Result<SignRequest> {
        SignRequest::parse(&read_limited(path)?, &path.display().to_string())
    }

    /// Parses a sign request: a JSON object with exactly the fields `format`
    /// (`arca-sign-request/1`), `id` (a key id), `counter`, `signed_digest`
    /// (`sha256=` and 64 lowercase hex digits), `summary` (text without
    /// control characters besides newline and tab) and `root` (text), each
    /// once. `file` names the file in errors. The root inside is checked by
    /// [`SignRequest::open`].
    pub fn parse(text: &str, file: &str) -> Result<SignRequest> {
        let mut f = Fields::parse(text, file, "sign request", REQUEST_FORMAT, &REQUEST_FIELDS)?;
        let req = SignRequest {
            id: f.ident("id")?,
            counter: f.counter()?,
            signed_digest: f.digest()?,
            summary: f.text("summary")?,
            root: f.string("root")?,
        };
        Ok(req)
    }

    /// Checks the request on the holder's machine: it is for `id`, the root
    /// inside parses and has exactly the request's signed-content digest
    /// and counter, and `id` is one of its keys. Returns that root.
    pub fn open(&self, file: &str, id: &str) -> Result<Root> {
        if self.id != id {
            return Err(SignRequestError::OtherHolder {
                file: file.into(),
                found: self.id.clone(),
                wanted: id.into(),
            });
        }
        let root = Root::parse(&self.root, &mut Vec::new())
            .map_err(|e| SignRequestError::Root(e.in_file(format!("{file} (root)"))))?;
        let d = signed_digest(&root);
        if d != self.signed_digest || root.header.counter != self.counter {
            return Err(SignRequestError::RootMismatch {
                file: file.into(),
                digest: d,
                counter: root.header.counter,
            });
        }
        if !root.keys.contains_key(id) {
            return Err(SignRequestError::NotInRequestedRoot {
                file: file.into(),
                id: id.into(),
            });
        }
        Ok(root)
    }
}

/// Signs `root` (from [`SignRequest::open`]) as `id` at `created` with the
/// one root-signing path, on a copy: the signature leaves as a file.
/// Returns it with the signing path's notes for people.
pub fn sign(
    root: &Root,
    id: &str,
    created: &str,
    signer: &mut dyn Signer,
) -> Result<(SignatureFile, Vec<String>)> {
    let mut signed = root.clone();
    let notes = sign_root(&mut signed, id, created, signer, Counter::Keep)?;
    let sig = signed
        .signatures
        .get(id)
        .cloned()
        .ok_or_else(|| SignRequestError::NotSigned { id: id.into() })?;
    let f = SignatureFile {
        id: id.into(),
        counter: root.header.counter,
        signed_digest: signed_digest(root),
        created: created.into(),
        alg: sig.alg,
        value: sig.value,
    };
    Ok((f, notes))
}

/// What [`SignatureFile::import`] did.
#[derive(Debug)]
pub enum Imported {
    /// The signature was added; the root as written.
    Added(Box<Root>),
    /// The root holds this very signature already; nothing was written.
    Already,
}

impl SignatureFile {
    /// The signature file as arca writes it (pretty JSON, a final newline).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            format: &'a str,
            id: &'a str,
            counter: u64,
            signed_digest: &'a str,
            created: &'a str,
            alg: &'a str,
            value: &'a str,
        }
        to_json(&Wire {
            format: SIGNATURE_FORMAT,
            id: &self.id,
            counter: self.counter,
            signed_digest: &self.signed_digest,
            created: &self.created,
            alg: self.alg.as_str(),
            value: &self.value,
        })
    }

    /// Reads a signature file ([`SignatureFile::parse`]).
    pub fn read(path: &Path) -> Result<SignatureFile> {
        SignatureFile::parse(&read_limited(path)?, &path.display().to_string())
    }

    /// Parses a signature file: a JSON object with exactly the fields
    /// `format` (`arca-signature/1`), `id` (a key id), `counter`,
    /// `signed_digest` (`sha256=` and 64 lowercase hex digits), `created`
    /// (RFC 3339), `alg` (`ed25519` or `rsapss-sha256`) and `value`
    /// (padded base64), each once. `file` names the file in errors.
    pub fn parse(text: &str, file: &str) -> Result<SignatureFile> {
        let mut f = Fields::parse(
            text,
            file,
            "signature file",
            SIGNATURE_FORMAT,
            &SIGNATURE_FIELDS,
        )?;
        let id = f.ident("id")?;
        let counter = f.counter()?;
        let signed_digest = f.digest()?;
        let created = f.string("created")?;
        if parse_time(&created).is_none() {
            return Err(f.bad(format!(
                "field created: \"{}\" is not an RFC 3339 time",
                shown(&created)
            )));
        }
        let alg = f.string("alg")?;
        let alg = SigAlg::parse(&alg).ok_or_else(|| {
            f.bad(format!(
                "field alg: \"{}\" is not a signature algorithm (ed25519, rsapss-sha256)",
                shown(&alg)
            ))
        })?;
        let value = f.string("value")?;
        let s = SignatureFile {
            id,
            counter,
            signed_digest,
            created,
            alg,
            value,
        };
        if s.signature().raw().is_none() {
            return Err(f.bad("field value: not padded base64"));
        }
        Ok(s)
    }

    /// The signature as the root holds it.
    pub fn signature(&self) -> Signature {
        Signature {
            id: self.id.clone(),
            created: self.created.clone(),
            alg: self.alg,
            value: self.value.clone(),
        }
    }

    /// Adds the signature to the pending root at `root_path`, only if it is
    /// over exactly its counter and signed content and verifies with the
    /// root's key of its signer ([`add_root_signature`]); writes the root
    /// back atomically. `file` names the signature file in errors.
    pub fn import(&self, file: &str, root_path: &Path) -> Result<Imported> {
        let mut r = read_root(root_path)?;
        if self.counter != r.header.counter {
            return Err(SignRequestError::OtherCounter {
                file: file.into(),
                id: self.id.clone(),
                signed: self.counter,
                pending: r.header.counter,
            });
        }
        let d = signed_digest(&r);
        if self.signed_digest != d {
            return Err(SignRequestError::OtherContent {
                file: file.into(),
                id: self.id.clone(),
                signed: self.signed_digest.clone(),
                pending: d,
            });
        }
        let sig = self.signature();
        if r.signatures.get(&self.id) == Some(&sig) {
            return Ok(Imported::Already);
        }
        add_root_signature(&mut r, sig).map_err(|e| match e {
            ArcaError::Refused(reason) => SignRequestError::NotAdded {
                file: file.into(),
                reason,
            },
            other => other.into(),
        })?;
        write_atomic(root_path, r.to_file_string().as_bytes())?;
        Ok(Imported::Added(Box::new(r)))
    }
}

fn to_json(v: &impl Serialize) -> String {
    // strings and numbers only: serde_json cannot fail on them
    let mut json = serde_json::to_string_pretty(v).unwrap_or_default();
    json.push('\n');
    json
}

/// Reads a file of at most [`MAX_BYTES`] as UTF-8.
fn read_limited(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let err = |source: std::io::Error| SignRequestError::Read {
        file: path.to_path_buf(),
        source,
    };
    let invalid = |msg: String| err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    let f = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(invalid(format!(
            "file is larger than {} MiB, the limit for a sign request or signature file",
            MAX_BYTES / (1024 * 1024)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

const REQUEST_FIELDS: [&str; 6] = [
    "format",
    "id",
    "counter",
    "signed_digest",
    "summary",
    "root",
];
const SIGNATURE_FIELDS: [&str; 7] = [
    "format",
    "id",
    "counter",
    "signed_digest",
    "created",
    "alg",
    "value",
];

/// The members of a JSON object in file order, repeats kept (serde_json's
/// own map keeps the last of a repeated key without a word).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Members, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, serde_json::Value>()? {
                    v.push(e);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// The fields of a sign request or signature file, each taken once.
struct Fields {
    file: String,
    what: &'static str,
    values: std::collections::BTreeMap<&'static str, serde_json::Value>,
}

impl Fields {
    /// Parses the JSON object: no field unknown, repeated or missing, and
    /// the `format` first of all.
    fn parse(
        text: &str,
        file: &str,
        what: &'static str,
        format: &'static str,
        names: &[&'static str],
    ) -> Result<Fields> {
        let mut f = Fields {
            file: file.into(),
            what,
            values: Default::default(),
        };
        let members = serde_json::from_str::<Members>(text).map_err(|e| {
            use serde_json::error::Category;
            f.bad(match e.classify() {
                // the only data error is the top-level type; serde_json's
                // message would quote the value
                Category::Data => "not a JSON object".to_string(),
                // fixed texts with line and column
                Category::Syntax | Category::Eof | Category::Io => format!("JSON: {e}"),
            })
        })?;
        // another kind of file (or version) is said so before its fields
        // are found unknown
        if let Some((_, serde_json::Value::String(s))) =
            members.0.iter().find(|(k, _)| k == "format")
        {
            if s != format {
                return Err(SignRequestError::Format {
                    file: f.file.clone(),
                    found: shown(s),
                    expected: format,
                });
            }
        }
        for (k, v) in members.0 {
            let Some(name) = names.iter().find(|n| **n == k) else {
                return Err(f.bad(format!("unknown field \"{}\"", shown(&k))));
            };
            if f.values.insert(name, v).is_some() {
                return Err(f.bad(format!("field {name} appears twice")));
            }
        }
        if let Some(missing) = names.iter().find(|n| !f.values.contains_key(*n)) {
            return Err(f.bad(format!("field {missing} is missing")));
        }
        f.string("format")?;
        Ok(f)
    }

    fn bad(&self, reason: impl Into<String>) -> SignRequestError {
        SignRequestError::Malformed {
            file: self.file.clone(),
            what: self.what,
            reason: reason.into(),
        }
    }

    fn take(&mut self, name: &'static str) -> serde_json::Value {
        self.values.remove(name).unwrap_or_default()
    }

    fn string(&mut self, name: &'static str) -> Result<String> {
        match self.take(name) {
            serde_json::Value::String(s) => Ok(s),
            other => Err(self.bad(format!("field {name}: {}, not a string", json_kind(&other)))),
        }
    }

    fn ident(&mut self, name: &'static str) -> Result<String> {
        let s = self.string(name)?;
        if !is_ident(&s) {
            return Err(self.bad(format!(
                "field {name}: \"{}\" is not a key id (letters, digits, '_' and '-', at least one letter)",
                shown(&s)
            )));
        }
        Ok(s)
    }

    fn counter(&mut self) -> Result<u64> {
        match self.take("counter") {
            serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| {
                // serde_json holds a number beyond i64 and u64 as a float:
                // not quoted, it would not be the file's spelling
                self.bad(format!(
                    "field counter: not a whole number from 0 to {}",
                    u64::MAX
                ))
            }),
            other => Err(self.bad(format!(
                "field counter: {}, not a number",
                json_kind(&other)
            ))),
        }
    }

    fn digest(&mut self) -> Result<String> {
        let s = self.string("signed_digest")?;
        let ok = s.strip_prefix("sha256=").is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !ok {
            return Err(self.bad(format!(
                "field signed_digest: \"{}\" is not sha256= and 64 lowercase hex digits",
                shown(&s)
            )));
        }
        Ok(s)
    }

    /// Text shown to people: no control characters besides newline and tab.
    fn text(&mut self, name: &'static str) -> Result<String> {
        let s = self.string(name)?;
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err(self.bad(format!(
                "field {name}: holds the control character {}",
                c.escape_unicode()
            )));
        }
        Ok(s)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SignRequest {
        SignRequest {
            id: "rootA".into(),
            counter: 1,
            signed_digest: format!("sha256={}", "ab".repeat(32)),
            summary: "A NEW ROOT\nkey rootA\n".into(),
            root: "signed: [ ]\n".into(),
        }
    }

    fn err(text: &str) -> String {
        SignRequest::parse(text, "req.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_request_reads_back_as_written() {
        let r = request();
        let json = r.to_json();
        assert!(json.starts_with("{\n  \"format\": \"arca-sign-request/1\",\n  \"id\": \"rootA\","));
        assert_eq!(SignRequest::parse(&json, "req.json").unwrap(), r);
    }

    #[test]
    fn malformed_requests_name_file_field_and_reason() {
        let json = request().to_json();
        for (text, expected) in [
            (
                "",
                "req.json: not a sign request: JSON: EOF while parsing a value at line 1 column 0",
            ),
            (
                "\"x\nx\"",
                "req.json: not a sign request: JSON: control character",
            ),
            ("[1]", "req.json: not a sign request: not a JSON object"),
            (
                &json.replace("\"id\"", "\"i\\nd\""),
                "unknown field \"i\\nd\"",
            ),
            (
                &json.replace("\"counter\": 1", "\"counter\": \"1\""),
                "field counter: a string, not a number",
            ),
            (
                &json.replace("\"counter\": 1", "\"counter\": -1"),
                "field counter: not a whole number from 0 to 18446744073709551615",
            ),
            (
                &json.replace("\"counter\": 1", "\"counter\": 1.5"),
                "field counter: not a whole number",
            ),
            (
                &json.replace("\"rootA\"", "\"root A\""),
                "field id: \"root A\" is not a key id",
            ),
            (
                &json.replace("sha256=ab", "sha256=AB"),
                "field signed_digest: \"sha256=ABab",
            ),
            (
                &json.replace("A NEW ROOT", "\\u001b[2J"),
                "field summary: holds the control character \\u{1b}",
            ),
            (
                &json.replace("\"root\": ", "\"root\": 5, \"root\": "),
                "field root appears twice",
            ),
            (
                &json.replace("  \"root\": \"signed: [ ]\\n\"\n", "  \"x\": 1\n"),
                "unknown field \"x\"",
            ),
            (
                &json.replace(",\n  \"root\": \"signed: [ ]\\n\"", ""),
                "field root is missing",
            ),
            (
                &json.replace("arca-sign-request/1", "arca-signature/1"),
                "req.json: format \"arca-signature/1\", expected arca-sign-request/1",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(expected), "{text:?}: {e:?} lacks {expected:?}");
            assert!(e.starts_with("req.json: "), "{e}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn signature_files_are_checked_field_by_field() {
        let s = SignatureFile {
            id: "rootA".into(),
            counter: 3,
            signed_digest: format!("sha256={}", "0f".repeat(32)),
            created: "2026-11-21T23:33:19Z".into(),
            alg: SigAlg::Ed25519,
            value: "AAAA".into(),
        };
        let json = s.to_json();
        assert_eq!(SignatureFile::parse(&json, "s.json").unwrap(), s);
        for (text, expected) in [
            (
                json.replace("ed25519", "rsa"),
                "field alg: \"rsa\" is not a signature algorithm",
            ),
            (
                json.replace("AAAA", "AAA"),
                "field value: not padded base64",
            ),
            (
                json.replace("2026-11-21T23:33:19Z", "yesterday"),
                "field created: \"yesterday\" is not an RFC 3339 time",
            ),
            (
                request().to_json(),
                "s.json: format \"arca-sign-request/1\", expected arca-signature/1",
            ),
        ] {
            let e = SignatureFile::parse(&text, "s.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }
}
