//! `arca verify`: conex's verdict, and what people need to act on it.

use super::args::VerifyArgs;
use super::common::{now_secs, parse_anchors};
use crate::conex::resource::parse_time;
use crate::conex::verify::{self, DirSource, Verifier};
use crate::conex::Digest;
use crate::error::{ArcaError, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Trust anchors for `arca verify`, read as conex_verify reads them: each
/// comma-separated piece is compared exactly with the root key ids
/// (`sha256=` and 64 lower-case hex digits). A piece that is an anchor in
/// another spelling (upper-case hex, spaces around it) matches no key, as in
/// conex: arca says so on stderr and leaves it out, and the verdict is
/// conex's. A piece that is no anchor at all (cut short, no `sha256=`
/// prefix) is a typing mistake: bad command-line input (exit 2), named.
pub(super) fn verify_anchors(v: &[String]) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    for a in v.iter().flat_map(|a| a.split(',')) {
        let exact = a.strip_prefix("sha256=").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if exact {
            out.insert(Digest::parse_key_hash(a)?);
        } else if !a.is_empty() {
            // an anchor in another spelling, or no anchor at all
            parse_anchors(&[a.to_string()])?;
            eprintln!(
                "arca: trust anchor {:?} is not sha256= and 64 lower-case hex digits: it matches no root key (conex compares anchors exactly)",
                crate::conex::shown(a)
            );
        }
    }
    Ok(out)
}

pub(super) fn verify_cmd(a: VerifyArgs) -> Result<()> {
    // the thread pool starts while the arguments are checked and the
    // first files read (its threads are needed within milliseconds)
    rayon::spawn(|| ());
    let now = match &a.now {
        Some(t) => parse_time(t)
            .ok_or_else(|| ArcaError::Input(format!("--now {t:?}: not an RFC 3339 time")))?,
        None => now_secs(),
    };
    let opts = verify::Options {
        anchors: verify_anchors(&a.anchors)?,
        quorum: a.quorum,
        expiry: a.expiry,
        now,
        opam: !a.no_opam,
        ignore_missing: a.ignore_missing,
        root_name: a.root.clone(),
    };
    if a.incremental || a.patch.is_some() {
        let (Some(old), Some(patch)) = (&a.repository, &a.patch) else {
            return Err(ArcaError::Input(
                "incremental mode needs --repository OLD and --patch FILE".into(),
            ));
        };
        let out = crate::incremental::verify_incremental(old, patch, opts, a.cache.as_deref())?;
        if a.verbose && !a.json {
            for n in &out.notes {
                eprintln!("{n}");
            }
        }
        let (warnings, r) = (out.verdict.warnings, out.verdict.result);
        return report(&warnings, r.map_err(|e| e.to_string()), a.verbose, a.json);
    }
    let dir = a.dir.clone().or(a.repository.clone()).ok_or_else(|| {
        ArcaError::Input("give --dir DIR (or --incremental --repository OLD --patch FILE)".into())
    })?;
    let src = DirSource(dir);
    let Some(cache) = &a.cache else {
        let mut v = Verifier::new(&src, opts);
        let r = v.verify_full().map_err(|e| e.to_string());
        return report(&v.warnings, r, a.verbose, a.json);
    };
    let mut v = Verifier::new(&src, opts.clone()).capturing();
    let r = v.verify_full();
    if r.is_ok() {
        let state = v
            .take_verified_tree()
            .and_then(|t| crate::verify_cache::State::of_tree(&src, &opts, &t));
        let note = crate::incremental::store_note(cache, state);
        if a.verbose && !a.json {
            eprintln!("{note}");
        }
    }
    report(&v.warnings, r.map_err(|e| e.to_string()), a.verbose, a.json)
}

/// Prints a verification outcome.
pub fn report(
    warnings: &[String],
    r: std::result::Result<verify::Summary, String>,
    verbose: bool,
    json: bool,
) -> Result<()> {
    if verbose {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
    match r {
        Ok(s) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verified": true, "summary": s, "warnings": warnings})
                );
            } else {
                println!(
                    "verified: root counter {} signed by {}; {} targets file(s); {} file(s) match",
                    s.root_counter,
                    s.root_signers.join(", "),
                    s.targets_files.len(),
                    s.files
                );
            }
            Ok(())
        }
        Err(msg) => {
            let msg = explain(&msg, warnings);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verified": false, "error": msg, "warnings": warnings})
                );
            }
            Err(ArcaError::Verify(msg))
        }
    }
}

/// A verdict with what people need to act on it: the cause of a failed
/// comparison (which conex gives only among its warnings), and what is
/// missing when the online files are not there yet.
pub(super) fn explain(msg: &str, warnings: &[String]) -> String {
    let mut out = msg.to_string();
    if msg.contains("comparison failed: ") {
        // why the signed tree lacks the path: targets files not used
        let causes: Vec<&str> = warnings
            .iter()
            .map(String::as_str)
            .filter(|w| {
                w.starts_with("couldn't load or verify target ")
                    || w.starts_with("dropping ")
                    || (w.starts_with("expression ") && w.contains(" is not satisfied"))
            })
            .collect();
        if causes.is_empty() {
            if msg.contains(" only exists on disk") {
                out.push_str(" (no targets file signs it)");
            }
        } else {
            out.push_str(&format!(" (because {})", causes.join("; ")));
            if causes
                .iter()
                .any(|c| c.contains("no match in snapshot targets"))
            {
                out.push_str(
                    "; the snapshot predates that targets file: the online signer runs `arca online sign`",
                );
            }
        }
    }
    for typ in ["timestamp", "snapshot"] {
        if msg.ends_with(&format!("(type {typ}) was not found in repository")) {
            out.push_str(&format!(
                ": the online signer has not made the {typ} file yet (`arca online sign` on the online side); \
                 to check your own targets file meanwhile: `arca targets status --id YOUR-ID`"
            ));
        }
    }
    out
}

/// Full verification of a folder (the menu's "verify a repository"): the
/// warnings and the verdict, for [`report`].
pub(crate) fn verify_dir(
    dir: PathBuf,
    anchors: BTreeSet<Digest>,
    quorum: Option<usize>,
) -> (Vec<String>, std::result::Result<verify::Summary, String>) {
    let opts = verify::Options {
        anchors,
        quorum,
        now: now_secs(),
        ..verify::Options::default()
    };
    let src = DirSource(dir);
    let mut v = Verifier::new(&src, opts);
    let r = v.verify_full().map_err(|e| e.to_string());
    (v.warnings, r)
}
