//! Signature checks: each distinct signature verified once, the bytes a
//! signature covers.

use super::*;

/// Outcomes of signature verifications: each distinct (key, algorithm,
/// signed bytes, signature) is verified once. Shared between verifiers
/// (e.g. across the two trees of an incremental verification).
#[derive(Default)]
pub struct SigCache {
    map: Mutex<HashMap<[u8; 32], Result<(), KeyDataError>>>,
}

impl SigCache {
    /// Messages at least this long are not cached.
    pub const UNCACHED: usize = 1 << 20;

    /// An empty cache.
    pub fn new() -> SigCache {
        SigCache::default()
    }

    /// Number of distinct signatures verified so far.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing was verified yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `sig_b64` over `msg` with `key`, or returns the cached
    /// outcome of the same verification. A message of [`Self::UNCACHED`]
    /// bytes or more (a large targets file's, read once per verification)
    /// is verified without the cache: hashing it for the cache's key would
    /// cost more than the cache saves.
    pub fn verify(
        &self,
        key: &crate::conex::PublicKey,
        alg: crate::conex::SigAlg,
        msg: &[u8],
        sig_b64: &str,
    ) -> Result<(), KeyDataError> {
        if msg.len() >= Self::UNCACHED {
            return key.verify_b64(alg, msg, sig_b64);
        }
        let mut h = Sha256::new();
        for part in [
            key.conex_string().as_bytes(),
            alg.as_str().as_bytes(),
            Sha256::digest(msg).as_slice(),
            sig_b64.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let k: [u8; 32] = h.finalize().into();
        if let Some(r) = self.map.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return r;
        }
        let r = key.verify_b64(alg, msg, sig_b64);
        if let Ok(mut m) = self.map.lock() {
            m.insert(k, r.clone());
        }
        r
    }
}

/// Verifies every signature of a resource with the key of the same id in
/// the resource; returns valid signers as key id → signer id (one entry per
/// key id: a key listed under two ids counts once).
pub fn valid_signatures<R: Resource>(
    r: &R,
    warnings: &mut Vec<String>,
) -> BTreeMap<Digest, String> {
    valid_signatures_cached(r, warnings, &SigCache::new())
}

/// [`valid_signatures`] with a shared cache; several signatures of one
/// file are verified in parallel.
pub fn valid_signatures_cached<R: Resource>(
    r: &R,
    warnings: &mut Vec<String>,
    cache: &SigCache,
) -> BTreeMap<Digest, String> {
    valid_signatures_over(r, &r.canonical_signed(), warnings, cache)
}

/// [`valid_signatures_cached`] with the canonical string of the signed map
/// already written (`signed`; for a targets file read in place, `r` is
/// the file without its entries).
pub fn valid_signatures_over<R: Resource>(
    r: &R,
    signed: &str,
    warnings: &mut Vec<String>,
    cache: &SigCache,
) -> BTreeMap<Digest, String> {
    valid_signatures_by(
        r,
        &|id, created, alg| Tbs::Whole(wrap_signed(r, signed, id, created, alg)),
        warnings,
        cache,
    )
}

/// The bytes a signature covers: whole, or given in pieces to a sink (a
/// large targets file's, hashed as they are written, never held whole).
pub enum Tbs<'a> {
    /// The bytes.
    Whole(String),
    /// Writes the bytes to the sink, in pieces.
    Pieces(Box<crate::conex::key::Pieces<'a>>),
}

impl Tbs<'_> {
    /// Verifies `sig` (base64) with `key` over these bytes; whole bytes
    /// through the cache.
    fn verify(
        &self,
        cache: &SigCache,
        key: &crate::conex::PublicKey,
        alg: crate::conex::SigAlg,
        sig: &str,
    ) -> Result<(), KeyDataError> {
        match self {
            Tbs::Whole(m) => cache.verify(key, alg, m.as_bytes(), sig),
            Tbs::Pieces(w) => key.verify_b64_streamed(alg, &**w, sig),
        }
    }

    /// How many bytes these are, at least (pieces: a megabyte).
    fn weight(&self) -> usize {
        match self {
            Tbs::Whole(m) => m.len(),
            Tbs::Pieces(_) => 1 << 20,
        }
    }
}

/// [`valid_signatures_over`] with the bytes each signature covers made by
/// `tbs` (from the signer's id, the signature's `created` and algorithm).
pub fn valid_signatures_by<'t, R: Resource>(
    r: &R,
    tbs: &dyn Fn(&str, &str, crate::conex::SigAlg) -> Tbs<'t>,
    warnings: &mut Vec<String>,
    cache: &SigCache,
) -> BTreeMap<Digest, String> {
    let sigs: Vec<_> = r
        .signatures()
        .iter()
        .map(|(id, sig)| {
            let tbs = tbs(id, &sig.created, sig.alg);
            (id, sig, r.keys().get(id), tbs)
        })
        .collect();
    let check = |(_, sig, key, tbs): &(
        _,
        &crate::conex::Signature,
        Option<&crate::conex::Key>,
        Tbs<'t>,
    )| {
        let key = (*key)?;
        Some(tbs.verify(cache, &key.key, sig.alg, &sig.value))
    };
    // in parallel only where it pays: several signatures, together over a
    // megabyte (a check takes well under a millisecond otherwise, less
    // than handing it to the pool from outside it can take)
    let large = sigs.len() > 1 && sigs.iter().map(|s| s.3.weight()).sum::<usize>() >= 1 << 20;
    let checked: Vec<Option<Result<(), KeyDataError>>> = if large {
        sigs.par_iter().map(check).collect()
    } else {
        sigs.iter().map(check).collect()
    };
    let mut out = BTreeMap::new();
    for ((id, _, _, _), res) in sigs.into_iter().zip(checked) {
        match res {
            None => warnings.push(format!(
                "{} {}: no key {id} for its signature",
                R::TYP,
                r.header().name
            )),
            Some(Ok(())) => {
                if let Some(key) = r.keys().get(id) {
                    out.insert(key.key_id(), id.clone());
                }
            }
            Some(Err(e)) => warnings.push(format!(
                "{} {}: signature of {id}: {e}",
                R::TYP,
                r.header().name
            )),
        }
    }
    out
}

/// The bytes a signature covers (`to_be_signed`), from the canonical string
/// of the signed map computed once per file.
pub(super) fn wrap_signed<R: Resource>(
    r: &R,
    signed_canonical: &str,
    id: &str,
    created: &str,
    alg: crate::conex::SigAlg,
) -> String {
    match wrapper(id, created, alg) {
        Some((head, tail)) => {
            let mut s = String::with_capacity(head.len() + signed_canonical.len() + tail.len());
            s.push_str(&head);
            s.push_str(signed_canonical);
            s.push_str(&tail);
            s
        }
        None => r.to_be_signed(id, created, alg),
    }
}

/// The bytes a signature covers around the canonical string of the signed
/// map: (before, after), or `None` where they are not made that way.
pub(super) fn wrapper(
    id: &str,
    created: &str,
    alg: crate::conex::SigAlg,
) -> Option<(String, String)> {
    // the wrapper's keys sort as created < data < identifier < sigtype
    let empty = crate::conex::resource::to_be_signed(&WireMap::new(), id, created, alg);
    let head = format!("{{created:{};data:", Wire::Data(created.into()).canonical());
    let tail = empty
        .strip_prefix(head.as_str())?
        .strip_prefix("{}")?
        .to_string();
    Some((head, tail))
}
