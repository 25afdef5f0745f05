//! Secret hygiene: ceremonies and the janitor flow run with known,
//! distinctive PINs and passphrases, and nothing arca shows or writes holds
//! them: the process's argv and environment (sampled from /proc while it
//! runs), stdout, stderr, the journal and every file in the output folder.
//! A wrong PIN or passphrase is not echoed in the error either.

mod support;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// Distinctive secrets, so a hit cannot be a coincidence.
const USER_PIN: &str = "UsrPin-4f1c9a-77";
const SO_PIN: &str = "SoPin-b83e20-91";
const PASSPHRASE: &str = "Passphrase-d5e6a1-kestrel";
const WRONG_PIN: &str = "WrongPin-0c4b2f-13";
const WRONG_PASSPHRASE: &str = "WrongPass-9a7d3e-osprey";
const REHEARSAL_SO_PIN: &str = "rehearsal-so-pin";

fn softhsm_module() -> Option<PathBuf> {
    let m = std::env::var_os("ARCA_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    if m.exists() {
        return Some(m);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SoftHSM is missing in CI: .ci/run installs softhsm2"
    );
    eprintln!("SoftHSM is not installed: PKCS#11 secret tests not run");
    None
}

/// What a run exposed: stdout, stderr, and every argv/environ sample.
struct Watched {
    ok: bool,
    stdout: String,
    stderr: String,
    samples: Vec<Vec<u8>>,
}

/// Runs arca, sampling /proc/<pid>/cmdline and /proc/<pid>/environ while
/// it runs (at least once: the first sample is taken before it can exit
/// only if it is still starting, so every run is also checked from the
/// arguments we gave it).
fn watched(args: &[&str], envs: &[(&str, &Path)]) -> Watched {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
    cmd.args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        out.read_to_end(&mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        err.read_to_end(&mut s).unwrap();
        s
    });
    let pid = child.id();
    let mut samples = Vec::new();
    let status = loop {
        for f in ["cmdline", "environ"] {
            if let Ok(b) = std::fs::read(format!("/proc/{pid}/{f}")) {
                samples.push(b);
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    Watched {
        ok: status.success(),
        stdout,
        stderr,
        samples,
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

impl Watched {
    fn clean_of(&self, secrets: &[&str], what: &str) {
        assert!(!self.samples.is_empty(), "{what}: no /proc sample taken");
        for s in secrets {
            assert!(!self.stdout.contains(s), "{what}: stdout shows {s}");
            assert!(!self.stderr.contains(s), "{what}: stderr shows {s}");
            for sample in &self.samples {
                assert!(
                    !contains(sample, s),
                    "{what}: argv or environment holds {s}"
                );
            }
        }
    }
}

/// Every file below `dir` (except `skip`) is free of the secrets.
fn tree_clean_of(dir: &Path, secrets: &[&str], skip: &[&Path]) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if skip.iter().any(|s| p == *s) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let b = std::fs::read(&p).unwrap();
            for s in secrets {
                assert!(!contains(&b, s), "{} holds {s}", p.display());
            }
            n += 1;
        }
    }
    n
}

fn answers(base: &Path, secrets: &[(&str, &Path)]) -> PathBuf {
    let mut t = String::from("confirm = \"yes\"\n[secrets]\n");
    for (k, f) in secrets {
        t.push_str(&format!("\"{k}\" = \"{}\"\n", f.display()));
    }
    let p = base.join("answers.toml");
    std::fs::write(&p, t).unwrap();
    p
}

fn create_root_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml")
}

/// Every shipped ceremony rehearsed against SoftHSM (rehearsal tokens,
/// PIN from a pin-source file): the rehearsal PINs appear nowhere but in
/// the PIN file itself.
#[test]
fn rehearsal_shows_and_writes_no_pin() {
    if softhsm_module().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let pin = arca::ceremony::rehearse::REHEARSAL_PIN;
    let secrets = [pin, REHEARSAL_SO_PIN];
    let w = watched(
        &[
            "ceremony",
            "run",
            create_root_file().to_str().unwrap(),
            "--rehearse",
            "--base",
            base.to_str().unwrap(),
        ],
        &[],
    );
    assert!(w.ok, "{}", w.stderr);
    w.clean_of(&secrets, "rehearsal");
    let out = base.join("out/create-root");
    assert!(out.join("journal.jsonl").exists());
    let n = tree_clean_of(&out, &secrets, &[]);
    assert!(n >= 5, "only {n} files in the output folder");
    // the rehearsal folder: only the PIN file holds the PIN
    let pin_file = base.join(".rehearsal-tokens/rehearsal.pin");
    assert!(pin_file.exists());
    let tokens = base.join(".rehearsal-tokens/tokens");
    tree_clean_of(
        &base.join(".rehearsal-tokens"),
        &secrets,
        &[&pin_file, &tokens],
    );
}

/// A create-root ceremony on PKCS#11 tokens initialised with distinctive
/// PINs (given by pin-source files), then a janitor's key on a token
/// signing a targets file, then a wrong PIN.
#[test]
fn pkcs11_ceremony_and_janitor_show_no_pin() {
    let Some(module) = softhsm_module() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let tokens = base.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = base.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    // this test binary's only user of SoftHSM: the variable is set before
    // any PKCS#11 call and never changed
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pin_file = secrets_dir.join("user.pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let mut profile = String::from("[holders]\n");
    for h in ["alice", "bob", "carol", "jan"] {
        let label = format!("sec-{h}");
        arca::keys::pkcs11::init_token(
            &module,
            &label,
            &zeroize::Zeroizing::new(SO_PIN.to_string()),
            &zeroize::Zeroizing::new(USER_PIN.to_string()),
        )
        .unwrap();
        if h != "jan" {
            profile.push_str(&format!(
                "{h} = \"pkcs11:token={label}?module-path={}&pin-source=file:{}\"\n",
                module.display(),
                pin_file.display()
            ));
        }
    }
    std::fs::write(base.join("profile.toml"), &profile).unwrap();
    let ans = answers(base, &[]);
    let secrets = [USER_PIN, SO_PIN];
    let env = [("SOFTHSM2_CONF", conf.as_path())];
    let w = watched(
        &[
            "ceremony",
            "run",
            create_root_file().to_str().unwrap(),
            "--profile",
            base.join("profile.toml").to_str().unwrap(),
            "--answers",
            ans.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ],
        &env,
    );
    assert!(w.ok, "{}", w.stderr);
    w.clean_of(&secrets, "pkcs11 ceremony");
    let out = base.join("out/create-root");
    assert!(tree_clean_of(&out, &secrets, &[]) >= 5);

    // the janitor: a key on their token, a targets file signed with it
    let repo = base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    let ks = vector_key_store(base);
    let on = format!(
        "pkcs11:token=sec-jan;object=j1?module-path={}&pin-source=file:{}",
        module.display(),
        pin_file.display()
    );
    let run = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend([
            "-r",
            repo.to_str().unwrap(),
            "--key-store",
            ks.to_str().unwrap(),
        ]);
        let w = watched(&v, &env);
        assert!(w.ok, "{args:?}: {}", w.stderr);
        w.clean_of(&secrets, &format!("{args:?}"));
    };
    run(&["key", "new", "--id", "j1", "--on", &on]);
    run(&[
        "root",
        "add-to-role",
        "--role",
        "maintainer",
        "--id",
        "j1",
        "--on",
        &on,
    ]);
    run(&["root", "sign", "--id", "rootA"]);
    run(&["root", "sign", "--id", "rootB"]);
    run(&["targets", "create", "--id", "j1", "--on", &on]);
    run(&["targets", "compute", "--id", "j1"]);
    run(&["targets", "sign", "--id", "j1", "--on", &on]);
    tree_clean_of(&repo, &secrets, &[]);

    // a wrong PIN: refused, and neither PIN is echoed
    let wrong = secrets_dir.join("wrong.pin");
    std::fs::write(&wrong, WRONG_PIN).unwrap();
    let on_wrong = on.replace(
        &pin_file.display().to_string(),
        &wrong.display().to_string(),
    );
    let w = watched(
        &[
            "targets",
            "sign",
            "--id",
            "j1",
            "--on",
            &on_wrong,
            "-r",
            repo.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!w.ok, "a wrong PIN signed");
    assert!(
        w.stderr.to_lowercase().contains("pin"),
        "the error does not say the PIN is wrong: {}",
        w.stderr
    );
    w.clean_of(&[USER_PIN, SO_PIN, WRONG_PIN], "wrong PIN");
    // a PIN written into the location itself is refused, without echo
    let with_value = format!(
        "pkcs11:token=sec-jan;object=j1?module-path={}&pin-value={USER_PIN}",
        module.display()
    );
    let o = arca(["key", "pub", "--id", "j1", "--on", &with_value]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains(USER_PIN), "{}", stderr(&o));
}

/// A file-device ceremony whose root key file is encrypted: the
/// passphrase comes from the answers file's secret file and appears
/// nowhere else; a wrong passphrase is refused without being echoed.
#[test]
fn encrypted_key_file_ceremony_shows_no_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut profile = String::from("[holders]\n");
    for h in ["alice", "bob", "carol", "dave"] {
        let d = base.join("devices").join(h);
        std::fs::create_dir_all(&d).unwrap();
        profile.push_str(&format!("{h} = \"file:{}/\"\n", d.display()));
    }
    let profile_path = base.join("profile.toml");
    std::fs::write(&profile_path, profile).unwrap();
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pass = secrets_dir.join("pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let ans = answers(base, &[("passphrase for", &pass)]);
    let run = |file: &Path, answers: &Path| {
        watched(
            &[
                "ceremony",
                "run",
                file.to_str().unwrap(),
                "--profile",
                profile_path.to_str().unwrap(),
                "--answers",
                answers.to_str().unwrap(),
                "--base",
                base.to_str().unwrap(),
            ],
            &[],
        )
    };
    let w = run(&create_root_file(), &ans);
    assert!(w.ok, "{}", w.stderr);
    // encrypt alice's key with the passphrase (PBES2, AES-256-CBC)
    let alice_dir = base.join("devices/alice");
    let key = std::fs::read_dir(&alice_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut perm = std::fs::metadata(&key).unwrap().permissions();
    let mode = std::os::unix::fs::PermissionsExt::mode(&perm);
    let enc = secrets_dir.join("enc.pem");
    let o = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-in",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&enc)
        .arg("-passout")
        .arg(format!("file:{}", pass.display()))
        .output()
        .unwrap();
    if !o.status.success() {
        eprintln!(
            "openssl could not encrypt the key ({}): encrypted-key test not run",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&key, perm.clone()).unwrap();
    std::fs::copy(&enc, &key).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, mode);
    std::fs::set_permissions(&key, perm).unwrap();
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));

    let rotate = |out: &str| {
        let p = base.join(format!("{out}.toml"));
        std::fs::write(
            &p,
            format!(
                r#"kind = "rotate-key"
title = "bob's key was lost"
root = "out/create-root/root"
output = "out/{out}"
target = "root"
compromised = "rootB"
new_root_key = {{ id = "rootD", holder = "dave", algorithm = "ed25519" }}
holders = [ {{ id = "rootA", holder = "alice" }}, {{ id = "rootC", holder = "carol" }} ]
"#
            ),
        )
        .unwrap();
        p
    };
    // a wrong passphrase first: refused, nothing echoed
    let wrong = secrets_dir.join("wrong");
    std::fs::write(&wrong, WRONG_PASSPHRASE).unwrap();
    let wrong_ans_dir = base.join("wrong-answers");
    std::fs::create_dir_all(&wrong_ans_dir).unwrap();
    let wrong_ans = answers(&wrong_ans_dir, &[("passphrase for", &wrong)]);
    let w = run(&rotate("rotate-wrong"), &wrong_ans);
    assert!(!w.ok, "a wrong passphrase decrypted the key");
    assert!(w.stderr.contains("passphrase"), "{}", w.stderr);
    w.clean_of(&[PASSPHRASE, WRONG_PASSPHRASE], "wrong passphrase");
    // the right one
    let w = run(&rotate("rotate"), &ans);
    assert!(w.ok, "{}", w.stderr);
    w.clean_of(&[PASSPHRASE], "encrypted key ceremony");
    let out = base.join("out/rotate");
    assert!(out.join("journal.jsonl").exists());
    tree_clean_of(&base.join("out"), &[PASSPHRASE, WRONG_PASSPHRASE], &[]);
    tree_clean_of(&base.join("devices"), &[PASSPHRASE], &[]);
}
