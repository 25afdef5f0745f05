//! RFC 7512 `pkcs11:` URIs: parsing, printing, and where the module comes from.

use super::MODULE_ENV;
use crate::keys::KeyError;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a `type=` path attribute names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`
    Private,
    /// `type=public`
    Public,
    /// `type=cert`
    Cert,
    /// `type=secret-key`
    SecretKey,
    /// `type=data`
    Data,
}

impl ObjectType {
    fn parse(s: &str) -> Option<ObjectType> {
        match s {
            "private" => Some(ObjectType::Private),
            "public" => Some(ObjectType::Public),
            "cert" => Some(ObjectType::Cert),
            "secret-key" => Some(ObjectType::SecretKey),
            "data" => Some(ObjectType::Data),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// An RFC 7512 PKCS#11 URI, as far as arca uses it.
///
/// Path attributes: `token`, `manufacturer`, `serial`, `model`, `slot-id`,
/// `object`, `id`, `type`. Query attributes: `module-path`, `pin-source`
/// (`file:` only). Anything else is refused, `pin-value` with an
/// explanation: PINs may not be written into key locations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label (CKA token info `label`).
    pub token: Option<String>,
    /// Token manufacturer id.
    pub manufacturer: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
    /// Token model.
    pub model: Option<String>,
    /// Slot id (only narrows the choice; the token must still be named).
    pub slot_id: Option<u64>,
    /// Object label (CKA_LABEL).
    pub object: Option<String>,
    /// Object id (CKA_ID), raw bytes.
    pub id: Option<Vec<u8>>,
    /// Object type.
    pub object_type: Option<ObjectType>,
    /// The PKCS#11 module (shared library).
    pub module_path: Option<PathBuf>,
    /// A file holding the user PIN (`pin-source=file:PATH`).
    pub pin_source: Option<PathBuf>,
}

fn loc_err(s: &str, reason: impl Into<String>) -> KeyError {
    KeyError::Location {
        location: redact_pin_value(s),
        reason: reason.into(),
    }
}

/// The location with the value of any `pin-value=` attribute hidden, so
/// that refusing it does not print the PIN.
fn redact_pin_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("pin-value=") {
        let (head, tail) = rest.split_at(i + "pin-value=".len());
        out.push_str(head);
        out.push_str("(hidden)");
        let end = tail.find(['&', ';', '?']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn hexval(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `v` into bytes; `None` on a malformed escape.
fn pct_decode(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hexval(*b.get(i + 1)?)?;
            let lo = hexval(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (plus `:`
/// and `/` when `path_chars`).
fn pct_encode(bytes: &[u8], path_chars: bool) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &c in bytes {
        let keep = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~')
            || (path_chars && matches!(c, b'/' | b':'));
        if keep {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI (RFC 7512).
    pub fn parse(s: &str) -> Result<Pkcs11Uri, KeyError> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| loc_err(s, "a PKCS#11 URI starts with pkcs11:"))?;
        if rest.contains('#') {
            return Err(loc_err(s, "a PKCS#11 URI has no #fragment"));
        }
        if let Some(c) = rest.chars().find(|c| c.is_control() || *c == ' ') {
            return Err(loc_err(
                s,
                format!("{c:?} must be percent-encoded in a PKCS#11 URI"),
            ));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut u = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        let mut check_dup = |name: &str| -> Result<(), KeyError> {
            if seen.iter().any(|n| n == name) {
                return Err(loc_err(s, format!("attribute {name} is given twice")));
            }
            seen.push(name.into());
            Ok(())
        };
        let text = |name: &str, v: &str| -> Result<String, KeyError> {
            let raw = pct_decode(v).ok_or_else(|| {
                loc_err(s, format!("{name}: malformed percent-encoding in {v:?}"))
            })?;
            String::from_utf8(raw)
                .map_err(|_| loc_err(s, format!("{name}: not UTF-8 after percent-decoding")))
        };
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, v) = part
                .split_once('=')
                .ok_or_else(|| loc_err(s, format!("path attribute {part:?} has no `=`")))?;
            check_dup(name)?;
            if v.is_empty() && matches!(name, "token" | "serial" | "object") {
                return Err(loc_err(s, format!("{name}= is empty")));
            }
            match name {
                "token" => u.token = Some(text(name, v)?),
                "manufacturer" => u.manufacturer = Some(text(name, v)?),
                "serial" => u.serial = Some(text(name, v)?),
                "model" => u.model = Some(text(name, v)?),
                "object" => u.object = Some(text(name, v)?),
                "id" => {
                    let raw = pct_decode(v)
                        .ok_or_else(|| loc_err(s, format!("id: malformed percent-encoding in {v:?}")))?;
                    if raw.is_empty() {
                        return Err(loc_err(s, "id is empty"));
                    }
                    u.id = Some(raw)
                }
                "type" => {
                    let t = text(name, v)?;
                    u.object_type = Some(ObjectType::parse(&t).ok_or_else(|| {
                        loc_err(
                            s,
                            format!("type={t} is not one of private, public, cert, secret-key, data"),
                        )
                    })?)
                }
                "slot-id" => {
                    let t = text(name, v)?;
                    u.slot_id = Some(t.parse().map_err(|_| {
                        loc_err(s, format!("slot-id={t} is not a decimal number"))
                    })?)
                }
                "pin-value" | "pin-source" | "module-path" | "module-name" => {
                    return Err(loc_err(
                        s,
                        format!("{name} is a query attribute: write it after `?`"),
                    ))
                }
                other => {
                    return Err(loc_err(
                        s,
                        format!(
                            "unknown path attribute {other:?} (arca knows token, manufacturer, serial, model, slot-id, object, id, type)"
                        ),
                    ))
                }
            }
        }
        if let Some(q) = query {
            for part in q.split('&').filter(|p| !p.is_empty()) {
                let (name, v) = part
                    .split_once('=')
                    .ok_or_else(|| loc_err(s, format!("query attribute {part:?} has no `=`")))?;
                check_dup(name)?;
                match name {
                    "pin-value" => {
                        return Err(loc_err(
                            s,
                            "pin-value is refused: a PIN may not be written into a key location (it would end up in shell history, logs and process lists); use pin-source=file:PATH or enter the PIN when asked",
                        ))
                    }
                    "module-path" => {
                        let p = text(name, v)?;
                        if p.is_empty() {
                            return Err(loc_err(s, "module-path is empty"));
                        }
                        u.module_path = Some(PathBuf::from(p))
                    }
                    "pin-source" => {
                        let p = text(name, v)?;
                        let path = p
                            .strip_prefix("file://")
                            .or_else(|| p.strip_prefix("file:"))
                            .ok_or_else(|| {
                                loc_err(
                                    s,
                                    format!("pin-source {p:?}: only file:PATH is supported"),
                                )
                            })?;
                        if path.is_empty() {
                            return Err(loc_err(s, "pin-source=file: names no file"));
                        }
                        u.pin_source = Some(PathBuf::from(path))
                    }
                    "module-name" => {
                        return Err(loc_err(
                            s,
                            "module-name is not supported; give the full module-path",
                        ))
                    }
                    other => {
                        return Err(loc_err(
                            s,
                            format!("unknown query attribute {other:?} (arca knows module-path, pin-source)"),
                        ))
                    }
                }
            }
        }
        Ok(u)
    }

    /// The PKCS#11 module to load: `module-path`, else `$ARCA_PKCS11_MODULE`.
    pub fn module(&self) -> Result<PathBuf, KeyError> {
        resolve_module(self.module_path.as_deref(), std::env::var_os(MODULE_ENV))
    }

    /// How the token is named, for messages (`token "root-1"`).
    pub(super) fn token_desc(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token {t:?}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial {s:?}"));
        }
        if let Some(m) = &self.manufacturer {
            parts.push(format!("manufacturer {m:?}"));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model {m:?}"));
        }
        if let Some(id) = self.slot_id {
            parts.push(format!("slot-id {id}"));
        }
        if parts.is_empty() {
            "any token".into()
        } else {
            parts.join(", ")
        }
    }

    /// How the key is named, for messages (`object "rootA", id 01ab`).
    pub(super) fn key_desc(&self) -> String {
        match (&self.object, &self.id) {
            (Some(o), Some(id)) => format!("object {o:?} (id {})", hex::encode(id)),
            (Some(o), None) => format!("object {o:?}"),
            (None, Some(id)) => format!("id {}", hex::encode(id)),
            (None, None) => "no object".into(),
        }
    }

    /// The URI without its query part (module and PIN file), for people.
    pub fn without_query(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            module_path: None,
            pin_source: None,
            ..self.clone()
        }
    }
}

/// Module resolution, apart from the process environment so it can be tested.
pub(super) fn resolve_module(
    uri: Option<&Path>,
    env: Option<OsString>,
) -> Result<PathBuf, KeyError> {
    let path = match (uri, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(e)) if !e.is_empty() => PathBuf::from(e),
        _ => {
            return Err(KeyError::Location {
                location: "pkcs11:".into(),
                reason: format!(
                    "no PKCS#11 module given: add ?module-path=/path/to/module.so to the URI or set {MODULE_ENV} (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)"
                ),
            })
        }
    };
    if !path.is_absolute() {
        return Err(KeyError::Location {
            location: path.display().to_string(),
            reason: "the PKCS#11 module path must be absolute (a bare name would be looked up in the library search path)".into(),
        });
    }
    Ok(path)
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<String> = Vec::new();
        let mut text = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                path.push(format!("{name}={}", pct_encode(v.as_bytes(), false)));
            }
        };
        text("token", &self.token);
        text("manufacturer", &self.manufacturer);
        text("serial", &self.serial);
        text("model", &self.model);
        if let Some(id) = self.slot_id {
            path.push(format!("slot-id={id}"));
        }
        if let Some(o) = &self.object {
            path.push(format!("object={}", pct_encode(o.as_bytes(), false)));
        }
        if let Some(id) = &self.id {
            let enc: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path.push(format!("id={enc}"));
        }
        if let Some(t) = self.object_type {
            path.push(format!("type={}", t.as_str()));
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        let mut query: Vec<String> = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!(
                "module-path={}",
                pct_encode(m.to_string_lossy().as_bytes(), true)
            ));
        }
        if let Some(p) = &self.pin_source {
            // `file://` is read as a prefix too: a path that itself starts
            // with `//` needs it spelled out to read back the same
            let p = p.to_string_lossy();
            let scheme = if p.starts_with("//") {
                "file://"
            } else {
                "file:"
            };
            query.push(format!(
                "pin-source={scheme}{}",
                pct_encode(p.as_bytes(), true)
            ));
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}
