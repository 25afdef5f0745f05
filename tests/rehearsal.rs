//! CI rehearses every ceremony file in ceremonies/ against throw-away
//! SoftHSM tokens (through the real binary), in dependency order, and
//! verifies each result with arca's verifier.

mod support;
use std::path::{Path, PathBuf};
use support::*;

fn softhsm_present() -> bool {
    let m = std::env::var_os("ARCA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    if m.exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SoftHSM is missing in CI: .ci/run installs softhsm2"
    );
    eprintln!("SoftHSM is not installed (apt-get install softhsm2): rehearsal test not run");
    false
}

fn input_root(file: &Path) -> Option<String> {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    t.get("root").and_then(|v| v.as_str()).map(str::to_string)
}

#[test]
fn every_ceremony_file_rehearses_against_softhsm() {
    if !softhsm_present() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
    let mut pending: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    pending.sort();
    assert!(pending.len() >= 4, "expected a ceremony file per kind");
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut done = Vec::new();
    while !pending.is_empty() {
        let pos = pending
            .iter()
            .position(|f| input_root(f).is_none_or(|r| base.join(r).exists()))
            .unwrap_or_else(|| {
                panic!("no ceremony can run next; their input roots are missing: {pending:?}")
            });
        let f = pending.remove(pos);
        let o = arca([
            "ceremony",
            "run",
            f.to_str().unwrap(),
            "--rehearse",
            "--base",
            base.to_str().unwrap(),
        ]);
        ok(&o);
        // an interface up is a warning in a rehearsal, never a failure
        for l in stderr(&o).lines().filter(|l| l.contains("] network:")) {
            assert!(
                l.starts_with("[ ok ]") || (l.starts_with("[warn]") && l.ends_with("(rehearsal)")),
                "{l}"
            );
        }
        let t: toml::Table = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let out = base.join(t["output"].as_str().unwrap());
        let anchors = std::fs::read_to_string(out.join("anchors.txt"))
            .unwrap()
            .trim()
            .to_string();
        ok(&arca([
            "ceremony",
            "verify-transcript",
            out.to_str().unwrap(),
        ]));
        // the new root with the vectors' janitor, snapshot and timestamp files
        let repo = base.join(format!("repo-{}", f.file_stem().unwrap().to_string_lossy()));
        copy_tree(&vectors().join("repo"), &repo);
        std::fs::copy(out.join("root"), repo.join("root")).unwrap();
        let v = arca([
            "verify",
            "--dir",
            repo.to_str().unwrap(),
            "-t",
            &anchors,
            "--quorum",
            "2",
        ]);
        let msg = format!("{}{}", String::from_utf8_lossy(&v.stdout), stderr(&v));
        if t["kind"].as_str() == Some("bump-epoch") {
            // the snapshot of the old epoch is refused by the new root
            assert!(
                !v.status.success() && msg.contains("bad epoch"),
                "{}: {msg}",
                f.display()
            );
        } else {
            assert!(v.status.success(), "{}: {msg}", f.display());
        }
        done.push(f);
    }
    // keys on the rehearsal tokens are sensitive and never extractable
    let profile = std::fs::read_to_string(base.join(".rehearsal-tokens/profile.toml")).unwrap();
    let alice = profile.lines().find(|l| l.starts_with("alice")).unwrap();
    let uri = alice.split('"').nth(1).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["token", "keys", "--on", uri, "--json"])
        .env(
            "SOFTHSM2_CONF",
            base.join(".rehearsal-tokens/softhsm2.conf"),
        )
        .output()
        .unwrap();
    let keys: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let k = &keys.as_array().unwrap()[0];
    assert_eq!(k["flags"]["sensitive"], true, "{k}");
    assert_eq!(k["flags"]["extractable"], false, "{k}");
    assert_eq!(done.len(), 4);
}
