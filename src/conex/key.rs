//! Public keys, key ids, signature algorithms and signature verification,
//! exactly as conex 1.0 encodes them.
//!
//! Key data is kept as the string found on disk (conex treats it as opaque
//! text: it feeds the key id and the signed string); it is decoded only when a
//! signature is verified or when arca lints a file before writing.

use base64::Engine as _;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};
use std::fmt;

use super::ConexError;

/// Smallest RSA modulus conex's mirage-crypto verifier accepts.
pub const MIN_RSA_BITS: usize = 2048;

/// `sha256=<lowercase hex>` — the only digest algorithm of conex 1.0.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    /// The algorithm name before `=` (always `sha256` once parsed; not
    /// allocated then).
    pub alg: std::borrow::Cow<'static, str>,
    /// Everything after the first `=`.
    pub data: String,
}

impl Digest {
    /// SHA-256 of `bytes` in conex form.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest {
            alg: "sha256".into(),
            data: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// A raw SHA-256 in conex form.
    pub fn of_sha256(raw: &[u8; 32]) -> Digest {
        Digest {
            alg: "sha256".into(),
            data: hex::encode(raw),
        }
    }

    /// Parses `alg=data`; conex cuts at the first `=`.
    pub fn parse(s: &str) -> Result<Digest, DigestParseError> {
        match split_digest(s) {
            None => Err(DigestParseError::Malformed),
            Some(("sha256", data)) => Ok(Digest {
                alg: "sha256".into(),
                data: data.into(),
            }),
            Some((alg, _)) => Err(DigestParseError::UnknownAlg(alg.into())),
        }
    }

    /// Parses a trust anchor / key hash given by a person: `sha256=<64 hex>`
    /// or the bare 64 hex digits. Strict: exactly 64 lowercase-able hex digits.
    pub fn parse_key_hash(s: &str) -> Result<Digest, ConexError> {
        let hexpart = s.strip_prefix("sha256=").unwrap_or(s);
        if hexpart.len() != 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConexError::field(
                "key hash",
                format!("\"{}\" is not sha256=<64 hex digits>", super::shown(s)),
            ));
        }
        Ok(Digest {
            alg: "sha256".into(),
            data: hexpart.to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.alg, self.data)
    }
}

/// `alg=data` split at its first `=` (`sha256=` found without a search).
pub fn split_digest(s: &str) -> Option<(&str, &str)> {
    match s.strip_prefix("sha256=") {
        Some(data) => Some(("sha256", data)),
        None => s.split_once('='),
    }
}

/// Why a digest string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestParseError {
    /// No `=` in the string.
    Malformed,
    /// An algorithm other than sha256.
    UnknownAlg(String),
}

/// Public key algorithm as written in key triples (`rsa=`, `ed25519=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// RSA, key data is an SPKI PEM.
    Rsa,
    /// Ed25519, key data is 44-char padded base64 of the raw key.
    Ed25519,
}

impl KeyAlg {
    /// The name used in key data (`rsa`, `ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Rsa => "rsa",
            KeyAlg::Ed25519 => "ed25519",
        }
    }
    /// Parses `rsa` / `ed25519`.
    pub fn parse(s: &str) -> Option<KeyAlg> {
        match s {
            "rsa" => Some(KeyAlg::Rsa),
            "ed25519" => Some(KeyAlg::Ed25519),
            _ => None,
        }
    }
    /// The signature algorithm conex uses with this key type.
    pub fn sig_alg(self) -> SigAlg {
        match self {
            KeyAlg::Rsa => SigAlg::RsaPssSha256,
            KeyAlg::Ed25519 => SigAlg::Ed25519,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signature algorithm as written in signature triples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32.
    RsaPssSha256,
    /// Pure Ed25519.
    Ed25519,
}

impl SigAlg {
    /// `rsapss-sha256` / `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlg::RsaPssSha256 => "rsapss-sha256",
            SigAlg::Ed25519 => "ed25519",
        }
    }
    /// Parses a signature algorithm name.
    pub fn parse(s: &str) -> Option<SigAlg> {
        match s {
            "rsapss-sha256" => Some(SigAlg::RsaPssSha256),
            "ed25519" => Some(SigAlg::Ed25519),
            _ => None,
        }
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conex public key: algorithm plus the key data string exactly as conex
/// writes it (SPKI PEM without trailing newline, or 44-char base64).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// Key algorithm.
    pub alg: KeyAlg,
    /// Key data as written after `alg=`.
    pub data: String,
}

/// Why a public key or signature could not be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyDataError {
    /// Ed25519 key data is not 44-char padded base64 of 32 bytes.
    #[error("ed25519 key data must be 44 characters of padded base64 encoding 32 bytes")]
    Ed25519Data,
    /// Not a valid Ed25519 point.
    #[error("ed25519 key data is not a valid public key")]
    Ed25519Point,
    /// RSA key data is not an SPKI PEM.
    #[error("rsa key data is not a PEM SubjectPublicKeyInfo: {0}")]
    RsaPem(String),
    /// RSA key data is a valid key but not in conex's exact layout.
    #[error(
        "rsa key data is not in canonical PEM layout (64-column base64, LF, no trailing newline)"
    )]
    RsaLayout,
    /// RSA modulus below 2048 bits.
    #[error("rsa key has {0} bits; conex requires at least 2048")]
    RsaSize(usize),
    /// Signature is not valid base64.
    #[error("signature is not valid padded base64")]
    SigBase64,
    /// Signature algorithm does not fit the key.
    #[error("signature algorithm {sig} does not match key algorithm {key}")]
    AlgMismatch {
        /// The signature's algorithm.
        sig: SigAlg,
        /// The key's algorithm.
        key: KeyAlg,
    },
    /// Signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl PublicKey {
    /// Builds the conex form of an Ed25519 key.
    pub fn from_ed25519(raw: &[u8; 32]) -> PublicKey {
        PublicKey {
            alg: KeyAlg::Ed25519,
            data: b64().encode(raw),
        }
    }

    /// Builds the conex form of an RSA key (SPKI PEM, LF, no trailing newline).
    pub fn from_rsa(key: &rsa::RsaPublicKey) -> Result<PublicKey, KeyDataError> {
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyDataError::RsaPem(e.to_string()))?;
        Ok(PublicKey {
            alg: KeyAlg::Rsa,
            data: pem.trim_end_matches('\n').to_string(),
        })
    }

    /// Builds an RSA key from big-endian modulus and public exponent.
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyDataError> {
        let key = rsa::RsaPublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(n),
            rsa::BoxedUint::from_be_slice_vartime(e),
        )
        .map_err(|e| KeyDataError::RsaPem(e.to_string()))?;
        PublicKey::from_rsa(&key)
    }

    /// Parses `alg=data` (the third element of a key triple).
    pub fn parse_conex(s: &str) -> Result<PublicKey, ConexError> {
        let (alg, data) = s
            .split_once('=')
            .ok_or_else(|| ConexError::field("key", "key data has no `alg=` prefix".to_string()))?;
        let alg = KeyAlg::parse(alg).ok_or_else(|| {
            ConexError::field(
                "key",
                format!("unknown key algorithm \"{}\"", super::shown(alg)),
            )
        })?;
        Ok(PublicKey {
            alg,
            data: data.to_string(),
        })
    }

    /// `alg=data`, the string whose SHA-256 is the key id.
    pub fn conex_string(&self) -> String {
        format!("{}={}", self.alg, self.data)
    }

    /// The key id: `sha256=` SHA-256 of `alg=data`.
    pub fn key_id(&self) -> Digest {
        Digest::sha256(self.conex_string().as_bytes())
    }

    /// Signature algorithm used with this key.
    pub fn sig_alg(&self) -> SigAlg {
        self.alg.sig_alg()
    }

    fn ed25519(&self) -> Result<ed25519_dalek::VerifyingKey, KeyDataError> {
        if self.data.len() != 44 {
            return Err(KeyDataError::Ed25519Data);
        }
        let raw = b64()
            .decode(&self.data)
            .map_err(|_| KeyDataError::Ed25519Data)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| KeyDataError::Ed25519Data)?;
        if b64().encode(raw) != self.data {
            return Err(KeyDataError::Ed25519Data);
        }
        ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| KeyDataError::Ed25519Point)
    }

    fn rsa(&self) -> Result<rsa::RsaPublicKey, KeyDataError> {
        let key = rsa::RsaPublicKey::from_public_key_pem(&self.data)
            .map_err(|e| KeyDataError::RsaPem(e.to_string()))?;
        Ok(key)
    }

    /// Strict check used before arca writes or signs anything: the key data
    /// decodes, is in conex's canonical layout, and is large enough.
    pub fn validate(&self) -> Result<(), KeyDataError> {
        match self.alg {
            KeyAlg::Ed25519 => self.ed25519().map(|_| ()),
            KeyAlg::Rsa => {
                let key = self.rsa()?;
                let bits = rsa::traits::PublicKeyParts::n(&key).bits() as usize;
                if bits < MIN_RSA_BITS {
                    return Err(KeyDataError::RsaSize(bits));
                }
                if PublicKey::from_rsa(&key)?.data != self.data {
                    return Err(KeyDataError::RsaLayout);
                }
                Ok(())
            }
        }
    }

    /// RSA modulus size in bits, or 256 for Ed25519; None if undecodable.
    pub fn bits(&self) -> Option<usize> {
        match self.alg {
            KeyAlg::Ed25519 => self.ed25519().ok().map(|_| 256),
            KeyAlg::Rsa => self
                .rsa()
                .ok()
                .map(|k| rsa::traits::PublicKeyParts::n(&k).bits() as usize),
        }
    }

    /// The key and signature for checking `sig` made with `alg`: the
    /// algorithms agree, the key decodes (an RSA key is large enough), an
    /// Ed25519 signature is 64 bytes.
    fn checker(&self, alg: SigAlg, sig: &[u8]) -> Result<Checker, KeyDataError> {
        if alg != self.sig_alg() {
            return Err(KeyDataError::AlgMismatch {
                sig: alg,
                key: self.alg,
            });
        }
        match self.alg {
            KeyAlg::Ed25519 => {
                let vk = self.ed25519()?;
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| KeyDataError::BadSignature)?;
                Ok(Checker::Ed25519(Box::new(vk), sig))
            }
            KeyAlg::Rsa => {
                let key = self.rsa()?;
                let bits = rsa::traits::PublicKeyParts::n(&key).bits() as usize;
                if bits < MIN_RSA_BITS {
                    return Err(KeyDataError::RsaSize(bits));
                }
                Ok(Checker::Rsa(key))
            }
        }
    }

    /// Verifies a raw signature over `msg` (RSA-PSS with salt exactly 32, or
    /// pure Ed25519).
    pub fn verify(&self, alg: SigAlg, msg: &[u8], sig: &[u8]) -> Result<(), KeyDataError> {
        match self.checker(alg, sig)? {
            Checker::Ed25519(vk, sig) => vk
                .verify_strict(msg, &sig)
                .map_err(|_| KeyDataError::BadSignature),
            Checker::Rsa(key) => rsa_pss_check(&key, Sha256::digest(msg), sig),
        }
    }

    /// Verifies a base64 signature value (as stored in a signature triple).
    pub fn verify_b64(&self, alg: SigAlg, msg: &[u8], sig_b64: &str) -> Result<(), KeyDataError> {
        let sig = decode_b64_signature(sig_b64).ok_or(KeyDataError::SigBase64)?;
        self.verify(alg, msg, &sig)
    }

    /// [`Self::verify_b64`] over a message that `msg` gives to its sink in
    /// pieces (hashed as they come, never held whole): the same outcome
    /// for the same bytes.
    pub fn verify_b64_streamed(
        &self,
        alg: SigAlg,
        msg: &Pieces<'_>,
        sig_b64: &str,
    ) -> Result<(), KeyDataError> {
        let raw = decode_b64_signature(sig_b64).ok_or(KeyDataError::SigBase64)?;
        match self.checker(alg, &raw)? {
            Checker::Ed25519(vk, sig) => {
                // what verify_strict checks besides the hash: R is a point
                // of the curve, and neither R nor the key is of small order
                let r = curve25519_dalek::edwards::CompressedEdwardsY(*sig.r_bytes())
                    .decompress()
                    .ok_or(KeyDataError::BadSignature)?;
                if r.is_small_order() || vk.is_weak() {
                    return Err(KeyDataError::BadSignature);
                }
                let mut v = vk
                    .verify_stream(&sig)
                    .map_err(|_| KeyDataError::BadSignature)?;
                msg(&mut |piece| v.update(piece));
                v.finalize_and_verify()
                    .map_err(|_| KeyDataError::BadSignature)
            }
            Checker::Rsa(key) => {
                let mut h = Sha256::new();
                msg(&mut |piece| h.update(piece));
                rsa_pss_check(&key, h.finalize(), &raw)
            }
        }
    }
}

/// A key and signature ready for checking ([`PublicKey::checker`]).
enum Checker {
    Ed25519(Box<ed25519_dalek::VerifyingKey>, ed25519_dalek::Signature),
    Rsa(rsa::RsaPublicKey),
}

/// RSA-PSS (SHA-256, MGF1-SHA-256, salt exactly 32) over the message whose
/// SHA-256 is `hashed`.
fn rsa_pss_check(
    key: &rsa::RsaPublicKey,
    hashed: impl AsRef<[u8]>,
    sig: &[u8],
) -> Result<(), KeyDataError> {
    key.verify(rsa::Pss::<Sha256>::new_with_salt(32), hashed.as_ref(), sig)
        .map_err(|_| KeyDataError::BadSignature)
}

/// A message given in pieces: called with a sink, it gives the sink the
/// message's bytes, piece after piece.
pub type Pieces<'a> = dyn Fn(&mut dyn FnMut(&[u8])) + Sync + 'a;

/// Decodes a signature value: standard padded base64 whose unused
/// trailing bits may be anything, as both of conex's decoders read it (the
/// signature bytes are the same whatever those bits are).
pub fn decode_b64_signature(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    lenient.decode(s).ok()
}

/// Decodes standard padded base64 and insists it re-encodes identically.
pub fn decode_b64_strict(s: &str) -> Option<Vec<u8>> {
    let raw = b64().decode(s).ok()?;
    (b64().encode(&raw) == s).then_some(raw)
}

/// Encodes bytes as standard padded base64.
pub fn encode_b64(raw: &[u8]) -> String {
    b64().encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_key_id_matches_vector() {
        let k = PublicKey {
            alg: KeyAlg::Ed25519,
            data: "KBcCuJOFznt1cjczq1/A8FuHWB95SXgQ7Cp5wWssxnk=".into(),
        };
        assert_eq!(
            k.key_id().to_string(),
            "sha256=d98556b24c02da8a71431d3282e6423e7edb65bceee168be26f57619aae6d2ea"
        );
        k.validate().unwrap();
    }

    /// Verifying over a message given in pieces has the outcome of
    /// verifying over the whole message, for good and bad signatures,
    /// messages, keys and encodings, Ed25519 and RSA.
    #[test]
    fn a_message_in_pieces_verifies_as_the_whole_message() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let ed = PublicKey::from_ed25519(&sk.verifying_key().to_bytes());
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let good = encode_b64(&sk.sign(&msg).to_bytes());
        let mut bad_sig = sk.sign(&msg).to_bytes();
        bad_sig[40] ^= 1;
        // R of small order (the identity point), s zero
        let mut small = [0u8; 64];
        small[0] = 1;
        // a key of small order (the identity point)
        let mut weak_raw = [0u8; 32];
        weak_raw[0] = 1;
        let weak = PublicKey::from_ed25519(&weak_raw);
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        let rsa_sk = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let rsa_pub = PublicKey::from_rsa(&rsa_sk.to_public_key()).expect("RSA public key");
        let rsa_good = {
            let hashed = Sha256::digest(&msg);
            let sig = rsa_sk
                .sign_with_rng(&mut rng, rsa::Pss::<Sha256>::new_with_salt(32), &hashed)
                .expect("sign");
            encode_b64(&sig)
        };
        let mut other = msg.clone();
        other[99_999] ^= 1;
        let cases: Vec<(&PublicKey, SigAlg, &[u8], String, bool)> = vec![
            (&ed, SigAlg::Ed25519, &msg, good.clone(), true),
            (&ed, SigAlg::Ed25519, &other, good.clone(), false),
            (&ed, SigAlg::Ed25519, &msg, encode_b64(&bad_sig), false),
            (&ed, SigAlg::Ed25519, &msg, encode_b64(&small), false),
            (&weak, SigAlg::Ed25519, &msg, good.clone(), false),
            // verifies in plain Ed25519 ([0]B = R + [k]A with A and R the
            // identity), refused by the strict checks
            (&weak, SigAlg::Ed25519, &msg, encode_b64(&small), false),
            (&ed, SigAlg::Ed25519, &msg, "not base64!".into(), false),
            (&ed, SigAlg::Ed25519, &msg, encode_b64(&[1, 2, 3]), false),
            (&ed, SigAlg::RsaPssSha256, &msg, good.clone(), false),
            (&rsa_pub, SigAlg::RsaPssSha256, &msg, rsa_good.clone(), true),
            (
                &rsa_pub,
                SigAlg::RsaPssSha256,
                &other,
                rsa_good.clone(),
                false,
            ),
            (&rsa_pub, SigAlg::Ed25519, &msg, rsa_good.clone(), false),
        ];
        for (n, (key, alg, m, sig, ok)) in cases.into_iter().enumerate() {
            let whole = key.verify_b64(alg, m, &sig);
            for piece in [1, 7, 4096, m.len()] {
                let streamed = key.verify_b64_streamed(
                    alg,
                    &|sink| m.chunks(piece).for_each(&mut *sink),
                    &sig,
                );
                assert_eq!(streamed, whole, "case {n}, pieces of {piece}");
            }
            assert_eq!(whole.is_ok(), ok, "case {n}: {whole:?}");
        }
    }

    #[test]
    fn digest_parse() {
        assert_eq!(Digest::parse("nohash"), Err(DigestParseError::Malformed));
        assert_eq!(
            Digest::parse("md5=x"),
            Err(DigestParseError::UnknownAlg("md5".into()))
        );
        assert!(Digest::parse_key_hash("abc").is_err());
    }
}
