//! Listing tokens and keys, and the checks preflight makes without a PIN.

use super::mechanisms::{check_mechanisms, MechanismNeeds};
use super::objects::{
    attr_bytes, attr_key_type, find, key_template, public_key_of, read_flags, KeyFlags,
};
use super::pin::open_session;
use super::session::{ck_msg, context, dev, select_token, trimmed};
use super::uri::{resolve_module, Pkcs11Uri};
use super::MODULE_ENV;
use crate::conex::KeyAlg;
use crate::keys::{KeyError, KeySpec, SecretSource};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use serde::Serialize;
use std::path::Path;

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
