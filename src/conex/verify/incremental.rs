//! conex's rules between an old tree and its update (`verify_diffs`):
//!
//! * the key directory named by the root must not change;
//! * if the root file changed, its counter must strictly increase (and it
//!   may never decrease);
//! * for every changed targets file `<keydir>/<id>`: same epoch ⇒ counter
//!   strictly increases, higher epoch ⇒ any counter, lower epoch ⇒ refused;
//!   a deleted targets file is refused, a new one is fine.
//!
//! conex does not check that the snapshot and timestamp counters increase;
//! neither does the verdict here. arca adds a warning when they do not.
//!
//! The trees are [`Source`]s (the caller applies the patch); the verified
//! state of the old tree, when there is one, is [`super::state`].

use super::*;

/// conex's rule for a changed targets file, from the old and new (epoch,
/// counter): same epoch ⇒ the counter strictly increases, a lower epoch is
/// refused.
fn targets_rule(
    id: &str,
    (e, c): (u64, u64),
    (e2, c2): (u64, u64),
) -> std::result::Result<(), VerifyError> {
    if e == e2 {
        if c == c2 {
            return Err(VerifyError::from(format!("counter and epoch of {id} same")));
        }
        if c > c2 {
            return Err(VerifyError::from(format!(
                "counter of {id} is moving backwards"
            )));
        }
    } else if e > e2 {
        return Err(VerifyError::from(format!(
            "epoch of {id} is moving backwards"
        )));
    }
    Ok(())
}

/// What was already read and checked of the two trees (from a verified
/// state), so that it is not read again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHeaders {
    /// Old and new (epoch, counter) of targets files both trees hold, by id.
    pub targets: BTreeMap<String, (super::state::EpochCounter, super::state::EpochCounter)>,
    /// The new tree's snapshot and timestamp (epoch, counter), by role.
    pub online: BTreeMap<crate::conex::Role, (u64, u64)>,
}

impl KnownHeaders {
    /// Nothing known.
    pub fn new() -> KnownHeaders {
        KnownHeaders::default()
    }
}

/// conex's `verify_diffs`: the rules between the old tree `old` and the new
/// tree `new`, which differ in the files `changed`. The headers of changed
/// targets files already read and checked (from a verified state) are in
/// `known`.
pub fn verify_diffs(
    old: &dyn Source,
    new: &dyn Source,
    changed: &BTreeSet<Path>,
    opts: &Options,
    warnings: &mut Vec<String>,
    known: &KnownHeaders,
) -> std::result::Result<(), VerifyError> {
    let rn = &opts.root_name;
    let old_root: Root = read_resource(old, std::slice::from_ref(rn), rn, warnings)?;
    let new_root: Root = read_resource(new, std::slice::from_ref(rn), rn, warnings)?;
    if old_root.keydir != new_root.keydir {
        return Err("old and new key directories are different".into());
    }
    let keydir = &new_root.keydir;
    let mut root_changed = false;
    let mut ids = BTreeSet::new();
    for p in changed {
        if p.len() > keydir.len() && p.starts_with(keydir) {
            if let Some(id) = p.last() {
                ids.insert(id.clone());
            }
        } else if p.len() == 1 && p[0] == *rn {
            root_changed = true;
        }
    }
    match old_root.header.counter.cmp(&new_root.header.counter) {
        std::cmp::Ordering::Equal if root_changed => {
            return Err("root counter same, expected to increase".into())
        }
        std::cmp::Ordering::Greater => return Err("root counter decremented".into()),
        _ => {}
    }
    for id in &ids {
        if let Some((o, n)) = known.targets.get(id) {
            targets_rule(id, *o, *n)?;
            continue;
        }
        let mut path = keydir.clone();
        path.push(id.clone());
        let read =
            |src: &dyn Source, w: &mut Vec<String>| -> std::result::Result<Targets, VerifyError> {
                let t: Targets = read_resource(src, &path, id, w)?;
                if opts.opam {
                    if let Some(bad) = t
                        .targets
                        .iter()
                        .find(|x| !x.valid_opam_path(&new_root.datadir))
                    {
                        return Err(VerifyError::from(format!(
                            "{id} contains an invalid path {}",
                            path_to_string(&bad.filename)
                        )));
                    }
                }
                Ok(t)
            };
        let deleted = matches!(new.read(&path), Err(e) if e.kind() == io::ErrorKind::NotFound);
        let mut scratch = Vec::new();
        match (read(old, &mut scratch), read(new, warnings)) {
            (Err(_), Ok(_)) => {}
            (Ok(_), Err(_)) if deleted => {
                return Err(VerifyError::from(format!(
                    "targets file {} is deleted (conex does not allow deleting a targets file)",
                    path_to_string(&path)
                )))
            }
            (_, Err(e)) => return Err(e),
            (Ok(t), Ok(t2)) => targets_rule(
                id,
                (t.header.epoch, t.header.counter),
                (t2.header.epoch, t2.header.counter),
            )?,
        }
    }
    for role in [crate::conex::Role::Snapshot, crate::conex::Role::Timestamp] {
        let known = known.online.get(&role).copied();
        match role {
            crate::conex::Role::Snapshot => {
                online_monotonicity::<Snapshot>(old, new, &new_root, role, known, warnings)
            }
            _ => online_monotonicity::<Timestamp>(old, new, &new_root, role, known, warnings),
        }
    }
    Ok(())
}

/// arca's extra check (a warning only; conex does not check it): a changed
/// snapshot or timestamp should have a higher counter (or epoch).
/// `known`: the new file's (epoch, counter) when it was already read.
fn online_monotonicity<R: Resource>(
    old: &dyn Source,
    new: &dyn Source,
    root: &Root,
    role: crate::conex::Role,
    known: Option<(u64, u64)>,
    warnings: &mut Vec<String>,
) {
    let Ok(Some((id, _, _))) = root.single_role(role) else {
        return;
    };
    let path = vec![id.clone()];
    let (Ok(a), Ok(b)) = (old.read(&path), new.read(&path)) else {
        return;
    };
    if a == b {
        return;
    }
    let mut scratch = Vec::new();
    let Ok(o) = parse_resource::<R>(a, &id, &mut scratch) else {
        return;
    };
    let n = match known {
        Some(n) => n,
        None => match parse_resource::<R>(b, &id, &mut scratch) {
            Ok(n) => (n.header().epoch, n.header().counter),
            Err(_) => return,
        },
    };
    let o = o.header();
    if n <= (o.epoch, o.counter) {
        warnings.push(format!(
            "arca: {} {id} changed but its counter did not increase (epoch {} counter {} → epoch {} counter {}); conex does not check this",
            R::TYP, o.epoch, o.counter, n.0, n.1
        ));
    }
}
