//! Initialising rehearsal tokens.

use super::session::{context, dev, trimmed};
use crate::keys::KeyError;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::Path;
use zeroize::Zeroizing;

/// Initialises a free token of `module` with `label`, its SO PIN and user
/// PIN, through PKCS#11 itself (C_InitToken, C_InitPIN): no PIN ever
/// appears on a command line. Used for rehearsal tokens.
pub fn init_token(
    module: &Path,
    label: &str,
    so_pin: &Zeroizing<String>,
    user_pin: &Zeroizing<String>,
) -> Result<(), KeyError> {
    let ctx = context(module)?;
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?;
    for slot in &slots {
        let ti = ctx
            .get_token_info(*slot)
            .map_err(|e| dev("reading a token", e))?;
        if ti.token_initialized() && trimmed(ti.label()) == label {
            return Err(KeyError::Exists(format!(
                "a token labelled {label} exists already"
            )));
        }
    }
    let free = slots
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            KeyError::NotFound(format!("no free slot to initialise token {label} in"))
        })?;
    let so = AuthPin::new(so_pin.as_str().into());
    ctx.init_token(free, &so, label)
        .map_err(|e| dev(format!("initialising token {label}"), e))?;
    let slot = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| t.token_initialized() && trimmed(t.label()) == label)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            KeyError::NotFound(format!("token {label} vanished after initialisation"))
        })?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| dev(format!("opening token {label}"), e))?;
    session
        .login(UserType::So, Some(&so))
        .map_err(|e| dev(format!("SO login on {label}"), e))?;
    session
        .init_pin(&AuthPin::new(user_pin.as_str().into()))
        .map_err(|e| dev(format!("setting the user PIN of {label}"), e))?;
    let _ = session.logout();
    Ok(())
}
