//! `arca root`: the root file.

use super::args::{RoleArgs, RootCmd};
use super::common::{parse_anchors, parse_role, read_pub};
use super::output::output;
use crate::conex::{Digest, Role};
use crate::error::Result;

pub(super) fn root_cmd(cmd: RootCmd) -> Result<()> {
    match cmd {
        RootCmd::Create { common, force } => {
            let mut repo = common.repo()?;
            repo.root_create(force).map(|_| ())
        }
        RootCmd::AddKey {
            common,
            src,
            quorum,
        } => {
            let pk = read_pub(&src, &common)?;
            let mut repo = common.repo()?;
            let now = repo.now.clone();
            let root = repo.root_add_key(&src.id, pk.clone(), &now, quorum)?;
            println!(
                "root key {} {} added; valid: {}",
                src.id,
                pk.key_id(),
                root.valid
            );
            Ok(())
        }
        RootCmd::RemoveKey { common, id, quorum } => {
            let mut repo = common.repo()?;
            let root = repo.root_remove_key(&id, quorum)?;
            println!("root key {id} removed; valid: {}", root.valid);
            Ok(())
        }
        RootCmd::AddToRole(a) => role_cmd(a, false),
        RootCmd::SetRole(a) => role_cmd(a, true),
        RootCmd::RemoveFromRole {
            common,
            role,
            id,
            quorum,
        } => {
            let role = parse_role(&role)?;
            let mut repo = common.repo()?;
            repo.root_remove_from_role(role, &id, quorum).map(|_| ())
        }
        RootCmd::Sign {
            common,
            key,
            counter,
        } => {
            let (mut s, _) = common.signer(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            let root = repo.root_sign(&key.id, s.as_mut(), counter.root_mode())?;
            println!(
                "root signed by {} at counter {}",
                key.id, root.header.counter
            );
            Ok(())
        }
        RootCmd::Status {
            common,
            anchors,
            json,
        } => {
            let anchors = parse_anchors(&anchors)?;
            let mut repo = common.common().repo()?;
            let st = crate::status::root_status(&repo.root()?, &anchors);
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

pub(super) fn role_cmd(a: RoleArgs, set: bool) -> Result<()> {
    let role = parse_role(&a.role)?;
    let mut repo = a.common.repo()?;
    let digest = match &a.src.key_hash {
        Some(h) => Digest::parse_key_hash(h)?,
        None => {
            let rel = repo.targets_rel(&a.src.id)?;
            let targets_file = a
                .common
                .repository
                .join(crate::conex::resource::path_to_string(&rel));
            if role == Role::Maintainer && targets_file.exists() {
                let t: crate::conex::Targets = repo.read(&rel)?;
                t.valid_hash()?
            } else {
                a.common.public(&a.src.id, a.src.on.as_deref())?.0.key_id()
            }
        }
    };
    let root = if set {
        repo.root_set_role(role, &a.src.id, digest.clone(), a.epoch)
    } else {
        repo.root_add_to_role(role, &a.src.id, digest.clone(), a.epoch, a.quorum)
    }?;
    println!(
        "{role}: {} ({} epoch {})",
        root.roles[&role], digest, a.epoch
    );
    Ok(())
}
