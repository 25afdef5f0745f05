//! `bump-epoch`: after a fast-forward attack (a role file's counter pushed
//! to the maximum), raise the epoch in the root's reference; the role file
//! is then re-made with the new epoch and its counter restarts, and every
//! file of the old epoch is refused.

use super::{load_root, next_root, sign_all};
use crate::ceremony::script::BumpEpoch;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef};
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &BumpEpoch) -> Result<Outcome> {
    let old = load_root(e)?;
    let role = c.role;
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
            KeyRef::Remote { id, digest, epoch } if *id == c.id => {
                found = true;
                KeyRef::Remote {
                    id: id.clone(),
                    digest: digest.clone(),
                    epoch: epoch.saturating_add(1),
                }
            }
            other => other.clone(),
        })
        .collect();
    if !found {
        return Err(ArcaError::Input(format!(
            "{} is not in the {role} role",
            c.id
        )));
    }
    new.roles.insert(role, Expr::quorum(*n, refs));
    e.build_root(new)?;
    sign_all(e)?;
    e.finish()
}
