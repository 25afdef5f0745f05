//! The PKCS#11 suite against three independent implementations, through the
//! real `arca` binary: SoftHSM2, kryoptic (a soft token in Rust, built by
//! `.ci/run` into `target/kryoptic/`) and Yubico's ykcs11 over the virtual
//! PIV card (`tests/support/vpiv.rs` behind pcscd).
//!
//! For each: keys generated on the token, their attributes read back by
//! OpenSC's `pkcs11-tool` (sensitive, always sensitive, never extractable);
//! RSA-PSS (salt 32) and EdDSA signatures in a janitor's targets file that
//! conex's own verifiers check; a create-root rehearsal whose root arca
//! verifies. Where an implementation lacks a mechanism (ykcs11 2.2: no
//! Ed25519, RSA up to 2048 bits), the test says so and checks that arca
//! refuses before a PIN is asked for or sent.
//!
//! PINs: arca reads them from `pin-source` files; `pkcs11-tool` gets them
//! typed on a pseudo-terminal. All are throw-away test values.

#[path = "support/pcsc_card.rs"]
mod pcsc_card;
#[path = "support/pty.rs"]
mod pty;
mod support;
#[path = "support/vpiv.rs"]
mod vpiv;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use zeroize::Zeroizing;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const YKCS11: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";
/// Throw-away user PIN of the soft tokens (kryoptic wants 8 or more).
const TEST_PIN: &str = "test-pin-4711";
/// The virtual card's factory PIN and management key (ykcs11's SO PIN).
const CARD_PIN: &str = "123456";
const CARD_MGM: &str = "010203040506070801020304050607080102030405060708";

/// One implementation at a time: each sets its own environment for the
/// arca processes, and the card is shared machine-wide.
static TURN: Mutex<()> = Mutex::new(());

struct Impl {
    name: &'static str,
    module: PathBuf,
    token: String,
    pin_file: PathBuf,
    /// Extra environment for every process that loads the module.
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Impl {
    fn uri(&self, object: Option<&str>) -> String {
        let token = self.token.replace(' ', "%20").replace('#', "%23");
        let object = object.map(|o| format!(";object={o}")).unwrap_or_default();
        format!(
            "pkcs11:token={token}{object}?module-path={}&pin-source=file:{}",
            self.module.display(),
            self.pin_file.display()
        )
    }

    fn arca<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.args(args).env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().expect("run arca")
    }

    fn arca_ok(&self, args: &[&str]) -> String {
        support::ok(&self.arca(args))
    }

    /// `pkcs11-tool --list-objects` after logging in, the PIN typed.
    fn objects(&self, pin: &str) -> String {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.arg("--module").arg(&self.module).args([
            "--token-label",
            &self.token,
            "--login",
            "--list-objects",
        ]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let (status, out) = pty::run_typing(cmd, "PIN", &format!("{pin}\n"));
        assert!(status.success(), "{}: pkcs11-tool: {out}", self.name);
        out.replace("\r\n", "\n")
    }

    /// Runs the built-in create-root ceremony in `dir/ceremony` with every
    /// holder's key on this token; returns that folder and the run's output.
    fn run_create_root(&self) -> (PathBuf, Output) {
        let base = self.dir.path().join("ceremony");
        std::fs::create_dir_all(&base).unwrap();
        let uri = self.uri(None);
        std::fs::write(
            base.join("profile.toml"),
            format!("[holders]\nalice = \"{uri}\"\nbob = \"{uri}\"\ncarol = \"{uri}\"\n"),
        )
        .unwrap();
        std::fs::write(base.join("answers.toml"), "confirm = \"yes\"\n").unwrap();
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/create-root.toml");
        let args = support::ceremony_args(
            "run",
            &file,
            &base.join("profile.toml"),
            &base.join("answers.toml"),
            &base.join(""),
        );
        let o = self.arca(&args);
        (base, o)
    }
}

/// What a run printed: its stdout, then its stderr.
fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        support::stderr(o)
    )
}

/// ykcs11 over a virtual card, plugged in until this is dropped, the card's
/// PIN in the pin-source file.
struct Ykcs11Card {
    imp: Impl,
    plugged: pcsc_card::Plugged,
    _lock: pcsc_card::PcscGuard,
}

/// Plugs in a virtual card of `config` for ykcs11; None (the test passes
/// over it) where ykcs11 or PC/SC is missing.
fn ykcs11_card(config: vpiv::CardConfig) -> Option<Ykcs11Card> {
    if !Path::new(YKCS11).exists() && missing("ykcs11") {
        return None;
    }
    let lock = pcsc_card::pcsc_lock()?;
    let serial = config.serial;
    let plugged = pcsc_card::Plugged::new(config);
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{CARD_PIN}\n")).unwrap();
    let imp = Impl {
        name: "ykcs11",
        module: YKCS11.into(),
        token: format!("YubiKey PIV #{serial}"),
        pin_file,
        env: vec![],
        dir,
    };
    Some(Ykcs11Card {
        imp,
        plugged,
        _lock: lock,
    })
}

fn missing(what: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing (bash .ci/run installs and builds it)"
    );
    eprintln!("{what} is missing: skipping");
    true
}

fn softhsm() -> Option<Impl> {
    if !Path::new(SOFTHSM).exists() && missing("SoftHSM") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let pin_input = dir.path().join("pin-input");
    std::fs::write(&pin_input, format!("{TEST_PIN}\n")).unwrap();
    let hsm = dir.path().join("hsm");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup.sh"))
        .arg("--dir")
        .arg(&hsm)
        .arg("--pin-file")
        .arg(&pin_input)
        .args(["--token", "impl-softhsm"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Impl {
        name: "SoftHSM2",
        module: SOFTHSM.into(),
        token: "impl-softhsm".into(),
        pin_file: hsm.join("user-pin"),
        env: vec![(
            "SOFTHSM2_CONF".into(),
            hsm.join("softhsm2.conf").display().to_string(),
        )],
        dir,
    })
}

/// kryoptic's module: `$ARCA_KRYOPTIC_MODULE`, or where `.ci/run` puts it.
fn kryoptic_module() -> PathBuf {
    std::env::var_os("ARCA_KRYOPTIC_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kryoptic/libkryoptic_pkcs11.so")
        })
}

fn kryoptic() -> Option<Impl> {
    let module = kryoptic_module();
    if !module.exists() && missing(&format!("kryoptic ({})", module.display())) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kryoptic.conf");
    std::fs::write(
        &conf,
        format!(
            "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
            dir.path().join("token.sql").display()
        ),
    )
    .unwrap();
    let pin_file = dir.path().join("user-pin");
    std::fs::write(&pin_file, format!("{TEST_PIN}\n")).unwrap();
    // The token is initialised in a child process of its own (this very
    // test binary), so this process never loads the module.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "init_token_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KRYOPTIC_CONF", &conf)
        .env("ARCA_TEST_INIT_MODULE", &module)
        .env("ARCA_TEST_INIT_LABEL", "impl-kryoptic")
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && all.contains("token initialised"),
        "initialising the kryoptic token: {all}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Impl {
        name: "kryoptic",
        module,
        token: "impl-kryoptic".into(),
        pin_file,
        env: vec![("KRYOPTIC_CONF".into(), conf.display().to_string())],
        dir,
    })
}

/// Child mode: initialises a token with arca's own initialisation (as a
/// rehearsal does). Does nothing in a normal test run.
#[test]
fn init_token_child() {
    let Some(module) = std::env::var_os("ARCA_TEST_INIT_MODULE") else {
        return;
    };
    let label = std::env::var("ARCA_TEST_INIT_LABEL").unwrap();
    arca::keys::pkcs11::init_token(
        Path::new(&module),
        &label,
        &Zeroizing::new("so-pin-4711-so".to_string()),
        &Zeroizing::new(TEST_PIN.to_string()),
    )
    .expect("init token");
    println!("token initialised");
}

fn repo_with_vector_keys(base: &Path) -> (PathBuf, PathBuf) {
    let ks = support::vector_key_store(base);
    let repo = base.join("repo");
    support::copy_tree(&support::vectors().join("repo"), &repo);
    (repo, ks)
}

/// The janitor flow with the key at `on`; then conex's two verifiers check
/// the repository, the janitor's signature included.
fn janitor_flow(imp: &Impl, on: &str, what: &str) {
    let base = imp.dir.path().join(format!("janitor-{what}"));
    std::fs::create_dir_all(&base).unwrap();
    let (repo, ks) = repo_with_vector_keys(&base);
    let run = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend([
            "-r",
            repo.to_str().unwrap(),
            "--key-store",
            ks.to_str().unwrap(),
        ]);
        imp.arca_ok(&v)
    };
    let out = support::delegate_and_sign_targets(&run, on);
    assert!(out.contains("targets j1 signed"), "{}: {out}", imp.name);
    for a in [
        &["snapshot", "create"][..],
        &["snapshot", "sign"],
        &["timestamp", "create"],
        &["timestamp", "sign"],
    ] {
        run(a);
    }
    conex_accepts(
        &repo,
        &format!("{},{}", support::ANCHOR_A, support::ANCHOR_B),
    );
}

fn conex_accepts(repo: &Path, anchors: &str) {
    if !cfg!(arca_conex_oracle) {
        // without conex's tools (a clone without ../shared), arca verifies
        let o = support::arca([
            "verify",
            "--dir",
            repo.to_str().unwrap(),
            "-t",
            anchors,
            "--quorum",
            "2",
        ]);
        support::ok(&o);
        return;
    }
    for tool in ["conex_verify_openssl", "conex_verify_mirage_crypto"] {
        let out = Command::new(support::conex_tool(tool))
            .arg(format!("--dir={}", repo.display()))
            .arg(format!("--trust-anchors={anchors}"))
            .arg("--quorum=2")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} refuses the repository:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The private key labelled `label` in `pkcs11-tool`'s listing is locked
/// down: sensitive, always sensitive, never extractable.
fn assert_locked_down(imp: &Impl, objects: &str, label: &str) {
    let block = objects
        .split("Private Key Object")
        .skip(1)
        .find(|b| b.contains(&format!("label:      {label}\n")))
        .unwrap_or_else(|| panic!("{}: no private key {label} in:\n{objects}", imp.name));
    let access = block
        .lines()
        .find(|l| l.trim_start().starts_with("Access:"))
        .unwrap_or_else(|| panic!("{}: no access line:\n{block}", imp.name));
    for want in ["sensitive", "always sensitive", "never extractable"] {
        assert!(
            access.contains(want),
            "{}: {label} is not {want}: {access}",
            imp.name
        );
    }
    assert!(
        !access.contains(" extractable,") && !access.trim_end().ends_with(" extractable")
            || access.contains("never extractable"),
        "{}: {label}: {access}",
        imp.name
    );
}

/// Generation, attributes, signatures and the janitor flow on a soft token
/// that offers RSA-PSS and EdDSA.
fn soft_token_suite(imp: &Impl) {
    let ks = imp.dir.path().join("ks");
    for (id, alg) in [("j-rsa", "rsa"), ("j-ed", "ed25519")] {
        let on = imp.uri(Some(id));
        let out = imp.arca_ok(&[
            "key",
            "new",
            "--id",
            id,
            "--key-algorithm",
            alg,
            "--on",
            &on,
            "--key-store",
            ks.to_str().unwrap(),
        ]);
        assert!(
            out.contains(&format!("created key {id}")),
            "{}: {out}",
            imp.name
        );
    }
    let objects = imp.objects(TEST_PIN);
    assert_locked_down(imp, &objects, "j-rsa");
    assert_locked_down(imp, &objects, "j-ed");
    let keys = imp.arca_ok(&["token", "keys", "--on", &imp.uri(None)]);
    assert!(
        keys.contains("j-rsa rsa 4096") && keys.contains("j-ed ed25519"),
        "{}: {keys}",
        imp.name
    );
    janitor_flow(imp, &imp.uri(Some("j-rsa")), "rsa");
    janitor_flow(imp, &imp.uri(Some("j-ed")), "ed25519");
    create_root_rehearsal(imp);
}

/// The create-root ceremony with every holder's key on this token.
fn create_root_rehearsal(imp: &Impl) {
    let (base, o) = imp.run_create_root();
    support::ok(&o);
    let out = base.join("out/create-root");
    let anchors = std::fs::read_to_string(out.join("anchors.txt")).unwrap();
    let repo = base.join("repo");
    support::copy_tree(&support::vectors().join("repo"), &repo);
    std::fs::copy(out.join("root"), repo.join("root")).unwrap();
    let v = support::arca([
        "verify",
        "--dir",
        repo.to_str().unwrap(),
        "-t",
        anchors.trim(),
        "--quorum",
        "2",
    ]);
    let all = all_output(&v);
    assert!(v.status.success(), "{}: {all}", imp.name);
}

#[test]
fn softhsm2() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(imp) = softhsm() else { return };
    soft_token_suite(&imp);
}

#[test]
fn kryoptic_soft_token() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(imp) = kryoptic() else { return };
    soft_token_suite(&imp);
}

/// Yubico's ykcs11 over the virtual card. Key generation through ykcs11
/// needs the management key as SO PIN (arca logs in as the user, so it
/// generates YubiKey keys with `piv:` instead): pkcs11-tool generates the
/// RSA key, the SO PIN typed on a terminal; arca reads it back, signs
/// RSA-PSS salt 32 for a janitor (a key that wants its PIN before every
/// signature, from the pin-source file), and conex's verifiers check it.
/// ykcs11 2.2 has no Ed25519 and no RSA above 2048 bits: arca refuses to
/// generate an Ed25519 key before any PIN reaches the card, and the
/// create-root ceremony stops at its RSA-4096 root key with a one-line
/// reason, writing no root.
#[test]
fn ykcs11_over_the_virtual_card() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(card) = ykcs11_card(vpiv::CardConfig::fw54(19_100_001)) else {
        return;
    };
    let (imp, plugged) = (&card.imp, &card.plugged);

    // generated through ykcs11 (slot 9c is CKA_ID 2)
    let mut cmd = Command::new("pkcs11-tool");
    cmd.args(["--module", YKCS11, "--token-label", &imp.token])
        .args(["--login", "--login-type", "so", "--keypairgen"])
        .args(["--key-type", "rsa:2048", "--id", "02"]);
    let (status, out) = pty::run_typing(cmd, "PIN", &format!("{CARD_MGM}\n"));
    assert!(status.success(), "ykcs11 key generation: {out}");

    let objects = imp.objects(CARD_PIN);
    assert_locked_down(imp, &objects, "Private key for Digital Signature");
    let keys = imp.arca_ok(&["token", "keys", "--on", &imp.uri(None)]);
    assert!(keys.contains("rsa 2048"), "ykcs11: {keys}");

    let on = imp.uri(None).replacen('?', ";id=%02?", 1);
    janitor_flow(imp, &on, "rsa");

    // no Ed25519: the token listing says so, and arca refuses before any
    // PIN is asked for or sent to the card
    let list = imp.arca_ok(&["token", "list", "--module", YKCS11]);
    let line = list
        .lines()
        .find(|l| l.contains("can generate:"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("rsa2048") && !line.contains("ed25519") && !line.contains("rsa4096"),
        "{list}"
    );
    eprintln!("ykcs11 2.2: no CKM_EC_EDWARDS_KEY_PAIR_GEN/CKM_EDDSA, RSA up to 2048 bits: checking that arca refuses cleanly");
    let verifies_before = plugged.card().trace.pins_sent;
    let ks = imp.dir.path().join("ks");
    let o = imp.arca(&[
        "key",
        "new",
        "--id",
        "j-ed",
        "--key-algorithm",
        "ed25519",
        "--on",
        &imp.uri(Some("j-ed")),
        "--key-store",
        ks.to_str().unwrap(),
    ]);
    let err = support::stderr(&o);
    assert!(!o.status.success(), "ykcs11 2.2 has no Ed25519: {err}");
    assert!(err.contains("CKM_EC_EDWARDS_KEY_PAIR_GEN"), "{err}");
    assert!(
        !err.to_lowercase().contains("pin"),
        "asked for a PIN: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(
        plugged.card().trace.pins_sent,
        verifies_before,
        "key new sent a PIN to the card"
    );
    // the create-root ceremony (Ed25519 root keys) is refused the same way
    let pins_before = plugged.card().trace.pins_sent;
    let (base, o) = imp.run_create_root();
    let all = all_output(&o);
    assert!(!o.status.success(), "{all}");
    // the preflight lists what the token can generate; the first root key
    // it cannot make (rootA, RSA-4096) stops the ceremony, before its PIN
    assert!(
        all.contains("can generate rsa2048")
            && all.contains("makes RSA keys of 1024 to 2048 bits, not 4096"),
        "{all}"
    );
    assert!(
        !base.join("out/create-root/root").exists(),
        "no root is written"
    );
    // refused in preflight: no PIN reached the card, no journal was started
    assert_eq!(
        plugged.card().trace.pins_sent,
        pins_before,
        "the ceremony sent a PIN to the card before refusing: {all}"
    );
    assert!(
        all.contains("[FAIL] key rootA"),
        "not refused in preflight: {all}"
    );
    assert!(
        !base.join("out/create-root/journal.jsonl").exists(),
        "a journal was left behind"
    );
}

/// `token list` and `token keys` as people read them: SoftHSM's spare
/// uninitialised slot is named as such, an empty token says "no keys", an
/// ECDSA key says conex has no ECDSA, and a wrong PIN is reported as the
/// token reports it (SoftHSM's count-low flag says a wrong PIN was entered,
/// not that few tries are left).
#[test]
fn token_list_and_keys_say_what_the_token_says() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(imp) = softhsm() else { return };
    let list = imp.arca_ok(&["token", "list", "--module", SOFTHSM]);
    assert!(list.contains("impl-softhsm — SoftHSM"), "{list}");
    assert!(
        list.contains("uninitialised slot") && list.contains("no token yet"),
        "{list}"
    );
    assert!(
        !list
            .lines()
            .any(|l| l.starts_with(" — ") || l.ends_with("serial ")),
        "an empty entry: {list}"
    );
    let keys = imp.arca_ok(&["token", "keys", "--on", &imp.uri(None)]);
    assert_eq!(keys.trim(), "no keys on this token");

    // an ECDSA key made with pkcs11-tool
    let mut cmd = Command::new("pkcs11-tool");
    cmd.args(["--module", SOFTHSM, "--token-label", &imp.token])
        .args(["--login", "--keypairgen", "--key-type", "EC:prime256v1"])
        .args(["--label", "ecdsa-key", "--id", "0e"]);
    for (k, v) in &imp.env {
        cmd.env(k, v);
    }
    let (status, out) = pty::run_typing(cmd, "PIN", &format!("{TEST_PIN}\n"));
    assert!(status.success(), "{out}");
    let keys = imp.arca_ok(&["token", "keys", "--on", &imp.uri(None)]);
    assert!(keys.contains("ecdsa-key ec"), "{keys}");
    assert!(keys.contains("conex has no ECDSA"), "{keys}");
    assert!(!keys.contains("public key cannot be read"), "{keys}");

    // one wrong PIN, then the right one
    let wrong = imp.dir.path().join("wrong-pin");
    std::fs::write(&wrong, "not-the-pin\n").unwrap();
    let wrong_uri = imp.uri(None).replace(
        &format!("pin-source=file:{}", imp.pin_file.display()),
        &format!("pin-source=file:{}", wrong.display()),
    );
    let o = imp.arca(&["token", "keys", "--on", &wrong_uri]);
    let err = support::stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("did not accept that PIN"), "{err}");
    assert!(!err.to_lowercase().contains("few tries"), "{err}");
    let o = imp.arca(&["token", "keys", "--on", &imp.uri(None)]);
    let all = all_output(&o);
    assert!(o.status.success(), "{all}");
    assert!(!all.to_lowercase().contains("few tries"), "{all}");
}

/// ykcs11 2.2 with an Ed25519 key on the card (made by arca, firmware 5.7):
/// `token keys` lists what it can, says why a key cannot be read, and goes
/// on to the others.
#[test]
fn ykcs11_token_keys_goes_on_past_an_unreadable_key() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let serial = 19_100_002;
    let Some(card) = ykcs11_card(vpiv::CardConfig::fw57(serial)) else {
        return;
    };
    let imp = &card.imp;
    for (slot, spec) in [
        ("9a", arca::keys::KeySpec::Ed25519),
        ("9c", arca::keys::KeySpec::Rsa(2048)),
    ] {
        let loc = arca::keys::piv::PivLocation::parse(&format!(
            "piv:serial={serial};slot={slot};pin-source=file:{}",
            imp.pin_file.display()
        ))
        .unwrap();
        arca::keys::piv::PivSigner::generate(&loc, spec, &mut arca::keys::NoSecrets)
            .expect("generate");
    }
    let o = imp.arca(&["token", "keys", "--on", &imp.uri(None)]);
    let all = all_output(&o);
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("rsa 2048 sha256="),
        "the RSA key is listed: {all}"
    );
    let ed = all
        .split("Private key for ")
        .find(|b| b.starts_with("PIV Authentication"))
        .unwrap_or_else(|| panic!("the 9a key is listed: {all}"));
    assert!(
        ed.contains("PROBLEM: the token cannot read this key's attributes"),
        "{all}"
    );
    // and the attestation key (ECDSA P-256) says why conex cannot use it
    assert!(all.contains("conex has no ECDSA"), "{all}");
}
