//! `add-role`: add janitors (or the snapshot / timestamp key) to a role,
//! optionally change its quorum, re-sign by the root holders.

use super::{delegate_digest, delegate_key, load_root, next_root, sign_all};
use crate::ceremony::script::AddRole;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role};
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &AddRole) -> Result<Outcome> {
    let old = load_root(e, c.root.get_ref())?;
    let role = Role::parse(c.role.get_ref()).ok_or_else(|| ArcaError::Input("role".into()))?;
    let mut new = next_root(&old)?;
    let (n, mut refs) = match new.roles.get(&role) {
        None => (1, Vec::new()),
        Some(Expr::Quorum(n, r)) => (*n, r.clone()),
        Some(_) => {
            return Err(ArcaError::Refused(format!(
                "the {role} role is not a plain quorum"
            )))
        }
    };
    for d in &c.add {
        let pk = delegate_key(e, d)?;
        let id = d.id.get_ref();
        if refs.iter().any(|r| r.id() == id) {
            return Err(ArcaError::Refused(format!(
                "{id} is already in the {role} role; use rotate-key to replace it"
            )));
        }
        refs.push(KeyRef::Remote {
            id: id.clone(),
            digest: delegate_digest(&pk),
            epoch: d.epoch,
        });
    }
    let q = c.quorum.as_ref().map(|q| *q.get_ref()).unwrap_or(n);
    new.roles.insert(role, Expr::quorum(q, refs));
    e.build_root(Some(&old), new)?;
    sign_all(e, &c.holders, None)?;
    e.finish()
}
