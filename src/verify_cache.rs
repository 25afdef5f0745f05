//! The verified-state cache of incremental verification (`arca verify
//! --cache FILE`).
//!
//! After a verification that found nothing to warn about at the maintainer
//! level, arca can write down what it established about the tree: per
//! targets file its id, the digest and size of its bytes, its epoch and
//! counter; per path under the data directory the digest and size of the
//! file on disk and the entries that sign it (which targets file, digest,
//! size). The file is keyed by content digests: the SHA-256 of the root,
//! snapshot and timestamp bytes (the snapshot pins every targets file, the
//! targets files pin every data file) and of the verification options.
//!
//! An incremental verification (`--incremental --repository OLD --patch P
//! --cache FILE`) uses the cache only when
//!
//! * the file is owned by the owner of `OLD`, and neither it nor its folder
//!   can be written by anyone else (group or others);
//! * it is complete (its last line is the SHA-256 of everything before it)
//!   and of this format;
//! * its key equals the digests of the root, snapshot and timestamp bytes
//!   now on disk in `OLD` and of the options given now.
//!
//! Otherwise, or when anything in the update is not the plain case (a
//! changed maintainer expression, a delegation, a targets file that gives a
//! warning, a file that does not match), arca verifies the whole patched
//! tree as without a cache — so a cache can make a verification faster,
//! never change its outcome. With the cache, arca verifies what the patch
//! changes: the root, timestamp and snapshot (always, from their bytes),
//! the changed targets files (read, parsed, signatures checked), the paths
//! whose entries or bytes changed (the patched files hashed), and conex's
//! rules between the old and the new tree. See docs/threat-model.md for the
//! security argument.

use crate::conex::verify::state::state_key;
use crate::conex::verify::{Options, Source, StateError};
use std::io;
use std::path::Path;

pub use crate::conex::verify::state::{
    verify_from_state, verify_roles, EpochCounter, Fast, Roles, State,
};

/// Why a cache file may not be trusted for the repository in `old`, if it
/// may not: its owner is not the repository's, or someone else can write
/// it or its folder.
fn check_ownership(cache: &Path, old: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let repo =
        std::fs::metadata(old).map_err(|e| StateError::from(format!("{}: {e}", old.display())))?;
    let meta = std::fs::symlink_metadata(cache).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let dir = crate::repository::parent_dir(cache);
    let dmeta =
        std::fs::metadata(dir).map_err(|e| StateError::from(format!("{}: {e}", dir.display())))?;
    for (what, m) in [("it", &meta), ("its folder", &dmeta)] {
        if m.uid() != repo.uid() {
            return Err(StateError::from(format!(
                "{what} is owned by uid {}, the repository by uid {}",
                m.uid(),
                repo.uid()
            )));
        }
        if m.mode() & 0o022 != 0 {
            return Err(StateError::from(format!(
                "{what} can be written by others (mode {:o})",
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Loads the cache at `cache` for the repository in `old` (read through
/// `src`); `Err` says why it is not used.
pub fn load(
    cache: &Path,
    old: &Path,
    src: &dyn Source,
    opts: &Options,
) -> Result<State, StateError> {
    let bytes = match std::fs::read(cache) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("it does not exist".into()),
        Err(e) => return Err(e.to_string().into()),
    };
    check_ownership(cache, old)?;
    let st = State::parse(bytes)?;
    let read = |n: &str| {
        src.read(&[n.to_string()]).map_err(|e| {
            format!(
                "cannot read {} in the repository: {e}",
                crate::conex::shown(n)
            )
        })
    };
    let (rb, sb, tb) = (
        read(&opts.root_name)?,
        read(&st.snapshot)?,
        read(&st.timestamp)?,
    );
    let key = state_key(
        opts,
        &[
            (opts.root_name.as_str(), &rb),
            (st.snapshot.as_str(), &sb),
            (st.timestamp.as_str(), &tb),
        ],
    );
    if key != st.key {
        return Err(
            "it is for other root, snapshot or timestamp bytes or other options (stale)".into(),
        );
    }
    Ok(st)
}

/// Writes `state` to `cache` atomically (a temporary file in the same
/// folder, renamed), readable and writable by its owner only.
pub fn store(cache: &Path, state: &State) -> Result<(), StateError> {
    stage(cache, state)?.commit(cache)
}

/// A state written beside its cache, not yet in its place: in the spare
/// file ([`spare_path`]) or, when there is none that can be used, in a new
/// temporary file (removed if dropped).
#[derive(Debug)]
pub struct Staged(Written);

#[derive(Debug)]
enum Written {
    Spare(std::fs::File),
    Temp(tempfile::NamedTempFile),
}

/// The file beside `cache` that holds the state before the last: the next
/// state is written over it (its pages are reused, and putting the new
/// state in place frees none), and the replaced state becomes it.
pub fn spare_path(cache: &Path) -> Option<std::path::PathBuf> {
    let mut name = cache.file_name()?.to_os_string();
    name.push(".spare");
    Some(cache.with_file_name(name))
}

/// The spare file of `cache`, opened for writing over, when it is a plain
/// file of ours that only we can read and write and no one else is writing
/// (it is locked while it is).
fn open_spare(cache: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(spare_path(cache)?)
        .ok()?;
    let m = f.metadata().ok()?;
    // SAFETY: geteuid has no preconditions
    let me = unsafe { libc::geteuid() };
    if !m.is_file() || m.uid() != me || m.mode() & 0o077 != 0 || m.nlink() != 1 {
        return None;
    }
    // SAFETY: the descriptor is open for the length of the call
    let locked = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(f)
}

/// Writes `state` beside `cache` (over its spare file, or in a new
/// temporary file in its folder, readable and writable by its owner
/// only), for [`Staged::commit`].
pub fn stage(cache: &Path, state: &State) -> Result<Staged, StateError> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::PermissionsExt;
    let mut written = match open_spare(cache) {
        Some(f) => Written::Spare(f),
        None => {
            let dir = crate::repository::parent_dir(cache);
            let f = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
            f.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            Written::Temp(f)
        }
    };
    let file = match &mut written {
        Written::Spare(f) => f,
        Written::Temp(f) => f.as_file_mut(),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut *file);
    state.write_to(&mut w).map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    drop(w);
    // what was longer in the spare goes
    let len = file.stream_position().map_err(|e| e.to_string())?;
    file.set_len(len).map_err(|e| e.to_string())?;
    Ok(Staged(written))
}

impl Staged {
    /// Puts the state in place at `cache`, atomically replacing it; the
    /// replaced state becomes the spare file.
    pub fn commit(self, cache: &Path) -> Result<(), StateError> {
        let spare = spare_path(cache).ok_or("the cache has no file name")?;
        let dir = crate::repository::parent_dir(cache);
        // the old state keeps a name while the new one takes its place
        let kept = tempfile::Builder::new()
            .prefix(".arca-state-")
            .make_in(dir, |p| std::fs::hard_link(cache, p))
            .ok();
        let placed = match self.0 {
            Written::Spare(f) => {
                let r = std::fs::rename(&spare, cache);
                drop(f);
                r
            }
            Written::Temp(t) => t.persist(cache).map(|_| ()).map_err(|e| e.error),
        };
        if let Err(e) = placed {
            return Err(e.to_string().into());
        }
        if let Some(kept) = kept {
            // not kept if this fails: the temporary name is removed
            let _ = kept.persist(&spare);
        }
        Ok(())
    }
}
