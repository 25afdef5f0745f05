//! PINs: where they come from, and logging in with them.

use super::session::{context, dev, logins, select_token, trimmed, TokenSession};
use super::uri::Pkcs11Uri;
use crate::keys::{read_secret_file, KeyError, SecretRequest, SecretSource};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{SessionState, UserType};
use cryptoki::slot::TokenInfo as CkTokenInfo;
use cryptoki::types::AuthPin;

/// Opens a session on the token and logs the user in, telling the person
/// about the PIN state first.
pub(super) fn open_session(
    uri: &Pkcs11Uri,
    rw: bool,
    secrets: &mut dyn SecretSource,
) -> Result<(Pkcs11, TokenSession, CkTokenInfo), KeyError> {
    let module = uri.module()?;
    let ctx = context(&module)?;
    let (slot, ti) = select_token(&ctx, uri)?;
    let label = trimmed(ti.label()).to_string();
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| dev(format!("opening a session on token {label:?}"), e))?;
    let mut ts = TokenSession {
        session,
        module,
        slot,
        label,
        logged_in: false,
    };
    login(&ctx, &mut ts, uri, secrets)?;
    Ok((ctx, ts, ti))
}

/// What a token says about its user PIN before a login.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PinFlags {
    pub(super) locked: bool,
    pub(super) initialized: bool,
    pub(super) to_be_changed: bool,
    pub(super) final_try: bool,
    pub(super) count_low: bool,
}

/// Tells the person about the PIN state before a login and decides whether
/// to go on: a locked PIN stops, the final try needs an explicit yes.
/// Returns the request to ask for the PIN with.
pub(super) fn prepare_pin_request(
    label: &str,
    f: PinFlags,
    secrets: &mut dyn SecretSource,
) -> Result<SecretRequest, KeyError> {
    if f.locked {
        return Err(KeyError::PinLocked(format!(
            "the user PIN of token {label:?} is locked; the security officer must unblock it with the vendor's tool"
        )));
    }
    if !f.initialized {
        return Err(KeyError::Device(format!(
            "token {label:?} has no user PIN yet; set one with the vendor's tool first"
        )));
    }
    if f.to_be_changed {
        secrets.notice(&format!(
            "token {label:?} says its user PIN must be changed; change it with the vendor's tool after this ceremony"
        ));
    }
    if f.final_try {
        let q = format!(
            "token {label:?}: this is the FINAL PIN try — one more wrong PIN locks the user PIN. Try anyway?"
        );
        if !secrets.confirm_risky(&q)? {
            return Err(KeyError::Declined(format!(
                "stopped before the final PIN try on token {label:?}; nothing was sent to the token"
            )));
        }
    } else if f.count_low {
        secrets.notice(&format!(
            "token {label:?} reports that a wrong PIN was entered since the last right one (it does not say how many tries are left)"
        ));
    }
    Ok(SecretRequest {
        what: format!("user PIN for token {label:?}"),
        retries_left: if f.final_try { Some(1) } else { None },
        final_try: f.final_try,
    })
}

fn login(
    ctx: &Pkcs11,
    ts: &mut TokenSession,
    uri: &Pkcs11Uri,
    secrets: &mut dyn SecretSource,
) -> Result<(), KeyError> {
    let label = ts.label.clone();
    // Fresh flags: the PIN counters change with every try.
    let ti = ctx
        .get_token_info(ts.slot)
        .map_err(|e| dev(format!("reading token {label:?}"), e))?;
    if !ti.login_required() {
        return Ok(());
    }
    let key = (ts.module.clone(), ts.slot.id());
    let already = matches!(
        ts.session.get_session_info().map(|i| i.session_state()),
        Ok(SessionState::RoUser | SessionState::RwUser)
    );
    if already {
        // Another arca session of this process logged in on this token.
        *logins()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
        ts.logged_in = true;
        return Ok(());
    }
    let request = prepare_pin_request(
        &label,
        PinFlags {
            locked: ti.user_pin_locked(),
            initialized: ti.user_pin_initialized(),
            to_be_changed: ti.user_pin_to_be_changed(),
            final_try: ti.user_pin_final_try(),
            count_low: ti.user_pin_count_low(),
        },
        secrets,
    )?;
    let result = if ti.protected_authentication_path() && uri.pin_source.is_none() {
        secrets.notice(&format!(
            "enter the user PIN of token {label:?} on the device's own PIN pad"
        ));
        ts.session.login(UserType::User, None)
    } else {
        let pin = match &uri.pin_source {
            Some(path) => read_secret_file(path, "PIN file")?,
            None => secrets.secret(&request)?,
        };
        let auth = AuthPin::new(pin.as_str().into());
        drop(pin);
        ts.session.login(UserType::User, Some(&auth))
    };
    match result {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            *logins()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert(0) += 1;
            ts.logged_in = true;
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            let after = ctx.get_token_info(ts.slot).ok();
            if after.as_ref().is_some_and(|t| t.user_pin_locked()) {
                return Err(KeyError::PinLocked(format!(
                    "wrong PIN for token {label:?}, and the user PIN is now locked; the security officer must unblock it"
                )));
            }
            // Only what the token reports: count-low means "a wrong PIN was
            // entered since the last right one" (PKCS#11), not how many
            // tries are left; SoftHSM sets it after one wrong PIN and never
            // locks.
            let left = match after {
                Some(t) if t.user_pin_final_try() => {
                    " The token reports that ONE try is left before the PIN locks."
                }
                _ => "",
            };
            Err(KeyError::WrongPin(format!(
                "the token {label:?} did not accept that PIN; nothing was done with it.{left}"
            )))
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(KeyError::PinLocked(format!(
            "the user PIN of token {label:?} is locked; the security officer must unblock it with the vendor's tool"
        ))),
        Err(CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _)) => {
            Err(KeyError::WrongPin(format!(
                "the token {label:?} refused that PIN as too short, too long or containing characters it does not allow"
            )))
        }
        Err(CkError::Pkcs11(RvError::PinExpired, _)) => Err(KeyError::Device(format!(
            "the user PIN of token {label:?} has expired; change it with the vendor's tool"
        ))),
        Err(e) => Err(dev(format!("logging in to token {label:?}"), e)),
    }
}
