//! Secret hygiene: every flow that handles a PIN or passphrase runs with
//! known, distinctive ones, and nothing arca shows or writes holds them:
//! the process's argv and environment (sampled from /proc while it runs),
//! stdout, stderr (or the whole terminal scrollback when a person types
//! the secrets), the journal and every file written. A wrong PIN or
//! passphrase is not echoed in the error either.
//!
//! Flows: the rehearsal; a ceremony on PKCS#11 tokens, `token keys` and a
//! janitor's token key; a sign request signed with a token key; an
//! encrypted key file; the bundle's online keys, encrypted at the ceremony
//! and opened on the online side, the passphrase from files and typed at a
//! terminal; a YubiKey set up at a terminal (PIN, PUK and management key
//! changed) and then used by a janitor (the YubiKey is the virtual PIV card
//! of `tests/support/vpiv.rs` behind real pcscd, see `tests/piv.rs`).
//! Terminals are tmux (`tests/support/term.rs`); there the whole scrollback
//! is scanned, and argv and environment of every process in the terminal.

#[path = "support/pcsc_card.rs"]
mod pcsc_card;
mod support;
#[path = "support/term.rs"]
mod term;
#[path = "support/vpiv.rs"]
mod vpiv;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use support::*;
use zeroize::Zeroizing;

/// Distinctive secrets, so a hit cannot be a coincidence.
const USER_PIN: &str = "UsrPin-4f1c9a-77";
const SO_PIN: &str = "SoPin-b83e20-91";
const PASSPHRASE: &str = "Passphrase-d5e6a1-kestrel";
const WRONG_PIN: &str = "WrongPin-0c4b2f-13";
const WRONG_PASSPHRASE: &str = "WrongPass-9a7d3e-osprey";
const REHEARSAL_SO_PIN: &str = "rehearsal-so-pin";
/// A YubiKey's PIN and PUK have 6 to 8 characters.
const YK_PIN: &str = "Yk7qP3x9";
const YK_PUK: &str = "Pk4wZ8m2";
const YK_WRONG_PIN: &str = "Wz2mQ8vK";

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

/// SoftHSM as this test binary's tests use it.
struct Hsm {
    module: PathBuf,
    conf: PathBuf,
}

/// The SoftHSM of this test process, and the turn to use it. The library
/// reads its configuration once per process (arca keeps the module loaded),
/// so all tests here share one token folder, set before any PKCS#11 call
/// and never changed; they take turns, so a token being initialised is
/// never seen half-written by another test's arca. The folder lives under
/// cargo's tmp directory, one per test process; those of finished runs are
/// removed.
fn softhsm() -> Option<(&'static Hsm, MutexGuard<'static, ()>)> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hsm = HSM
        .get_or_init(|| {
            let module = softhsm_module()?;
            let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
            for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("secrets-softhsm-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
            let dir = root.join(format!("secrets-softhsm-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let tokens = dir.join("tokens");
            std::fs::create_dir_all(&tokens).unwrap();
            let conf = dir.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                    tokens.display()
                ),
            )
            .unwrap();
            std::env::set_var("SOFTHSM2_CONF", &conf);
            Some(Hsm { module, conf })
        })
        .as_ref()?;
    Some((hsm, turn))
}

/// A new token with the distinctive SO and user PINs.
fn init_token(hsm: &Hsm, label: &str) {
    arca::keys::pkcs11::init_token(
        &hsm.module,
        label,
        &Zeroizing::new(SO_PIN.to_string()),
        &Zeroizing::new(USER_PIN.to_string()),
    )
    .unwrap();
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
fn watched<S: AsRef<std::ffi::OsStr>>(args: &[S], envs: &[(&str, &Path)]) -> Watched {
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

/// No argv or environment sample holds a secret.
fn samples_clean_of(samples: &[Vec<u8>], secrets: &[&str], what: &str) {
    assert!(!samples.is_empty(), "{what}: no /proc sample taken");
    for s in secrets {
        for sample in samples {
            assert!(
                !contains(sample, s),
                "{what}: argv or environment holds {s}"
            );
        }
    }
}

impl Watched {
    fn clean_of(&self, secrets: &[&str], what: &str) {
        for s in secrets {
            assert!(!self.stdout.contains(s), "{what}: stdout shows {s}");
            assert!(!self.stderr.contains(s), "{what}: stderr shows {s}");
        }
        samples_clean_of(&self.samples, secrets, what);
    }
}

/// `root` and every process below it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces and parentheses
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Samples argv and environment of a process and all below it (arca run
/// by a shell in a terminal) until finished.
struct TreeSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<Vec<u8>>, bool)>,
}

impl TreeSampler {
    fn start(root: u32) -> TreeSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let arca_argv0 = format!("{}\0", env!("CARGO_BIN_EXE_arca"));
            // distinct samples only: the same environment, sampled every
            // few milliseconds, need not be kept a thousand times
            let mut samples = std::collections::HashSet::new();
            let mut saw_arca = false;
            while !flag.load(Ordering::SeqCst) {
                for pid in process_tree(root) {
                    if let Ok(b) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                        saw_arca |= b.starts_with(arca_argv0.as_bytes());
                        samples.insert(b);
                    }
                    if let Ok(b) = std::fs::read(format!("/proc/{pid}/environ")) {
                        samples.insert(b);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (samples.into_iter().collect(), saw_arca)
        });
        TreeSampler { stop, thread }
    }

    /// The samples, after checking that arca itself was among them.
    fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        let (samples, saw_arca) = self.thread.join().unwrap();
        assert!(saw_arca, "arca's /proc entries were never sampled");
        samples
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
    let Some((hsm, _turn)) = softhsm() else {
        return;
    };
    let module = &hsm.module;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pin_file = secrets_dir.join("user.pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let mut profile = String::from("[holders]\n");
    for h in ["alice", "bob", "carol", "jan"] {
        let label = format!("sec-{h}");
        init_token(hsm, &label);
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
    let env = [("SOFTHSM2_CONF", hsm.conf.as_path())];
    let w = watched(
        &ceremony_args(
            "run",
            &create_root_file(),
            &base.join("profile.toml"),
            &ans,
            base,
        ),
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
        w.stdout
    };
    run(&["key", "new", "--id", "j1", "--on", &on]);
    // the token's keys, listed after logging in with the PIN
    let keys_on = format!(
        "pkcs11:token=sec-jan?module-path={}&pin-source=file:{}",
        module.display(),
        pin_file.display()
    );
    let w = watched(&["token", "keys", "--on", &keys_on], &env);
    assert!(w.ok, "{}", w.stderr);
    assert!(w.stdout.contains("j1"), "{}", w.stdout);
    w.clean_of(&secrets, "token keys");
    support::delegate_and_sign_targets(&run, &on);
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
    let profile_path = support::file_device_profile(base, &["alice", "bob", "carol", "dave"]);
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pass = secrets_dir.join("pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let ans = answers(base, &[("passphrase:key=rootA", &pass)]);
    let run = |file: &Path, answers: &Path| {
        watched(
            &ceremony_args("run", file, &profile_path, answers, base),
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
new_root_key = {{ id = "{new}", holder = "dave", algorithm = "ed25519" }}
holders = [ {{ id = "rootA", holder = "alice" }}, {{ id = "rootC", holder = "carol" }} ]
"#,
                // the refused run made its key; the next one makes another
                new = if out == "rotate" { "rootD" } else { "rootE" }
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
    let wrong_ans = answers(&wrong_ans_dir, &[("passphrase:key=rootA", &wrong)]);
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

fn online_keys_ceremony() -> String {
    CreateRoot::new("a root with online keys made at the ceremony")
        .generated_online()
        .text()
}

/// A ceremony generates the online keys and encrypts them into the bundle
/// with the passphrase of the answers file's secret file; `bundle open`
/// decrypts them with it from `--passphrase-file`, after refusing a wrong
/// one. Neither passphrase appears in what the runs show, in the output
/// folder, the bundle or the opened folder.
#[test]
fn bundle_online_key_passphrase_is_not_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let profile_path = support::file_device_profile(base, &["alice", "bob"]);
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pass = secrets_dir.join("pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let wrong = secrets_dir.join("wrong");
    std::fs::write(&wrong, format!("{WRONG_PASSPHRASE}\n")).unwrap();
    let ans = answers(base, &[("passphrase:online-keys", &pass)]);
    let ceremony = base.join("online-keys.toml");
    std::fs::write(&ceremony, online_keys_ceremony()).unwrap();
    let both = [PASSPHRASE, WRONG_PASSPHRASE];

    let w = watched(
        &ceremony_args("run", &ceremony, &profile_path, &ans, base),
        &[],
    );
    assert!(w.ok, "{}", w.stderr);
    w.clean_of(&[PASSPHRASE], "ceremony encrypting the online keys");
    let out = base.join("out");
    let bundle = out.join("bundle");
    assert!(out.join("journal.jsonl").exists());
    let n = tree_clean_of(&bundle, &both, &[]);
    assert!(n >= 5, "only {n} files in the bundle");
    tree_clean_of(&out, &both, &[]);

    let open = |passphrase_file: &Path| {
        watched(
            &[
                "bundle",
                "open",
                bundle.to_str().unwrap(),
                "--out",
                base.join("online").to_str().unwrap(),
                "--passphrase-file",
                passphrase_file.to_str().unwrap(),
            ],
            &[],
        )
    };
    // a wrong passphrase: refused, neither passphrase echoed
    let w = open(&wrong);
    assert!(!w.ok, "a wrong passphrase opened the online keys");
    assert!(w.stderr.contains("wrong passphrase"), "{}", w.stderr);
    w.clean_of(&both, "bundle open with a wrong passphrase");
    // the right one
    let w = open(&pass);
    assert!(w.ok, "{}", w.stderr);
    assert!(w.stdout.contains("key written"), "{}", w.stdout);
    w.clean_of(&both, "bundle open");
    let opened = base.join("online");
    assert!(opened.join("key-store").is_dir());
    assert!(tree_clean_of(&opened, &both, &[]) >= 3);
    // and nothing else in the room holds them but the two files given
    tree_clean_of(base, &both, &[&pass, &wrong]);
}

/// The online keys' passphrase typed at the terminal: twice at the
/// ceremony, then at `bundle open`, a wrong one first. Neither passphrase
/// appears on the terminal, in argv or the environment, or in any file.
#[test]
fn bundle_online_key_passphrase_typed_at_the_terminal() {
    if !term::tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let profile_path = support::file_device_profile(base, &["alice", "bob"]);
    let ceremony = base.join("online-keys.toml");
    std::fs::write(&ceremony, online_keys_ceremony()).unwrap();
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = [("HOME", home.to_str().unwrap())];
    let both = [PASSPHRASE, WRONG_PASSPHRASE];
    const PROMPT: &str = "passphrase for the online keys";

    let r = at_terminal(
        base,
        &env,
        &[
            "ceremony",
            "run",
            ceremony.to_str().unwrap(),
            "--profile",
            profile_path.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ],
        &[(PROMPT, PASSPHRASE)],
    );
    assert!(r.ok, "{}", r.shown);
    let typed: Vec<&String> = r.asked.iter().filter(|p| *p == PROMPT).collect();
    assert_eq!(
        typed.len(),
        2,
        "the passphrase is asked twice: {:?}",
        r.asked
    );
    r.clean_of(&both, "ceremony, passphrase typed");
    let bundle = base.join("out/bundle");
    assert!(bundle.join("MANIFEST").exists());

    let open = |out: &str, passphrase: &str| {
        at_terminal(
            base,
            &env,
            &[
                "bundle",
                "open",
                bundle.to_str().unwrap(),
                "--out",
                base.join(out).to_str().unwrap(),
            ],
            &[(PROMPT, passphrase)],
        )
    };
    let r = open("online", WRONG_PASSPHRASE);
    assert!(!r.ok, "a wrong passphrase opened the online keys");
    assert!(r.shown.contains("wrong passphrase"), "{}", r.shown);
    r.clean_of(&both, "bundle open, wrong passphrase typed");
    let r = open("online", PASSPHRASE);
    assert!(r.ok, "{}", r.shown);
    assert!(r.shown.contains("key written"), "{}", r.shown);
    r.clean_of(&both, "bundle open, passphrase typed");
    assert!(base.join("online/key-store").is_dir());
    // no file in the room holds either passphrase
    tree_clean_of(base, &both, &[]);
}

/// An absent holder signs a pending root from a sign request with the key
/// on their token, the PIN given by a pin-source file; then with a wrong
/// PIN, refused. Neither PIN shows; the signature file, the request and
/// the repository hold none.
#[test]
fn sign_request_with_a_token_shows_no_pin() {
    let Some((hsm, _turn)) = softhsm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    init_token(hsm, "sec-holder");
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pin_file = secrets_dir.join("user.pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let wrong = secrets_dir.join("wrong.pin");
    std::fs::write(&wrong, format!("{WRONG_PIN}\n")).unwrap();
    let env = [
        ("SOFTHSM2_CONF", hsm.conf.as_path()),
        ("HOME", home.as_path()),
    ];
    let secrets = [USER_PIN, SO_PIN];
    let uri = |pin: &Path| {
        format!(
            "pkcs11:token=sec-holder;object=rootH?module-path={}&pin-source=file:{}",
            hsm.module.display(),
            pin.display()
        )
    };
    let on = uri(&pin_file);
    let run = |args: &[&str]| {
        let w = watched(args, &env);
        assert!(w.ok, "{args:?}: {}", w.stderr);
        w.clean_of(&secrets, &format!("{args:?}"));
        w.stdout
    };
    let repo = base.join("repo");
    std::fs::create_dir_all(repo.join("packages")).unwrap();
    ok(&arca(["root", "create", "-r", repo.to_str().unwrap()]));
    run(&["key", "new", "--id", "rootH", "--on", &on]);
    let p: serde_json::Value = serde_json::from_str(&run(&[
        "key", "pub", "--id", "rootH", "--on", &on, "--json",
    ]))
    .unwrap();
    let key_data = base.join("rootH.pub");
    std::fs::write(&key_data, p["key"].as_str().unwrap()).unwrap();
    ok(&arca([
        "root",
        "add-key",
        "-r",
        repo.to_str().unwrap(),
        "--id",
        "rootH",
        "--key-data",
        key_data.to_str().unwrap(),
        "--quorum",
        "1",
    ]));
    let req = base.join("req.json");
    ok(&arca([
        "sign-request",
        "export",
        "--id",
        "rootH",
        "-r",
        repo.to_str().unwrap(),
        "--out",
        req.to_str().unwrap(),
    ]));
    let ans = answers(base, &[]);
    let sign = |on: &str, sig: &Path| {
        watched(
            &[
                "sign-request",
                "sign",
                req.to_str().unwrap(),
                "--id",
                "rootH",
                "--on",
                on,
                "--answers",
                ans.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
            &env,
        )
    };
    let sig = base.join("sig.json");
    let w = sign(&on, &sig);
    assert!(w.ok, "{}", w.stderr);
    w.clean_of(&secrets, "sign-request sign");
    assert!(sig.exists());
    // a wrong PIN: refused, no PIN echoed, no signature written
    let bad_sig = base.join("sig-wrong.json");
    let w = sign(&uri(&wrong), &bad_sig);
    assert!(!w.ok, "a wrong PIN signed the request");
    assert!(
        w.stderr.to_lowercase().contains("pin"),
        "the error does not say the PIN is wrong: {}",
        w.stderr
    );
    w.clean_of(
        &[USER_PIN, SO_PIN, WRONG_PIN],
        "sign-request sign, wrong PIN",
    );
    assert!(!bad_sig.exists());
    // the signature is real: it is taken into the root
    ok(&arca([
        "sign-request",
        "import",
        sig.to_str().unwrap(),
        "-r",
        repo.to_str().unwrap(),
    ]));
    let n = tree_clean_of(base, &[USER_PIN, SO_PIN, WRONG_PIN], &[&pin_file, &wrong]);
    assert!(n >= 4, "only {n} files written");
}

/// Answers arca's prompts at the terminal, each by its text, until arca
/// exits: secrets from `answers`, confirmations with yes. A secret is typed
/// only once the terminal no longer echoes; a secret prompt that keeps
/// echoing fails the test. Returns the prompts answered, in order.
fn answer_prompts(t: &term::Term, answers: &[(&str, &str)]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut asked = Vec::new();
    while !t.text().contains("ARCA-EXITED") {
        assert!(
            Instant::now() < deadline,
            "arca did not finish; screen:\n{}",
            t.screen()
        );
        let last = t.last_line();
        let prompt = last.trim_end();
        let before = t.text();
        let secret = answers
            .iter()
            .find(|(p, _)| prompt.ends_with(':') && prompt.contains(p));
        if let Some((p, a)) = secret {
            // arca turns echo off right after showing the prompt
            let shown = Instant::now();
            while t.echoes() {
                assert!(
                    shown.elapsed() < Duration::from_secs(10),
                    "the terminal still echoes at the prompt {prompt:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            t.type_secret(a);
            asked.push(p.to_string());
        } else if prompt.ends_with("[y/N]") {
            // as people answer: the letter, then Enter
            t.type_line("y");
            asked.push(prompt.to_string());
        } else if prompt.starts_with("Enter to go on") || prompt.contains("Enter for the next page")
        {
            t.keys(&["Enter"]);
        } else {
            assert!(
                !(prompt.ends_with(':') && !t.echoes() && t.last_line() == last),
                "an unexpected secret prompt: {prompt}"
            );
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        t.wait(&format!("the answer to {prompt:?} to be taken"), |t| {
            t.text() != before
        });
    }
    asked
}

/// What a run at the terminal exposed: the whole scrollback and every
/// argv/environment sample of the processes in the terminal.
struct AtTerminal {
    ok: bool,
    shown: String,
    samples: Vec<Vec<u8>>,
    asked: Vec<String>,
}

/// Runs `arca ARGS…` in a terminal (tmux) in `dir`, answering its prompts
/// with `answers` (see `answer_prompts`), sampling /proc all along.
fn at_terminal(
    dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    answers: &[(&str, &str)],
) -> AtTerminal {
    let t = term::Term::run(dir, env, args);
    let sampler = TreeSampler::start(t.pane_pid());
    let asked = answer_prompts(&t, answers);
    let shown = t.text();
    let samples = sampler.finish();
    AtTerminal {
        ok: shown.contains("ARCA-EXITED 0\n"),
        shown,
        samples,
        asked,
    }
}

impl AtTerminal {
    fn clean_of(&self, secrets: &[&str], what: &str) {
        for s in secrets {
            assert!(
                !self.shown.contains(s),
                "{what}: the terminal shows {s}:\n{}",
                self.shown
            );
        }
        samples_clean_of(&self.samples, secrets, what);
    }
}

/// A YubiKey set up at the terminal (`arca piv setup`: new management
/// key, new PIN, new PUK, each typed), then a janitor's RSA key generated
/// on it and their targets file signed with it through pin-source files
/// holding the new PIN, then a wrong PIN. The new PIN and PUK appear
/// nowhere: not in the terminal's scrollback, not in argv or the
/// environment of any run, not in any file but the PIN files the test
/// wrote; a wrong PIN is not echoed.
#[test]
fn yubikey_setup_and_janitor_show_no_pin() {
    let Some(_lock) = pcsc_card::pcsc_lock() else {
        return;
    };
    if !term::tmux_available() {
        return;
    }
    let serial = 5_700_321;
    let plugged = pcsc_card::Plugged::new(vpiv::CardConfig::fw57(serial));
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let all = [YK_PIN, YK_PUK, YK_WRONG_PIN];

    // a. setup, typed at the terminal
    let prompts = [
        ("current PIN of YubiKey", "123456"),
        ("new PIN (6 to 8 characters)", YK_PIN),
        ("new PIN again", YK_PIN),
        ("current PUK of YubiKey", "12345678"),
        ("new PUK (6 to 8 characters)", YK_PUK),
        ("new PUK again", YK_PUK),
    ];
    let r = at_terminal(
        base,
        &[("HOME", home.to_str().unwrap())],
        &["piv", "setup", "--on", &format!("piv:serial={serial}")],
        &prompts,
    );
    assert!(r.ok, "{}", r.shown);
    assert!(r.shown.contains("PIN and PUK changed"), "{}", r.shown);
    assert!(r.shown.contains("[hidden]"), "{}", r.shown);
    let expected: Vec<&str> = prompts.iter().map(|(p, _)| *p).collect();
    assert_eq!(r.asked, expected);
    {
        let card = plugged.card();
        assert!(card.pin_is(YK_PIN.as_bytes()), "the PIN was not changed");
        assert!(card.puk_is(YK_PUK.as_bytes()), "the PUK was not changed");
        assert_ne!(card.mgm_key(), vpiv::DEFAULT_MGM_KEY);
    }
    r.clean_of(&[YK_PIN, YK_PUK], "piv setup at the terminal");

    // b. a janitor's key on the YubiKey signs their targets file
    let secrets_dir = base.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let pin = secrets_dir.join("yk.pin");
    std::fs::write(&pin, format!("{YK_PIN}\n")).unwrap();
    let on = format!(
        "piv:serial={serial};slot=9c;pin-source=file:{}",
        pin.display()
    );
    let ks = vector_key_store(base);
    let repo = base.join("repo");
    copy_tree(&vectors().join("repo"), &repo);
    let env = [("HOME", home.as_path())];
    let with_repo = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            ks.display().to_string(),
        ]);
        v
    };
    let run = |args: &[&str]| {
        let v = with_repo(args);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        let w = watched(&v, &env);
        assert!(w.ok, "{args:?}: {}", w.stderr);
        w.clean_of(&all, &format!("{args:?}"));
        w.stdout
    };
    let made = run(&[
        "key",
        "new",
        "--id",
        "j1",
        "--key-algorithm",
        "rsa2048",
        "--on",
        &on,
    ]);
    assert!(made.contains("created key j1"), "{made}");
    let p = run(&[
        "key",
        "pub",
        "--id",
        "j1",
        "--on",
        &format!("piv:serial={serial};slot=9c"),
    ]);
    assert!(p.contains("rsa=-----BEGIN PUBLIC KEY-----"), "{p}");
    let signed = support::delegate_and_sign_targets(&run, &on);
    assert!(
        signed.contains("targets j1 signed at counter 1"),
        "{signed}"
    );

    // c. a wrong PIN: the YubiKey refuses it (one try used), not echoed
    let wrong = secrets_dir.join("wrong.pin");
    std::fs::write(&wrong, format!("{YK_WRONG_PIN}\n")).unwrap();
    let on_wrong = format!(
        "piv:serial={serial};slot=9c;pin-source=file:{}",
        wrong.display()
    );
    let v = with_repo(&["targets", "sign", "--id", "j1", "--on", &on_wrong]);
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    let w = watched(&v, &env);
    assert!(!w.ok, "a wrong PIN signed");
    assert!(w.stderr.contains("wrong PIN"), "{}", w.stderr);
    w.clean_of(&all, "targets sign with a wrong YubiKey PIN");
    assert_eq!(plugged.card().pin_tries(), 2, "the wrong PIN was not tried");

    // nothing in the room holds the new PIN or PUK but the PIN files
    tree_clean_of(base, &all, &[&pin, &wrong]);
}
