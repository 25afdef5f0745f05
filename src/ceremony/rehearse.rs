//! Rehearsals: the same ceremony file against throw-away SoftHSM tokens,
//! one per holder, with scripted answers.

use super::profile::Profile;
use super::script::Ceremony;
use crate::error::{ArcaError, Result};
use crate::keys::KeyLocation;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The PIN of rehearsal tokens. Rehearsal tokens hold throw-away keys only.
pub const REHEARSAL_PIN: &str = "rehearsal-pin";
/// The SO PIN of rehearsal tokens.
const REHEARSAL_SO_PIN: &str = "rehearsal-so-pin";

/// Where the SoftHSM module is.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os("ARCA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Makes (or reuses) a SoftHSM token per holder under `dir` and returns the
/// profile for them; it is also saved as `dir/profile.toml`, so a sequence
/// of rehearsals (create-root, then add-role, …) shares the holders' tokens.
/// `SOFTHSM2_CONF` is set for this process so the tokens are found.
pub fn prepare(c: &Ceremony, dir: &Path, pin_files: bool) -> Result<Profile> {
    let module = softhsm_module();
    if !module.exists() {
        return Err(ArcaError::Input(format!(
            "rehearsals need SoftHSM ({} is missing): run ./softhsm-setup.sh or apt-get install softhsm2",
            module.display()
        )));
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| ArcaError::io(&tokens, e))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens.display()),
    )
    .map_err(|e| ArcaError::io(&conf, e))?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin_file = dir.join("rehearsal.pin");
    std::fs::write(&pin_file, REHEARSAL_PIN).map_err(|e| ArcaError::io(&pin_file, e))?;
    let saved = dir.join("profile.toml");
    let mut profile = if saved.exists() {
        Profile::load(&saved)?
    } else {
        Profile::default()
    };
    for h in c.holders() {
        if profile.holders.contains_key(&h) {
            continue;
        }
        let label = format!("rehearsal-{h}");
        crate::keys::pkcs11::init_token(
            &module,
            &label,
            &Zeroizing::new(REHEARSAL_SO_PIN.to_string()),
            &Zeroizing::new(REHEARSAL_PIN.to_string()),
        )?;
        let uri = if pin_files {
            format!(
                "pkcs11:token={label}?module-path={}&pin-source=file:{}",
                module.display(),
                pin_file.display()
            )
        } else {
            format!("pkcs11:token={label}?module-path={}", module.display())
        };
        profile.holders.insert(h, KeyLocation::parse(&uri)?);
    }
    let mut text = String::from("# rehearsal devices: throw-away SoftHSM tokens\n[holders]\n");
    for (h, l) in &profile.holders {
        text.push_str(&format!("{h} = \"{l}\"\n"));
    }
    std::fs::write(&saved, text).map_err(|e| ArcaError::io(&saved, e))?;
    Ok(profile)
}
