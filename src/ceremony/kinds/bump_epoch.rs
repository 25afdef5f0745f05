//! `bump-epoch`: after a fast-forward attack (a role file's counter pushed
//! to the maximum), raise the epoch in the root's reference; the role file
//! is then re-made with the new epoch and its counter restarts, and every
//! file of the old epoch is refused.

use super::{load_root, next_root, sign_all};
use crate::ceremony::script::BumpEpoch;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role};
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &BumpEpoch) -> Result<Outcome> {
    let old = load_root(e, c.root.get_ref())?;
    let role = Role::parse(c.role.get_ref()).ok_or_else(|| ArcaError::Input("role".into()))?;
    let id = c.id.get_ref();
    let mut new = next_root(&old)?;
    let Some(Expr::Quorum(n, refs)) = old.roles.get(&role) else {
        return Err(ArcaError::Refused(format!(
            "the root has no plain {role} role"
        )));
    };
    let mut found = false;
    let refs: Vec<KeyRef> = refs
        .iter()
        .map(|r| match r {
            KeyRef::Remote {
                id: rid,
                digest,
                epoch,
            } if rid == id => {
                found = true;
                KeyRef::Remote {
                    id: rid.clone(),
                    digest: digest.clone(),
                    epoch: epoch.saturating_add(1),
                }
            }
            other => other.clone(),
        })
        .collect();
    if !found {
        return Err(ArcaError::Input(format!("{id} is not in the {role} role")));
    }
    new.roles.insert(role, Expr::quorum(*n, refs));
    e.build_root(Some(&old), new)?;
    sign_all(e, &c.holders, None)?;
    e.finish()
}
