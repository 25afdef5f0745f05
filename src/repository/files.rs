//! Writing repository files and ceremony outputs: atomically, or only
//! where nothing exists yet.

use crate::error::{ArcaError, Result};
use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, bytes, true)
}

/// Writes `bytes` to a new file; refuses if `path` exists (checked again at
/// the rename, so a file appearing meanwhile is not replaced either).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Err(ArcaError::Refused(format!(
            "{} exists already; arca never overwrites it",
            path.display()
        )));
    }
    write_file(path, bytes, false)
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Temporary file beside `path`, 0644, synced, then renamed into place.
fn write_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| ArcaError::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".arca-")
        .tempfile_in(dir)
        .map_err(|e| ArcaError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| ArcaError::io(path, e))?;
    // repository files and ceremony outputs are public
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| ArcaError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ArcaError::io(path, e))?;
    if replace {
        tmp.persist(path)
            .map_err(|e| ArcaError::io(path, e.error))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| ArcaError::io(path, e.error))?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
