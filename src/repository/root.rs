//! The one root-signing path: signing a root, and checking every root
//! signature arca keeps.

use super::{check_root_shape, Counter};
use crate::conex::resource::Resource;
use crate::conex::verify::valid_signatures;
use crate::conex::{Root, Signature};
use crate::error::{ArcaError, Result};
use crate::keys::{sign_checked, Signer};

/// Signs a root as `id` at `now`: the one root-signing path of arca
/// (`root sign`, ceremonies, sign requests). Refuses a root arca will not
/// write ([`check_root_shape`]), a signer that is not a key of the root or
/// does not count in its `valid` expression, and a device holding another
/// key than the root's `id`; applies the round rules of `counter`; checks
/// the new signature with the root's own key before keeping it. Returns
/// notes for people (a new round started, a round joined).
pub fn sign_root(
    root: &mut Root,
    id: &str,
    now: &str,
    signer: &mut dyn Signer,
    counter: Counter,
) -> Result<Vec<String>> {
    check_root_shape(root)?;
    let Some(key) = root.keys.get(id) else {
        return Err(ArcaError::Refused(format!(
            "{id} is not a key of this root; add it with `arca root add-key` first"
        )));
    };
    if key.key != *signer.public_key() {
        return Err(ArcaError::Refused(format!(
            "the key of {} ({}) is not root key {id} ({})",
            signer.describe(),
            signer.public_key().key_id(),
            key.key_id()
        )));
    }
    if !root.valid.local_ids().contains(id) {
        return Err(ArcaError::Refused(format!(
            "{id} does not count in the root's valid expression"
        )));
    }
    let mut notes = Vec::new();
    let others: Vec<String> = valid_signatures(root, &mut Vec::new())
        .into_values()
        .filter(|s| s != id)
        .collect();
    let bump = match counter {
        Counter::Increment => true,
        Counter::Keep => false,
        Counter::Auto => others.is_empty(),
    };
    if bump {
        root.header.counter = root
            .header
            .counter
            .checked_add(1)
            .ok_or_else(|| ArcaError::Refused("the root counter is at its maximum".into()))?;
        if !others.is_empty() {
            notes.push(format!(
                "starting a new signing round (counter {}): the signatures of {} no longer verify and are removed",
                root.header.counter,
                others.join(", ")
            ));
        }
        root.signatures.clear();
    } else if !others.is_empty() {
        notes.push(format!(
            "joining the signing round at counter {} already signed by {} (counter unchanged)",
            root.header.counter,
            others.join(", ")
        ));
    }
    let alg = signer.public_key().sig_alg();
    let tbs = root.to_be_signed(id, now, alg);
    let (alg, raw) = sign_checked(signer, tbs.as_bytes())?;
    add_root_signature(root, Signature::new(id, now, alg, &raw))?;
    Ok(notes)
}

/// Adds a root signature after checking it: its signer is a key of the
/// root that counts in `valid`, its algorithm fits the key, and it verifies
/// over this root's signed content. Used for every root signature arca
/// keeps, made here or imported.
pub fn add_root_signature(root: &mut Root, sig: Signature) -> Result<()> {
    let id = sig.id.clone();
    let key = root
        .keys
        .get(&id)
        .ok_or_else(|| ArcaError::Refused(format!("{id} is not a key of the root; not added")))?;
    if !root.valid.local_ids().contains(&id) {
        return Err(ArcaError::Refused(format!(
            "{id} does not count in the root's valid expression; not added"
        )));
    }
    if sig.alg != key.key.sig_alg() {
        return Err(ArcaError::Refused(format!(
            "a {} signature for a {} key; not added",
            sig.alg.as_str(),
            key.key.alg
        )));
    }
    let tbs = root.to_be_signed(&id, &sig.created, sig.alg);
    key.key
        .verify_b64(sig.alg, tbs.as_bytes(), &sig.value)
        .map_err(|e| {
            ArcaError::Refused(format!(
                "the signature of {id} does not verify over this root: {e}; not added"
            ))
        })?;
    root.signatures.insert(id, sig);
    Ok(())
}
