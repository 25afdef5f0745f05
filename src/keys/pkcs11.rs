//! Keys on PKCS#11 tokens (HSMs, smart cards, SoftHSM), named by RFC 7512
//! `pkcs11:` URIs.
//!
//! * A token is chosen by its label and/or serial number, never by slot
//!   index (slot ids are not stable: SoftHSM gives random-looking ones).
//! * A key is chosen by `object=` (CKA_LABEL) and/or `id=` (CKA_ID).
//! * The PKCS#11 module comes from `module-path=` in the URI or from the
//!   `ARCA_PKCS11_MODULE` environment variable.
//! * PINs never appear in URIs (`pin-value` is refused); they come from the
//!   person through a [`SecretSource`] or from a `pin-source=file:PATH`.
//!
//! Generated private keys are `CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE`, not
//! extractable and usable only for signing; arca reads the attributes back
//! after generation and deletes the pair if the token did not honour them.
//!
//! Signatures: RSA with `CKM_SHA256_RSA_PKCS_PSS` (SHA-256, MGF1-SHA-256,
//! salt 32), or `CKM_RSA_PKCS_PSS` over a SHA-256 computed here when the token
//! lacks the combined mechanism; Ed25519 with `CKM_EDDSA` (pure).

use super::{KeyError, KeySpec, SecretRequest, SecretSource, Signer};
use crate::conex::{KeyAlg, PublicKey};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo as CkTokenInfo};
use cryptoki::types::AuthPin;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

/// Environment variable naming the PKCS#11 module when the URI has no
/// `module-path`.
pub const MODULE_ENV: &str = "ARCA_PKCS11_MODULE";

/// DER OID 1.3.101.112 (Ed25519), the CKA_EC_PARAMS arca writes.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString "edwards25519", the older CKA_EC_PARAMS form (read only).
const ED25519_NAME: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];
/// conex's RSA-PSS salt length.
const PSS_SALT: u64 = 32;

// ---------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------

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
    fn token_desc(&self) -> String {
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
    fn key_desc(&self) -> String {
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
fn resolve_module(uri: Option<&Path>, env: Option<OsString>) -> Result<PathBuf, KeyError> {
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

// ---------------------------------------------------------------------------
// Module contexts and login bookkeeping
// ---------------------------------------------------------------------------

/// One initialised context per module per process (C_Initialize is global).
fn context(path: &Path) -> Result<Pkcs11, KeyError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(path) {
        return Ok(c.clone());
    }
    if !path.exists() {
        return Err(KeyError::Device(format!(
            "PKCS#11 module {} does not exist; install the vendor's PKCS#11 module or fix module-path / {MODULE_ENV}",
            path.display()
        )));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        KeyError::Device(format!(
            "cannot load PKCS#11 module {}: {}",
            path.display(),
            one_line(&e.to_string())
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError::Device(format!(
                "PKCS#11 module {} failed to initialise: {}",
                path.display(),
                ck_msg(&e)
            )))
        }
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Sessions per (module, slot) that rely on the user being logged in. The
/// login state of PKCS#11 is shared by all sessions of a process on a token;
/// only the last one to go logs out.
fn logins() -> &'static Mutex<HashMap<(PathBuf, u64), usize>> {
    static LOGINS: OnceLock<Mutex<HashMap<(PathBuf, u64), usize>>> = OnceLock::new();
    LOGINS.get_or_init(Default::default)
}

/// A session on one token, logged in as the user when `logged_in`.
/// Dropping it logs out (when it is the last arca session relying on the
/// login) and closes the session.
struct TokenSession {
    session: Session,
    module: PathBuf,
    slot: Slot,
    label: String,
    logged_in: bool,
}

impl Drop for TokenSession {
    fn drop(&mut self) {
        if !self.logged_in {
            return;
        }
        let key = (self.module.clone(), self.slot.id());
        let mut map = logins().lock().unwrap_or_else(|e| e.into_inner());
        let last = match map.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                map.remove(&key);
                true
            }
        };
        if last {
            let _ = self.session.logout();
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A short, one-line description of a cryptoki error.
fn ck_msg(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, func) => format!("{func:?} failed: CKR {rv:?}"),
        other => one_line(&other.to_string()),
    }
}

fn dev(what: impl fmt::Display, e: CkError) -> KeyError {
    KeyError::Device(format!("{what}: {}", ck_msg(&e)))
}

// ---------------------------------------------------------------------------
// Token selection
// ---------------------------------------------------------------------------

fn trimmed(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

fn token_matches(uri: &Pkcs11Uri, slot: Slot, ti: &CkTokenInfo) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == trimmed(have));
    eq(&uri.token, ti.label())
        && eq(&uri.serial, ti.serial_number())
        && eq(&uri.manufacturer, ti.manufacturer_id())
        && eq(&uri.model, ti.model())
        && uri.slot_id.is_none_or(|id| id == slot.id())
}

/// Finds the one slot whose token the URI names (label and/or serial).
fn select_token(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, CkTokenInfo), KeyError> {
    if uri.token.is_none() && uri.serial.is_none() {
        return Err(KeyError::Location {
            location: uri.to_string(),
            reason: "name the token with token=LABEL and/or serial=SERIAL (arca never picks a token by slot position)".into(),
        });
    }
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?;
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in slots {
        let ti = match ctx.get_token_info(slot) {
            Ok(ti) => ti,
            Err(_) => continue,
        };
        if !ti.token_initialized() {
            continue;
        }
        present.push(format!(
            "{:?} (serial {})",
            trimmed(ti.label()),
            trimmed(ti.serial_number())
        ));
        if token_matches(uri, slot, &ti) {
            found.push((slot, ti));
        }
    }
    match found.len() {
        0 => Err(KeyError::NotFound(format!(
            "no token with {} is present; tokens present: {}",
            uri.token_desc(),
            if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            }
        ))),
        1 => Ok(found.pop().expect("one element")),
        n => Err(KeyError::Location {
            location: uri.to_string(),
            reason: format!(
                "{n} tokens match {}: {}; add serial=… to pick one",
                uri.token_desc(),
                found
                    .iter()
                    .map(|(_, t)| format!(
                        "{:?} serial {}",
                        trimmed(t.label()),
                        trimmed(t.serial_number())
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

// ---------------------------------------------------------------------------
// PINs
// ---------------------------------------------------------------------------

/// Reads a PIN file into a zeroized buffer, trailing newlines trimmed.
fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    super::read_secret_file(path, "PIN file")
}

/// Opens a session on the token and logs the user in, telling the person
/// about the PIN state first.
fn open_session(
    uri: &Pkcs11Uri,
    rw: bool,
    secrets: &mut dyn SecretSource,
) -> Result<(Pkcs11, TokenSession, CkTokenInfo), KeyError> {
    let module = uri.module()?;
    let ctx = context(&module)?;
    let (slot, ti) = select_token(&ctx, uri)?;
    let label = trimmed(ti.label()).to_string();
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| dev(format!("opening a session on token {label:?}"), e))?;
    let mut ts = TokenSession {
        session,
        module,
        slot,
        label,
        logged_in: false,
    };
    login(&ctx, &mut ts, uri, secrets)?;
    Ok((ctx, ts, ti))
}

/// What a token says about its user PIN before a login.
#[derive(Clone, Copy, Debug, Default)]
struct PinFlags {
    locked: bool,
    initialized: bool,
    to_be_changed: bool,
    final_try: bool,
    count_low: bool,
}

/// Tells the person about the PIN state before a login and decides whether
/// to go on: a locked PIN stops, the final try needs an explicit yes.
/// Returns the request to ask for the PIN with.
fn prepare_pin_request(
    label: &str,
    f: PinFlags,
    secrets: &mut dyn SecretSource,
) -> Result<SecretRequest, KeyError> {
    if f.locked {
        return Err(KeyError::PinLocked(format!(
            "the user PIN of token {label:?} is locked; the security officer must unblock it with the vendor's tool"
        )));
    }
    if !f.initialized {
        return Err(KeyError::Device(format!(
            "token {label:?} has no user PIN yet; set one with the vendor's tool first"
        )));
    }
    if f.to_be_changed {
        secrets.notice(&format!(
            "token {label:?} says its user PIN must be changed; change it with the vendor's tool after this ceremony"
        ));
    }
    if f.final_try {
        let q = format!(
            "token {label:?}: this is the FINAL PIN try — one more wrong PIN locks the user PIN. Try anyway?"
        );
        if !secrets.confirm_risky(&q)? {
            return Err(KeyError::Declined(format!(
                "stopped before the final PIN try on token {label:?}; nothing was sent to the token"
            )));
        }
    } else if f.count_low {
        secrets.notice(&format!(
            "token {label:?} reports that a wrong PIN was entered since the last right one (it does not say how many tries are left)"
        ));
    }
    Ok(SecretRequest {
        what: format!("user PIN for token {label:?}"),
        retries_left: if f.final_try { Some(1) } else { None },
        final_try: f.final_try,
    })
}

fn login(
    ctx: &Pkcs11,
    ts: &mut TokenSession,
    uri: &Pkcs11Uri,
    secrets: &mut dyn SecretSource,
) -> Result<(), KeyError> {
    let label = ts.label.clone();
    // Fresh flags: the PIN counters change with every try.
    let ti = ctx
        .get_token_info(ts.slot)
        .map_err(|e| dev(format!("reading token {label:?}"), e))?;
    if !ti.login_required() {
        return Ok(());
    }
    let key = (ts.module.clone(), ts.slot.id());
    let already = matches!(
        ts.session.get_session_info().map(|i| i.session_state()),
        Ok(SessionState::RoUser | SessionState::RwUser)
    );
    if already {
        // Another arca session of this process logged in on this token.
        *logins()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
        ts.logged_in = true;
        return Ok(());
    }
    let request = prepare_pin_request(
        &label,
        PinFlags {
            locked: ti.user_pin_locked(),
            initialized: ti.user_pin_initialized(),
            to_be_changed: ti.user_pin_to_be_changed(),
            final_try: ti.user_pin_final_try(),
            count_low: ti.user_pin_count_low(),
        },
        secrets,
    )?;
    let result = if ti.protected_authentication_path() && uri.pin_source.is_none() {
        secrets.notice(&format!(
            "enter the user PIN of token {label:?} on the device's own PIN pad"
        ));
        ts.session.login(UserType::User, None)
    } else {
        let pin = match &uri.pin_source {
            Some(path) => read_pin_file(path)?,
            None => secrets.secret(&request)?,
        };
        let auth = AuthPin::new(pin.as_str().into());
        drop(pin);
        ts.session.login(UserType::User, Some(&auth))
    };
    match result {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            *logins()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert(0) += 1;
            ts.logged_in = true;
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            let after = ctx.get_token_info(ts.slot).ok();
            if after.as_ref().is_some_and(|t| t.user_pin_locked()) {
                return Err(KeyError::PinLocked(format!(
                    "wrong PIN for token {label:?}, and the user PIN is now locked; the security officer must unblock it"
                )));
            }
            // Only what the token reports: count-low means "a wrong PIN was
            // entered since the last right one" (PKCS#11), not how many
            // tries are left; SoftHSM sets it after one wrong PIN and never
            // locks.
            let left = match after {
                Some(t) if t.user_pin_final_try() => {
                    " The token reports that ONE try is left before the PIN locks."
                }
                _ => "",
            };
            Err(KeyError::WrongPin(format!(
                "the token {label:?} did not accept that PIN; nothing was done with it.{left}"
            )))
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(KeyError::PinLocked(format!(
            "the user PIN of token {label:?} is locked; the security officer must unblock it with the vendor's tool"
        ))),
        Err(CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _)) => {
            Err(KeyError::WrongPin(format!(
                "the token {label:?} refused that PIN as too short, too long or containing characters it does not allow"
            )))
        }
        Err(CkError::Pkcs11(RvError::PinExpired, _)) => Err(KeyError::Device(format!(
            "the user PIN of token {label:?} has expired; change it with the vendor's tool"
        ))),
        Err(e) => Err(dev(format!("logging in to token {label:?}"), e)),
    }
}

// ---------------------------------------------------------------------------
// Mechanisms
// ---------------------------------------------------------------------------

/// The mechanisms a key type needs on the token: the key-pair generation
/// mechanism and at least one of the signature mechanisms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MechanismNeeds {
    /// Key-pair generation mechanism.
    pub keygen: MechanismType,
    /// Acceptable signature mechanisms, best first.
    pub sign: Vec<MechanismType>,
}

impl MechanismNeeds {
    /// What arca needs for `spec`.
    pub fn for_spec(spec: KeySpec) -> MechanismNeeds {
        match spec {
            KeySpec::Rsa(_) => MechanismNeeds {
                keygen: MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                sign: vec![
                    MechanismType::SHA256_RSA_PKCS_PSS,
                    MechanismType::RSA_PKCS_PSS,
                ],
            },
            KeySpec::Ed25519 => MechanismNeeds {
                keygen: MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                sign: vec![MechanismType::EDDSA],
            },
        }
    }
}

fn check_mechanisms(
    ctx: &Pkcs11,
    slot: Slot,
    label: &str,
    spec: KeySpec,
    needs: &MechanismNeeds,
) -> Result<(), KeyError> {
    let list = ctx
        .get_mechanism_list(slot)
        .map_err(|e| dev(format!("listing the mechanisms of token {label:?}"), e))?;
    if !list.contains(&needs.keygen) {
        return Err(KeyError::Unsupported(format!(
            "token {label:?} cannot generate {spec} keys: it lacks {}",
            needs.keygen
        )));
    }
    if let Ok(info) = ctx.get_mechanism_info(slot, needs.keygen) {
        if !info.generate_key_pair() {
            return Err(KeyError::Unsupported(format!(
                "token {label:?} lists {} but not for key-pair generation",
                needs.keygen
            )));
        }
        if let KeySpec::Rsa(bits) = spec {
            let (min, max) = (info.min_key_size(), info.max_key_size());
            if bits < min || (max > 0 && bits > max) {
                return Err(KeyError::Unsupported(format!(
                    "token {label:?} makes RSA keys of {min} to {max} bits, not {bits}"
                )));
            }
        }
    }
    if !needs.sign.iter().any(|m| list.contains(m)) {
        return Err(KeyError::Unsupported(format!(
            "token {label:?} cannot make conex {} signatures: it has none of {}",
            spec.alg().sig_alg(),
            needs
                .sign
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// How an RSA key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPssMode {
    /// `CKM_SHA256_RSA_PKCS_PSS`: the token hashes.
    Combined,
    /// `CKM_RSA_PKCS_PSS` over SHA-256 computed by arca.
    HostHash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignMech {
    Rsa(RsaPssMode),
    Eddsa,
}

fn pss_params() -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: PSS_SALT.into(),
    }
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

fn attr_bool(attrs: &[Attribute], t: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, t) {
        (Attribute::Sensitive(b), AttributeType::Sensitive)
        | (Attribute::Extractable(b), AttributeType::Extractable)
        | (Attribute::AlwaysSensitive(b), AttributeType::AlwaysSensitive)
        | (Attribute::NeverExtractable(b), AttributeType::NeverExtractable)
        | (Attribute::Sign(b), AttributeType::Sign)
        | (Attribute::Decrypt(b), AttributeType::Decrypt)
        | (Attribute::Unwrap(b), AttributeType::Unwrap)
        | (Attribute::Derive(b), AttributeType::Derive)
        | (Attribute::Token(b), AttributeType::Token)
        | (Attribute::Private(b), AttributeType::Private)
        | (Attribute::AlwaysAuthenticate(b), AttributeType::AlwaysAuthenticate) => Some(*b),
        _ => None,
    })
}

fn attr_bytes(attrs: &[Attribute], t: AttributeType) -> Option<Vec<u8>> {
    attrs.iter().find_map(|a| match (a, t) {
        (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
        | (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint) => Some(v.clone()),
        _ => None,
    })
}

fn attr_key_type(attrs: &[Attribute]) -> Option<KeyType> {
    attrs.iter().find_map(|a| match a {
        Attribute::KeyType(k) => Some(*k),
        _ => None,
    })
}

/// Security-relevant flags of a private key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KeyFlags {
    /// CKA_SENSITIVE.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE.
    pub extractable: bool,
    /// CKA_ALWAYS_SENSITIVE.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE.
    pub never_extractable: bool,
    /// The secret key material is refused by C_GetAttributeValue
    /// (`CKR_ATTRIBUTE_SENSITIVE`), checked with `get_attribute_info`.
    pub value_hidden: bool,
}

impl KeyFlags {
    /// What makes arca refuse to use the key: its secret could leave the
    /// token now.
    pub fn hard_problems(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if !self.sensitive {
            p.push("not sensitive");
        }
        if self.extractable {
            p.push("extractable");
        }
        if !self.value_hidden {
            p.push("its secret value is readable");
        }
        p
    }

    /// What says the key may have been outside the token once (imported,
    /// or extractable at some time).
    pub fn history_problems(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if !self.always_sensitive {
            p.push("not always-sensitive");
        }
        if !self.never_extractable {
            p.push("not never-extractable");
        }
        p
    }

    /// Both lists.
    pub fn problems(&self) -> Vec<&'static str> {
        let mut p = self.hard_problems();
        p.extend(self.history_problems());
        p
    }
}

fn read_flags(session: &Session, key: ObjectHandle, kt: KeyType) -> Result<KeyFlags, CkError> {
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
        ],
    )?;
    // get_attributes silently drops what it cannot read; ask explicitly.
    let secret = if kt == KeyType::RSA {
        AttributeType::PrivateExponent
    } else {
        AttributeType::Value
    };
    // Sensitive, absent or invalid all mean "cannot be read"; only a value
    // the token would hand out counts as readable.
    let readable = matches!(
        session.get_attribute_info(key, &[secret]).as_deref(),
        Ok([AttributeInfo::Available(_)])
    );
    Ok(KeyFlags {
        sensitive: attr_bool(&attrs, AttributeType::Sensitive).unwrap_or(false),
        extractable: attr_bool(&attrs, AttributeType::Extractable).unwrap_or(true),
        always_sensitive: attr_bool(&attrs, AttributeType::AlwaysSensitive).unwrap_or(false),
        never_extractable: attr_bool(&attrs, AttributeType::NeverExtractable).unwrap_or(false),
        value_hidden: !readable,
    })
}

/// Strips the DER OCTET STRING around an Ed25519 CKA_EC_POINT; raw 32 bytes
/// are accepted too.
fn ed25519_point(ec_point: &[u8]) -> Option<[u8; 32]> {
    match ec_point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

fn is_ed25519_params(p: &[u8]) -> bool {
    p == ED25519_OID || p == ED25519_NAME
}

fn find(session: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>, CkError> {
    session.find_objects(template)
}

fn key_template(class: ObjectClass, uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// The conex public key of a key pair, from the public key object (or, for
/// RSA, the private key's public components).
fn public_key_of(
    session: &Session,
    private: ObjectHandle,
    public: Option<ObjectHandle>,
    kt: KeyType,
    what: &str,
) -> Result<PublicKey, KeyError> {
    if kt == KeyType::RSA {
        let mut attrs = Vec::new();
        for obj in public.into_iter().chain(std::iter::once(private)) {
            attrs = session
                .get_attributes(
                    obj,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(|e| dev(format!("reading the public key of {what}"), e))?;
            if attrs.len() == 2 {
                break;
            }
        }
        let n = attr_bytes(&attrs, AttributeType::Modulus);
        let e = attr_bytes(&attrs, AttributeType::PublicExponent);
        match (n, e) {
            (Some(n), Some(e)) => PublicKey::from_rsa_components(&n, &e).map_err(|err| {
                KeyError::Device(format!(
                    "{what}: the token's RSA public key is unusable: {err}"
                ))
            }),
            _ => Err(KeyError::NotFound(format!(
                "{what}: the token shows neither a public key object nor the RSA modulus"
            ))),
        }
    } else if kt == KeyType::EC_EDWARDS {
        let public = public.ok_or_else(|| {
            KeyError::NotFound(format!(
                "{what}: no Ed25519 public key object with the same label/id on the token"
            ))
        })?;
        let attrs = session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(|e| dev(format!("reading the public key of {what}"), e))?;
        if let Some(p) = attr_bytes(&attrs, AttributeType::EcParams) {
            if !is_ed25519_params(&p) {
                return Err(KeyError::Unsupported(format!(
                    "{what} is an Edwards-curve key but not Ed25519 (CKA_EC_PARAMS {})",
                    hex::encode(p)
                )));
            }
        }
        let point = attr_bytes(&attrs, AttributeType::EcPoint).ok_or_else(|| {
            KeyError::Device(format!("{what}: the public key has no CKA_EC_POINT"))
        })?;
        let raw = ed25519_point(&point).ok_or_else(|| {
            KeyError::Device(format!(
                "{what}: CKA_EC_POINT of {} bytes is not an Ed25519 point",
                point.len()
            ))
        })?;
        Ok(PublicKey::from_ed25519(&raw))
    } else {
        Err(KeyError::Unsupported(format!(
            "{what} has key type {kt}; arca uses RSA and Ed25519 keys"
        )))
    }
}

// ---------------------------------------------------------------------------
// The signer
// ---------------------------------------------------------------------------

/// A key pair on a PKCS#11 token, logged in and ready to sign.
pub struct Pkcs11Signer {
    ts: TokenSession,
    key: ObjectHandle,
    pk: PublicKey,
    mech: SignMech,
    desc: String,
    flags: KeyFlags,
    always_authenticate: bool,
    pin_source: Option<PathBuf>,
}

/// A checked key, before it is tied to its session.
struct KeyParts {
    key: ObjectHandle,
    pk: PublicKey,
    mech: SignMech,
    desc: String,
    flags: KeyFlags,
    always_authenticate: bool,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key", &self.desc)
            .field("public_key", &self.pk.key_id().to_string())
            .finish()
    }
}

impl Pkcs11Signer {
    /// Opens an existing key pair named by `uri`, logging in with a PIN from
    /// `pin-source` or `secrets`.
    pub fn open(uri: &Pkcs11Uri, secrets: &mut dyn SecretSource) -> Result<Pkcs11Signer, KeyError> {
        if uri.object.is_none() && uri.id.is_none() {
            return Err(KeyError::Location {
                location: uri.to_string(),
                reason: "name the key with object=LABEL and/or id=…".into(),
            });
        }
        if matches!(
            uri.object_type,
            Some(ObjectType::Cert | ObjectType::Data | ObjectType::SecretKey)
        ) {
            return Err(KeyError::Location {
                location: uri.to_string(),
                reason: "type= must be private or public for a signing key".into(),
            });
        }
        let (ctx, ts, _) = open_session(uri, false, secrets)?;
        let what = format!("{} on token {:?}", uri.key_desc(), ts.label);
        let privs = find(&ts.session, &key_template(ObjectClass::PRIVATE_KEY, uri))
            .map_err(|e| dev(format!("searching {what}"), e))?;
        let private = match privs.as_slice() {
            [] => {
                return Err(KeyError::NotFound(format!(
                    "no private key with {} on token {:?}",
                    uri.key_desc(),
                    ts.label
                )))
            }
            [one] => *one,
            more => {
                return Err(KeyError::Location {
                    location: uri.to_string(),
                    reason: format!(
                        "{} private keys match {} on token {:?}; add id=… to pick one",
                        more.len(),
                        uri.key_desc(),
                        ts.label
                    ),
                })
            }
        };
        let signer = Self::from_private(&ctx, ts, private, uri, None)?;
        let history = signer.flags.history_problems();
        if !history.is_empty() {
            secrets.notice(&format!(
                "note: {} is {}: it was imported or extractable at some time, so the token cannot vouch that it never left it",
                signer.desc,
                history.join(" and ")
            ));
        }
        Ok(signer)
    }

    /// Generates a new key pair on the token named by `uri` (`object=` is the
    /// label; `id=` the CKA_ID, derived from the label when absent).
    pub fn generate(
        uri: &Pkcs11Uri,
        spec: KeySpec,
        secrets: &mut dyn SecretSource,
    ) -> Result<Pkcs11Signer, KeyError> {
        Self::generate_with(uri, spec, secrets, &MechanismNeeds::for_spec(spec))
    }

    /// [`Pkcs11Signer::generate`] with explicit mechanism needs (checked
    /// against the token before anything is created).
    pub fn generate_with(
        uri: &Pkcs11Uri,
        spec: KeySpec,
        secrets: &mut dyn SecretSource,
        needs: &MechanismNeeds,
    ) -> Result<Pkcs11Signer, KeyError> {
        let label = uri.object.clone().ok_or_else(|| KeyError::Location {
            location: uri.to_string(),
            reason: "give the new key's label with object=LABEL".into(),
        })?;
        if let KeySpec::Rsa(bits) = spec {
            if bits < crate::conex::key::MIN_RSA_BITS {
                return Err(KeyError::Policy(format!(
                    "RSA keys need at least {} bits for conex, not {bits}",
                    crate::conex::key::MIN_RSA_BITS
                )));
            }
        }
        if matches!(uri.object_type, Some(t) if t != ObjectType::Private) {
            return Err(KeyError::Location {
                location: uri.to_string(),
                reason: "type= must be private (or absent) to generate a key".into(),
            });
        }
        let id = uri.id.clone().unwrap_or_else(|| id_for_label(&label));
        let module = uri.module()?;
        let ctx = context(&module)?;
        let (slot, ti) = select_token(&ctx, uri)?;
        let tlabel = trimmed(ti.label()).to_string();
        // Refuse early, before the PIN is asked for.
        check_mechanisms(&ctx, slot, &tlabel, spec, needs)?;
        if ti.write_protected() {
            return Err(KeyError::Device(format!(
                "token {tlabel:?} is write-protected"
            )));
        }
        let (ctx, ts, _) = open_session(uri, true, secrets)?;
        let s = &ts.session;
        let taken_label = find(s, &[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(|e| dev(format!("searching token {tlabel:?}"), e))?;
        if !taken_label.is_empty() {
            return Err(KeyError::Exists(format!(
                "token {tlabel:?} already has an object labelled {label:?}; choose another object= (arca never overwrites keys)"
            )));
        }
        let taken_id = find(s, &[Attribute::Id(id.clone())])
            .map_err(|e| dev(format!("searching token {tlabel:?}"), e))?;
        if !taken_id.is_empty() {
            return Err(KeyError::Exists(format!(
                "token {tlabel:?} already has an object with id {}; choose another id=",
                hex::encode(&id)
            )));
        }
        let common_pub = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private_t = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let (mech, public_t) = match spec {
            KeySpec::Rsa(bits) => {
                let mut t = common_pub;
                t.push(Attribute::ModulusBits((bits as u64).into()));
                t.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                (Mechanism::RsaPkcsKeyPairGen, t)
            }
            KeySpec::Ed25519 => {
                let mut t = common_pub;
                t.push(Attribute::EcParams(ED25519_OID.to_vec()));
                (Mechanism::EccEdwardsKeyPairGen, t)
            }
        };
        let (public, private) = s
            .generate_key_pair(&mech, &public_t, &private_t)
            .map_err(|e| dev(format!("generating a {spec} key on token {tlabel:?}"), e))?;
        let destroy = |why: KeyError| -> KeyError {
            let _ = s.destroy_object(private);
            let _ = s.destroy_object(public);
            why
        };
        let kt = if matches!(spec, KeySpec::Rsa(_)) {
            KeyType::RSA
        } else {
            KeyType::EC_EDWARDS
        };
        let flags = match read_flags(s, private, kt) {
            Ok(f) => f,
            Err(e) => {
                return Err(destroy(dev(
                    format!("reading back the new key {label:?} on token {tlabel:?}"),
                    e,
                )))
            }
        };
        let mut problems = flags.problems();
        match s.get_attributes(
            private,
            &[
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
                AttributeType::Derive,
            ],
        ) {
            Ok(usage) => {
                if attr_bool(&usage, AttributeType::Sign) == Some(false) {
                    problems.push("unable to sign");
                }
                for (t, name) in [
                    (AttributeType::Decrypt, "able to decrypt"),
                    (AttributeType::Unwrap, "able to unwrap"),
                    (AttributeType::Derive, "able to derive"),
                ] {
                    if attr_bool(&usage, t) == Some(true) {
                        problems.push(name);
                    }
                }
            }
            Err(e) => {
                return Err(destroy(dev(
                    format!("reading back the new key {label:?} on token {tlabel:?}"),
                    e,
                )))
            }
        }
        if !problems.is_empty() {
            return Err(destroy(KeyError::Policy(format!(
                "token {tlabel:?} made key {label:?} {}; it was deleted",
                problems.join(", ")
            ))));
        }
        let with_id = Pkcs11Uri {
            id: Some(id),
            ..uri.clone()
        };
        let parts = match Self::key_parts(&ctx, &ts, private, &with_id, Some(public)) {
            Ok(parts) => parts,
            Err(e) => return Err(destroy(e)),
        };
        let mut signer = Pkcs11Signer::assemble(ts, parts, &with_id);
        // One signature now, so a broken token is found before the ceremony
        // relies on the key.
        if let Err(e) = super::sign_checked(&mut signer, b"arca pkcs11 self-test") {
            let _ = signer.ts.session.destroy_object(private);
            let _ = signer.ts.session.destroy_object(public);
            return Err(e);
        }
        Ok(signer)
    }

    fn from_private(
        ctx: &Pkcs11,
        ts: TokenSession,
        private: ObjectHandle,
        uri: &Pkcs11Uri,
        public_hint: Option<ObjectHandle>,
    ) -> Result<Pkcs11Signer, KeyError> {
        let parts = Self::key_parts(ctx, &ts, private, uri, public_hint)?;
        Ok(Pkcs11Signer::assemble(ts, parts, uri))
    }

    fn assemble(ts: TokenSession, p: KeyParts, uri: &Pkcs11Uri) -> Pkcs11Signer {
        Pkcs11Signer {
            key: p.key,
            pk: p.pk,
            mech: p.mech,
            desc: p.desc,
            flags: p.flags,
            always_authenticate: p.always_authenticate,
            pin_source: uri.pin_source.clone(),
            ts,
        }
    }

    /// Reads and checks what arca needs to sign with `private`.
    fn key_parts(
        ctx: &Pkcs11,
        ts: &TokenSession,
        private: ObjectHandle,
        uri: &Pkcs11Uri,
        public_hint: Option<ObjectHandle>,
    ) -> Result<KeyParts, KeyError> {
        let s = &ts.session;
        let what = format!("{} on token {:?}", uri.key_desc(), ts.label);
        let attrs = s
            .get_attributes(
                private,
                &[
                    AttributeType::KeyType,
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::Sign,
                    AttributeType::AlwaysAuthenticate,
                ],
            )
            .map_err(|e| dev(format!("reading {what}"), e))?;
        let kt = attr_key_type(&attrs).ok_or_else(|| {
            KeyError::Device(format!("{what}: the token does not say its key type"))
        })?;
        if attr_bool(&attrs, AttributeType::Sign) == Some(false) {
            return Err(KeyError::Policy(format!(
                "{what} is not allowed to sign (CKA_SIGN false)"
            )));
        }
        let label = attr_bytes(&attrs, AttributeType::Label)
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let id = attr_bytes(&attrs, AttributeType::Id).filter(|i| !i.is_empty());
        let always_authenticate =
            attr_bool(&attrs, AttributeType::AlwaysAuthenticate).unwrap_or(false);
        let flags = read_flags(s, private, kt).map_err(|e| dev(format!("reading {what}"), e))?;
        let problems = flags.hard_problems();
        if !problems.is_empty() {
            return Err(KeyError::Policy(format!(
                "{what} is {}; arca only uses keys that cannot leave the token",
                problems.join(", ")
            )));
        }
        // The matching public key: by CKA_ID, else by label.
        let public = match public_hint {
            Some(p) => Some(p),
            None => {
                let mut t = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
                if let Some(id) = &id {
                    t.push(Attribute::Id(id.clone()));
                } else if let Some(l) = &label {
                    t.push(Attribute::Label(l.as_bytes().to_vec()));
                }
                let found = find(s, &t).map_err(|e| dev(format!("searching {what}"), e))?;
                match found.as_slice() {
                    [one] => Some(*one),
                    [] => None,
                    more => {
                        return Err(KeyError::Location {
                            location: uri.to_string(),
                            reason: format!(
                                "{} public keys share the id/label of {what}; give both object= and id=",
                                more.len()
                            ),
                        })
                    }
                }
            }
        };
        let pk = public_key_of(s, private, public, kt, &what)?;
        if pk.alg == KeyAlg::Rsa {
            if let Some(bits) = pk.bits() {
                if bits < crate::conex::key::MIN_RSA_BITS {
                    return Err(KeyError::Policy(format!(
                        "{what} has {bits} bits; conex requires at least {}",
                        crate::conex::key::MIN_RSA_BITS
                    )));
                }
            }
        }
        let mechs = ctx
            .get_mechanism_list(ts.slot)
            .map_err(|e| dev(format!("listing the mechanisms of token {:?}", ts.label), e))?;
        let mech = match pk.alg {
            KeyAlg::Rsa if mechs.contains(&MechanismType::SHA256_RSA_PKCS_PSS) => {
                SignMech::Rsa(RsaPssMode::Combined)
            }
            KeyAlg::Rsa if mechs.contains(&MechanismType::RSA_PKCS_PSS) => {
                SignMech::Rsa(RsaPssMode::HostHash)
            }
            KeyAlg::Ed25519 if mechs.contains(&MechanismType::EDDSA) => SignMech::Eddsa,
            alg => {
                return Err(KeyError::Unsupported(format!(
                    "token {:?} has no mechanism for conex {} signatures",
                    ts.label,
                    alg.sig_alg()
                )))
            }
        };
        if always_authenticate
            && (uri.pin_source.is_none() || mech != SignMech::Rsa(RsaPssMode::Combined))
        {
            return Err(reauth_unsupported(&what));
        }
        let named = Pkcs11Uri {
            token: Some(ts.label.clone()),
            object: label.or_else(|| uri.object.clone()),
            id: id.or_else(|| uri.id.clone()),
            ..Pkcs11Uri::default()
        };
        Ok(KeyParts {
            key: private,
            pk,
            mech,
            desc: named.to_string(),
            flags,
            always_authenticate,
        })
    }

    /// Signs with a CKA_ALWAYS_AUTHENTICATE key: C_SignInit, the
    /// context-specific login, then the data. cryptoki offers C_Sign only
    /// together with C_SignInit, so this uses the multi-part calls, which
    /// only the hashing RSA mechanism has.
    fn sign_reauthenticated(&mut self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let path = match (&self.pin_source, self.mech) {
            (Some(p), SignMech::Rsa(RsaPssMode::Combined)) => p.clone(),
            _ => return Err(reauth_unsupported(&self.desc)),
        };
        let pin = read_pin_file(&path)?;
        let auth = AuthPin::new(pin.as_str().into());
        drop(pin);
        let s = &self.ts.session;
        let failed = |e| dev(format!("signing with {}", self.desc), e);
        s.sign_init(&Mechanism::Sha256RsaPkcsPss(pss_params()), self.key)
            .map_err(failed)?;
        s.login(UserType::ContextSpecific, Some(&auth))
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::PinIncorrect, _) => KeyError::WrongPin(format!(
                    "the token did not accept the PIN from {} for {}",
                    path.display(),
                    self.desc
                )),
                e => dev(format!("authenticating for {}", self.desc), e),
            })?;
        s.sign_update(msg).map_err(failed)?;
        s.sign_final().map_err(failed)
    }

    /// The security flags read from the private key.
    pub fn key_flags(&self) -> KeyFlags {
        self.flags
    }

    /// How RSA signatures are made, `None` for Ed25519.
    pub fn rsa_pss_mode(&self) -> Option<RsaPssMode> {
        match self.mech {
            SignMech::Rsa(m) => Some(m),
            SignMech::Eddsa => None,
        }
    }

    /// Chooses how RSA signatures are made, e.g. `HostHash` for a token whose
    /// `CKM_SHA256_RSA_PKCS_PSS` misbehaves. No effect on Ed25519 keys.
    pub fn set_rsa_pss_mode(&mut self, mode: RsaPssMode) {
        if let SignMech::Rsa(_) = self.mech {
            self.mech = SignMech::Rsa(mode);
        }
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.ts.label
    }
}

fn reauth_unsupported(desc: &str) -> KeyError {
    KeyError::Unsupported(format!(
        "{desc} wants the PIN before every signature (CKA_ALWAYS_AUTHENTICATE); arca supports that only for RSA keys on tokens with CKM_SHA256_RSA_PKCS_PSS, with pin-source=file:PATH in the URI"
    ))
}

/// CKA_ID for a new key without `id=`: the first 16 bytes of SHA-256 of the
/// label.
pub fn id_for_label(label: &str) -> Vec<u8> {
    Sha256::digest(label.as_bytes())[..16].to_vec()
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        if self.always_authenticate {
            return self.sign_reauthenticated(msg);
        }
        let s = &self.ts.session;
        let r = match self.mech {
            SignMech::Rsa(RsaPssMode::Combined) => {
                s.sign(&Mechanism::Sha256RsaPkcsPss(pss_params()), self.key, msg)
            }
            SignMech::Rsa(RsaPssMode::HostHash) => {
                let h = Sha256::digest(msg);
                s.sign(&Mechanism::RsaPkcsPss(pss_params()), self.key, &h)
            }
            SignMech::Eddsa => s.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                self.key,
                msg,
            ),
        };
        r.map_err(|e| dev(format!("signing with {}", self.desc), e))
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

/// A token as `arca` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The slot id (not stable across module loads on every module).
    pub slot_id: u64,
    /// The slot description.
    pub slot_description: String,
    /// Token label.
    pub label: String,
    /// Token serial number.
    pub serial: String,
    /// Token model.
    pub model: String,
    /// Token manufacturer.
    pub manufacturer: String,
    /// Token initialised.
    pub initialized: bool,
    /// Login needed for private objects.
    pub login_required: bool,
    /// User PIN set.
    pub user_pin_initialized: bool,
    /// PIN entered on the device itself.
    pub protected_authentication_path: bool,
    /// A wrong user PIN was entered since the last right one.
    pub user_pin_count_low: bool,
    /// One more wrong user PIN locks it.
    pub user_pin_final_try: bool,
    /// The user PIN is locked.
    pub user_pin_locked: bool,
    /// The user PIN must be changed.
    pub user_pin_to_be_changed: bool,
    /// Read-only token.
    pub write_protected: bool,
    /// Mechanisms arca uses that the token offers.
    pub mechanisms: Vec<String>,
    /// Key types arca can generate on this token.
    pub can_generate: Vec<String>,
    /// A URI naming this token.
    pub uri: String,
}

/// A key pair on a token as `arca` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenKeyInfo {
    /// CKA_LABEL.
    pub label: Option<String>,
    /// CKA_ID, lowercase hex.
    pub id: String,
    /// `rsa`, `ed25519` or the PKCS#11 key type.
    pub key_type: String,
    /// Key size in bits, when known.
    pub bits: Option<usize>,
    /// Security flags of the private key.
    pub flags: KeyFlags,
    /// Whether arca would use the key (sensitive, never extractable, …).
    pub usable: bool,
    /// Why not, when not usable.
    pub problems: Vec<String>,
    /// The conex key id `sha256=…`, when the public key could be read.
    pub key_id: Option<String>,
    /// The conex public key `alg=data`, when it could be read.
    pub public_key: Option<String>,
    /// The URI to use the key with arca.
    pub uri: String,
}

const ARCA_MECHANISMS: &[MechanismType] = &[
    MechanismType::RSA_PKCS_KEY_PAIR_GEN,
    MechanismType::SHA256_RSA_PKCS_PSS,
    MechanismType::RSA_PKCS_PSS,
    MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
    MechanismType::EDDSA,
];

/// Lists the tokens the module shows (`module`, else `$ARCA_PKCS11_MODULE`).
pub fn list_tokens(module: Option<&Path>) -> Result<Vec<TokenInfo>, KeyError> {
    let module_path = resolve_module(module, std::env::var_os(MODULE_ENV))?;
    let ctx = context(&module_path)?;
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?;
    let mut out = Vec::new();
    for slot in slots {
        let ti = ctx
            .get_token_info(slot)
            .map_err(|e| dev(format!("reading the token in slot {}", slot.id()), e))?;
        let si = ctx.get_slot_info(slot).ok();
        let mechs = ctx.get_mechanism_list(slot).unwrap_or_default();
        let mechanisms = ARCA_MECHANISMS
            .iter()
            .filter(|m| mechs.contains(m))
            .map(|m| m.to_string())
            .collect();
        let label = trimmed(ti.label()).to_string();
        let mut can_generate = Vec::new();
        if ti.token_initialized() {
            for spec in [
                KeySpec::Ed25519,
                KeySpec::Rsa(2048),
                KeySpec::Rsa(3072),
                KeySpec::Rsa(4096),
            ] {
                if check_mechanisms(&ctx, slot, &label, spec, &MechanismNeeds::for_spec(spec))
                    .is_ok()
                {
                    can_generate.push(spec.to_string());
                }
            }
        }
        let serial = trimmed(ti.serial_number()).to_string();
        let uri = Pkcs11Uri {
            token: Some(label.clone()),
            serial: (!serial.is_empty()).then(|| serial.clone()),
            module_path: module.map(Path::to_path_buf),
            ..Pkcs11Uri::default()
        };
        out.push(TokenInfo {
            slot_id: slot.id(),
            slot_description: si
                .map(|s| trimmed(s.slot_description()).to_string())
                .unwrap_or_default(),
            label,
            serial,
            model: trimmed(ti.model()).to_string(),
            manufacturer: trimmed(ti.manufacturer_id()).to_string(),
            initialized: ti.token_initialized(),
            login_required: ti.login_required(),
            user_pin_initialized: ti.user_pin_initialized(),
            protected_authentication_path: ti.protected_authentication_path(),
            user_pin_count_low: ti.user_pin_count_low(),
            user_pin_final_try: ti.user_pin_final_try(),
            user_pin_locked: ti.user_pin_locked(),
            user_pin_to_be_changed: ti.user_pin_to_be_changed(),
            write_protected: ti.write_protected(),
            mechanisms,
            can_generate,
            uri: uri.to_string(),
        });
    }
    Ok(out)
}

/// Lists the private keys on the token named by `uri` (narrowed by
/// `object=`/`id=` when given), logging in as needed.
pub fn list_keys(
    uri: &Pkcs11Uri,
    secrets: &mut dyn SecretSource,
) -> Result<Vec<TokenKeyInfo>, KeyError> {
    let (_ctx, ts, ti) = open_session(uri, false, secrets)?;
    let s = &ts.session;
    let privs = find(s, &key_template(ObjectClass::PRIVATE_KEY, uri))
        .map_err(|e| dev(format!("listing the keys on token {:?}", ts.label), e))?;
    let serial = trimmed(ti.serial_number()).to_string();
    let mut out = Vec::new();
    for private in privs {
        let attrs = match s.get_attributes(
            private,
            &[
                AttributeType::KeyType,
                AttributeType::Label,
                AttributeType::Id,
            ],
        ) {
            Ok(a) => a,
            Err(e) => {
                // Listed with the reason; the other keys are still listed.
                let label = s
                    .get_attributes(private, &[AttributeType::Label])
                    .ok()
                    .and_then(|a| attr_bytes(&a, AttributeType::Label))
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                out.push(TokenKeyInfo {
                    label,
                    id: String::new(),
                    key_type: "unknown".into(),
                    bits: None,
                    flags: KeyFlags::default(),
                    usable: false,
                    problems: vec![format!(
                        "the token cannot read this key's attributes ({})",
                        ck_msg(&e)
                    )],
                    key_id: None,
                    public_key: None,
                    uri: String::new(),
                });
                continue;
            }
        };
        let kt = attr_key_type(&attrs);
        let label = attr_bytes(&attrs, AttributeType::Label)
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let id = attr_bytes(&attrs, AttributeType::Id).unwrap_or_default();
        let key_type = match kt {
            Some(k) if k == KeyType::RSA => "rsa".to_string(),
            Some(k) if k == KeyType::EC_EDWARDS => "ed25519".to_string(),
            Some(k) if k == KeyType::EC => "ec".to_string(),
            Some(k) => k.to_string(),
            None => "unknown".into(),
        };
        let flags = match kt {
            Some(k) => read_flags(s, private, k).unwrap_or_default(),
            None => KeyFlags::default(),
        };
        let what = format!(
            "key {:?} on token {:?}",
            label.as_deref().unwrap_or(""),
            ts.label
        );
        let public = {
            let t = if !id.is_empty() {
                vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Id(id.clone()),
                ]
            } else if let Some(l) = &label {
                vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(l.as_bytes().to_vec()),
                ]
            } else {
                vec![]
            };
            if t.is_empty() {
                None
            } else {
                match find(s, &t) {
                    Ok(v) if v.len() == 1 => Some(v[0]),
                    _ => None,
                }
            }
        };
        let is_ec = kt == Some(KeyType::EC);
        let pk = kt.and_then(|k| public_key_of(s, private, public, k, &what).ok());
        let mut problems: Vec<String> = flags.problems().into_iter().map(String::from).collect();
        if is_ec {
            problems.push("an ECDSA key: conex has no ECDSA (only RSA-PSS and Ed25519)".into());
        } else if pk.is_none() {
            problems.push("its public key cannot be read".into());
        }
        let mut too_small = false;
        if let Some(bits) = pk.as_ref().and_then(|p| p.bits()) {
            if pk.as_ref().is_some_and(|p| p.alg == KeyAlg::Rsa)
                && bits < crate::conex::key::MIN_RSA_BITS
            {
                too_small = true;
                problems.push(format!("{bits}-bit RSA is too small for conex"));
            }
        }
        let key_uri = Pkcs11Uri {
            token: Some(ts.label.clone()),
            serial: (!serial.is_empty()).then(|| serial.clone()),
            object: label.clone(),
            id: (!id.is_empty()).then(|| id.clone()),
            module_path: uri.module_path.clone(),
            pin_source: uri.pin_source.clone(),
            ..Pkcs11Uri::default()
        };
        out.push(TokenKeyInfo {
            label,
            id: hex::encode(&id),
            key_type,
            bits: pk.as_ref().and_then(|p| p.bits()),
            flags,
            usable: flags.hard_problems().is_empty() && pk.is_some() && !too_small,
            problems,
            key_id: pk.as_ref().map(|p| p.key_id().to_string()),
            public_key: pk.as_ref().map(|p| p.conex_string()),
            uri: key_uri.to_string(),
        });
    }
    out.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Whether the key the URI names (its `object=` label or `id=`) is on its
/// token, found without a login through its public key object (arca makes
/// public key objects public). For preflight: a key id to generate must be
/// free before anyone types a PIN.
pub fn key_present(uri: &Pkcs11Uri) -> Result<bool, KeyError> {
    let module = uri.module()?;
    let ctx = context(&module)?;
    let (slot, ti) = select_token(&ctx, uri)?;
    let label = trimmed(ti.label()).to_string();
    let s = ctx
        .open_ro_session(slot)
        .map_err(|e| dev(format!("opening a session on token {label:?}"), e))?;
    let found = find(&s, &key_template(ObjectClass::PUBLIC_KEY, uri))
        .map_err(|e| dev(format!("looking for a key on token {label:?}"), e))?;
    Ok(!found.is_empty())
}

/// Whether the token of `uri` can make a key of `spec` (the key-pair
/// generation and signing mechanisms arca needs, and for RSA the key size),
/// checked without logging in: preflight asks it for every key a ceremony
/// generates, before anyone types a PIN.
pub fn can_generate(uri: &Pkcs11Uri, spec: KeySpec) -> Result<(), KeyError> {
    let module = uri.module()?;
    let ctx = context(&module)?;
    let (slot, ti) = select_token(&ctx, uri)?;
    let label = trimmed(ti.label()).to_string();
    check_mechanisms(&ctx, slot, &label, spec, &MechanismNeeds::for_spec(spec))
}

/// Checks the token of `uri` is present, without logging in; describes it
/// with its PIN state for preflight lists.
pub fn probe(uri: &Pkcs11Uri) -> Result<String, KeyError> {
    let module = uri.module()?;
    let tokens = list_tokens(Some(&module))?;
    let found = tokens.iter().find(|t| {
        uri.token.as_ref().is_none_or(|l| *l == t.label)
            && uri.serial.as_ref().is_none_or(|s| *s == t.serial)
    });
    let Some(t) = found else {
        let present: Vec<&str> = tokens
            .iter()
            .map(|t| t.label.as_str())
            .filter(|l| !l.trim().is_empty())
            .collect();
        return Err(KeyError::NotFound(format!(
            "token {} is not present (present: {})",
            uri.token
                .as_deref()
                .or(uri.serial.as_deref())
                .unwrap_or("?"),
            if present.is_empty() {
                "none".to_string()
            } else {
                present.join(", ")
            }
        )));
    };
    if t.user_pin_locked {
        return Err(KeyError::PinLocked(format!(
            "the user PIN of token {} is locked",
            t.label
        )));
    }
    let pin = if t.user_pin_final_try {
        "PIN: FINAL TRY left"
    } else if t.user_pin_count_low {
        "PIN: a wrong PIN was entered before"
    } else {
        "PIN: ok"
    };
    Ok(format!(
        "token {} ({} {}, serial {}); {pin}; can generate {}",
        t.label,
        t.manufacturer,
        t.model,
        t.serial,
        if t.can_generate.is_empty() {
            "nothing".to_string()
        } else {
            t.can_generate.join(", ")
        }
    ))
}

/// Initialises a free token of `module` with `label`, its SO PIN and user
/// PIN, through PKCS#11 itself (C_InitToken, C_InitPIN): no PIN ever
/// appears on a command line. Used for rehearsal tokens.
pub fn init_token(
    module: &Path,
    label: &str,
    so_pin: &Zeroizing<String>,
    user_pin: &Zeroizing<String>,
) -> Result<(), KeyError> {
    let ctx = context(module)?;
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?;
    for slot in &slots {
        let ti = ctx
            .get_token_info(*slot)
            .map_err(|e| dev("reading a token", e))?;
        if ti.token_initialized() && trimmed(ti.label()) == label {
            return Err(KeyError::Exists(format!(
                "a token labelled {label} exists already"
            )));
        }
    }
    let free = slots
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            KeyError::NotFound(format!("no free slot to initialise token {label} in"))
        })?;
    let so = AuthPin::new(so_pin.as_str().into());
    ctx.init_token(free, &so, label)
        .map_err(|e| dev(format!("initialising token {label}"), e))?;
    let slot = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| t.token_initialized() && trimmed(t.label()) == label)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            KeyError::NotFound(format!("token {label} vanished after initialisation"))
        })?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| dev(format!("opening token {label}"), e))?;
    session
        .login(UserType::So, Some(&so))
        .map_err(|e| dev(format!("SO login on {label}"), e))?;
    session
        .init_pin(&AuthPin::new(user_pin.as_str().into()))
        .map_err(|e| dev(format!("setting the user PIN of {label}"), e))?;
    let _ = session.logout();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_pin_value_is_not_echoed() {
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=123456&module-path=/m.so")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("123456"), "{e}");
        assert!(e.contains("pin-value=(hidden)"), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:token=t;pin-value=654321")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("654321"), "{e}");
    }

    #[test]
    fn module_resolution_order() {
        let p = resolve_module(Some(Path::new("/a.so")), Some("/b.so".into())).unwrap();
        assert_eq!(p, PathBuf::from("/a.so"));
        let p = resolve_module(None, Some("/b.so".into())).unwrap();
        assert_eq!(p, PathBuf::from("/b.so"));
        let e = resolve_module(None, None).unwrap_err().to_string();
        assert!(e.contains("module-path") && e.contains(MODULE_ENV), "{e}");
        assert!(resolve_module(None, Some("".into())).is_err());
        let e = resolve_module(Some(Path::new("libsofthsm2.so")), None).unwrap_err();
        assert!(e.to_string().contains("must be absolute"), "{e}");
    }

    /// A scripted person.
    #[derive(Default)]
    struct Person {
        confirm: bool,
        questions: Vec<String>,
        notices: Vec<String>,
    }

    impl SecretSource for Person {
        fn secret(&mut self, _req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
            panic!("prepare_pin_request never asks for the PIN itself")
        }
        fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
            self.questions.push(question.into());
            Ok(self.confirm)
        }
        fn notice(&mut self, message: &str) {
            self.notices.push(message.into());
        }
    }

    fn flags() -> PinFlags {
        PinFlags {
            initialized: true,
            ..PinFlags::default()
        }
    }

    #[test]
    fn pin_state_normal() {
        let mut p = Person::default();
        let r = prepare_pin_request("root-1", flags(), &mut p).unwrap();
        assert_eq!(r.what, "user PIN for token \"root-1\"");
        assert_eq!((r.retries_left, r.final_try), (None, false));
        assert!(p.questions.is_empty() && p.notices.is_empty());
    }

    #[test]
    fn pin_state_count_low_is_told() {
        let mut p = Person::default();
        let f = PinFlags {
            count_low: true,
            ..flags()
        };
        let r = prepare_pin_request("root-1", f, &mut p).unwrap();
        assert!(!r.final_try);
        assert_eq!(p.notices.len(), 1);
        assert!(
            p.notices[0].contains("wrong PIN was entered"),
            "{:?}",
            p.notices
        );
        assert!(!p.notices[0].contains("few tries"), "{:?}", p.notices);
    }

    #[test]
    fn pin_state_final_try_needs_a_yes() {
        let f = PinFlags {
            final_try: true,
            count_low: true,
            ..flags()
        };
        let mut no = Person::default();
        let e = prepare_pin_request("root-2", f, &mut no).unwrap_err();
        assert!(matches!(e, KeyError::Declined(_)), "{e:?}");
        assert!(e.to_string().contains("\"root-2\""), "{e}");
        assert_eq!(no.questions.len(), 1);
        assert!(no.questions[0].contains("FINAL"), "{:?}", no.questions);
        let mut yes = Person {
            confirm: true,
            ..Person::default()
        };
        let r = prepare_pin_request("root-2", f, &mut yes).unwrap();
        assert_eq!((r.retries_left, r.final_try), (Some(1), true));
        // Without a person (e.g. only a pin-source file), the final try is
        // never spent.
        let e = prepare_pin_request("root-2", f, &mut crate::keys::NoSecrets).unwrap_err();
        assert!(matches!(e, KeyError::Declined(_)), "{e:?}");
    }

    #[test]
    fn pin_state_locked_and_unset() {
        let mut p = Person::default();
        let e = prepare_pin_request(
            "root-3",
            PinFlags {
                locked: true,
                ..flags()
            },
            &mut p,
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::PinLocked(_)), "{e:?}");
        assert!(p.questions.is_empty());
        let e = prepare_pin_request("root-3", PinFlags::default(), &mut p).unwrap_err();
        assert!(e.to_string().contains("no user PIN"), "{e}");
    }

    #[test]
    fn ed25519_point_forms() {
        let raw = [7u8; 32];
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&raw);
        assert_eq!(ed25519_point(&der), Some(raw));
        assert_eq!(ed25519_point(&raw), Some(raw));
        assert_eq!(ed25519_point(&der[..33]), None);
        assert!(is_ed25519_params(ED25519_OID) && is_ed25519_params(ED25519_NAME));
    }
}
