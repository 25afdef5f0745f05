//! Key objects: templates, attributes (the sensitive/non-extractable check) and
//! public keys read from the token.

use super::session::dev;
use super::uri::Pkcs11Uri;
use super::{ED25519_NAME, ED25519_OID};
use crate::conex::PublicKey;
use crate::keys::KeyError;
use cryptoki::error::Error as CkError;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use serde::Serialize;

pub(super) fn attr_bool(attrs: &[Attribute], t: AttributeType) -> Option<bool> {
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

pub(super) fn attr_bytes(attrs: &[Attribute], t: AttributeType) -> Option<Vec<u8>> {
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

pub(super) fn attr_key_type(attrs: &[Attribute]) -> Option<KeyType> {
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

pub(super) fn read_flags(
    session: &Session,
    key: ObjectHandle,
    kt: KeyType,
) -> Result<KeyFlags, CkError> {
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
pub(super) fn ed25519_point(ec_point: &[u8]) -> Option<[u8; 32]> {
    match ec_point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

pub(super) fn is_ed25519_params(p: &[u8]) -> bool {
    p == ED25519_OID || p == ED25519_NAME
}

pub(super) fn find(
    session: &Session,
    template: &[Attribute],
) -> Result<Vec<ObjectHandle>, CkError> {
    session.find_objects(template)
}

pub(super) fn key_template(class: ObjectClass, uri: &Pkcs11Uri) -> Vec<Attribute> {
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
pub(super) fn public_key_of(
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
