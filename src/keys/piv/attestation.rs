//! PIV attestation: the certificate a YubiKey makes for a key it generated.

use super::device::{find_device, release, slot_id, yk_err};
use super::location::PivLocation;
use super::pubkey::OID_ED25519;
use crate::conex::{KeyAlg, PublicKey};
use crate::keys::KeyError;
use sha2::{Digest as _, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::ObjectIdentifier;
use yubikey::piv::{self};

const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_YUBICO_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_YUBICO_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OBJ_ATTESTATION_CERT: u32 = 0x5f_ff01;

/// A slot's attestation: the certificate the YubiKey issues for the key in
/// the slot, signed by its attestation key (slot F9), and the F9 certificate.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// Serial number of the YubiKey that answered.
    pub serial: u32,
    /// Slot attested.
    pub slot: u8,
    /// The slot's attestation certificate (DER).
    pub certificate: Vec<u8>,
    /// The F9 attestation certificate (DER), the issuer of `certificate`.
    pub intermediate: Vec<u8>,
}

/// Reads the attestation certificate of `loc`'s slot and the YubiKey's F9
/// certificate. Needs no PIN.
pub fn attest(loc: &PivLocation) -> Result<Attestation, KeyError> {
    let mut notices = crate::keys::NoSecrets;
    let mut yk = find_device(loc, &mut notices)?;
    let serial = yk.serial().0;
    let where_ = format!("slot {:02x} of YubiKey {serial}", loc.slot);
    let cert = piv::attest(&mut yk, slot_id(loc.slot)?).map_err(|e| match e {
        yubikey::Error::NotSupported => KeyError::Unsupported(format!(
            "YubiKey {serial} does not support attestation (firmware 4.3 or later needed)"
        )),
        _ => KeyError::Device(format!(
            "{where_}: no attestation (the slot is empty or its key was imported, not generated on the YubiKey)"
        )),
    })?;
    let f9 = yk.fetch_object(OBJ_ATTESTATION_CERT).map_err(|e| {
        yk_err(
            e,
            &format!("reading the attestation certificate of YubiKey {serial}"),
        )
    })?;
    let intermediate = unwrap_cert_object(&f9).ok_or_else(|| {
        KeyError::Device(format!(
            "YubiKey {serial}: the F9 attestation certificate object is malformed"
        ))
    })?;
    release(yk);
    Ok(Attestation {
        serial,
        slot: loc.slot,
        certificate: cert.to_vec(),
        intermediate,
    })
}

/// A PIV certificate object is `70 L cert 71 01 info FE 00`; returns `cert`.
fn unwrap_cert_object(obj: &[u8]) -> Option<Vec<u8>> {
    if obj.first() == Some(&0x30) {
        return Some(obj.to_vec());
    }
    if obj.first() != Some(&0x70) {
        return None;
    }
    let (len, hdr) = match *obj.get(1)? {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (*obj.get(2)? as usize, 3),
        0x82 => (((*obj.get(2)? as usize) << 8) | *obj.get(3)? as usize, 4),
        _ => return None,
    };
    obj.get(hdr..hdr + len).map(|c| c.to_vec())
}

impl Attestation {
    fn parse(der: &[u8], what: &str) -> Result<x509_cert::Certificate, KeyError> {
        x509_cert::Certificate::from_der(der)
            .map_err(|e| KeyError::Policy(format!("the {what} does not parse: {e}")))
    }

    /// Checks that the attested key is `pk` (SubjectPublicKeyInfo compared
    /// key by key) and that the attestation certificate is signed by the F9
    /// certificate's key and names it as issuer, and that the serial number
    /// in Yubico's extension (when present) is this YubiKey's.
    ///
    /// Not checked: that the F9 certificate chains to Yubico's PIV root CA
    /// (arca ships no Yubico roots), validity periods, revocation. Without the
    /// chain this shows consistency with the device, not that the device is
    /// a genuine YubiKey.
    pub fn check(&self, pk: &PublicKey) -> Result<(), KeyError> {
        let cert = Attestation::parse(&self.certificate, "attestation certificate")?;
        let f9 = Attestation::parse(&self.intermediate, "F9 attestation certificate")?;
        let tbs = cert.tbs_certificate();
        let where_ = format!("slot {:02x} of YubiKey {}", self.slot, self.serial);

        // 1. The attested key is the key in use.
        let spki = tbs.subject_public_key_info();
        let same = match pk.alg {
            KeyAlg::Ed25519 => {
                let raw = crate::conex::key::decode_b64_strict(&pk.data);
                spki.algorithm.oid == OID_ED25519
                    && raw.is_some()
                    && spki.subject_public_key.as_bytes() == raw.as_deref()
            }
            KeyAlg::Rsa => {
                use rsa::pkcs8::DecodePublicKey;
                let want = rsa::RsaPublicKey::from_public_key_pem(&pk.data).ok();
                let got = spki
                    .to_der()
                    .ok()
                    .and_then(|d| rsa::RsaPublicKey::from_public_key_der(&d).ok());
                want.is_some() && want == got
            }
        };
        if !same {
            return Err(KeyError::Policy(format!(
                "the key attested by {where_} is not the key {}",
                pk.key_id()
            )));
        }

        // 2. Issued by the F9 key.
        let f9_tbs = f9.tbs_certificate();
        let issuer = tbs.issuer().to_der().ok();
        if issuer.is_none() || issuer != f9_tbs.subject().to_der().ok() {
            return Err(KeyError::Policy(format!(
                "the attestation certificate of {where_} does not name the F9 certificate as issuer"
            )));
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| KeyError::Policy(format!("attestation certificate: {e}")))?;
        let sig = cert.signature().as_bytes().ok_or_else(|| {
            KeyError::Policy("attestation certificate: signature is not whole bytes".into())
        })?;
        let f9_spki = f9_tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| KeyError::Policy(format!("F9 certificate: {e}")))?;
        verify_cert_signature(&cert.signature_algorithm().oid, &f9_spki, &tbs_der, sig).map_err(
            |reason| {
                KeyError::Policy(format!(
                    "the attestation certificate of {where_} is not signed by its F9 key: {reason}"
                ))
            },
        )?;

        // 3. The serial number Yubico puts in the certificate.
        if let Some(serial) = self.attested_serial()? {
            if serial != self.serial {
                return Err(KeyError::Policy(format!(
                    "the attestation certificate names YubiKey {serial}, not {}",
                    self.serial
                )));
            }
        }
        Ok(())
    }

    fn extension(&self, oid: &ObjectIdentifier) -> Result<Option<Vec<u8>>, KeyError> {
        let cert = Attestation::parse(&self.certificate, "attestation certificate")?;
        Ok(cert.tbs_certificate().extensions().and_then(|exts| {
            exts.iter()
                .find(|e| e.extn_id == *oid)
                .map(|e| e.extn_value.as_bytes().to_vec())
        }))
    }

    /// The serial number in Yubico's attestation extension, if present.
    pub fn attested_serial(&self) -> Result<Option<u32>, KeyError> {
        let Some(v) = self.extension(&OID_YUBICO_SERIAL)? else {
            return Ok(None);
        };
        let int = x509_cert::der::asn1::UintRef::from_der(&v)
            .map_err(|e| KeyError::Policy(format!("attested serial number: {e}")))?;
        let bytes = int.as_bytes();
        if bytes.len() > 4 {
            return Err(KeyError::Policy(
                "attested serial number is too large".into(),
            ));
        }
        Ok(Some(
            bytes.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)),
        ))
    }

    /// The PIN and touch policy bytes in Yubico's attestation extension
    /// (PIN: 1 never, 2 once, 3 always; touch: 1 never, 2 always, 3 cached).
    pub fn attested_policy(&self) -> Result<Option<(u8, u8)>, KeyError> {
        Ok(self
            .extension(&OID_YUBICO_POLICY)?
            .filter(|v| v.len() == 2)
            .map(|v| (v[0], v[1])))
    }
}

/// Why an attestation certificate's signature does not check.
#[derive(Debug, thiserror::Error)]
enum CertSignatureError {
    /// The F9 key is not of the certificate's signature algorithm.
    #[error("F9 key is not {expected}: {reason}")]
    WrongKey {
        /// The key type the algorithm needs (`RSA`, `P-256`, `P-384`).
        expected: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// The signature is not DER.
    #[error("malformed signature")]
    Malformed,
    /// The signature does not verify.
    #[error("bad signature")]
    Bad,
    /// Neither RSA/SHA-256 nor ECDSA with SHA-256/384.
    #[error("unsupported signature algorithm {0}")]
    Unsupported(ObjectIdentifier),
}

fn verify_cert_signature(
    alg: &ObjectIdentifier,
    issuer_spki: &[u8],
    tbs: &[u8],
    sig: &[u8],
) -> Result<(), CertSignatureError> {
    use CertSignatureError::{Bad, Malformed, Unsupported, WrongKey};
    let wrong = |expected: &'static str| {
        move |e: x509_cert::spki::Error| WrongKey {
            expected,
            reason: e.to_string(),
        }
    };
    if *alg == OID_SHA256_RSA {
        use rsa::pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_der(issuer_spki).map_err(wrong("RSA"))?;
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(tbs),
            sig,
        )
        .map_err(|_| Bad)
    } else if *alg == OID_ECDSA_SHA256 {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        let key =
            p256::ecdsa::VerifyingKey::from_public_key_der(issuer_spki).map_err(wrong("P-256"))?;
        let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| Malformed)?;
        key.verify(tbs, &sig).map_err(|_| Bad)
    } else if *alg == OID_ECDSA_SHA384 {
        use p384::ecdsa::signature::Verifier;
        use p384::pkcs8::DecodePublicKey;
        let key =
            p384::ecdsa::VerifyingKey::from_public_key_der(issuer_spki).map_err(wrong("P-384"))?;
        let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| Malformed)?;
        key.verify(tbs, &sig).map_err(|_| Bad)
    } else {
        Err(Unsupported(*alg))
    }
}
