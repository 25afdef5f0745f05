//! `rotate-key`: replace a compromised key.
//!
//! * root key: remove it, add the replacement, re-sign by a quorum without
//!   it; clients must take the new trust anchors;
//! * snapshot / timestamp key: the new key with epoch + 1 in the root's
//!   reference, so the online file restarts its counter;
//! * janitor: remove it, add the replacement, quorum re-checked.

use super::{delegate_digest, delegate_key, load_root, next_root, root_key, sign_all};
use crate::ceremony::script::RotateKey;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role};
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &RotateKey) -> Result<Outcome> {
    let old = load_root(e, c.root.get_ref())?;
    let bad = c.compromised.get_ref().clone();
    let mut new = next_root(&old)?;
    match c.target.get_ref().as_str() {
        "root" => {
            if new.keys.remove(&bad).is_none() {
                return Err(ArcaError::Input(format!("{bad} is not a root key")));
            }
            new.signatures.remove(&bad);
            let k = c
                .new_root_key
                .as_ref()
                .ok_or_else(|| ArcaError::Input("new_root_key".into()))?;
            let rec = root_key(e, k)?;
            new.keys.insert(rec.id.clone(), rec.key()?);
            let Expr::Quorum(n, refs) = &old.valid else {
                return Err(ArcaError::Refused(
                    "the root's valid expression is not a plain quorum".into(),
                ));
            };
            let mut refs: Vec<KeyRef> = refs.iter().filter(|r| r.id() != bad).cloned().collect();
            refs.push(KeyRef::Local(rec.id.clone()));
            let q = c.quorum.as_ref().map(|q| *q.get_ref()).unwrap_or(*n);
            new.valid = Expr::quorum(q, refs);
        }
        t @ ("snapshot" | "timestamp") => {
            let role = Role::parse(t).ok_or_else(|| ArcaError::Input("role".into()))?;
            let (id, _, epoch) = old
                .single_role(role)
                .map_err(ArcaError::Refused)?
                .ok_or_else(|| ArcaError::Input(format!("the root has no {role} role")))?;
            if id != bad {
                return Err(ArcaError::Input(format!(
                    "the {role} role is {id}, not {bad}"
                )));
            }
            let d = c
                .replacement
                .as_ref()
                .ok_or_else(|| ArcaError::Input("replacement".into()))?;
            let pk = delegate_key(e, d)?;
            let new_epoch = epoch
                .checked_add(1)
                .ok_or_else(|| ArcaError::Refused("epoch at its maximum".into()))?;
            new.roles.insert(
                role,
                Expr::quorum(
                    1,
                    [KeyRef::Remote {
                        id: d.id.get_ref().clone(),
                        digest: delegate_digest(&pk),
                        epoch: new_epoch,
                    }],
                ),
            );
        }
        _ => {
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
            let d = c
                .replacement
                .as_ref()
                .ok_or_else(|| ArcaError::Input("replacement".into()))?;
            let pk = delegate_key(e, d)?;
            let mut refs: Vec<KeyRef> = refs.iter().filter(|r| r.id() != bad).cloned().collect();
            refs.push(KeyRef::Remote {
                id: d.id.get_ref().clone(),
                digest: delegate_digest(&pk),
                epoch: d.epoch,
            });
            let q = c.quorum.as_ref().map(|q| *q.get_ref()).unwrap_or(*n);
            if q < 1 || q > refs.len() as i64 {
                return Err(ArcaError::Refused(format!(
                    "janitor quorum {q} does not fit {} janitor(s)",
                    refs.len()
                )));
            }
            new.roles.insert(Role::Maintainer, Expr::quorum(q, refs));
        }
    }
    e.build_root(Some(&old), new)?;
    let skip = (c.target.get_ref() == "root").then_some(bad.as_str());
    sign_all(e, &c.holders, skip)?;
    let out = e.finish()?;
    if c.target.get_ref() == "root" {
        e.op.show(
            "Clients must change their trust anchors",
            &format!(
                "{bad} is no longer a root key. New anchors:\n{}",
                out.anchors.join(",")
            ),
        );
    }
    Ok(out)
}
