//! `arca targets`: a janitor's targets file.

use super::args::{Common, TargetsCmd};
use super::common::file_counter;
use super::output::output;
use crate::error::Result;
use crate::repository::Counter;
use std::path::PathBuf;

pub(super) fn targets_cmd(cmd: TargetsCmd) -> Result<()> {
    match cmd {
        TargetsCmd::Create { common, key } => {
            let (pk, created) = common.public(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            repo.targets_create(&key.id, pk, &created).map(|_| ())
        }
        TargetsCmd::Compute {
            common,
            id,
            pkg,
            no_opam,
        } => {
            let mut repo = common.repo()?;
            repo.targets_compute(&id, pkg.as_deref(), !no_opam)
                .map(|_| ())
        }
        TargetsCmd::Sign {
            common,
            key,
            no_incr,
        } => {
            let (mut s, _) = common.signer(&key.id, key.on.as_deref())?;
            let mut repo = common.repo()?;
            let t = repo.targets_sign(&key.id, s.as_mut(), file_counter(no_incr))?;
            println!("targets {} signed at counter {}", key.id, t.header.counter);
            Ok(())
        }
        TargetsCmd::Hash { common, id } => {
            let mut repo = common.common().repo()?;
            println!("{}", repo.targets(&id)?.valid_hash()?);
            Ok(())
        }
        TargetsCmd::Status { common, id, json } => {
            let mut repo = common.common().repo()?;
            let st = crate::status::file_status(&repo.targets(&id)?);
            output(json, &st, |s| s.render());
            Ok(())
        }
    }
}

/// A janitor signs their targets file (the menu's janitor item).
pub(crate) fn janitor_sign(
    repo: PathBuf,
    id: &str,
    on: Option<&str>,
    recompute: bool,
) -> Result<()> {
    let common = Common {
        repository: repo,
        root: "root".into(),
        dry_run: false,
        created: None,
        key_store: None,
    };
    let mut r = common.repo()?;
    if recompute {
        r.targets_compute(id, None, true)?;
    }
    let (mut s, _) = common.signer(id, on)?;
    let t = r.targets_sign(id, s.as_mut(), Counter::Increment)?;
    println!(
        "targets {id} signed at counter {} ({} entries)",
        t.header.counter,
        t.targets.len()
    );
    Ok(())
}
