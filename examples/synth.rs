//! Generates a synthetic signed conex repository of a chosen size (by
//! default about the size of opam-repository).
//!
//! ```text
//! cargo run --release --example synth -- OUT [--packages N] [--files N]
//!     [--files-per-version N] [--file-size BYTES] [--janitors N] [--quorum N]
//!     [--seed N] [--rsa-key FILE] [--patch-out FILE]
//! ```
//!
//! Writes the repository to `OUT`, the two root private keys to
//! `OUT.keys/`, prints the trust anchors and the `arca verify` command;
//! with `--patch-out`, also writes a one-package update as a git diff.

#[path = "../tests/support/synth.rs"]
mod synth;

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: synth OUT [--packages N] [--files N] [--files-per-version N] [--file-size BYTES] \
         [--janitors N] [--quorum N] [--seed N] [--rsa-key FILE] [--patch-out FILE]"
    );
    std::process::exit(2)
}

fn main() {
    let mut spec = synth::Spec::default();
    let mut out: Option<PathBuf> = None;
    let mut patch_out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{what} needs a number");
                usage()
            })
        };
        match a.as_str() {
            "--packages" => spec.packages = num("--packages"),
            "--files" => spec.files = num("--files"),
            "--files-per-version" => spec.files_per_version = num("--files-per-version"),
            "--file-size" => spec.file_size = num("--file-size"),
            "--janitors" => spec.janitors = num("--janitors"),
            "--quorum" => spec.quorum = num("--quorum"),
            "--seed" => spec.seed = num("--seed") as u64,
            "--rsa-key" => spec.rsa_key = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--patch-out" => patch_out = Some(args.next().unwrap_or_else(|| usage()).into()),
            "-h" | "--help" => usage(),
            s if s.starts_with('-') => {
                eprintln!("unknown option {s}");
                usage()
            }
            s => out = Some(s.into()),
        }
    }
    let Some(out) = out else { usage() };
    let mut ks = out.clone().into_os_string();
    ks.push(".keys");
    let t = std::time::Instant::now();
    let s = match synth::generate(&out, &PathBuf::from(ks), &spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("synth: {e}");
            std::process::exit(1)
        }
    };
    println!(
        "generated {} in {:.1} s: {} packages, {} files, {} janitors (quorum {}), {} signatures",
        out.display(),
        t.elapsed().as_secs_f64(),
        spec.packages,
        s.files,
        spec.janitors,
        spec.quorum,
        s.signatures
    );
    if let Some(p) = patch_out {
        let pkg = synth::package_name(0);
        match synth::one_package_update(&s, &pkg).map(|d| std::fs::write(&p, d)) {
            Ok(Ok(())) => println!("one-package update of {pkg}: {}", p.display()),
            Ok(Err(e)) => {
                eprintln!("synth: {}: {e}", p.display());
                std::process::exit(1)
            }
            Err(e) => {
                eprintln!("synth: {e}");
                std::process::exit(1)
            }
        }
    }
    println!(
        "arca verify --dir {} --quorum 2 -t {}",
        out.display(),
        s.anchors_arg()
    );
}
