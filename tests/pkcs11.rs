//! PKCS#11 key backend against a real SoftHSM token.
//!
//! The first test to run creates a throw-away SoftHSM folder under Cargo's
//! target tmp dir with `softhsm-setup.sh` (one token per test, so that login
//! state — shared by all sessions of a process on a token — never crosses
//! tests), and sets `SOFTHSM2_CONF` before anything loads the module.
//! Without SoftHSM installed, each test prints one line and returns.

use arca::conex::{PublicKey, SigAlg};
use arca::keys::pkcs11::{
    list_keys, list_tokens, MechanismNeeds, Pkcs11Signer, Pkcs11Uri, RsaPssMode,
};
use arca::keys::{sign_checked, KeyError, KeySpec, NoSecrets, SecretRequest, SecretSource, Signer};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Throw-away PIN of the test tokens; it protects nothing.
const TEST_PIN: &str = "test-pin-4711";
const CHILD_ENV: &str = "ARCA_PKCS11_TEST_CHILD_URI";
const CHILD_MSG_ENV: &str = "ARCA_PKCS11_TEST_CHILD_MSG";

/// One token per test.
const TOKENS: &[&str] = &[
    "rsa",
    "ed",
    "wrong-pin",
    "errors",
    "dup",
    "mech",
    "list",
    "policy",
    "legacy",
    "reauth",
];

struct Hsm {
    dir: PathBuf,
    pin_file: PathBuf,
}

fn hsm() -> Option<&'static Hsm> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let have_util = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok();
        if !Path::new(MODULE).exists() || !have_util {
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("arca-pkcs11-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        let pin_file = dir.join("pin-input");
        std::fs::write(&pin_file, format!("{TEST_PIN}\n")).expect("write pin file");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup.sh");
        let mut cmd = Command::new(&script);
        cmd.arg("--dir")
            .arg(dir.join("hsm"))
            .arg("--pin-file")
            .arg(&pin_file);
        for t in TOKENS {
            cmd.arg("--token").arg(t);
        }
        let out = cmd.output().expect("run softhsm-setup.sh");
        assert!(
            out.status.success(),
            "softhsm-setup.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("export SOFTHSM2_CONF="), "{stdout}");
        // Before any cryptoki call in this process.
        std::env::set_var("SOFTHSM2_CONF", dir.join("hsm/softhsm2.conf"));
        Some(Hsm {
            pin_file: dir.join("hsm/user-pin"),
            dir,
        })
    })
    .as_ref()
}

/// SoftHSM 2.6 is not safe for concurrent key generation from several
/// threads of one process (SoftHSMv2 issues #464, #573: CKR_GENERAL_ERROR,
/// CKR_SESSION_HANDLE_INVALID, lost objects), so tests that touch a token
/// take turns. arca itself uses one session at a time.
static TOKEN_TURN: Mutex<()> = Mutex::new(());

/// `need_hsm!(h)`: binds the test setup to `h` and waits for the token turn,
/// or prints one line and returns when SoftHSM is not installed.
macro_rules! need_hsm {
    ($h:ident) => {
        let $h = match hsm() {
            Some(h) => h,
            None => {
                eprintln!("SoftHSM not installed: apt-get install softhsm2 opensc (or run ./softhsm-setup.sh) to run this test");
                return;
            }
        };
        let _turn = TOKEN_TURN.lock().unwrap_or_else(|e| e.into_inner());
    };
}

fn uri(token: &str, object: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(&format!(
        "pkcs11:token={token};object={object}?module-path={MODULE}"
    ))
    .unwrap()
}

fn uri_with_pin_file(h: &Hsm, token: &str, object: &str) -> Pkcs11Uri {
    Pkcs11Uri {
        pin_source: Some(h.pin_file.clone()),
        ..uri(token, object)
    }
}

/// A person at the terminal, scripted.
struct Person {
    pin: String,
    asked: Vec<SecretRequest>,
    confirm: bool,
    questions: Vec<String>,
    notices: Vec<String>,
}

impl Person {
    fn with_pin(pin: &str) -> Person {
        Person {
            pin: pin.into(),
            asked: Vec::new(),
            confirm: false,
            questions: Vec::new(),
            notices: Vec::new(),
        }
    }
}

impl SecretSource for Person {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        self.asked.push(req.clone());
        Ok(Zeroizing::new(self.pin.clone()))
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        self.questions.push(question.into());
        Ok(self.confirm)
    }
    fn notice(&mut self, message: &str) {
        self.notices.push(message.into());
    }
}

/// A raw cryptoki session on a test token, logged in, independent of arca.
fn raw_session(token: &str) -> Session {
    // One context for the whole process, never dropped (dropping the last
    // handle would unload the module without C_Finalize).
    static CTX: OnceLock<Pkcs11> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        let ctx = Pkcs11::new(MODULE).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        ctx
    });
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token)
        .unwrap_or_else(|| panic!("token {token} missing"));
    let s = ctx.open_rw_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::new(TEST_PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    s
}

fn find_one(s: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let v = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(v.len(), 1, "objects labelled {label}");
    v[0]
}

fn bool_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    let a = s.get_attributes(o, &[t]).unwrap();
    match a.first() {
        Some(
            Attribute::Sensitive(b)
            | Attribute::Extractable(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::NeverExtractable(b)
            | Attribute::Decrypt(b)
            | Attribute::Unwrap(b)
            | Attribute::Derive(b)
            | Attribute::Sign(b)
            | Attribute::Token(b)
            | Attribute::Private(b)
            | Attribute::Verify(b)
            | Attribute::Encrypt(b)
            | Attribute::Wrap(b),
        ) => *b,
        other => panic!("attribute {t:?}: {other:?}"),
    }
}

/// Checks the key pair labelled `label` on a fresh session.
fn assert_key_locked_down(token: &str, label: &str, secret: AttributeType) {
    let s = raw_session(token);
    let private = find_one(&s, ObjectClass::PRIVATE_KEY, label);
    let public = find_one(&s, ObjectClass::PUBLIC_KEY, label);
    let info = s.get_attribute_info(private, &[secret]).unwrap();
    assert!(
        matches!(info.as_slice(), [AttributeInfo::Sensitive]),
        "the secret value must be unreadable: {info:?}"
    );
    for (t, want) in [
        (AttributeType::Token, true),
        (AttributeType::Private, true),
        (AttributeType::Sensitive, true),
        (AttributeType::Extractable, false),
        (AttributeType::AlwaysSensitive, true),
        (AttributeType::NeverExtractable, true),
        (AttributeType::Sign, true),
        (AttributeType::Decrypt, false),
        (AttributeType::Unwrap, false),
        (AttributeType::Derive, false),
    ] {
        assert_eq!(bool_attr(&s, private, t), want, "private {t:?}");
    }
    for (t, want) in [
        (AttributeType::Verify, true),
        (AttributeType::Encrypt, false),
        (AttributeType::Wrap, false),
    ] {
        assert_eq!(bool_attr(&s, public, t), want, "public {t:?}");
    }
    // The token refuses to flip it back.
    assert!(s
        .update_attributes(private, &[Attribute::Extractable(true)])
        .is_err());
}

/// Runs this test binary again as a separate process that opens `uri` and
/// signs `msg`; returns (signature, key id).
fn sign_in_child(uri: &Pkcs11Uri, msg: &[u8]) -> (Vec<u8>, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_process_signer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, uri.to_string())
        .env(CHILD_MSG_ENV, hex::encode(msg))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ARCA-CHILD ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no child output in {stdout}"));
    let mut sig = None;
    let mut kid = None;
    for w in line.split_whitespace() {
        if let Some(v) = w.strip_prefix("sig=") {
            sig = Some(hex::decode(v).unwrap());
        }
        if let Some(v) = w.strip_prefix("keyid=") {
            kid = Some(v.to_string());
        }
    }
    (sig.unwrap(), kid.unwrap())
}

/// Child mode entry point: does nothing in a normal test run.
#[test]
fn child_process_signer() {
    let Ok(u) = std::env::var(CHILD_ENV) else {
        return;
    };
    let msg = hex::decode(std::env::var(CHILD_MSG_ENV).unwrap()).unwrap();
    let uri = Pkcs11Uri::parse(&u).unwrap();
    // No terminal: the PIN comes from the URI's pin-source.
    let mut signer = Pkcs11Signer::open(&uri, &mut NoSecrets).unwrap();
    let (_, sig) = sign_checked(&mut signer, &msg).unwrap();
    println!(
        "ARCA-CHILD sig={} keyid={}",
        hex::encode(sig),
        signer.public_key().key_id()
    );
}

fn rsa_key(pk: &PublicKey) -> rsa::RsaPublicKey {
    rsa::RsaPublicKey::from_public_key_pem(&pk.data).unwrap()
}

#[test]
fn rsa4096_generate_sign_verify_reopen() {
    need_hsm!(h);
    let u = uri("rsa", "root-rsa");
    let mut person = Person::with_pin(TEST_PIN);
    let mut signer = Pkcs11Signer::generate(&u, KeySpec::Rsa(4096), &mut person).unwrap();
    assert_eq!(person.asked.len(), 1, "the PIN is asked once");
    assert!(
        person.asked[0].what.contains("rsa"),
        "{:?}",
        person.asked[0]
    );
    assert_eq!(person.asked[0].retries_left, None);
    assert!(!person.asked[0].final_try);
    let pk = signer.public_key().clone();
    assert_eq!(pk.bits(), Some(4096));
    pk.validate().unwrap();
    assert_eq!(signer.rsa_pss_mode(), Some(RsaPssMode::Combined));
    assert!(signer
        .describe()
        .starts_with("pkcs11:token=rsa;object=root-rsa;id="));

    let msg = b"signed root content";
    let (alg, sig) = sign_checked(&mut signer, msg).unwrap();
    assert_eq!(alg, SigAlg::RsaPssSha256);
    assert_eq!(sig.len(), 512);
    pk.verify(alg, msg, &sig).unwrap();
    // Salt exactly 32, checked with the rsa crate directly.
    let key = rsa_key(&pk);
    let hashed = Sha256::digest(msg);
    key.verify(rsa::Pss::<Sha256>::new_with_salt(32), &hashed, &sig)
        .unwrap();
    assert!(key
        .verify(rsa::Pss::<Sha256>::new_with_salt(20), &hashed, &sig)
        .is_err());
    assert!(pk.verify(alg, b"other content", &sig).is_err());

    // Fallback mechanism: CKM_RSA_PKCS_PSS over a host SHA-256.
    signer.set_rsa_pss_mode(RsaPssMode::HostHash);
    let (_, sig2) = sign_checked(&mut signer, msg).unwrap();
    key.verify(rsa::Pss::<Sha256>::new_with_salt(32), &hashed, &sig2)
        .unwrap();
    drop(signer);

    assert_key_locked_down("rsa", "root-rsa", AttributeType::PrivateExponent);

    // A new process finds the key by URI and signs with it.
    let (sig3, kid) = sign_in_child(&uri_with_pin_file(h, "rsa", "root-rsa"), msg);
    assert_eq!(kid, pk.key_id().to_string());
    pk.verify(SigAlg::RsaPssSha256, msg, &sig3).unwrap();
}

#[test]
fn ed25519_generate_sign_verify_reopen() {
    need_hsm!(h);
    let u = uri("ed", "root-ed");
    let mut person = Person::with_pin(TEST_PIN);
    let mut signer = Pkcs11Signer::generate(&u, KeySpec::Ed25519, &mut person).unwrap();
    let pk = signer.public_key().clone();
    pk.validate().unwrap();
    assert_eq!(pk.data.len(), 44);
    assert_eq!(signer.rsa_pss_mode(), None);
    let msg = b"ed25519 signed content";
    let (alg, sig) = sign_checked(&mut signer, msg).unwrap();
    assert_eq!(alg, SigAlg::Ed25519);
    assert_eq!(sig.len(), 64);
    pk.verify(alg, msg, &sig).unwrap();
    // Pure Ed25519 is deterministic.
    let (_, again) = sign_checked(&mut signer, msg).unwrap();
    assert_eq!(sig, again);
    drop(signer);

    assert_key_locked_down("ed", "root-ed", AttributeType::Value);
    // The public key object carries the RFC 8410 OID.
    let s = raw_session("ed");
    let public = find_one(&s, ObjectClass::PUBLIC_KEY, "root-ed");
    let attrs = s
        .get_attributes(public, &[AttributeType::EcParams])
        .unwrap();
    assert_eq!(
        attrs,
        vec![Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70])]
    );
    drop(s);

    // Reopen in this process by id only (CKA_ID derived from the label).
    let by_id = Pkcs11Uri {
        object: None,
        id: Some(arca::keys::pkcs11::id_for_label("root-ed")),
        ..uri_with_pin_file(h, "ed", "x")
    };
    let mut again = Pkcs11Signer::open(&by_id, &mut NoSecrets).unwrap();
    assert_eq!(again.public_key(), &pk);
    sign_checked(&mut again, msg).unwrap();
    drop(again);

    let (sig2, kid) = sign_in_child(&uri_with_pin_file(h, "ed", "root-ed"), msg);
    assert_eq!(kid, pk.key_id().to_string());
    assert_eq!(sig2, sig);
}

#[test]
fn wrong_pin_is_refused_and_nothing_is_written() {
    need_hsm!(h);
    let u = uri("wrong-pin", "never");
    let mut person = Person::with_pin("0000-not-the-pin");
    let err = Pkcs11Signer::generate(&u, KeySpec::Ed25519, &mut person).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KeyError::WrongPin(_)), "{err:?}");
    assert!(
        msg.contains("\"wrong-pin\"") && msg.contains("did not accept"),
        "{msg}"
    );
    assert!(!msg.contains("0000-not-the-pin"), "{msg}");
    assert!(!msg.contains('\n'));

    // A wrong PIN from a pin-source file too.
    let bad = h.dir.join("bad-pin");
    std::fs::write(&bad, "1111\n").unwrap();
    let u2 = Pkcs11Uri {
        pin_source: Some(bad),
        ..uri("wrong-pin", "never")
    };
    let err = Pkcs11Signer::generate(&u2, KeySpec::Ed25519, &mut NoSecrets).unwrap_err();
    assert!(matches!(err, KeyError::WrongPin(_)), "{err:?}");
    assert!(!err.to_string().contains("1111"));

    // Nothing was written: the token holds no key at all.
    let mut right = Person::with_pin(TEST_PIN);
    let keys = list_keys(&uri("wrong-pin", "never").whole_token(), &mut right)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(keys.is_empty(), "{keys:?}");
    let s = raw_session("wrong-pin");
    assert!(s.find_objects(&[]).unwrap().is_empty());
    drop(s);

    // Opening with a wrong PIN: same error.
    let err = Pkcs11Signer::open(&u, &mut Person::with_pin("99999")).unwrap_err();
    assert!(matches!(err, KeyError::WrongPin(_)), "{err:?}");
}

/// For `list_keys` on the whole token: the URI without `object=`/`id=`.
trait WholeToken {
    fn whole_token(&self) -> Pkcs11Uri;
}
impl WholeToken for Pkcs11Uri {
    fn whole_token(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            object: None,
            id: None,
            ..self.clone()
        }
    }
}

#[test]
fn token_absent_key_absent_and_two_keys_match() {
    need_hsm!(_h);
    let mut person = Person::with_pin(TEST_PIN);
    let err = Pkcs11Signer::open(&uri("no-such-token", "k"), &mut person).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KeyError::NotFound(_)), "{err:?}");
    assert!(msg.contains("\"no-such-token\""), "{msg}");
    assert!(
        msg.contains("\"errors\"") && msg.contains("\"rsa\""),
        "lists present tokens: {msg}"
    );
    assert!(person.asked.is_empty(), "no PIN asked for an absent token");

    let err = Pkcs11Signer::open(&uri("errors", "missing-key"), &mut person).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KeyError::NotFound(_)), "{err:?}");
    assert!(
        msg.contains("\"missing-key\"") && msg.contains("\"errors\""),
        "{msg}"
    );

    // Two key pairs with the same label (made outside arca, which refuses to).
    let s = raw_session("errors");
    for id in [[0xaa], [0xbb]] {
        s.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
                Attribute::Label(b"twin".to_vec()),
                Attribute::Id(id.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(b"twin".to_vec()),
                Attribute::Id(id.to_vec()),
            ],
        )
        .unwrap();
    }
    drop(s);
    let err = Pkcs11Signer::open(&uri("errors", "twin"), &mut person).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KeyError::Location { .. }), "{err:?}");
    assert!(
        msg.contains("2 private keys match") && msg.contains("id="),
        "{msg}"
    );
    // id= picks one.
    let pick = Pkcs11Uri::parse(&format!(
        "pkcs11:token=errors;object=twin;id=%bb?module-path={MODULE}"
    ))
    .unwrap();
    let mut signer = Pkcs11Signer::open(&pick, &mut person).unwrap();
    sign_checked(&mut signer, b"x").unwrap();
    assert!(
        signer.describe().contains("id=%BB"),
        "{}",
        signer.describe()
    );

    // No key named at all.
    let err = Pkcs11Signer::open(
        &Pkcs11Uri::parse(&format!("pkcs11:token=errors?module-path={MODULE}")).unwrap(),
        &mut person,
    )
    .unwrap_err();
    assert!(err.to_string().contains("object=LABEL"), "{err}");
    // No token named at all.
    let err = Pkcs11Signer::open(
        &Pkcs11Uri::parse(&format!("pkcs11:object=twin?module-path={MODULE}")).unwrap(),
        &mut person,
    )
    .unwrap_err();
    assert!(err.to_string().contains("token=LABEL"), "{err}");
    // Module that is not there.
    let err = Pkcs11Signer::open(
        &Pkcs11Uri::parse("pkcs11:token=errors;object=twin?module-path=/nonexistent/libp11.so")
            .unwrap(),
        &mut person,
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::Device(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/libp11.so"), "{err}");
    // A file that is not a PKCS#11 module.
    let err = Pkcs11Signer::open(
        &Pkcs11Uri::parse(&format!(
            "pkcs11:token=errors;object=twin?module-path={}",
            env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml"
        ))
        .unwrap(),
        &mut person,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("cannot load PKCS#11 module"),
        "{err}"
    );
}

#[test]
fn label_or_id_taken_is_refused() {
    need_hsm!(_h);
    let mut person = Person::with_pin(TEST_PIN);
    let first =
        Pkcs11Signer::generate(&uri("dup", "rootA"), KeySpec::Ed25519, &mut person).unwrap();
    let pk = first.public_key().clone();
    drop(first);
    let err =
        Pkcs11Signer::generate(&uri("dup", "rootA"), KeySpec::Ed25519, &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Exists(_)), "{err:?}");
    assert!(
        err.to_string().contains("\"rootA\"") && err.to_string().contains("\"dup\""),
        "{err}"
    );
    // Same CKA_ID under another label.
    let same_id = Pkcs11Uri {
        id: Some(arca::keys::pkcs11::id_for_label("rootA")),
        ..uri("dup", "rootB")
    };
    let err = Pkcs11Signer::generate(&same_id, KeySpec::Rsa(2048), &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Exists(_)), "{err:?}");
    // The first key is untouched.
    let mut again = Pkcs11Signer::open(&uri("dup", "rootA"), &mut person).unwrap();
    assert_eq!(again.public_key(), &pk);
    sign_checked(&mut again, b"still here").unwrap();
    drop(again);
    let s = raw_session("dup");
    assert_eq!(s.find_objects(&[]).unwrap().len(), 2, "one key pair only");
}

#[test]
fn missing_mechanism_is_refused_before_anything_happens() {
    need_hsm!(_h);
    let mut person = Person::with_pin(TEST_PIN);
    // SoftHSM 2.6 has no ML-DSA: ask for it as the signature mechanism.
    let needs = MechanismNeeds {
        keygen: MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        sign: vec![MechanismType::ML_DSA],
    };
    let err =
        Pkcs11Signer::generate_with(&uri("mech", "k1"), KeySpec::Rsa(2048), &mut person, &needs)
            .unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"mech\"") && msg.contains("ML_DSA"), "{msg}");
    // … and as the key generation mechanism.
    let needs = MechanismNeeds {
        keygen: MechanismType::ML_DSA_KEY_PAIR_GEN,
        sign: vec![MechanismType::EDDSA],
    };
    let err =
        Pkcs11Signer::generate_with(&uri("mech", "k2"), KeySpec::Ed25519, &mut person, &needs)
            .unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("cannot generate"), "{err}");
    // An RSA size outside the token's range.
    let err =
        Pkcs11Signer::generate(&uri("mech", "k3"), KeySpec::Rsa(32768), &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("32768"), "{err}");
    // Below conex's minimum.
    let err =
        Pkcs11Signer::generate(&uri("mech", "k4"), KeySpec::Rsa(1024), &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Policy(_)), "{err:?}");
    assert!(person.asked.is_empty(), "refused before asking for the PIN");
    let s = raw_session("mech");
    assert!(
        s.find_objects(&[]).unwrap().is_empty(),
        "nothing was created"
    );
}

#[test]
fn extractable_or_non_sensitive_keys_are_refused() {
    need_hsm!(_h);
    let s = raw_session("policy");
    // SoftHSM's defaults: SENSITIVE false.
    s.generate_key_pair(
        &Mechanism::EccEdwardsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            Attribute::Label(b"soft".to_vec()),
            Attribute::Id(vec![1]),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Label(b"soft".to_vec()),
            Attribute::Id(vec![1]),
        ],
    )
    .unwrap();
    s.generate_key_pair(
        &Mechanism::EccEdwardsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            Attribute::Label(b"export".to_vec()),
            Attribute::Id(vec![2]),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Label(b"export".to_vec()),
            Attribute::Id(vec![2]),
        ],
    )
    .unwrap();
    drop(s);
    let mut person = Person::with_pin(TEST_PIN);
    let err = Pkcs11Signer::open(&uri("policy", "soft"), &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Policy(_)), "{err:?}");
    assert!(err.to_string().contains("not sensitive"), "{err}");
    let err = Pkcs11Signer::open(&uri("policy", "export"), &mut person).unwrap_err();
    assert!(matches!(err, KeyError::Policy(_)), "{err:?}");
    assert!(err.to_string().contains("extractable"), "{err}");
    let keys = list_keys(&uri("policy", "x").whole_token(), &mut person).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| !k.usable && !k.problems.is_empty()),
        "{keys:?}"
    );
}

#[test]
fn ed25519_with_printable_string_params_is_read() {
    need_hsm!(_h);
    let s = raw_session("legacy");
    // The EC_PARAMS form SoftHSM's own tests use.
    let name = [
        0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
    ];
    s.generate_key_pair(
        &Mechanism::EccEdwardsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(name.to_vec()),
            Attribute::Label(b"old".to_vec()),
            Attribute::Id(vec![9]),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(b"old".to_vec()),
            Attribute::Id(vec![9]),
        ],
    )
    .unwrap();
    drop(s);
    let mut signer =
        Pkcs11Signer::open(&uri("legacy", "old"), &mut Person::with_pin(TEST_PIN)).unwrap();
    let (alg, sig) = sign_checked(&mut signer, b"m").unwrap();
    signer.public_key().verify(alg, b"m", &sig).unwrap();
}

#[test]
fn list_tokens_and_keys() {
    need_hsm!(h);
    let tokens = list_tokens(Some(Path::new(MODULE))).unwrap();
    let t = tokens
        .iter()
        .find(|t| t.label == "list")
        .unwrap_or_else(|| panic!("{tokens:?}"));
    assert!(t.initialized && t.login_required && t.user_pin_initialized);
    assert!(!t.user_pin_locked && !t.user_pin_final_try);
    assert!(
        t.mechanisms.iter().any(|m| m.contains("EDDSA")),
        "{:?}",
        t.mechanisms
    );
    assert!(
        t.mechanisms
            .iter()
            .any(|m| m.contains("SHA256_RSA_PKCS_PSS")),
        "{:?}",
        t.mechanisms
    );
    assert_eq!(t.can_generate, ["ed25519", "rsa2048", "rsa3072", "rsa4096"]);
    assert!(!t.serial.is_empty());
    assert!(t.uri.starts_with("pkcs11:token=list;serial="), "{}", t.uri);
    serde_json::to_string(&tokens).unwrap();

    let mut person = Person::with_pin(TEST_PIN);
    let signer =
        Pkcs11Signer::generate(&uri("list", "listed%20key"), KeySpec::Ed25519, &mut person)
            .unwrap();
    let pk = signer.public_key().clone();
    drop(signer);
    let keys = list_keys(&uri("list", "x").whole_token(), &mut person).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let k = &keys[0];
    assert_eq!(k.label.as_deref(), Some("listed key"));
    assert_eq!(
        k.id,
        hex::encode(arca::keys::pkcs11::id_for_label("listed key"))
    );
    assert_eq!(k.key_type, "ed25519");
    assert_eq!(k.bits, Some(256));
    assert!(k.flags.sensitive && !k.flags.extractable && k.flags.value_hidden);
    assert!(k.usable, "{k:?}");
    assert_eq!(k.key_id.as_deref(), Some(pk.key_id().to_string().as_str()));
    assert!(k.uri.contains("object=listed%20key"), "{}", k.uri);
    let json = serde_json::to_value(&keys).unwrap();
    assert_eq!(json[0]["key_type"], "ed25519");
    // The listed URI opens the key.
    let listed = Pkcs11Uri::parse(&k.uri).unwrap();
    let again = Pkcs11Signer::open(
        &Pkcs11Uri {
            pin_source: Some(h.pin_file.clone()),
            ..listed
        },
        &mut NoSecrets,
    )
    .unwrap();
    assert_eq!(again.public_key(), &pk);
}

// --- URI parsing (no token needed) ---

#[test]
fn uri_percent_encoding_and_round_trip() {
    let u = Pkcs11Uri::parse(
        "pkcs11:token=root%201;serial=0123abc;object=my%2Fkey%3B1;id=%01%AB%ff;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/user/0/pin",
    )
    .unwrap();
    assert_eq!(u.token.as_deref(), Some("root 1"));
    assert_eq!(u.serial.as_deref(), Some("0123abc"));
    assert_eq!(u.object.as_deref(), Some("my/key;1"));
    assert_eq!(u.id.as_deref(), Some(&[0x01, 0xab, 0xff][..]));
    assert_eq!(u.module_path.as_deref(), Some(Path::new(MODULE)));
    assert_eq!(u.pin_source.as_deref(), Some(Path::new("/run/user/0/pin")));
    let shown = u.to_string();
    assert_eq!(
        shown,
        "pkcs11:token=root%201;serial=0123abc;object=my%2Fkey%3B1;id=%01%AB%FF;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/user/0/pin"
    );
    assert_eq!(Pkcs11Uri::parse(&shown).unwrap(), u);
    assert_eq!(
        u.without_query().to_string(),
        "pkcs11:token=root%201;serial=0123abc;object=my%2Fkey%3B1;id=%01%AB%FF;type=private"
    );
    // UTF-8 labels.
    let u = Pkcs11Uri::parse("pkcs11:token=r%C3%A9seau;object=%E2%9C%93").unwrap();
    assert_eq!(u.token.as_deref(), Some("réseau"));
    assert_eq!(Pkcs11Uri::parse(&u.to_string()).unwrap(), u);
    // file:// form of pin-source; other attributes.
    let u = Pkcs11Uri::parse("pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;slot-id=7;token=a?pin-source=file:///tmp/p").unwrap();
    assert_eq!(u.pin_source.as_deref(), Some(Path::new("/tmp/p")));
    assert_eq!(u.slot_id, Some(7));
    assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
}

#[test]
fn uri_errors_are_clear() {
    let cases: &[(&str, &str)] = &[
        (
            "pkcs11:token=a;object=k?pin-value=123456",
            "pin-value is refused",
        ),
        ("pkcs11:token=a;pin-value=123456", "query attribute"),
        (
            "pkcs11:token=a;colour=blue",
            "unknown path attribute \"colour\"",
        ),
        (
            "pkcs11:token=a?frobnicate=1",
            "unknown query attribute \"frobnicate\"",
        ),
        ("pkcs11:token=a;token=b", "given twice"),
        ("pkcs11:token=a%2", "malformed percent-encoding"),
        ("pkcs11:token=a%zz", "malformed percent-encoding"),
        ("pkcs11:token=%ff", "not UTF-8"),
        ("pkcs11:token=a;type=secret", "type=secret"),
        ("pkcs11:token=a;slot-id=x", "slot-id=x"),
        ("pkcs11:token=a?pin-source=|/bin/cat", "only file:PATH"),
        ("pkcs11:token=a?pin-source=https://x/pin", "only file:PATH"),
        ("pkcs11:token=a?module-name=softhsm2", "module-path"),
        ("pkcs11:token a", "percent-encoded"),
        ("pkcs11:token", "no `=`"),
        ("pkcs11:id=", "id is empty"),
        ("pkcs11:token=a;object=", "object= is empty"),
        ("pkcs11:token=", "token= is empty"),
        ("pk11:token=a", "starts with pkcs11:"),
    ];
    for (s, want) in cases {
        let err = Pkcs11Uri::parse(s).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, KeyError::Location { .. }), "{s}: {err:?}");
        assert!(msg.contains(want), "{s}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    // The PIN given by mistake is not echoed back by the refusal reason.
    let err = Pkcs11Uri::parse("pkcs11:token=a?pin-value=s3cr3t-PIN").unwrap_err();
    if let KeyError::Location { reason, .. } = &err {
        assert!(!reason.contains("s3cr3t-PIN"));
    }
}

#[test]
fn uri_module_path_resolution() {
    let u = Pkcs11Uri::parse("pkcs11:token=a?module-path=/opt/vendor/lib%20p11.so").unwrap();
    assert_eq!(u.module().unwrap(), PathBuf::from("/opt/vendor/lib p11.so"));
    assert!(u
        .to_string()
        .ends_with("?module-path=/opt/vendor/lib%20p11.so"));
    // Without module-path: the environment (set by the test setup when
    // SoftHSM is there), else an error saying how to give it.
    let u = Pkcs11Uri::parse("pkcs11:token=a").unwrap();
    match std::env::var_os(arca::keys::pkcs11::MODULE_ENV) {
        Some(m) => assert_eq!(u.module().unwrap(), PathBuf::from(m)),
        None => {
            let msg = u.module().unwrap_err().to_string();
            assert!(
                msg.contains("module-path") && msg.contains("ARCA_PKCS11_MODULE"),
                "{msg}"
            );
        }
    }
    // Through KeyLocation too.
    let loc = arca::keys::KeyLocation::parse("pkcs11:token=a;object=b").unwrap();
    assert_eq!(loc.to_string(), "pkcs11:token=a;object=b");
    assert!(arca::keys::KeyLocation::parse("pkcs11:token=a?pin-value=1").is_err());
}

fn raw_ed25519(s: &Session, label: &str, id: u8, extra_private: &[Attribute]) {
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(vec![id]),
    ];
    private.extend_from_slice(extra_private);
    s.generate_key_pair(
        &Mechanism::EccEdwardsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(vec![id]),
        ],
        &private,
    )
    .unwrap();
}

#[test]
fn key_made_sensitive_later_is_used_with_a_notice() {
    need_hsm!(_h);
    let s = raw_session("reauth");
    raw_ed25519(&s, "late", 1, &[Attribute::Sensitive(false)]);
    let k = find_one(&s, ObjectClass::PRIVATE_KEY, "late");
    s.update_attributes(k, &[Attribute::Sensitive(true)])
        .unwrap();
    drop(s);
    let mut person = Person::with_pin(TEST_PIN);
    let mut signer = Pkcs11Signer::open(&uri("reauth", "late"), &mut person).unwrap();
    assert!(!signer.key_flags().always_sensitive);
    assert_eq!(person.notices.len(), 1, "{:?}", person.notices);
    assert!(
        person.notices[0].contains("not always-sensitive"),
        "{:?}",
        person.notices
    );
    sign_checked(&mut signer, b"m").unwrap();
}

#[test]
fn always_authenticate_key_signs_with_pin_file() {
    need_hsm!(h);
    let s = raw_session("reauth");
    raw_ed25519(
        &s,
        "each-time-ed",
        2,
        &[
            Attribute::Sensitive(true),
            Attribute::AlwaysAuthenticate(true),
        ],
    );
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::ModulusBits(2048u64.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Label(b"each-time-rsa".to_vec()),
            Attribute::Id(vec![3]),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysAuthenticate(true),
            Attribute::Label(b"each-time-rsa".to_vec()),
            Attribute::Id(vec![3]),
        ],
    )
    .unwrap();
    drop(s);
    // Ed25519 (no multi-part EdDSA) and a missing PIN file are refused at
    // open, before any signature.
    let err = Pkcs11Signer::open(
        &uri_with_pin_file(h, "reauth", "each-time-ed"),
        &mut NoSecrets,
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("ALWAYS_AUTHENTICATE"), "{err}");
    let err = Pkcs11Signer::open(
        &uri("reauth", "each-time-rsa"),
        &mut Person::with_pin(TEST_PIN),
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    // RSA with a PIN file: the PIN is given again for every signature.
    let mut signer = Pkcs11Signer::open(
        &uri_with_pin_file(h, "reauth", "each-time-rsa"),
        &mut NoSecrets,
    )
    .unwrap();
    for msg in [&b"one"[..], b"two"] {
        let (alg, sig) = sign_checked(&mut signer, msg).unwrap();
        signer.public_key().verify(alg, msg, &sig).unwrap();
    }
    // The single-part mechanism cannot take the per-signature PIN.
    signer.set_rsa_pss_mode(RsaPssMode::HostHash);
    let err = sign_checked(&mut signer, b"three").unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err:?}");
    drop(signer);
    // The token really enforces it: without the context-specific login
    // SoftHSM refuses the signature.
    let s = raw_session("reauth");
    let k = find_one(&s, ObjectClass::PRIVATE_KEY, "each-time-rsa");
    let params = cryptoki::mechanism::rsa::PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: cryptoki::mechanism::rsa::PkcsMgfType::MGF1_SHA256,
        s_len: 32u64.into(),
    };
    assert!(s
        .sign(&Mechanism::Sha256RsaPkcsPss(params), k, b"four")
        .is_err());
}

/// Token folders (one per token) under `dir/tokens`.
fn token_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("tokens"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn setup_script_keeps_tokens_unless_reset() {
    let Some(h) = need_hsm_quiet() else { return };
    let dir = h.dir.join("script-test");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup.sh");
    let run = |args: &[&str]| {
        let out = Command::new(&script)
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(&["--tokens", "2"]);
    // Only the export line on stdout; the rehearsal PIN is announced on stderr.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("SOFTHSM2_CONF=") && stdout.contains("ARCA_PKCS11_MODULE="));
    assert!(stderr.contains("rehearsal PIN"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("user-pin")).unwrap(),
        "123456\n"
    );
    let first = token_dirs(&dir);
    assert_eq!(first.len(), 2, "{first:?}");
    // Again, plus one: the first two are kept as they are.
    let (_, stderr) = run(&["--token", "root-1", "--token", "root-3"]);
    assert!(stderr.contains("'root-1' exists already"), "{stderr}");
    let second = token_dirs(&dir);
    assert_eq!(second.len(), 3);
    assert!(first.iter().all(|t| second.contains(t)));
    // --reset remakes them.
    run(&["--reset", "--token", "root-1"]);
    let third = token_dirs(&dir);
    assert_eq!(third.len(), 1);
    assert!(!first.contains(&third[0]));
    run(&["--clean"]);
    assert!(!dir.exists());
}

/// The setup without the token turn (this test touches no token of ours).
fn need_hsm_quiet() -> Option<&'static Hsm> {
    let h = hsm();
    if h.is_none() {
        eprintln!("SoftHSM not installed: apt-get install softhsm2 opensc to run this test");
    }
    h
}
