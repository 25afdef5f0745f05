//! The plain-language summary shown before every approval and every root
//! signature: a pure function of (old root, new root), compact enough to be
//! read whole with the question on an 80×24 screen. Key ids are grouped in
//! fours to be read aloud.

use crate::conex::{Expr, Key, KeyRef, Role, Root};
use std::fmt::Write as _;

fn refs_of(e: Option<&Expr>) -> Vec<(String, String, u64)> {
    e.map(|e| {
        e.refs()
            .into_iter()
            .filter_map(|r| match r {
                KeyRef::Remote { id, digest, epoch } => {
                    Some((id.clone(), digest.to_string(), *epoch))
                }
                KeyRef::Local(_) => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The groups of four of a `sha256=…` digest, in two halves.
fn halves(d: &str) -> (String, String) {
    let g = crate::repository::grouped(d);
    let groups: Vec<&str> = g.split(' ').collect();
    let mid = groups.len().div_ceil(2);
    (groups[..mid].join(" "), groups[mid..].join(" "))
}

/// `label` followed by a digest in groups: on the label's line when it
/// fits in 79 columns, the second half aligned below.
fn keyed(s: &mut String, label: &str, d: &str) {
    let (a, b) = halves(d);
    let w = label.chars().count() + 2;
    if w + a.chars().count() <= 79 {
        let _ = writeln!(s, "{label}  {a}");
        let _ = writeln!(s, "{}{b}", " ".repeat(w));
    } else {
        let _ = writeln!(s, "{label}");
        let _ = writeln!(s, "      {a}");
        let _ = writeln!(s, "      {b}");
    }
}

/// A key's algorithm as people say it: `rsa 4096`, `ed25519`.
pub fn alg_words(k: &Key) -> String {
    match (k.key.alg, k.key.bits()) {
        (crate::conex::KeyAlg::Rsa, Some(bits)) => format!("rsa {bits}"),
        (alg, _) => alg.to_string(),
    }
}

/// An expression as people read it: `quorum 2 of [rootA, rootB]`.
fn quorum_words(e: Option<&Expr>) -> String {
    match e {
        None => "none".into(),
        Some(Expr::Quorum(n, refs)) => format!(
            "quorum {n} of [{}]",
            refs.iter()
                .map(|r| r.id().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(other) => other.to_string(),
    }
}

/// What changes from `old` (None: a new root) to `new`, in words.
pub fn describe_change(old: Option<&Root>, new: &Root) -> String {
    let mut s = String::new();
    let valid_now = quorum_words(Some(&new.valid));
    match old {
        None => {
            let _ = writeln!(s, "A NEW ROOT, counter {}", new.header.counter);
            let _ = writeln!(s, "root keys: {valid_now}");
        }
        Some(o) => {
            let _ = writeln!(s, "counter: {} -> {}", o.header.counter, new.header.counter);
            let before = quorum_words(Some(&o.valid));
            if before == valid_now {
                let _ = writeln!(s, "root keys: {valid_now} (unchanged)");
            } else {
                let _ = writeln!(s, "root keys: {before} -> {valid_now}");
            }
        }
    }
    for (id, k) in &new.keys {
        if old.is_none_or(|o| o.keys.get(id).map(|x| &x.key) != Some(&k.key)) {
            keyed(
                &mut s,
                &format!("  ADDED {id} ({})", alg_words(k)),
                &k.key_id().to_string(),
            );
        }
    }
    if let Some(o) = old {
        for (id, k) in &o.keys {
            if new.keys.get(id).map(|x| &x.key) != Some(&k.key) {
                keyed(&mut s, &format!("  REMOVED {id}"), &k.key_id().to_string());
            }
        }
    }
    for role in [Role::Maintainer, Role::Snapshot, Role::Timestamp] {
        let name = match role {
            Role::Maintainer => "janitors (maintainer)".to_string(),
            r => r.to_string(),
        };
        let before = refs_of(old.and_then(|o| o.roles.get(&role)));
        let after = refs_of(new.roles.get(&role));
        let qa = quorum_words(new.roles.get(&role));
        let qb = quorum_words(old.and_then(|o| o.roles.get(&role)));
        if before == after && qa == qb {
            if !after.is_empty() {
                let _ = writeln!(s, "{name}: {qa} (unchanged)");
            }
            continue;
        }
        if old.is_none() {
            let _ = writeln!(s, "{name}: {qa}");
        } else {
            let _ = writeln!(s, "{name}: {qb} -> {qa}");
        }
        for (id, d, e) in &after {
            match before.iter().find(|(i, _, _)| i == id) {
                None => keyed(&mut s, &format!("  ADDED {id}, epoch {e}"), d),
                Some((_, d0, e0)) if d0 != d => {
                    keyed(&mut s, &format!("  {id} key before, epoch {e0}"), d0);
                    keyed(&mut s, &format!("  {id} key NOW, epoch {e}"), d);
                }
                Some((_, _, e0)) if e0 != e => {
                    let _ = writeln!(s, "  CHANGED {id}: epoch {e0} -> {e} (same key)");
                }
                _ => {}
            }
        }
        for (id, d, _) in before
            .iter()
            .filter(|(i, _, _)| !after.iter().any(|(j, _, _)| j == i))
        {
            keyed(&mut s, &format!("  REMOVED {id}"), d);
        }
    }
    s
}
