//! `create-root`: generate root keys on each holder's device, add them with
//! the quorum, delegate janitors, snapshot and timestamp, collect every
//! holder's signature over one counter, verify, write the outputs.

use super::{delegate_digest, delegate_key, root_key, KeyRecord};
use crate::ceremony::script::CreateRoot;
use crate::ceremony::{Engine, Outcome};
use crate::conex::{Expr, KeyRef, Role, Root};
use crate::error::Result;

/// Runs the ceremony.
pub fn run(e: &mut Engine, c: &CreateRoot) -> Result<Outcome> {
    let mut recs: Vec<KeyRecord> = Vec::new();
    for k in &c.root.keys {
        recs.push(root_key(e, k)?);
    }
    let mut root = Root::new(&crate::ceremony::now());
    root.header.counter = 1;
    for r in &recs {
        root.keys.insert(r.id.clone(), r.key()?);
    }
    root.valid = Expr::quorum(
        *c.root.quorum.get_ref(),
        recs.iter().map(|r| KeyRef::Local(r.id.clone())),
    );
    if let Some(m) = &c.maintainers {
        let mut refs = Vec::new();
        for j in &m.janitors {
            let pk = delegate_key(e, j)?;
            refs.push(KeyRef::Remote {
                id: j.id.get_ref().clone(),
                digest: delegate_digest(&pk),
                epoch: j.epoch,
            });
        }
        root.roles
            .insert(Role::Maintainer, Expr::quorum(*m.quorum.get_ref(), refs));
    }
    for (role, d) in [
        (Role::Snapshot, &c.snapshot),
        (Role::Timestamp, &c.timestamp),
    ] {
        if let Some(d) = d {
            let pk = delegate_key(e, d)?;
            root.roles.insert(
                role,
                Expr::quorum(
                    1,
                    [KeyRef::Remote {
                        id: d.id.get_ref().clone(),
                        digest: delegate_digest(&pk),
                        epoch: d.epoch,
                    }],
                ),
            );
        }
    }
    e.build_root(None, root)?;
    for k in &c.root.keys {
        e.sign_root(k.holder.get_ref(), k.id.get_ref())?;
    }
    e.finish()
}
