//! Checks before anything destructive: outputs, devices, network, clock.

use super::profile::Profile;
use super::script::Ceremony;
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
