//! `rotate-key`: replace a compromised key.
//!
//! * root key: remove it, add the replacement, re-sign by a quorum without
//!   it; clients must take the new trust anchors;
//! * snapshot / timestamp key: the new key with epoch + 1 in the root's
//!   reference, so the online file restarts its counter;
//! * janitor: remove it, add the replacement, quorum re-checked.

use super::{delegate_key, delegate_ref, load_root, next_root, root_key, sign_all};
use crate::ceremony::script::{RotateKey, Target};
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role};
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &RotateKey) -> Result<Outcome> {
    let old = load_root(e)?;
    let bad = c.compromised.clone();
    let mut new = next_root(&old)?;
    match &c.target {
        Target::Root { new_key, quorum } => {
            if new.keys.remove(&bad).is_none() {
                return Err(ArcaError::Input(format!("{bad} is not a root key")));
            }
            new.signatures.remove(&bad);
            let rec = root_key(e, new_key)?;
            new.keys.insert(rec.id.clone(), rec.key()?);
            let Expr::Quorum(n, refs) = &old.valid else {
                return Err(ArcaError::Refused(
                    "the root's valid expression is not a plain quorum".into(),
                ));
            };
            let mut refs: Vec<KeyRef> = refs.iter().filter(|r| r.id() != bad).cloned().collect();
            refs.push(KeyRef::Local(rec.id.clone()));
            let q = quorum.map(|(q, _)| q).unwrap_or(*n);
            new.valid = Expr::quorum(q, refs);
        }
        Target::Snapshot(d) | Target::Timestamp(d) => {
            let role = if matches!(c.target, Target::Snapshot(_)) {
                Role::Snapshot
            } else {
                Role::Timestamp
            };
            let (id, _, epoch) = old
                .single_role(role)
                .map_err(ArcaError::Refused)?
                .ok_or_else(|| ArcaError::Input(format!("the root has no {role} role")))?;
            if id != bad {
                return Err(ArcaError::Input(format!(
                    "the {role} role is {id}, not {bad}"
                )));
            }
            let pk = delegate_key(e, d)?;
            let new_epoch = epoch
                .checked_add(1)
                .ok_or_else(|| ArcaError::Refused("epoch at its maximum".into()))?;
            new.roles
                .insert(role, Expr::quorum(1, [delegate_ref(d, &pk, new_epoch)]));
        }
        Target::Janitor {
            replacement,
            quorum,
        } => {
            let Some(Expr::Quorum(n, refs)) = old.roles.get(&Role::Maintainer) else {
                return Err(ArcaError::Refused(
                    "the root has no plain maintainer role".into(),
                ));
            };
            if !refs.iter().any(|r| r.id() == bad) {
                return Err(ArcaError::Input(format!(
                    "{bad} is not a janitor of this root"
                )));
            }
            let pk = delegate_key(e, replacement)?;
            let mut refs: Vec<KeyRef> = refs.iter().filter(|r| r.id() != bad).cloned().collect();
            refs.push(delegate_ref(replacement, &pk, replacement.epoch));
            let q = quorum.map(|(q, _)| q).unwrap_or(*n);
            new.roles.insert(Role::Maintainer, Expr::quorum(q, refs));
        }
    }
    e.build_root(new)?;
    sign_all(e)?;
    let out = e.finish()?;
    if matches!(c.target, Target::Root { .. }) {
        e.op.show(
            "Clients must change their trust anchors",
            &format!(
                "{bad} is no longer a root key. New anchors:\n{}",
                out.anchors
                    .iter()
                    .map(|a| crate::repository::grouped(a))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        );
    }
    Ok(out)
}
