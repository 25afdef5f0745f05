//! `arca token`: PKCS#11 tokens.

use super::args::TokenCmd;
use super::output::print_json;
use crate::error::{ArcaError, Result};
use crate::keys::{self, KeyLocation};

pub(super) fn token_cmd(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::List { module, json } => {
            let tokens = keys::pkcs11::list_tokens(module.as_deref())?;
            if json {
                print_json(&tokens);
            } else if tokens.is_empty() {
                println!("no token present");
            } else {
                for t in &tokens {
                    if !t.initialized {
                        // SoftHSM always shows one such slot
                        println!(
                            "uninitialised slot {} ({} {}): no token yet; initialise it with the vendor's tool",
                            t.slot_id,
                            t.manufacturer,
                            if t.model.is_empty() { &t.slot_description } else { &t.model }
                        );
                        continue;
                    }
                    println!(
                        "{} — {} {} serial {}",
                        t.label, t.manufacturer, t.model, t.serial
                    );
                    println!(
                        "    PIN: {}{}{}; can generate: {}",
                        if t.user_pin_locked {
                            "LOCKED"
                        } else if t.user_pin_final_try {
                            "FINAL TRY"
                        } else {
                            "ok"
                        },
                        if t.user_pin_count_low {
                            ", wrong PIN entered before"
                        } else {
                            ""
                        },
                        if t.user_pin_initialized {
                            ""
                        } else {
                            ", not set"
                        },
                        t.can_generate.join(", ")
                    );
                    println!("    {}", t.uri);
                }
            }
            Ok(())
        }
        TokenCmd::Keys { on, json } => {
            let KeyLocation::Pkcs11(u) = KeyLocation::parse(&on)? else {
                return Err(ArcaError::Input("--on needs a pkcs11: URI".into()));
            };
            let mut secrets = crate::operator::secrets();
            let list = keys::pkcs11::list_keys(&u, secrets.as_mut())?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no keys on this token");
            } else {
                for k in &list {
                    println!(
                        "{} {}{} {}",
                        k.label.as_deref().unwrap_or("(no label)"),
                        k.key_type,
                        k.bits.map(|b| format!(" {b}")).unwrap_or_default(),
                        k.key_id.as_deref().unwrap_or("(no conex key id)")
                    );
                    for p in &k.problems {
                        println!("    PROBLEM: {p}");
                    }
                    if !k.uri.is_empty() {
                        println!("    {}", k.uri);
                    }
                }
            }
            Ok(())
        }
    }
}
