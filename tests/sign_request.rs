//! Detached root signatures: two absent holders, each on their own machine
//! (own HOME and key store), sign the pending root from a sign request; the
//! signatures are imported only over exactly the pending root.

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

/// Runs arca as a person on their own machine: HOME is theirs.
fn arca_home(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(args)
        .env("HOME", home)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run arca")
}

fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "arca should have failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    stderr(o)
}

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    repo: PathBuf,
    home_a: PathBuf,
    home_b: PathBuf,
    anchors: String,
    answers: PathBuf,
}

/// Two holders generate rootA and rootB at home; the offline machine gets
/// only their public keys and builds a pending root with quorum 2.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let repo = base.join("repo");
    std::fs::create_dir_all(repo.join("packages")).unwrap();
    std::fs::create_dir_all(repo.join("keys")).unwrap();
    let home_a = base.join("home-a");
    let home_b = base.join("home-b");
    let mut anchors = Vec::new();
    ok(&arca(["root", "create", "-r", repo.to_str().unwrap()]));
    for (home, id) in [(&home_a, "rootA"), (&home_b, "rootB")] {
        std::fs::create_dir_all(home).unwrap();
        ok(&arca_home(home, &["key", "new", "--id", id]));
        let pubs = ok(&arca_home(home, &["key", "pub", "--id", id]));
        let line = pubs
            .lines()
            .find(|l| l.contains("=") && l.contains(id))
            .unwrap()
            .to_string();
        let keydata = line
            .split('"')
            .find(|s| s.starts_with("ed25519="))
            .unwrap()
            .to_string();
        let f = base.join(format!("{id}.pub"));
        std::fs::write(&f, &keydata).unwrap();
        let a = pubs
            .split_whitespace()
            .find(|w| w.starts_with("sha256="))
            .unwrap()
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '=')
            .to_string();
        anchors.push(a);
        ok(&arca([
            "root",
            "add-key",
            "-r",
            repo.to_str().unwrap(),
            "--id",
            id,
            "--key-data",
            f.to_str().unwrap(),
            "--quorum",
            if id == "rootA" { "1" } else { "2" },
        ]));
    }
    let answers = base.join("answers.toml");
    std::fs::write(&answers, "confirm = \"yes\"\n").unwrap();
    Setup {
        repo,
        home_a,
        home_b,
        anchors: anchors.join(","),
        answers,
        base,
        _tmp: tmp,
    }
}

impl Setup {
    fn export(&self, id: &str, name: &str) -> PathBuf {
        let out = self.base.join(name);
        ok(&arca([
            "sign-request",
            "export",
            "--id",
            id,
            "-r",
            self.repo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        out
    }
    fn sign(&self, home: &Path, id: &str, req: &Path, name: &str) -> Output {
        let out = self.base.join(name);
        arca_home(
            home,
            &[
                "sign-request",
                "sign",
                req.to_str().unwrap(),
                "--id",
                id,
                "--answers",
                self.answers.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        )
    }
    fn import(&self, sig: &Path) -> Output {
        arca([
            "sign-request",
            "import",
            sig.to_str().unwrap(),
            "-r",
            self.repo.to_str().unwrap(),
        ])
    }
    /// The root alone against both anchors with quorum 2 (the repository
    /// has no janitors yet, so a full `arca verify` has nothing else to check).
    fn verify(&self) -> Result<Vec<String>, String> {
        use arca::conex::verify::{DirSource, Options, Verifier};
        let anchors = self
            .anchors
            .split(',')
            .map(|a| arca::conex::Digest::parse(a).unwrap())
            .collect();
        let src = DirSource(self.repo.clone());
        let mut v = Verifier::new(
            &src,
            Options {
                anchors,
                quorum: Some(2),
                ..Options::default()
            },
        );
        v.verify_root()
            .map(|(_, signers)| signers)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn two_absent_holders_sign_and_the_root_verifies_with_quorum_2() {
    let s = setup();
    assert!(s.verify().is_err(), "unsigned root must not verify");
    let req_a = s.export("rootA", "req-a.json");
    let req_b = s.export("rootB", "req-b.json");
    let text = std::fs::read_to_string(&req_a).unwrap();
    assert!(
        text.contains("signed_digest") && text.contains("A NEW ROOT"),
        "{text}"
    );
    ok(&s.sign(&s.home_a, "rootA", &req_a, "sig-a.json"));
    // rootB's machine has no rootA key, and the request is not for rootB
    let e = fails(&s.sign(&s.home_b, "rootB", &req_a, "x.json"));
    assert!(e.contains("the request is for rootA"), "{e}");
    ok(&s.sign(&s.home_b, "rootB", &req_b, "sig-b.json"));
    ok(&s.import(&s.base.join("sig-a.json")));
    assert!(s.verify().is_err(), "one signature is not quorum 2");
    let st = ok(&arca([
        "root",
        "status",
        "-r",
        s.repo.to_str().unwrap(),
        "-t",
        &s.anchors,
    ]));
    assert!(st.contains("rootA") && st.contains("rootB"), "{st}");
    ok(&s.import(&s.base.join("sig-b.json")));
    assert_eq!(s.verify().unwrap(), ["rootA", "rootB"]);
    // importing again is harmless
    let again = ok(&s.import(&s.base.join("sig-b.json")));
    assert!(again.contains("already"), "{again}");
}

#[test]
fn a_signature_over_another_counter_or_content_is_refused() {
    let s = setup();
    let req_a = s.export("rootA", "req-a.json");
    ok(&s.sign(&s.home_a, "rootA", &req_a, "sig-a.json"));
    let sig_a = s.base.join("sig-a.json");
    // a forged value: same counter and digest, but it does not verify
    let forged = s.base.join("forged.json");
    let t = std::fs::read_to_string(&sig_a).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    let value = v["value"].as_str().unwrap();
    let mut bad = value.as_bytes().to_vec();
    bad[5] = if bad[5] == b'A' { b'B' } else { b'A' };
    std::fs::write(
        &forged,
        t.replace(value, std::str::from_utf8(&bad).unwrap()),
    )
    .unwrap();
    let e = fails(&s.import(&forged));
    assert!(e.contains("does not verify"), "{e}");
    // the root moves on: rootB starts a new round at counter + 1
    let before = std::fs::read_to_string(s.repo.join("root")).unwrap();
    ok(&arca_home(
        &s.home_b,
        &[
            "root",
            "sign",
            "-r",
            s.repo.to_str().unwrap(),
            "--id",
            "rootB",
            "--incr",
        ],
    ));
    assert_ne!(
        before,
        std::fs::read_to_string(s.repo.join("root")).unwrap()
    );
    let e = fails(&s.import(&sig_a));
    assert!(e.contains("over counter"), "{e}");
    assert!(e.contains("not added"), "{e}");
    // a request whose root was edited after export is refused by the signer
    let req = s.export("rootA", "req-2.json");
    let t = std::fs::read_to_string(&req).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    let root = v["root"].as_str().unwrap();
    let edited = root.replace("packages", "pkgs");
    std::fs::write(
        &req,
        t.replace(
            &serde_json::to_string(root).unwrap(),
            &serde_json::to_string(&edited).unwrap(),
        ),
    )
    .unwrap();
    let e = fails(&s.sign(&s.home_a, "rootA", &req, "sig-2.json"));
    assert!(e.contains("does not match the request"), "{e}");
    assert!(!s.base.join("sig-2.json").exists());
}

/// The same with keys on the holders' tokens: two SoftHSM tokens, each
/// holder on their own HOME; the root verifies with quorum 2.
#[test]
fn two_holders_sign_with_their_own_tokens() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    if !Path::new(module).exists() {
        assert!(std::env::var_os("CI").is_none(), "SoftHSM missing in CI");
        eprintln!("SoftHSM is not installed: token sign-request test not run");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let pin = base.join("pin");
    std::fs::write(&pin, "holders-pin-4711\n").unwrap();
    let setup = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup.sh"))
        .args([
            "--dir",
            base.join("hsm").to_str().unwrap(),
            "--token",
            "holder-a",
            "--token",
            "holder-b",
        ])
        .args(["--pin-file", pin.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let conf = base.join("hsm/softhsm2.conf");
    let run = |home: &Path, args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("HOME", home)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        ok(&o)
    };
    let repo = base.join("repo");
    std::fs::create_dir_all(repo.join("packages")).unwrap();
    ok(&arca(["root", "create", "-r", repo.to_str().unwrap()]));
    let mut anchors = Vec::new();
    let mut uris = Vec::new();
    for (tok, id, q) in [("holder-a", "rootA", "1"), ("holder-b", "rootB", "2")] {
        let home = base.join(tok);
        std::fs::create_dir_all(&home).unwrap();
        let uri = format!(
            "pkcs11:token={tok};object={id}?module-path={module}&pin-source=file:{}",
            pin.display()
        );
        run(
            &home,
            &[
                "key",
                "new",
                "--id",
                id,
                "--key-algorithm",
                "rsa2048",
                "--on",
                &uri,
            ],
        );
        let p: serde_json::Value = serde_json::from_str(&run(
            &home,
            &["key", "pub", "--id", id, "--on", &uri, "--json"],
        ))
        .unwrap();
        let f = base.join(format!("{id}.pub"));
        std::fs::write(&f, p["key"].as_str().unwrap()).unwrap();
        anchors.push(p["key_id"].as_str().unwrap().to_string());
        ok(&arca([
            "root",
            "add-key",
            "-r",
            repo.to_str().unwrap(),
            "--id",
            id,
            "--key-data",
            f.to_str().unwrap(),
            "--quorum",
            q,
        ]));
        uris.push((home, id, uri));
    }
    let answers = base.join("answers.toml");
    std::fs::write(&answers, "confirm = \"yes\"\n").unwrap();
    for (home, id, uri) in &uris {
        let req = base.join(format!("req-{id}.json"));
        let sig = base.join(format!("sig-{id}.json"));
        ok(&arca([
            "sign-request",
            "export",
            "--id",
            id,
            "-r",
            repo.to_str().unwrap(),
            "--out",
            req.to_str().unwrap(),
        ]));
        run(
            home,
            &[
                "sign-request",
                "sign",
                req.to_str().unwrap(),
                "--id",
                id,
                "--on",
                uri,
                "--answers",
                answers.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
        );
        ok(&arca([
            "sign-request",
            "import",
            sig.to_str().unwrap(),
            "-r",
            repo.to_str().unwrap(),
        ]));
    }
    let st = ok(&arca([
        "root",
        "status",
        "-r",
        repo.to_str().unwrap(),
        "-t",
        &anchors.join(","),
    ]));
    assert!(st.contains("quorum: met"), "{st}");
    let root = std::fs::read_to_string(repo.join("root")).unwrap();
    assert_eq!(root.matches("rsapss-sha256=").count(), 2);
    assert!(!root.contains("holders-pin-4711"));
}
