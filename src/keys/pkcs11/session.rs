//! Module contexts, login bookkeeping and token selection.

use super::uri::Pkcs11Uri;
use super::MODULE_ENV;
use crate::keys::KeyError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;
use cryptoki::slot::{Slot, TokenInfo as CkTokenInfo};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// One initialised context per module per process (C_Initialize is global).
pub(super) fn context(path: &Path) -> Result<Pkcs11, KeyError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(path) {
        return Ok(c.clone());
    }
    if !path.exists() {
        return Err(KeyError::Device(format!(
            "PKCS#11 module {} does not exist; install the vendor's PKCS#11 module or fix module-path / {MODULE_ENV}",
            path.display()
        )));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        KeyError::Device(format!(
            "cannot load PKCS#11 module {}: {}",
            path.display(),
            one_line(&e.to_string())
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError::Device(format!(
                "PKCS#11 module {} failed to initialise: {}",
                path.display(),
                ck_msg(&e)
            )))
        }
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Sessions per (module, slot) that rely on the user being logged in. The
/// login state of PKCS#11 is shared by all sessions of a process on a token;
/// only the last one to go logs out.
pub(super) fn logins() -> &'static Mutex<HashMap<(PathBuf, u64), usize>> {
    static LOGINS: OnceLock<Mutex<HashMap<(PathBuf, u64), usize>>> = OnceLock::new();
    LOGINS.get_or_init(Default::default)
}

/// A session on one token, logged in as the user when `logged_in`.
/// Dropping it logs out (when it is the last arca session relying on the
/// login) and closes the session.
pub(super) struct TokenSession {
    pub(super) session: Session,
    pub(super) module: PathBuf,
    pub(super) slot: Slot,
    pub(super) label: String,
    pub(super) logged_in: bool,
}

impl Drop for TokenSession {
    fn drop(&mut self) {
        if !self.logged_in {
            return;
        }
        let key = (self.module.clone(), self.slot.id());
        let mut map = logins().lock().unwrap_or_else(|e| e.into_inner());
        let last = match map.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                map.remove(&key);
                true
            }
        };
        if last {
            let _ = self.session.logout();
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A short, one-line description of a cryptoki error.
pub(super) fn ck_msg(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, func) => format!("{func:?} failed: CKR {rv:?}"),
        other => one_line(&other.to_string()),
    }
}

pub(super) fn dev(what: impl fmt::Display, e: CkError) -> KeyError {
    KeyError::Device(format!("{what}: {}", ck_msg(&e)))
}

// Token selection

pub(super) fn trimmed(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

fn token_matches(uri: &Pkcs11Uri, slot: Slot, ti: &CkTokenInfo) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == trimmed(have));
    eq(&uri.token, ti.label())
        && eq(&uri.serial, ti.serial_number())
        && eq(&uri.manufacturer, ti.manufacturer_id())
        && eq(&uri.model, ti.model())
        && uri.slot_id.is_none_or(|id| id == slot.id())
}

/// Finds the one slot whose token the URI names (label and/or serial).
pub(super) fn select_token(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, CkTokenInfo), KeyError> {
    if uri.token.is_none() && uri.serial.is_none() {
        return Err(KeyError::Location {
            location: uri.to_string(),
            reason: "name the token with token=LABEL and/or serial=SERIAL (arca never picks a token by slot position)".into(),
        });
    }
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| dev("listing PKCS#11 slots", e))?;
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in slots {
        let ti = match ctx.get_token_info(slot) {
            Ok(ti) => ti,
            Err(_) => continue,
        };
        if !ti.token_initialized() {
            continue;
        }
        present.push(format!(
            "{:?} (serial {})",
            trimmed(ti.label()),
            trimmed(ti.serial_number())
        ));
        if token_matches(uri, slot, &ti) {
            found.push((slot, ti));
        }
    }
    match found.len() {
        0 => Err(KeyError::NotFound(format!(
            "no token with {} is present; tokens present: {}",
            uri.token_desc(),
            if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            }
        ))),
        1 => Ok(found.pop().expect("one element")),
        n => Err(KeyError::Location {
            location: uri.to_string(),
            reason: format!(
                "{n} tokens match {}: {}; add serial=… to pick one",
                uri.token_desc(),
                found
                    .iter()
                    .map(|(_, t)| format!(
                        "{:?} serial {}",
                        trimmed(t.label()),
                        trimmed(t.serial_number())
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}
