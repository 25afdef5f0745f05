//! PKCS#11 figures against a throw-away SoftHSM token:
//! key generation per key type, and signing via a raw cryptoki call versus
//! `keys::sign_checked` (arca's overhead per signature, mostly the
//! verification of every signature, which is timed on its own too).
//!
//! Run: `cargo bench --bench pkcs11`. Set ARCA_BENCH_RUNS to change the
//! number of key generations per type (default 5).

use arca::keys::pkcs11::{Pkcs11Signer, Pkcs11Uri};
use arca::keys::{sign_checked, KeySpec, NoSecrets, Signer};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "bench-pin-2718";
const TOKEN: &str = "bench";

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:9.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !Path::new(MODULE).exists() {
        println!("SoftHSM not installed: apt-get install softhsm2 opensc to run this bench");
        return;
    }
    let runs: usize = std::env::var("ARCA_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let dir = tempfile::Builder::new()
        .prefix("arca-pkcs11-bench")
        .tempdir()
        .expect("tempdir");
    let pin_file = dir.path().join("pin-input");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup.sh"))
        .arg("--dir")
        .arg(dir.path().join("hsm"))
        .args(["--token", TOKEN, "--pin-file"])
        .arg(&pin_file)
        .output()
        .expect("run softhsm-setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::env::set_var("SOFTHSM2_CONF", dir.path().join("hsm/softhsm2.conf"));
    let user_pin = dir.path().join("hsm/user-pin");
    let uri = |object: &str| -> Pkcs11Uri {
        Pkcs11Uri {
            pin_source: Some(user_pin.clone()),
            ..Pkcs11Uri::parse(&format!(
                "pkcs11:token={TOKEN};object={object}?module-path={MODULE}"
            ))
            .unwrap()
        }
    };

    println!("SoftHSM {MODULE}, token {TOKEN:?}");
    println!("key generation through Pkcs11Signer::generate (keygen, attribute read-back, one checked self-test signature), {runs} runs:");
    let mut keep: Vec<(KeySpec, String)> = Vec::new();
    for spec in [KeySpec::Ed25519, KeySpec::Rsa(2048), KeySpec::Rsa(4096)] {
        let mut times = Vec::new();
        for i in 0..runs {
            let label = format!("{spec}-{i}");
            let t = Instant::now();
            let signer = Pkcs11Signer::generate(&uri(&label), spec, &mut NoSecrets)
                .unwrap_or_else(|e| panic!("{e}"));
            times.push(t.elapsed());
            drop(signer);
            if i == 0 {
                keep.push((spec, label));
            }
        }
        let (min, med) = stats(times);
        println!(
            "  {:<8} min {}  median {}",
            spec.to_string(),
            ms(min),
            ms(med)
        );
    }

    // Raw cryptoki session for the baseline.
    let ctx = Pkcs11::new(MODULE).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == TOKEN)
        .unwrap();

    println!("signing a 1 KiB message (min / median per signature):");
    let msg = vec![0x5a_u8; 1024];
    for (spec, label) in keep.iter().filter(|(s, _)| *s != KeySpec::Rsa(2048)) {
        let n = match spec {
            KeySpec::Ed25519 => 300,
            _ => 40,
        };
        // arca signer (its own session, logged in with the PIN file).
        let mut signer = Pkcs11Signer::open(&uri(label), &mut NoSecrets).unwrap();
        // Raw: a session of our own on the same token.
        let session = ctx.open_ro_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("{e}"),
        }
        let key = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap()[0];
        let mech = match spec {
            KeySpec::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            _ => Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32u64.into(),
            }),
        };
        let mut raw = Vec::new();
        let mut checked = Vec::new();
        let mut verify = Vec::new();
        // Interleaved, so drift affects all three alike.
        for _ in 0..n {
            let t = Instant::now();
            std::hint::black_box(session.sign(&mech, key, &msg).unwrap());
            raw.push(t.elapsed());
            let t = Instant::now();
            let (alg, sig) = std::hint::black_box(sign_checked(&mut signer, &msg).unwrap());
            checked.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(signer.public_key().verify(alg, &msg, &sig)).unwrap();
            verify.push(t.elapsed());
        }
        let (rmin, rmed) = stats(raw);
        let (cmin, cmed) = stats(checked);
        let (vmin, vmed) = stats(verify);
        println!("  {spec} ({n} signatures each):");
        println!(
            "    raw cryptoki C_Sign          min {}  median {}",
            ms(rmin),
            ms(rmed)
        );
        println!(
            "    keys::sign_checked           min {}  median {}",
            ms(cmin),
            ms(cmed)
        );
        println!(
            "    its self-check (verify)      min {}  median {}",
            ms(vmin),
            ms(vmed)
        );
        println!(
            "    arca overhead per signature  sign_checked {:+.3} ms (median vs raw)",
            (cmed.as_secs_f64() - rmed.as_secs_f64()) * 1e3
        );
        drop(session);
        drop(signer);
    }
}
