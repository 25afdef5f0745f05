//! `arca piv`: YubiKeys.

use super::args::PivCmd;
use super::output::print_json;
use crate::error::{ArcaError, Result};
use crate::keys::{self, KeyLocation};

pub(super) fn piv_cmd(cmd: PivCmd) -> Result<()> {
    let piv_loc = |on: &str| -> Result<keys::piv::PivLocation> {
        match KeyLocation::parse(on)? {
            KeyLocation::Piv(p) => Ok(p),
            _ => Err(ArcaError::Input("--on needs a piv: location".into())),
        }
    };
    match cmd {
        PivCmd::List { json } => {
            let devs = keys::piv::list()?;
            if json {
                print_json(&devs);
            } else if devs.is_empty() {
                println!("no YubiKey present");
            } else {
                for d in &devs {
                    println!(
                        "YubiKey serial {} firmware {} in {}; PIN tries left {}",
                        d.serial,
                        d.firmware,
                        d.reader,
                        d.pin_retries
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".into())
                    );
                    for s in &d.slots {
                        println!("    slot {}: {}", s.slot, s.algorithm);
                    }
                }
            }
            Ok(())
        }
        PivCmd::Setup { on } => {
            let p = piv_loc(&on)?;
            let mut secrets = crate::operator::secrets();
            let r = keys::piv::setup(&p, secrets.as_mut())?;
            println!(
                "YubiKey {} (firmware {}): new {} management key stored PIN-protected; PIN and PUK changed{}",
                r.serial,
                r.firmware,
                r.management_key_algorithm,
                if r.had_default_management_key { " (the factory management key is gone)" } else { "" }
            );
            Ok(())
        }
        PivCmd::Attest { on, out } => {
            let p = piv_loc(&on)?;
            let a = keys::piv::attest(&p)?;
            let mut secrets = crate::operator::secrets();
            let pk = keys::piv::public_key(&p, secrets.as_mut())?;
            a.check(&pk)?;
            if let Some(dir) = out {
                crate::repository::write_new(
                    &dir.join(format!("attestation-{}-{:02x}.der", a.serial, a.slot)),
                    &a.certificate,
                )?;
                crate::repository::write_new(
                    &dir.join(format!("attestation-{}-f9.der", a.serial)),
                    &a.intermediate,
                )?;
            }
            println!(
                "slot {:02x} of YubiKey {}: attested key {} matches",
                a.slot,
                a.serial,
                pk.key_id()
            );
            Ok(())
        }
    }
}
