//! The PKCS#11 signer: opening, generating and signing with token keys.

use super::mechanisms::{check_mechanisms, pss_params, MechanismNeeds, RsaPssMode, SignMech};
use super::objects::{
    attr_bool, attr_bytes, attr_key_type, find, key_template, public_key_of, read_flags, KeyFlags,
};
use super::pin::open_session;
use super::session::{context, dev, select_token, trimmed, TokenSession};
use super::uri::{ObjectType, Pkcs11Uri};
use super::ED25519_OID;
use crate::conex::{KeyAlg, PublicKey};
use crate::keys::{read_secret_file, KeyError, KeySpec, SecretSource, Signer};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::PathBuf;

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
        if let Err(e) = crate::keys::sign_checked(&mut signer, b"arca pkcs11 self-test") {
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
        let pin = read_secret_file(&path, "PIN file")?;
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

    fn sign_raw(&mut self, msg: &[u8], _: crate::keys::CheckedPath) -> Result<Vec<u8>, KeyError> {
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
