//! Checks before anything destructive: what the ceremony file asks of the
//! current root and the devices ([`inputs`], refused before any PIN and
//! before a journal exists), then outputs, devices, network and clock.

use super::profile::Profile;
use super::script::Ceremony;
use crate::conex::resource::Resource;
use crate::conex::verify::{DirSource, Options, Verifier};
use crate::conex::{Digest, Root};
use crate::error::{ArcaError, Result};
use crate::keys::KeyLocation;
use std::path::Path;

/// One preflight check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// A failed check the operator may acknowledge to go on (network).
    pub acknowledgeable: bool,
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
        acknowledgeable: false,
    }
}

/// Network interfaces other than loopback that are up.
pub fn interfaces_up() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/class/net") else {
        return vec![];
    };
    let mut up = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        let state = std::fs::read_to_string(e.path().join("operstate")).unwrap_or_default();
        if state.trim() == "up"
            || state.trim() == "unknown"
                && std::fs::read_to_string(e.path().join("carrier")).is_ok_and(|c| c.trim() == "1")
        {
            up.push(name);
        }
    }
    up.sort();
    up
}

/// Runs the checks. `resuming`: the output folder holds this ceremony's
/// journal.
pub fn run(
    c: &Ceremony,
    profile: &Profile,
    out: &Path,
    resuming: bool,
    now_secs: i64,
) -> Vec<Check> {
    let mut v = Vec::new();
    v.push(check(
        "ceremony file",
        true,
        format!("{} ({}): {}", c.path.display(), c.kind(), c.title()),
    ));
    let needed = c.holders();
    let missing: Vec<&String> = needed
        .iter()
        .filter(|h| !profile.holders.contains_key(*h))
        .collect();
    v.push(check(
        "device profile",
        missing.is_empty(),
        if missing.is_empty() {
            format!("devices for {}", needed.join(", "))
        } else {
            format!(
                "no device for {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    ));
    let journal = out.join("journal.jsonl");
    if resuming {
        v.push(check(
            "output folder",
            journal.exists(),
            format!("{} holds the journal to resume", out.display()),
        ));
    } else {
        let empty = !out.exists()
            || std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        v.push(check(
            "output folder",
            empty,
            if empty {
                format!("{} is new", out.display())
            } else {
                format!("{} exists and is not empty (resume with `arca ceremony resume`, or choose another output)", out.display())
            },
        ));
    }
    for h in &needed {
        if let Some(loc) = profile.holders.get(h) {
            v.push(device_check(h, loc));
        }
    }
    // a key the token cannot make stops the ceremony here, not after a PIN
    for k in c.root_keys().into_iter().filter(|k| !k.existing) {
        if let Some(KeyLocation::Pkcs11(u)) = profile.holders.get(&k.holder) {
            let name = format!("key {}", k.id);
            v.push(match crate::keys::pkcs11::can_generate(u, k.spec) {
                Ok(()) => check(
                    &name,
                    true,
                    format!("{}'s token can make it ({})", k.holder, k.spec),
                ),
                Err(e) => check(&name, false, format!("{} for {}: {e}", k.spec, k.holder)),
            });
        }
    }
    let up = interfaces_up();
    v.push(Check {
        name: "network".into(),
        ok: up.is_empty(),
        detail: if up.is_empty() {
            "no interface up besides loopback".into()
        } else {
            format!(
                "interfaces up: {} — an offline ceremony expects them down",
                up.join(", ")
            )
        },
        acknowledgeable: true,
    });
    let year = crate::conex::resource::format_time(now_secs)[..4]
        .parse::<i64>()
        .unwrap_or(0);
    v.push(check(
        "clock",
        (2025..2100).contains(&year),
        format!("now is {}", crate::conex::resource::format_time(now_secs)),
    ));
    v
}

fn device_check(holder: &str, loc: &KeyLocation) -> Check {
    let name = format!("device of {holder}");
    match crate::keys::probe(loc) {
        Ok(d) => check(&name, true, d),
        Err(e) => check(&name, false, format!("{loc}: {e}")),
    }
}

/// Whether the key of a location is on its device, found without a PIN
/// (None: the device cannot tell without one).
pub fn key_present(loc: &KeyLocation) -> Option<bool> {
    use crate::keys::file::FileLocation;
    match loc {
        KeyLocation::File(FileLocation::Id { dir, id }) => {
            Some(crate::keys::file::find(dir, id).is_ok())
        }
        KeyLocation::File(FileLocation::Path(p)) => Some(p.is_file()),
        KeyLocation::Pkcs11(u) => crate::keys::pkcs11::key_present(u).ok(),
        KeyLocation::Piv(p) => match crate::keys::piv::public_key(p, &mut crate::keys::NoSecrets) {
            Ok(_) => Some(true),
            Err(crate::keys::KeyError::NotFound(_)) => Some(false),
            Err(_) => None,
        },
    }
}

fn script_err(c: &Ceremony, line: Option<usize>, msg: String) -> ArcaError {
    ArcaError::Input(c.error(line, msg).to_string())
}

/// Reads the current root a ceremony changes and verifies it with the
/// trust anchors the ceremony file gives (`anchors =`), or else those of
/// the `anchors.txt` next to it (the previous ceremony's output), with the
/// root's own quorum. Returns the root and its text.
pub fn verified_input_root(c: &Ceremony, base: &Path) -> Result<(Root, String)> {
    let Some(input) = c.input_root() else {
        return Err(ArcaError::Input("this ceremony has no input root".into()));
    };
    let p = base.join(&input.path);
    let at = |msg: String| script_err(c, input.line, format!("root = \"{}\": {msg}", input.path));
    let text = crate::conex::resource::read_text_limited(&p)
        .map_err(|e| at(format!("{}: {e}", p.display())))?;
    let mut warnings = Vec::new();
    let root = Root::parse(&text, &mut warnings).map_err(|e| at(e.to_string()))?;
    if let Some(w) = warnings.first() {
        return Err(at(w.to_string()));
    }
    crate::repository::lint(&root).map_err(|e| at(e.to_string()))?;
    let (anchors, from, line) = match &input.anchors {
        Some(a) => (
            a.iter()
                .cloned()
                .collect::<std::collections::BTreeSet<Digest>>(),
            "the anchors of the ceremony file".to_string(),
            input.anchors_line,
        ),
        None => {
            let af = crate::repository::parent_dir(&p).join("anchors.txt");
            let t = std::fs::read_to_string(&af).map_err(|_| {
                at(format!(
                    "no trust anchors to check it with: give anchors = \"sha256=…,…\" in the ceremony file, or keep the anchors.txt the ceremony that wrote this root left next to it ({} is missing)",
                    af.display()
                ))
            })?;
            let mut set = std::collections::BTreeSet::new();
            for part in t.trim().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                set.insert(Digest::parse(part).map_err(|_| {
                    at(format!(
                        "{}: \"{}\" is not sha256=<64 hex digits>",
                        af.display(),
                        crate::conex::shown(part)
                    ))
                })?);
            }
            (set, af.display().to_string(), input.line)
        }
    };
    let dir = tempfile::tempdir().map_err(|e| ArcaError::io("temporary folder", e))?;
    std::fs::write(dir.path().join("root"), &text).map_err(|e| ArcaError::io(dir.path(), e))?;
    let src = DirSource(dir.path().to_path_buf());
    let quorum = root.valid.min_signers().max(1) as usize;
    let mut v = Verifier::new(
        &src,
        Options {
            anchors,
            quorum: Some(quorum),
            ..Options::default()
        },
    );
    v.verify_root().map_err(|m| {
        script_err(
            c,
            line,
            format!(
                "the root {} does not verify with the trust anchors of {from} (is it this repository's root?): {m}",
                p.display()
            ),
        )
    })?;
    Ok((root, text))
}

/// Everything about a ceremony that can be checked without a PIN and
/// without writing anything: the input root verifies with its anchors, the
/// holders named are keys of the root that count and can reach the quorum,
/// the ids and roles the file changes exist, the keys to generate are free
/// on their devices (or `existing = true` names one that is there). A
/// refusal names the line of the ceremony file to fix.
pub fn inputs(c: &Ceremony, profile: &Profile, base: &Path, resume: bool) -> Result<()> {
    let out = base.join(c.output());
    if !resume
        && out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(script_err(
            c,
            c.output_line,
            format!(
                "output folder {} exists and is not empty (resume with `arca ceremony resume`, or choose another output)",
                out.display()
            ),
        ));
    }
    if resume && !out.join("journal.jsonl").exists() {
        return Err(script_err(
            c,
            c.output_line,
            format!(
                "output folder {} holds no journal to resume (start it with `arca ceremony run`)",
                out.display()
            ),
        ));
    }
    if c.input_root().is_some() {
        let (old, _) = verified_input_root(c, base)?;
        check_against_root(c, &old)?;
    }
    for k in c.root_keys() {
        let Some(dev) = profile.holders.get(&k.holder) else {
            continue;
        };
        let loc = dev.for_key(&k.id)?;
        match (key_present(&loc), k.existing) {
            (Some(true), false) if !resume => {
                return Err(script_err(
                    c,
                    k.line,
                    format!(
                        "a key {} already exists on {} ({}); to use it, set existing = true for {} (see docs/ceremonies.md), or choose another id",
                        k.id,
                        loc.short(),
                        k.holder,
                        k.id
                    ),
                ))
            }
            (Some(false), true) => {
                return Err(script_err(
                    c,
                    k.line,
                    format!(
                        "existing = true, but there is no key {} on {} ({})",
                        k.id,
                        loc.short(),
                        k.holder
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_against_root(c: &Ceremony, old: &Root) -> Result<()> {
    use super::script::{Kind, Target};
    use crate::conex::{Expr, Role};
    let root_name = c.input_root().map(|r| r.path.clone()).unwrap_or_default();
    // the root keys and quorum of the root the holders sign
    let mut keys: Vec<String> = old.keys.keys().cloned().collect();
    let mut valid: Vec<String> = old.valid.local_ids().into_iter().collect();
    let mut quorum = old.valid.min_signers();
    let mut quorum_line = c.holder_entries().first().and_then(|h| h.line);
    match &c.kind {
        Kind::RotateKey(r) => {
            let role_has = |role: Role| {
                old.roles
                    .get(&role)
                    .is_some_and(|e| e.refs().iter().any(|x| x.id() == r.compromised))
            };
            match &r.target {
                Target::Root { new_key, quorum: q } => {
                    if !old.keys.contains_key(&r.compromised) {
                        return Err(script_err(
                            c,
                            r.compromised_line,
                            format!(
                                "{} is not a root key of {root_name} (its keys: {})",
                                r.compromised,
                                keys.join(", ")
                            ),
                        ));
                    }
                    if old.keys.contains_key(&new_key.id) {
                        return Err(script_err(
                            c,
                            new_key.line,
                            format!("{} is already a root key of {root_name}", new_key.id),
                        ));
                    }
                    keys.retain(|k| *k != r.compromised);
                    valid.retain(|k| *k != r.compromised);
                    keys.push(new_key.id.clone());
                    valid.push(new_key.id.clone());
                    if let Some((n, l)) = q {
                        quorum = *n;
                        quorum_line = *l;
                    }
                    crate::repository::quorum_bounds(
                        "the new root",
                        quorum,
                        valid.len(),
                        "root key(s)",
                    )
                    .map_err(|m| script_err(c, quorum_line, m))?;
                }
                Target::Snapshot(_) | Target::Timestamp(_) => {
                    let role = if matches!(r.target, Target::Snapshot(_)) {
                        Role::Snapshot
                    } else {
                        Role::Timestamp
                    };
                    if !role_has(role) {
                        return Err(script_err(
                            c,
                            r.compromised_line,
                            format!("{} is not the {role} key of {root_name}", r.compromised),
                        ));
                    }
                }
                Target::Janitor { quorum: q, .. } => {
                    if !role_has(Role::Maintainer) {
                        return Err(script_err(
                            c,
                            r.compromised_line,
                            format!("{} is not a janitor of {root_name}", r.compromised),
                        ));
                    }
                    if let Some((n, l)) = q {
                        let count = old
                            .roles
                            .get(&Role::Maintainer)
                            .map(|e| e.refs().len())
                            .unwrap_or(0);
                        crate::repository::quorum_bounds(
                            "the maintainer role",
                            *n,
                            count,
                            "janitor(s)",
                        )
                        .map_err(|m| script_err(c, *l, m))?;
                    }
                }
            }
        }
        Kind::AddRole(a) => {
            let refs = match old.roles.get(&a.role) {
                None => Vec::new(),
                Some(Expr::Quorum(_, r)) => r.clone(),
                Some(_) => {
                    return Err(script_err(
                        c,
                        None,
                        format!("the {} role of {root_name} is not a plain quorum", a.role),
                    ))
                }
            };
            for d in &a.add {
                if refs.iter().any(|r| r.id() == d.id) {
                    return Err(script_err(
                        c,
                        d.line,
                        format!(
                            "{} is already in the {} role of {root_name}; use rotate-key to replace it",
                            d.id, a.role
                        ),
                    ));
                }
            }
            if a.role != Role::Maintainer && !refs.is_empty() {
                return Err(script_err(
                    c,
                    a.add.first().and_then(|d| d.line),
                    format!(
                        "the {} role of {root_name} has its key already; use rotate-key to replace it",
                        a.role
                    ),
                ));
            }
            let n = a
                .quorum
                .map(|(q, _)| q)
                .or_else(|| old.roles.get(&a.role).map(|e| e.min_signers()))
                .unwrap_or(1);
            crate::repository::quorum_bounds(
                &format!("the {} role", a.role),
                n,
                refs.len() + a.add.len(),
                "key(s) in it",
            )
            .map_err(|m| script_err(c, a.quorum.and_then(|(_, l)| l), m))?;
        }
        Kind::BumpEpoch(b) => {
            let has = old
                .roles
                .get(&b.role)
                .is_some_and(|e| e.refs().iter().any(|x| x.id() == b.id));
            if !has {
                return Err(script_err(
                    c,
                    b.id_line,
                    format!("{} is not in the {} role of {root_name}", b.id, b.role),
                ));
            }
        }
        Kind::CreateRoot(_) => {}
    }
    let mut counted = 0;
    for h in c.holder_entries() {
        if !keys.contains(&h.id) {
            return Err(script_err(
                c,
                h.line,
                format!(
                    "{} is not a key of the root {root_name} (its keys: {}); is root = the right file?",
                    h.id,
                    keys.join(", ")
                ),
            ));
        }
        if !valid.contains(&h.id) {
            return Err(script_err(
                c,
                h.line,
                format!("{} does not count in the root's valid expression", h.id),
            ));
        }
        counted += 1;
    }
    if counted < quorum {
        return Err(script_err(
            c,
            quorum_line,
            format!(
                "the {counted} holder(s) listed cannot reach the root quorum {quorum}; list at least {quorum} holders whose keys count"
            ),
        ));
    }
    Ok(())
}
