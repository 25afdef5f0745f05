//! The plain-language summary shown before every root signature.

use crate::conex::{Expr, KeyRef, Role, Root};
use crate::status::read_aloud_lines;
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

fn lines(d: &str) -> String {
    match crate::conex::Digest::parse(d) {
        Ok(d) => read_aloud_lines(&d, "      "),
        Err(_) => format!("      {d}"),
    }
}

/// What changes from `old` (None: a new root) to `new`, in words, with key
/// ids grouped to be read aloud.
pub fn describe_change(old: Option<&Root>, new: &Root) -> String {
    let mut s = String::new();
    match old {
        None => {
            let _ = writeln!(s, "A NEW ROOT, counter {}", new.header.counter);
        }
        Some(o) => {
            let _ = writeln!(s, "counter: {} -> {}", o.header.counter, new.header.counter);
        }
    }
    for (id, k) in &new.keys {
        if old.is_none_or(|o| o.keys.get(id).map(|x| &x.key) != Some(&k.key)) {
            let _ = writeln!(s, "root key ADDED: {id} ({})", k.key.alg);
            let _ = writeln!(s, "{}", read_aloud_lines(&k.key_id(), "    "));
        }
    }
    if let Some(o) = old {
        for (id, k) in &o.keys {
            if new.keys.get(id).map(|x| &x.key) != Some(&k.key) {
                let _ = writeln!(s, "root key REMOVED: {id}");
                let _ = writeln!(s, "{}", read_aloud_lines(&k.key_id(), "    "));
            }
        }
    }
    let old_valid = old.map(|o| o.valid.to_string());
    match old_valid {
        Some(v) if v == new.valid.to_string() => {
            let _ = writeln!(s, "root quorum: {v} (unchanged)");
        }
        Some(v) => {
            let _ = writeln!(s, "root quorum: {v} -> {}", new.valid);
        }
        None => {
            let _ = writeln!(s, "root quorum: {}", new.valid);
        }
    }
    for role in [Role::Maintainer, Role::Snapshot, Role::Timestamp] {
        let before = refs_of(old.and_then(|o| o.roles.get(&role)));
        let after = refs_of(new.roles.get(&role));
        let qa = new
            .roles
            .get(&role)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "none".into());
        let qb = old
            .and_then(|o| o.roles.get(&role))
            .map(|e| e.to_string())
            .unwrap_or_else(|| "none".into());
        if before == after && qa == qb {
            if !after.is_empty() {
                let _ = writeln!(s, "{role}: {qa} (unchanged)");
            }
            continue;
        }
        let _ = writeln!(s, "{role}: {qb} -> {qa}");
        for (id, d, e) in &after {
            match before.iter().find(|(i, _, _)| i == id) {
                None => {
                    let _ = writeln!(s, "    ADDED {id}, epoch {e}, key:");
                    let _ = writeln!(s, "{}", lines(d));
                }
                Some((_, d0, e0)) if d0 != d || e0 != e => {
                    let _ = writeln!(s, "    CHANGED {id}: epoch {e0} -> {e}");
                    if d0 != d {
                        let _ = writeln!(
                            s,
                            "      key before:\n{}\n      key now:\n{}",
                            lines(d0),
                            lines(d)
                        );
                    }
                }
                _ => {}
            }
        }
        for (id, _, _) in before
            .iter()
            .filter(|(i, _, _)| !after.iter().any(|(j, _, _)| j == i))
        {
            let _ = writeln!(s, "    REMOVED {id}");
        }
    }
    s
}
