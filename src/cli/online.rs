//! `arca online …`: the online signer's side. `keygen` lives with the
//! bundle commands; `sign` is the routine after a janitor re-signs.

use super::{bundle, file_counter, online_epoch, role_id, Common, ReadCommon};
use crate::conex::resource::Resource;
use crate::conex::{Role, Snapshot, Timestamp};
use crate::error::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub(super) enum OnlineCmd {
    #[command(flatten)]
    Keys(bundle::OnlineCmd),
    /// The online routine in one command: snapshot create + sign, then
    /// timestamp create + sign (after a janitor re-signed their targets
    /// file, or to refresh the timestamp).
    Sign(OnlineSign),
}

#[derive(Args, Debug)]
pub(super) struct OnlineSign {
    #[command(flatten)]
    read: ReadCommon,
    /// Time to write as `created` (RFC 3339); default: SOURCE_DATE_EPOCH, else now.
    #[arg(long = "created")]
    created: Option<String>,
    /// Where the snapshot key lives (default: the key store, by the id the
    /// root's snapshot role names).
    #[arg(long = "snapshot-on")]
    snapshot_on: Option<String>,
    /// Where the timestamp key lives (default: the key store, by the id the
    /// root's timestamp role names).
    #[arg(long = "timestamp-on")]
    timestamp_on: Option<String>,
}

pub(super) fn online_cmd(cmd: OnlineCmd) -> Result<()> {
    match cmd {
        OnlineCmd::Keys(c) => bundle::online_cmd(c),
        OnlineCmd::Sign(a) => {
            let common = Common {
                created: a.created.clone(),
                ..a.read.common()
            };
            let snap =
                make_and_sign::<Snapshot>(&common, Role::Snapshot, a.snapshot_on.as_deref())?;
            let ts =
                make_and_sign::<Timestamp>(&common, Role::Timestamp, a.timestamp_on.as_deref())?;
            println!(
                "snapshot {}: counter {}, epoch {}, {} targets file(s)",
                snap.header.name,
                snap.header.counter,
                snap.header.epoch,
                snap.targets.len()
            );
            println!(
                "timestamp {}: counter {}, epoch {}",
                ts.header.name, ts.header.counter, ts.header.epoch
            );
            Ok(())
        }
    }
}

/// `create` then `sign` for the file the root's `role` names.
fn make_and_sign<R: Resource + super::OnlineCreate>(
    common: &Common,
    role: Role,
    on: Option<&str>,
) -> Result<R> {
    let mut repo = common.repo()?;
    let id = role_id(&mut repo, role, None)?;
    let epoch = online_epoch::<R>(&mut repo, role, &id, None)?;
    let (mut s, created) = common.signer(&id, on)?;
    R::create(&mut repo, &id, s.public_key().clone(), &created, epoch)?;
    repo.online_sign::<R>(&id, s.as_mut(), file_counter(false))
}
