//! `arca snapshot` and `arca timestamp`: the two online files.

use super::args::OnlineCmd;
use super::common::file_counter;
use super::output::output;
use crate::conex::resource::Resource;
use crate::conex::{PublicKey, Role, Snapshot, Timestamp};
use crate::error::{ArcaError, Result};
use crate::repository::Repo;

pub(super) fn role_id(repo: &mut Repo, role: Role, id: Option<String>) -> Result<String> {
    if let Some(id) = id {
        return Ok(id);
    }
    let root = repo.root()?;
    match root.single_role(role).map_err(ArcaError::Input)? {
        Some((id, _, _)) => Ok(id),
        None => Err(ArcaError::Input(format!(
            "the root has no {role} role; give --id"
        ))),
    }
}

pub(super) fn online_cmd<R: Resource + OnlineCreate>(cmd: OnlineCmd, role: Role) -> Result<()> {
    match cmd {
        OnlineCmd::Create {
            common,
            id,
            on,
            epoch,
        } => {
            let mut repo = common.repo()?;
            let id = role_id(&mut repo, role, id)?;
            let epoch = online_epoch::<R>(&mut repo, role, &id, epoch)?;
            let (s, created) = common.signer(&id, on.as_deref())?;
            R::create(&mut repo, &id, s.public_key().clone(), &created, epoch)
        }
        OnlineCmd::Sign {
            common,
            id,
            on,
            no_incr,
        } => {
            let mut repo = common.repo()?;
            let id = role_id(&mut repo, role, id)?;
            let (mut s, _) = common.signer(&id, on.as_deref())?;
            let f = repo.online_sign::<R>(&id, s.as_mut(), file_counter(no_incr))?;
            println!("{} {id} signed at counter {}", R::TYP, f.header().counter);
            Ok(())
        }
        OnlineCmd::Status { common, id, json } => {
            let mut repo = common.common().repo()?;
            let id = role_id(&mut repo, role, id)?;
            let f: R = repo.read(&[id])?;
            let root = repo.root();
            let st = match root {
                Ok(root) => crate::status::online_status(&f, &root, role),
                Err(_) => crate::status::file_status(&f),
            };
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

/// The epoch a re-made snapshot or timestamp file gets. Without `--epoch`
/// it follows the epoch the root's role names (after a bump-epoch ceremony
/// the next `create` moves to the new epoch, and its counter restarts);
/// an explicit `--epoch` other than the root's is made as asked, with a
/// warning that `arca verify` refuses the file until the root names it.
pub(super) fn online_epoch<R: Resource>(
    repo: &mut Repo,
    role: Role,
    id: &str,
    given: Option<u64>,
) -> Result<Option<u64>> {
    let root = repo.root()?;
    let Ok(Some((rid, _, want))) = root.single_role(role) else {
        return Ok(given);
    };
    if !crate::conex::expr::id_equal(&rid, id) {
        return Ok(given);
    }
    match given {
        Some(e) if e != want => {
            repo.note(format!(
                "warning: the root's {role} role names epoch {want}; `arca verify` refuses a {} with epoch {e} (\"{} with bad epoch\")",
                R::TYP,
                R::TYP
            ));
            Ok(Some(e))
        }
        Some(e) => Ok(Some(e)),
        None => {
            let path = repo.dir.join(id);
            let current = if path.exists() {
                repo.read::<R>(&[id.to_string()])
                    .ok()
                    .map(|f| f.header().epoch)
            } else {
                None
            };
            match current {
                Some(c) if c > want => {
                    repo.note(format!(
                        "warning: {id} has epoch {c} but the root's {role} role names epoch {want}; \
                         `arca verify` refuses it until the root names epoch {c}"
                    ));
                    Ok(None)
                }
                Some(c) if c < want => {
                    repo.note(format!(
                        "{id}: following the root's {role} role to epoch {want}"
                    ));
                    Ok(Some(want))
                }
                _ => Ok(Some(want)),
            }
        }
    }
}

/// How `create` works for the two online files.
pub(super) trait OnlineCreate {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()>;
}

impl OnlineCreate for Snapshot {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()> {
        repo.snapshot_create(id, key, created, epoch).map(|_| ())
    }
}

impl OnlineCreate for Timestamp {
    fn create(
        repo: &mut Repo,
        id: &str,
        key: PublicKey,
        created: &str,
        epoch: Option<u64>,
    ) -> Result<()> {
        let snap = role_id(repo, Role::Snapshot, None)?;
        repo.timestamp_create(id, &snap, key, created, epoch)
            .map(|_| ())
    }
}
