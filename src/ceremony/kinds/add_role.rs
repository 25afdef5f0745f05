//! `add-role`: add janitors (or the snapshot / timestamp key) to a role,
//! optionally change its quorum, re-sign by the root holders.

use super::{delegate_key, delegate_ref, load_root, next_root, sign_all};
use crate::ceremony::script::AddRole;
use crate::ceremony::{Engine, Outcome};
use crate::conex::Expr;
use crate::error::{ArcaError, Result};

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &AddRole) -> Result<Outcome> {
    let old = load_root(e)?;
    let role = c.role;
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
        if refs.iter().any(|r| r.id() == d.id) {
            return Err(ArcaError::Refused(format!(
                "{} is already in the {role} role; use rotate-key to replace it",
                d.id
            )));
        }
        refs.push(delegate_ref(d, &pk, d.epoch));
    }
    let q = c.quorum.map(|(q, _)| q).unwrap_or(n);
    new.roles.insert(role, Expr::quorum(q, refs));
    e.build_root(new)?;
    sign_all(e)?;
    e.finish()
}
