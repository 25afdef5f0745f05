//! `create-root`: generate root keys on each holder's device, add them with
//! the quorum, delegate janitors, snapshot and timestamp, collect every
//! holder's signature over one counter, verify, write the outputs.

use super::{delegate_key, delegate_ref, root_key, sign_all, KeyRecord};
use crate::ceremony::script::CreateRoot;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role, Root};
use crate::error::Result;

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &CreateRoot) -> Result<Outcome> {
    let mut recs: Vec<KeyRecord> = Vec::new();
    for k in &c.keys {
        recs.push(root_key(e, k)?);
    }
    let mut root = Root::new(&crate::ceremony::now());
    root.header.counter = 1;
    for r in &recs {
        root.keys.insert(r.id.clone(), r.key()?);
    }
    root.valid = Expr::quorum(c.quorum, recs.iter().map(|r| KeyRef::Local(r.id.clone())));
    if let Some(m) = &c.maintainers {
        let mut refs = Vec::new();
        for j in &m.keys {
            let pk = delegate_key(e, j)?;
            refs.push(delegate_ref(j, &pk, j.epoch));
        }
        root.roles
            .insert(Role::Maintainer, Expr::quorum(m.quorum, refs));
    }
    for (role, d) in [
        (Role::Snapshot, &c.snapshot),
        (Role::Timestamp, &c.timestamp),
    ] {
        if let Some(d) = d {
            let pk = delegate_key(e, d)?;
            root.roles
                .insert(role, Expr::quorum(1, [delegate_ref(d, &pk, d.epoch)]));
        }
    }
    e.build_root(root)?;
    sign_all(e)?;
    e.finish()
}
