//! Verification figures on a synthetic repository of opam-repository size.
//!
//! ```text
//! cargo bench --bench verify            # ~4,500 packages, 35,000 files, 500 janitors
//! cargo bench --bench verify -- --quick # a smaller repository (or ARCA_BENCH_QUICK=1)
//! ```
//!
//! Prints, for a full verification: wall time, files/s, signatures/s and
//! peak RSS (measured in a child process), next to the *floor* measured in
//! the same run: listing the same directories, reading and SHA-256 hashing
//! the same bytes and verifying the same signatures (each once), on the
//! same thread pool, with no parsing or logic. Then an incremental
//! verification of a one-package update, and the same repository with 10×
//! bigger files to show that memory does not grow with file sizes.

#[path = "../tests/support/synth.rs"]
mod synth;

use arca::conex::resource::Resource;
use arca::conex::verify::{hash_file, DirSource, Options, Source, Verifier};
use arca::conex::{PublicKey, Root, SigAlg, Snapshot, Targets, Timestamp};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn opts_from(anchors: &str) -> Options {
    Options {
        anchors: anchors
            .split(',')
            .filter_map(|a| arca::conex::Digest::parse_key_hash(a).ok())
            .collect(),
        quorum: Some(2),
        now: arca::conex::resource::parse_time(synth::CREATED).unwrap_or(0) + 3600,
        ..Options::default()
    }
}

/// Child mode: verify and print `secs peak_rss_kib`.
fn child(args: &[String]) -> ! {
    let t = Instant::now();
    let ok = match args {
        [mode, dir, anchors] if mode == "full" => {
            let src = DirSource(dir.into());
            Verifier::new(&src, opts_from(anchors))
                .verify_full()
                .is_ok()
        }
        [mode, dir, patch, anchors] if mode == "incremental" => {
            let p = std::fs::read(patch).unwrap_or_default();
            matches!(
                arca::incremental::verify_patch(Path::new(dir), &p, opts_from(anchors)),
                Ok(v) if v.result.is_ok()
            )
        }
        _ => false,
    };
    println!("{} {} {}", ok, t.elapsed().as_secs_f64(), peak_rss_kib());
    std::process::exit(if ok { 0 } else { 1 })
}

/// Runs a verification in a fresh process: (seconds, peak RSS KiB).
fn in_child(args: &[&str]) -> (f64, u64) {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("run child");
    let s = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = s.split_whitespace().collect();
    assert!(
        out.status.success() && v.first() == Some(&"true"),
        "child verification failed: {s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (v[1].parse().unwrap_or(0.0), v[2].parse().unwrap_or(0))
}

/// What the floor does: the same directory listings, file reads and
/// SHA-256, and signature verifications.
struct FloorWork {
    dirs: Vec<Vec<String>>,
    files: Vec<Vec<String>>,
    sigs: Vec<(PublicKey, SigAlg, Vec<u8>, Vec<u8>)>,
}

fn collect_sigs<R: Resource>(r: &R, out: &mut Vec<(PublicKey, SigAlg, Vec<u8>, Vec<u8>)>) {
    for (id, s) in r.signatures() {
        if let (Some(k), Some(raw)) = (r.keys().get(id), s.raw()) {
            let tbs = r.to_be_signed(id, &s.created, s.alg).into_bytes();
            out.push((k.key.clone(), s.alg, tbs, raw));
        }
    }
}

fn floor_work(dir: &Path) -> FloorWork {
    let src = DirSource(dir.to_path_buf());
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![vec!["packages".to_string()]];
    while let Some(d) = stack.pop() {
        for (name, is_dir) in src.list(&d).expect("list") {
            let mut p = d.clone();
            p.push(name);
            if is_dir {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
        dirs.push(d);
    }
    let read = |p: &str| String::from_utf8(std::fs::read(dir.join(p)).expect("read")).unwrap();
    let mut sigs = Vec::new();
    let root = Root::parse(&read("root"), &mut Vec::new()).expect("root");
    collect_sigs(&root, &mut sigs);
    collect_sigs(
        &Snapshot::parse(&read("snap"), &mut Vec::new()).expect("snap"),
        &mut sigs,
    );
    collect_sigs(
        &Timestamp::parse(&read("ts"), &mut Vec::new()).expect("ts"),
        &mut sigs,
    );
    // the metadata files are read and hashed too (snapshot, targets)
    files.push(vec!["snap".into()]);
    for (name, _) in src.list(&["keys".to_string()]).expect("keys") {
        let t = Targets::parse(&read(&format!("keys/{name}")), &mut Vec::new()).expect("targets");
        collect_sigs(&t, &mut sigs);
        files.push(vec!["keys".into(), name]);
    }
    FloorWork { dirs, files, sigs }
}

/// (listing, read+hash, signatures) durations.
fn run_floor(dir: &Path, w: &FloorWork) -> (Duration, Duration, Duration) {
    let src = DirSource(dir.to_path_buf());
    let t = Instant::now();
    let n: usize = w
        .dirs
        .par_iter()
        .map(|d| src.list(d).map(|v| v.len()).unwrap_or(0))
        .sum();
    let list = t.elapsed();
    assert!(n > 0);
    let t = Instant::now();
    let bytes: u64 = w
        .files
        .par_iter()
        .map(|p| hash_file(&src, p).map(|(_, n)| n).unwrap_or(0))
        .sum();
    let hash = t.elapsed();
    assert!(bytes > 0);
    let t = Instant::now();
    let ok = w
        .sigs
        .par_iter()
        .filter(|(k, a, m, s)| k.verify(*a, m, s).is_ok())
        .count();
    let sig = t.elapsed();
    assert_eq!(ok, w.sigs.len(), "every signature verifies");
    (list, hash, sig)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: f64) -> String {
    format!("{:.0} ms", d * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var("ARCA_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut spec = synth::Spec::default();
    if quick {
        spec.packages = 600;
        spec.files = 5000;
        spec.janitors = 80;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().join("repo");
    println!(
        "arca verify benchmark ({}; {} thread(s))",
        if quick {
            "quick"
        } else {
            "opam-repository size"
        },
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let s = synth::generate(&dir, &tmp.path().join("keys"), &spec).expect("generate");
    println!(
        "generated: {} packages, {} files of ~{} bytes, {} janitors (quorum {}), root RSA-4096 + Ed25519, {} signatures — {:.1} s",
        spec.packages,
        s.files,
        spec.file_size,
        spec.janitors,
        spec.quorum,
        s.signatures,
        t.elapsed().as_secs_f64()
    );
    let opts = s.options();
    let src = DirSource(dir.clone());
    let work = floor_work(&dir);
    assert_eq!(work.sigs.len(), s.signatures);
    // warm the page cache
    let summary = Verifier::new(&src, opts.clone())
        .verify_full()
        .expect("the synthetic repository verifies");
    let _ = run_floor(&dir, &work);
    let (mut tv, mut tl, mut th, mut ts) = (vec![], vec![], vec![], vec![]);
    // alternate which goes first, so that neither always finds the caches
    // warmed by the other
    for i in 0..RUNS {
        let mut floor = || {
            let (l, h, g) = run_floor(&dir, &work);
            tl.push(l.as_secs_f64());
            th.push(h.as_secs_f64());
            ts.push(g.as_secs_f64());
        };
        if i % 2 == 1 {
            floor();
        }
        let t = Instant::now();
        let r = Verifier::new(&src, opts.clone()).verify_full();
        tv.push(t.elapsed().as_secs_f64());
        assert!(r.is_ok());
        if i % 2 == 0 {
            floor();
        }
    }
    let v = median(tv);
    let (l, h, g) = (median(tl), median(th), median(ts));
    let floor = l + h + g;
    let nfiles = summary.files as f64;
    let nsigs = s.signatures as f64;
    let anchors = s.anchors_arg();
    let dir_s = dir.display().to_string();
    let (t1, rss1) = in_child(&["full", &dir_s, &anchors]);
    println!("full verification (median of {RUNS}):");
    println!(
        "  arca:  {}  {:.0} files/s  {:.0} signatures/s  peak RSS {} MiB",
        ms(v),
        nfiles / v,
        nsigs / v,
        rss1 / 1024
    );
    println!(
        "  floor: {}  (list directories {} + read and SHA-256 {} files {} + verify {} signatures {})",
        ms(floor),
        ms(l),
        work.files.len(),
        ms(h),
        work.sigs.len(),
        ms(g)
    );
    println!(
        "  ratio: {:.2}x the floor ({:.2}x the floor without directory listing)",
        v / floor,
        v / (h + g)
    );
    // incremental: one-package update
    let patch = synth::one_package_update(&s, &synth::package_name(0)).expect("patch");
    let patch_file = tmp.path().join("update.patch");
    std::fs::write(&patch_file, &patch).expect("write patch");
    let mut ti = vec![];
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = arca::incremental::verify_patch(&dir, patch.as_bytes(), opts.clone())
            .expect("patch applies");
        ti.push(t.elapsed().as_secs_f64());
        assert!(r.result.is_ok(), "{:?}", r.result);
    }
    let (_, irss) = in_child(&[
        "incremental",
        &dir_s,
        &patch_file.display().to_string(),
        &anchors,
    ]);
    println!(
        "incremental verification of a one-package update ({} bytes of patch, {} files changed): {}  peak RSS {} MiB",
        patch.len(),
        patch.matches("\ndiff --git ").count() + 1,
        ms(median(ti)),
        irss / 1024
    );
    drop(tmp);
    // the same repository with 10x bigger files
    let tmp2 = tempfile::tempdir().expect("tempdir");
    let mut big = spec.clone();
    big.file_size *= 10;
    let dir2 = tmp2.path().join("repo");
    let s2 = synth::generate(&dir2, &tmp2.path().join("keys"), &big).expect("generate big");
    let (t2, rss2) = in_child(&["full", &dir2.display().to_string(), &s2.anchors_arg()]);
    println!(
        "file size x10 ({} -> {} bytes per file): peak RSS {} MiB -> {} MiB, time {} -> {} (fresh processes)",
        spec.file_size,
        big.file_size,
        rss1 / 1024,
        rss2 / 1024,
        ms(t1),
        ms(t2)
    );
}
