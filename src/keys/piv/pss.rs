//! The EMSA-PSS block the card's raw RSA operation signs.

use crate::keys::KeyError;
use sha2::{Digest as _, Sha256};

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-256, MGF1-SHA-256 and the
/// given 32-byte salt, left-padded with zeros to the modulus length so the
/// card can apply the raw RSA operation.
pub(super) fn emsa_pss_sha256(
    msg: &[u8],
    mod_bits: usize,
    salt: &[u8; 32],
) -> Result<Vec<u8>, KeyError> {
    const H_LEN: usize = 32;
    const S_LEN: usize = 32;
    if mod_bits < 8 * (H_LEN + S_LEN + 3) {
        return Err(KeyError::Policy(format!(
            "an RSA modulus of {mod_bits} bits is too small for PSS"
        )));
    }
    let k = mod_bits.div_ceil(8);
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let m_hash = Sha256::digest(msg);
    let mut h = Sha256::new();
    h.update([0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    let h = h.finalize();
    let db_len = em_len - H_LEN - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - S_LEN - 1] = 0x01;
    db[db_len - S_LEN..].copy_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1_sha256(&h, db_len)) {
        *d ^= m;
    }
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = vec![0u8; k - em_len];
    em.extend_from_slice(&db);
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}
