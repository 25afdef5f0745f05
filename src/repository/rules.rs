//! The rules arca applies to what it reads for writing and to what it
//! writes: canonical keys and signatures, root shapes, quorum bounds, ids.

use crate::conex::expr::{Expr, KeyRef};
use crate::conex::resource::Resource;
use crate::conex::{Role, Root};
use crate::error::{ArcaError, Result};
use std::collections::BTreeMap;

/// Strict checks arca applies to every file it reads for writing or
/// signing: every key decodes and is in canonical form, every signature is
/// well-formed base64.
pub fn lint<R: Resource>(r: &R) -> std::result::Result<(), crate::conex::ConexError> {
    for (id, k) in r.keys() {
        k.key.validate().map_err(|e| {
            crate::conex::ConexError::field(format!("signed.keys.{id}"), e.to_string())
        })?;
    }
    for (id, s) in r.signatures() {
        if s.raw().is_none() {
            return Err(crate::conex::ConexError::field(
                format!("signatures.{id}"),
                "signature is not valid padded base64",
            ));
        }
    }
    Ok(())
}

/// Refuses roots arca will not write: quorum below 1 or above the keys that
/// could meet it, references to missing keys.
pub fn check_root_shape(root: &Root) -> Result<()> {
    let mut seen: BTreeMap<crate::conex::key::Digest, &str> = BTreeMap::new();
    for (id, k) in &root.keys {
        if let Some(other) = seen.insert(k.key_id(), id) {
            return Err(ArcaError::Refused(format!(
                "root keys {other} and {id} are the same key; one key under two ids would count once but look like two"
            )));
        }
    }
    for id in root.valid.local_ids() {
        if !root.keys.contains_key(&id) {
            return Err(ArcaError::Refused(format!(
                "the valid expression names {id}, which is not a root key"
            )));
        }
    }
    if let Expr::Quorum(n, refs) = &root.valid {
        if !refs.is_empty() || *n != 0 {
            quorum_bounds("the root", *n, refs.len(), "root key(s)").map_err(ArcaError::Refused)?;
        }
    }
    for (role, e) in &root.roles {
        if let Expr::Quorum(n, refs) = e {
            quorum_bounds(&format!("the {role} role"), *n, refs.len(), "key(s) in it")
                .map_err(ArcaError::Refused)?;
        } else if e.min_signers() < 1 {
            return Err(ArcaError::Refused(format!("the {role} role has quorum 0")));
        }
        if matches!(role, Role::Snapshot | Role::Timestamp)
            && !matches!(e, Expr::Quorum(1, r) if r.len() == 1)
        {
            return Err(ArcaError::Refused(format!(
                "the {role} role must be exactly one key with quorum 1"
            )));
        }
    }
    let online = |role: Role| {
        root.roles.get(&role).and_then(|e| {
            e.refs().into_iter().find_map(|r| match r {
                KeyRef::Remote { digest, .. } => Some(digest.clone()),
                KeyRef::Local(_) => None,
            })
        })
    };
    if let (Some(s), Some(t)) = (online(Role::Snapshot), online(Role::Timestamp)) {
        if s == t {
            return Err(ArcaError::Refused(SAME_ONLINE_KEY.into()));
        }
    }
    Ok(())
}

/// Why one key for snapshot and timestamp is refused.
pub const SAME_ONLINE_KEY: &str = "the snapshot and timestamp roles have the same key: whoever steals it signs both files, and a frozen timestamp can no longer be told from a frozen snapshot; give each role its own key";

/// The bounds of every quorum arca writes: at least 1 (a quorum of 0 or
/// below is met with no signature at all) and at most the keys that could
/// meet it. `what` names the expression (`the root`, `the maintainer role`).
pub fn quorum_bounds(
    what: &str,
    n: i64,
    keys: usize,
    noun: &str,
) -> std::result::Result<(), String> {
    if n < 1 {
        return Err(format!(
            "{what} has quorum {n}: a quorum 0 or below is met with no signature at all; give 1 or more"
        ));
    }
    if n > keys as i64 {
        return Err(format!(
            "{what} has quorum {n}, which exceeds the {keys} {noun}"
        ));
    }
    Ok(())
}

/// Whether `id` is an opam identifier conex can read back.
pub(crate) fn is_ident(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        && id.bytes().any(|c| c.is_ascii_alphabetic())
        && !id.starts_with("0x")
        && !matches!(id, "true" | "false" | "emptymap")
}

/// Ids must be opam identifiers conex can read back.
pub fn check_ident(id: &str) -> Result<()> {
    if is_ident(id) {
        Ok(())
    } else {
        Err(ArcaError::Input(format!(
            "id {id:?} is not usable: letters, digits, '_' and '-', at least one letter, not 0x…, true, false or emptymap"
        )))
    }
}
