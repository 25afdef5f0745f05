//! Tells the integration tests which data from `../shared` (or
//! `$ARCA_SHARED`) and which of conex's own tools are on this machine.
//!
//! A test that needs one of them carries
//! `#[cfg_attr(not(arca_shared_upstream), ignore = "…")]` (and the like), so
//! in a clone without that data `cargo test` lists it as *ignored*, with one
//! line naming what is missing, and never counts it as passed. Where the
//! data is present the test runs and must pass.
//!
//! cfg                      present when
//! arca_shared_upstream     <shared>/conex-vectors/upstream-testrepo is a folder
//! arca_shared_opam         <shared>/opam-repository is a folder
//! arca_conex_oracle        conex_verify_openssl and conex_verify_mirage_crypto
//!                          are in `$ARCA_CONEX_BIN` or on `PATH`
//!                          (`../shared/oracle/build.sh` installs them)
//!
//! It also sets `ARCA_SHARED_DIR` and `ARCA_CONEX_BIN_DIR` for the tests.
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    for cfg in [
        "arca_shared_upstream",
        "arca_shared_opam",
        "arca_conex_oracle",
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=ARCA_SHARED");
    println!("cargo::rerun-if-env-changed=ARCA_CONEX_BIN");
    println!("cargo::rerun-if-env-changed=PATH");

    let shared = std::env::var_os("ARCA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../shared"));
    // Only paths that exist are watched (cargo rebuilds on every run for a
    // missing one): data that arrives after a build is seen after
    // `touch build.rs`; the ignore reasons say so.
    for w in [shared.join("conex-vectors"), shared.join("opam-repository")] {
        if w.is_dir() {
            println!("cargo::rerun-if-changed={}", w.display());
        }
    }
    println!("cargo::rustc-env=ARCA_SHARED_DIR={}", shared.display());
    if shared.join("conex-vectors/upstream-testrepo").is_dir() {
        println!("cargo::rustc-cfg=arca_shared_upstream");
    }
    if shared.join("opam-repository").is_dir() {
        println!("cargo::rustc-cfg=arca_shared_opam");
    }

    let mut dirs: Vec<PathBuf> = std::env::var_os("ARCA_CONEX_BIN")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_default();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let has = |d: &Path| {
        ["conex_verify_openssl", "conex_verify_mirage_crypto"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    match dirs.iter().find(|d| has(d)) {
        Some(d) => {
            for t in ["conex_verify_openssl", "conex_verify_mirage_crypto"] {
                println!("cargo::rerun-if-changed={}", d.join(t).display());
            }
            println!("cargo::rustc-cfg=arca_conex_oracle");
            println!("cargo::rustc-env=ARCA_CONEX_BIN_DIR={}", d.display());
        }
        None => println!("cargo::rustc-env=ARCA_CONEX_BIN_DIR="),
    }
}
