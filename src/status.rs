//! Read-only views of conex files for people (`status` commands) and for
//! `--json`.

use crate::conex::resource::Resource;
use crate::conex::verify::valid_signatures;
use crate::conex::{Digest, Expr, KeyRef, Root};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// A key as shown to people.
#[derive(Serialize, Debug)]
pub struct KeyView {
    /// Key id in the file.
    pub id: String,
    /// Algorithm and size (`rsa 4096`, `ed25519`).
    pub alg: String,
    /// `sha256=…`.
    pub key_id: String,
    /// The key id in groups of four, to read aloud.
    pub read_aloud: String,
    /// Whether the key id is among the given anchors (None: none given).
    pub anchored: Option<bool>,
    /// Problems with the key data, if any.
    pub problem: Option<String>,
}

/// A signature as shown to people.
#[derive(Serialize, Debug)]
pub struct SigView {
    /// Signer id.
    pub id: String,
    /// Signature time.
    pub created: String,
    /// Whether it verifies over the current content.
    pub valid: bool,
}

/// The root, explained.
#[derive(Serialize, Debug)]
pub struct RootStatus {
    /// Counter.
    pub counter: u64,
    /// Epoch.
    pub epoch: u64,
    /// Created.
    pub created: String,
    /// Keys.
    pub keys: Vec<KeyView>,
    /// Valid expression in words.
    pub valid: String,
    /// Roles in words.
    pub roles: Vec<(String, String)>,
    /// Signatures.
    pub signatures: Vec<SigView>,
    /// Whether the valid signatures (anchored ones, if anchors were given)
    /// satisfy the valid expression.
    pub satisfied: bool,
    /// Root keys that have not signed this round.
    pub not_signed: Vec<String>,
}

/// The read-aloud groups on two lines of eight, indented (fits 80 columns).
pub fn read_aloud_lines(d: &Digest, indent: &str) -> String {
    let g = read_aloud(d);
    let groups: Vec<&str> = g.split(' ').collect();
    groups
        .chunks(8)
        .map(|c| format!("{indent}{}", c.join(" ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Groups a hex digest in fours for reading aloud.
pub fn read_aloud(d: &Digest) -> String {
    crate::repository::grouped(&d.data)
}

fn key_views(
    keys: &std::collections::BTreeMap<String, crate::conex::Key>,
    anchors: Option<&BTreeSet<Digest>>,
) -> Vec<KeyView> {
    keys.values()
        .map(|k| KeyView {
            id: k.id.clone(),
            alg: match k.key.bits() {
                Some(b) if k.key.alg == crate::conex::KeyAlg::Rsa => format!("rsa {b}"),
                _ => k.key.alg.to_string(),
            },
            key_id: k.key_id().to_string(),
            read_aloud: read_aloud(&k.key_id()),
            anchored: anchors.map(|a| a.contains(&k.key_id())),
            problem: k.key.validate().err().map(|e| e.to_string()),
        })
        .collect()
}

fn sig_views<R: Resource>(r: &R) -> (Vec<SigView>, BTreeSet<String>) {
    let valid: BTreeSet<String> = valid_signatures(r, &mut Vec::new()).into_values().collect();
    let v = r
        .signatures()
        .values()
        .map(|s| SigView {
            id: s.id.clone(),
            created: s.created.clone(),
            valid: valid.contains(&s.id),
        })
        .collect();
    (v, valid)
}

/// Explains a root: who signed, who still must.
pub fn root_status(root: &Root, anchors: &BTreeSet<Digest>) -> RootStatus {
    let (signatures, valid) = sig_views(root);
    let counted: BTreeSet<String> = if anchors.is_empty() {
        valid.clone()
    } else {
        valid
            .iter()
            .filter(|id| {
                root.keys
                    .get(*id)
                    .is_some_and(|k| anchors.contains(&k.key_id()))
            })
            .cloned()
            .collect()
    };
    RootStatus {
        counter: root.header.counter,
        epoch: root.header.epoch,
        created: root.header.created.clone(),
        keys: key_views(&root.keys, (!anchors.is_empty()).then_some(anchors)),
        valid: root.valid.to_string(),
        roles: root
            .roles
            .iter()
            .map(|(r, e)| (r.to_string(), describe_role(e)))
            .collect(),
        satisfied: root.valid.eval(&HashMap::new(), &counted),
        not_signed: root
            .valid
            .local_ids()
            .into_iter()
            .filter(|id| !valid.contains(id))
            .collect(),
        signatures,
    }
}

/// A role in words: a single reference is named once (`founder sha256=…
/// epoch 0`); a quorum is given first, then each reference.
fn describe_role(e: &Expr) -> String {
    let refs: Vec<String> = e
        .refs()
        .into_iter()
        .map(|r| match r {
            KeyRef::Remote { id, digest, epoch } => format!("{id} {digest} epoch {epoch}"),
            KeyRef::Local(id) => id.clone(),
        })
        .collect();
    match e {
        Expr::Quorum(1, r) if r.len() == 1 => refs.join("; "),
        _ => format!("{e} — {}", refs.join("; ")),
    }
}

impl RootStatus {
    /// Plain text for the terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "root: counter {}, epoch {}, created {}",
            self.counter, self.epoch, self.created
        );
        let _ = writeln!(s, "valid: {}", self.valid);
        let _ = writeln!(s, "keys:");
        for k in &self.keys {
            let anchored = match k.anchored {
                Some(true) => " [anchor]",
                Some(false) => " [NOT an anchor]",
                None => "",
            };
            let _ = writeln!(s, "  {} ({}) {}{anchored}", k.id, k.alg, k.key_id);
            let _ = writeln!(
                s,
                "{}",
                read_aloud_lines(
                    &Digest::parse(&k.key_id).unwrap_or_else(|_| Digest::sha256(b"")),
                    "      "
                )
            );
            if let Some(p) = &k.problem {
                let _ = writeln!(s, "      PROBLEM: {p}");
            }
        }
        let _ = writeln!(s, "roles:");
        for (r, e) in &self.roles {
            let _ = writeln!(s, "  {r}: {e}");
        }
        let _ = writeln!(s, "signatures:");
        for g in &self.signatures {
            let _ = writeln!(
                s,
                "  {} at {}: {}",
                g.id,
                g.created,
                if g.valid { "valid" } else { "INVALID" }
            );
        }
        let _ = writeln!(
            s,
            "quorum: {}{}",
            if self.satisfied { "met" } else { "NOT met" },
            if self.not_signed.is_empty() {
                String::new()
            } else {
                format!("; not signed yet: {}", self.not_signed.join(", "))
            }
        );
        s
    }
}

/// A targets, snapshot or timestamp file, explained.
#[derive(Serialize, Debug)]
pub struct FileStatus {
    /// Resource type.
    pub typ: String,
    /// Name.
    pub name: String,
    /// Counter.
    pub counter: u64,
    /// Epoch.
    pub epoch: u64,
    /// Created.
    pub created: String,
    /// Keys.
    pub keys: Vec<KeyView>,
    /// Signatures.
    pub signatures: Vec<SigView>,
    /// What the root says of this file (its role's key and epoch), when
    /// the root names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_expects: Option<Expected>,
    /// Why `arca verify` would refuse this file, if it would.
    pub problems: Vec<String>,
}

/// The root's reference to a file: the key id (or, for a targets file, the
/// digest of its valid expression) and the epoch.
#[derive(Serialize, Debug, Clone)]
pub struct Expected {
    /// `sha256=…`.
    pub digest: String,
    /// The epoch the file must carry.
    pub epoch: u64,
}

/// Explains any non-root resource.
pub fn file_status<R: Resource>(r: &R) -> FileStatus {
    let (signatures, _) = sig_views(r);
    FileStatus {
        typ: R::TYP.into(),
        name: r.header().name.clone(),
        counter: r.header().counter,
        epoch: r.header().epoch,
        created: r.header().created.clone(),
        keys: key_views(r.keys(), None),
        signatures,
        root_expects: None,
        problems: Vec::new(),
    }
}

/// [`file_status`] for the snapshot or timestamp file the root's `role`
/// names: what the root expects (key and epoch), and what `arca verify`
/// would refuse. `create` is the command that re-makes the file.
pub fn online_status<R: Resource>(r: &R, root: &Root, role: crate::conex::Role) -> FileStatus {
    let mut st = file_status(r);
    let name = &r.header().name;
    let Ok(Some((id, digest, epoch))) = root.single_role(role) else {
        return st;
    };
    if !crate::conex::expr::id_equal(&id, name) {
        return st;
    }
    let typ = R::TYP;
    if r.header().epoch != epoch {
        st.problems.push(format!(
            "the root expects epoch {epoch}, this file has epoch {}: `arca verify` refuses it \
             (\"{typ} with bad epoch\"); re-make it with `arca {typ} create` (which follows \
             the root's epoch) and sign it, or `arca online sign`",
            r.header().epoch
        ));
    }
    let valid = valid_signatures(r, &mut Vec::new());
    if !valid.contains_key(&digest) {
        st.problems.push(format!(
            "no valid signature by the key the root names ({digest}): `arca verify` refuses it"
        ));
    }
    st.root_expects = Some(Expected {
        digest: digest.to_string(),
        epoch,
    });
    st
}

impl FileStatus {
    /// Plain text for the terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {}: counter {}, epoch {}, created {}",
            self.typ, self.name, self.counter, self.epoch, self.created
        );
        for k in &self.keys {
            let _ = writeln!(s, "  key {} ({}) {}", k.id, k.alg, k.key_id);
        }
        for g in &self.signatures {
            let _ = writeln!(
                s,
                "  signature {} at {}: {}",
                g.id,
                g.created,
                if g.valid { "valid" } else { "INVALID" }
            );
        }
        if let Some(e) = &self.root_expects {
            let _ = writeln!(s, "  the root expects: epoch {}, key {}", e.epoch, e.digest);
        }
        for p in &self.problems {
            let _ = writeln!(s, "  PROBLEM: {p}");
        }
        s
    }
}
