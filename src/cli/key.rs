//! `arca key`: generate keys, print public keys.

use super::args::{Common, KeyCmd};
use super::output::output;
use crate::error::{ArcaError, Result};
use crate::keys::{self, KeySpec};

pub(super) fn key_cmd(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::New { common, key, alg } => {
            let common = common.common();
            crate::repository::check_ident(&key.id)?;
            let spec = KeySpec::parse(&alg).ok_or_else(|| {
                ArcaError::Input(format!(
                    "--key-algorithm {alg:?}: ed25519, rsa, rsa3072 or rsa2048"
                ))
            })?;
            let loc = common.location(&key.id, key.on.as_deref())?;
            let mut secrets = crate::operator::secrets();
            let s = keys::generate(&loc, spec, secrets.as_mut())?;
            println!(
                "created key {} {} ({})",
                key.id,
                s.public_key().key_id(),
                s.describe()
            );
            Ok(())
        }
        KeyCmd::Pub {
            common,
            created,
            key,
            json,
        } => {
            let common = Common {
                created,
                ..common.common()
            };
            let (pk, created) = common.public(&key.id, key.on.as_deref())?;
            let v = serde_json::json!({
                "id": key.id, "created": created, "key": pk.conex_string(), "key_id": pk.key_id().to_string(),
            });
            output(json, &v, |_| {
                format!(
                    "[{} \"{}\" \"{}\"]\n{}\n",
                    key.id,
                    created,
                    pk.conex_string(),
                    pk.key_id()
                )
            });
            Ok(())
        }
    }
}
