//! Incremental verification (`--incremental --repository OLD --patch P`).

use crate::conex::verify::Options;
use crate::error::{ArcaError, Result};
use std::path::Path;

/// Verifies the repository `old` with `patch` applied, and conex's
/// monotonicity rules between the two.
pub fn verify_incremental(
    _old: &Path,
    _patch: &Path,
    _opts: Options,
    _verbose: bool,
    _json: bool,
) -> Result<()> {
    Err(ArcaError::Input(
        "incremental verification is not available in this version of arca; verify the patched tree with --dir".into(),
    ))
}
