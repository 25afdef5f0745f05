//! How to start conex's online signer, the opam-mirror unikernel
//! (robur-coop/opam-mirror, branch `conex`), with an opened bundle.
//!
//! opam-mirror reads the root from a block device (the root NUL-padded to
//! a multiple of 512 bytes: the bundle's `root.img`), takes
//! `--target-key`, `--snapshot-key` and `--timestamp-key`, each the base64
//! middle line of the key's PKCS#8 PEM, accepts Ed25519 keys only, needs
//! each of the maintainer, snapshot and timestamp roles to hold exactly
//! one key, and signs one maintainer targets file for the whole
//! repository. [`start_file`] writes that down for one root and key store,
//! naming files, never their secrets.

use crate::conex::expr::{Expr, KeyRef};
use crate::conex::{KeyAlg, Role, Root};
use std::path::Path;

/// The file `bundle open` writes beside the key store.
pub const FILE: &str = "opam-mirror.txt";

/// One role opam-mirror needs a key for.
struct Need {
    role: Role,
    flag: &'static str,
    what: &'static str,
}

const NEEDS: [Need; 3] = [
    Need {
        role: Role::Maintainer,
        flag: "--target-key",
        what: "maintainer (the targets file opam-mirror signs)",
    },
    Need {
        role: Role::Snapshot,
        flag: "--snapshot-key",
        what: "snapshot",
    },
    Need {
        role: Role::Timestamp,
        flag: "--timestamp-key",
        what: "timestamp",
    },
];

/// The single key a role holds, or why opam-mirror cannot use the role.
fn single_key(root: &Root, role: Role) -> Result<(String, String), String> {
    match root.roles.get(&role) {
        None => Err("the root has no such role".into()),
        Some(Expr::Quorum(1, refs)) if refs.len() == 1 => match &refs[0] {
            KeyRef::Remote { id, digest, .. } => Ok((id.clone(), digest.to_string())),
            KeyRef::Local(_) => Err("it names a local key, not a delegated one".into()),
        },
        Some(e) => Err(format!(
            "it is {e}, and opam-mirror needs exactly one key (a quorum of 1 of one key)"
        )),
    }
}

/// Why opam-mirror cannot serve `root`, one line per role (empty when it
/// can). Key algorithms are checked where the key is at hand (`keys`: id
/// and key id → algorithm).
pub fn problems(root: &Root, keys: &[(String, String, KeyAlg)]) -> Vec<String> {
    let mut out = Vec::new();
    for n in &NEEDS {
        match single_key(root, n.role) {
            Err(e) => out.push(format!(
                "opam-mirror cannot serve this root: the {} role: {e}",
                n.what
            )),
            Ok((id, kid)) => {
                if let Some((_, _, alg)) = keys.iter().find(|(i, k, _)| *i == id && *k == kid) {
                    if *alg != KeyAlg::Ed25519 {
                        out.push(format!(
                            "opam-mirror cannot serve this root: the {} key {id} is {alg}, and opam-mirror takes Ed25519 keys only",
                            n.what
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The text of `opam-mirror.txt` for `root`, with the key files found in
/// `key_store` (`<id>.<keyid>.private`, conex's layout): `keys` are the
/// key files' names with their id, key id and algorithm.
pub fn start_file(root: &Root, key_store: &Path, keys: &[(String, String, KeyAlg)]) -> String {
    let mut t = String::new();
    t.push_str(
        "# Starting conex's online signer, opam-mirror (robur-coop/opam-mirror, branch conex),\n\
         # with this root. Written by `arca bundle open`; it holds no secret, only file names.\n\
         #\n\
         # The root block device: root.img (this folder), the signed root NUL-padded to\n\
         # 512-byte blocks. Each key argument is the base64 middle line of the key file's\n\
         # PKCS#8 PEM (line 2 of the file); the commands below read it from the file when\n\
         # the unikernel starts, so the key is never typed or shown.\n#\n",
    );
    let probs = problems(root, keys);
    for p in &probs {
        t.push_str(&format!("# WARNING: {p}\n"));
    }
    if !probs.is_empty() {
        t.push_str("#\n");
    }
    let mut args = Vec::new();
    for n in &NEEDS {
        let line = match single_key(root, n.role) {
            Err(_) => format!("# {} ({}): no single key in this root", n.flag, n.what),
            Ok((id, kid)) => {
                let file = format!("{id}.{kid}.private");
                if keys.iter().any(|(i, k, _)| *i == id && *k == kid) {
                    let path = key_store.join(&file);
                    args.push(format!(
                        "  {}=\"$(sed -n 2p '{}')\"",
                        n.flag,
                        path.display()
                    ));
                    format!(
                        "# {} ({}): {id}, key file {}",
                        n.flag,
                        n.what,
                        path.display()
                    )
                } else {
                    args.push(format!("  {}=\"$(sed -n 2p 'KEY-STORE/{file}')\"", n.flag));
                    format!(
                        "# {} ({}): {id}, key id {kid}: not in this bundle; use its key file {file} from the key store that holds it (for example made with `arca online keygen --id {id}`)",
                        n.flag, n.what
                    )
                }
            }
        };
        t.push_str(&line);
        t.push('\n');
    }
    t.push_str(&format!(
        "#\n# Root: counter {}, data directory {}, key directory {}.\n\n",
        root.header.counter,
        root.datadir.join("/"),
        root.keydir.join("/")
    ));
    t.push_str(
        "# For example with solo5-hvt (name the block device as your opam-mirror build expects):\n",
    );
    t.push_str("solo5-hvt --block:root=root.img opam-mirror.hvt \\\n");
    t.push_str(&args.join(" \\\n"));
    t.push('\n');
    t
}
