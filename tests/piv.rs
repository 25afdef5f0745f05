//! YubiKey PIV backend through the real stack: arca → `yubikey` crate →
//! PC/SC → pcscd → vsmartcard-vpcd → the virtual PIV card of
//! `tests/support/vpiv.rs`, which runs inside this test process.
//!
//! Needs pcscd with the vpcd reader: `tests/support/pcscd-vpcd.sh start`.
//! Without it the tests print one line and pass, except under CI (the `CI`
//! environment variable is set), where they fail.
//!
//! There is one pcscd and one pair of virtual readers per machine, so the
//! tests take a process-wide lock and run one after another
//! (`tests/support/pcsc_card.rs`).

#[path = "support/pcsc_card.rs"]
mod pcsc_card;
#[path = "support/vpiv.rs"]
mod vpiv;

use arca::conex::{KeyAlg, PublicKey};
use arca::keys::piv::{self, PivLocation, PivSigner};
use arca::keys::{sign_checked, KeyError, KeySpec, SecretRequest, SecretSource, Signer};
use pcsc_card::{pcsc_lock, Plugged};
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;
use vpiv::{vpcd_ports, CardConfig};
use zeroize::Zeroizing;

// ----------------------------------------------------------------- harness

/// Scripted answers standing in for the person at the terminal.
#[derive(Default)]
struct Script {
    answers: VecDeque<String>,
    confirm: bool,
    requests: Vec<SecretRequest>,
    confirms: Vec<String>,
    notices: Vec<String>,
}

impl Script {
    fn new(answers: &[&str]) -> Script {
        Script {
            answers: answers.iter().map(|s| s.to_string()).collect(),
            ..Script::default()
        }
    }
}

impl SecretSource for Script {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        self.requests.push(req.clone());
        self.answers
            .pop_front()
            .map(Zeroizing::new)
            .ok_or_else(|| KeyError::Declined(format!("no scripted answer for {}", req.what)))
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        self.confirms.push(question.into());
        Ok(self.confirm)
    }
    fn notice(&mut self, message: &str) {
        self.notices.push(message.into());
    }
}

fn loc(s: &str) -> PivLocation {
    PivLocation::parse(s).expect("location parses")
}

fn conex_message(len: usize) -> Vec<u8> {
    // Something shaped like a conex resource, of the wanted length.
    let mut m = b"counter: 1\ncreated: 2026-11-22T00:00:00Z\nname: root\n".to_vec();
    let mut i = 0u32;
    while m.len() < len {
        m.extend_from_slice(format!("  - sha256=\"{:064x}\"\n", i).as_bytes());
        i += 1;
    }
    m.truncate(len);
    m
}

fn rsa_key(pk: &PublicKey) -> rsa::RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(&pk.data).expect("RSA key data")
}

// ------------------------------------------------------------------- tests

#[test]
fn ed25519_generate_sign_verify_on_fw57_with_aes_mgm_key() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw57(15_835_999));
    let l = loc("piv:serial=15835999;slot=9c;touch=never");

    let mut s = Script::new(&["123456"]);
    let mut signer = PivSigner::generate(&l, KeySpec::Ed25519, &mut s).expect("generate");
    assert_eq!(s.requests.len(), 1, "only the PIN is asked");
    assert_eq!(s.requests[0].retries_left, Some(3));
    assert!(!s.requests[0].final_try);
    assert!(
        s.notices
            .iter()
            .any(|n| n.contains("factory management key")),
        "{:?}",
        s.notices
    );
    let pk = signer.public_key().clone();
    assert_eq!(pk.alg, KeyAlg::Ed25519);
    pk.validate().unwrap();
    assert_eq!(signer.describe(), "piv:serial=15835999;slot=9c;touch=never");

    let msg = conex_message(700);
    let (alg, sig) = sign_checked(&mut signer, &msg).expect("sign");
    pk.verify(alg, &msg, &sig).unwrap();
    let (_, sig2) = sign_checked(&mut signer, &msg).expect("second signature");
    assert_eq!(sig, sig2, "Ed25519 is deterministic");
    drop(signer);

    // The PIN is verified right before every GENERAL AUTHENTICATE.
    {
        let card = plugged.card();
        let ins = &card.trace.ins;
        let signs: Vec<usize> = (0..ins.len())
            .filter(|&i| ins[i] == 0x87 && i > 0 && ins[i - 1] == 0x20)
            .collect();
        assert_eq!(signs.len(), 2, "{ins:02x?}");
        assert_eq!(card.trace.sign_inputs, vec![700, 700], "raw message sent");
    }

    // Open again, PIN from a file this time.
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "123456\n").unwrap();
    let l2 = loc(&format!(
        "piv:serial=15835999;pin-source=file:{}",
        pin_file.display()
    ));
    let mut s = Script::new(&[]);
    let mut signer = PivSigner::open(&l2, &mut s).expect("open");
    assert!(s.requests.is_empty(), "PIN came from the file");
    assert_eq!(signer.public_key(), &pk);
    assert_eq!(signer.serial(), 15_835_999);
    assert_eq!(signer.firmware(), "5.7.1");
    let (alg, sig) = sign_checked(&mut signer, b"short").unwrap();
    pk.verify(alg, b"short", &sig).unwrap();
    drop(signer);

    // A PIN file that is not there.
    let missing = loc(&format!(
        "piv:pin-source=file:{}",
        dir.path().join("nope").display()
    ));
    let err = PivSigner::open(&missing, &mut Script::new(&[]))
        .err()
        .expect("no PIN file");
    assert!(matches!(err, KeyError::File { .. }), "{err}");
    assert_eq!(plugged.card().pin_tries(), 3);

    // The public key alone needs no PIN.
    let read = piv::public_key(&loc("piv:slot=9c"), &mut arca::keys::NoSecrets).unwrap();
    assert_eq!(read, pk);

    // A slot without a key.
    let err = PivSigner::open(&loc("piv:slot=9a"), &mut Script::new(&["123456"]))
        .err()
        .expect("empty slot");
    assert!(matches!(err, KeyError::NotFound(_)), "{err}");

    // Refuses to overwrite.
    let err = PivSigner::generate(&l, KeySpec::Ed25519, &mut Script::new(&["123456"]))
        .err()
        .expect("occupied slot");
    assert!(matches!(err, KeyError::Exists(_)), "{err}");

    // Listing.
    let devices = piv::list().unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let d = &devices[0];
    assert_eq!((d.serial, d.firmware.as_str()), (15_835_999, "5.7.1"));
    assert!(d.reader.contains("Yubico YubiKey vpcd"), "{}", d.reader);
    assert_eq!(d.pin_retries, Some(3));
    assert_eq!(d.slots.len(), 1);
    let slot = &d.slots[0];
    assert_eq!(slot.slot, "9c");
    assert_eq!(slot.algorithm, "ed25519");
    assert_eq!(slot.pin_policy.as_deref(), Some("always"));
    assert_eq!(slot.touch_policy.as_deref(), Some("never"));
    assert!(slot.usable_for_conex);
    assert_eq!(
        slot.key_id.as_deref(),
        Some(pk.key_id().to_string().as_str())
    );
    let json = serde_json::to_string(&devices).unwrap();
    assert!(json.contains("\"serial\":15835999"), "{json}");
}

#[test]
fn rsa2048_generate_sign_verify_salt32_on_fw54_with_3des_mgm_key() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw54(5_400_001));
    assert_eq!(plugged.card().mgm_key(), vpiv::DEFAULT_MGM_KEY);

    // Firmware 5.4 has neither PIV Ed25519 nor RSA-3072/4096.
    for spec in [KeySpec::Ed25519, KeySpec::Rsa(4096), KeySpec::Rsa(3072)] {
        let err = PivSigner::generate(&loc("piv:slot=9a"), spec, &mut Script::new(&["123456"]))
            .err()
            .expect("unsupported");
        assert!(matches!(err, KeyError::Unsupported(_)), "{spec}: {err}");
        assert!(err.to_string().contains("5.7"), "{err}");
    }
    let err = PivSigner::generate(
        &loc("piv:slot=9a"),
        KeySpec::Rsa(1024),
        &mut Script::new(&[]),
    )
    .err()
    .unwrap();
    assert!(matches!(err, KeyError::Policy(_)), "{err}");

    let l = loc("piv:slot=9a;touch=cached");
    let mut s = Script::new(&["123456"]);
    let mut signer = PivSigner::generate(&l, KeySpec::Rsa(2048), &mut s).expect("generate");
    let pk = signer.public_key().clone();
    assert_eq!(pk.alg, KeyAlg::Rsa);
    assert_eq!(pk.bits(), Some(2048));
    pk.validate().unwrap();

    let msg = conex_message(3000);
    let (alg, sig) = sign_checked(&mut signer, &msg).expect("sign");
    assert_eq!(sig.len(), 256);
    // conex's rule: PSS, SHA-256, MGF1-SHA-256, salt exactly 32.
    let key = rsa_key(&pk);
    key.verify(
        rsa::Pss::<Sha256>::new_with_salt(32),
        &Sha256::digest(&msg),
        &sig,
    )
    .expect("salt-32 PSS verifies");
    assert!(key
        .verify(
            rsa::Pss::<Sha256>::new_with_salt(20),
            &Sha256::digest(&msg),
            &sig
        )
        .is_err());
    pk.verify(alg, &msg, &sig).unwrap();
    // The card got exactly one modulus-sized block per signature, sent
    // with command chaining, and the signature came back with GET RESPONSE.
    let (_, sig2) = sign_checked(&mut signer, &msg).expect("second signature");
    assert_ne!(sig, sig2, "random salt");
    drop(signer);
    let card = plugged.card();
    assert_eq!(card.trace.sign_inputs, vec![256, 256]);
    assert!(card.trace.chained_parts >= 2);
    assert!(card.trace.get_responses >= 2);
}

#[test]
fn rsa3072_and_rsa4096_on_fw57() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw57(5_700_010));
    let msg = conex_message(5000);
    for (slot, bits) in [("82", 3072), ("83", 4096)] {
        let mut signer = PivSigner::generate(
            &loc(&format!("piv:slot={slot};touch=never")),
            KeySpec::Rsa(bits),
            &mut Script::new(&["123456"]),
        )
        .unwrap_or_else(|e| panic!("rsa{bits}: {e}"));
        let pk = signer.public_key().clone();
        assert_eq!(pk.bits(), Some(bits));
        let (_, sig) = sign_checked(&mut signer, &msg).unwrap();
        assert_eq!(sig.len(), bits / 8);
        rsa_key(&pk)
            .verify(
                rsa::Pss::<Sha256>::new_with_salt(32),
                &Sha256::digest(&msg),
                &sig,
            )
            .unwrap();
    }
    assert_eq!(plugged.card().trace.sign_inputs, vec![384, 512]);
}

#[test]
fn conex_sized_messages_with_ed25519_and_rsa() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw57(5_700_002));
    let mut ed = PivSigner::generate(
        &loc("piv:slot=9c;touch=never"),
        KeySpec::Ed25519,
        &mut Script::new(&["123456"]),
    )
    .unwrap();
    let mut rsa = PivSigner::generate(
        &loc("piv:slot=9d;touch=never"),
        KeySpec::Rsa(2048),
        &mut Script::new(&["123456"]),
    )
    .unwrap();

    // A conex-sized message (~3 KB): Ed25519 is refused up front with a
    // clear error, twice, without a PIN try or an APDU; RSA signs it twice.
    let big = conex_message(3 * 1024);
    for _ in 0..2 {
        let err = sign_checked(&mut ed, &big).expect_err("too long for Ed25519");
        assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("1014") && text.contains("RSA"), "{text}");
    }
    let before = plugged.card().trace.sign_inputs.clone();
    assert!(before.is_empty(), "{before:?}");
    let pk = rsa.public_key().clone();
    let (alg, s1) = sign_checked(&mut rsa, &big).unwrap();
    let (_, s2) = sign_checked(&mut rsa, &big).unwrap();
    pk.verify(alg, &big, &s1).unwrap();
    pk.verify(alg, &big, &s2).unwrap();

    // Ed25519 boundaries of the yubikey crate: 254, 256 and 1014 bytes work;
    // 255 bytes (crate assertion) and 1015 bytes (crate buffer) are refused.
    let epk = ed.public_key().clone();
    for len in [1, 254, 256, 1014] {
        let m = conex_message(len);
        let (alg, sig) = sign_checked(&mut ed, &m).unwrap_or_else(|e| panic!("{len}: {e}"));
        epk.verify(alg, &m, &sig).unwrap();
    }
    for len in [255, 1015] {
        let err = sign_checked(&mut ed, &conex_message(len))
            .err()
            .unwrap_or_else(|| panic!("{len} bytes must be refused"));
        assert!(matches!(err, KeyError::Unsupported(_)), "{len}: {err}");
    }
    drop((ed, rsa));
    assert_eq!(
        plugged.card().trace.sign_inputs,
        vec![256, 256, 1, 254, 256, 1014]
    );
    assert_eq!(plugged.card().pin_tries(), 3);
}

#[test]
fn wrong_pin_counts_down_then_blocks() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw57(5_700_003));
    let l = loc("piv:slot=9c;touch=never");
    PivSigner::generate(&l, KeySpec::Ed25519, &mut Script::new(&["123456"])).unwrap();

    // Too short: refused locally, no try used.
    let err = PivSigner::open(&l, &mut Script::new(&["12345"]))
        .err()
        .unwrap();
    assert!(matches!(err, KeyError::WrongPin(_)), "{err}");
    assert!(err.to_string().contains("no try was used"), "{err}");
    assert_eq!(plugged.card().pin_tries(), 3);

    // A wrong PIN, then the right one: the counter resets.
    let err = PivSigner::open(&l, &mut Script::new(&["000000"]))
        .err()
        .unwrap();
    assert!(matches!(err, KeyError::WrongPin(_)), "{err}");
    assert!(err.to_string().contains("2 tries left"), "{err}");
    let mut s = Script::new(&["123456"]);
    PivSigner::open(&l, &mut s).expect("right PIN");
    assert_eq!(s.requests[0].retries_left, Some(2));
    assert_eq!(plugged.card().pin_tries(), 3);

    // Three wrong PINs.
    let err = PivSigner::open(&l, &mut Script::new(&["000000"]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("2 tries left"), "{err}");
    let mut s = Script::new(&["000000"]);
    let err = PivSigner::open(&l, &mut s).err().unwrap();
    assert!(err.to_string().contains("1 try left"), "{err}");
    assert_eq!(s.requests[0].retries_left, Some(2));

    // Last try: needs an explicit yes; "no" asks nothing and uses nothing.
    let mut s = Script::new(&["000000"]);
    s.confirm = false;
    let err = PivSigner::open(&l, &mut s).err().unwrap();
    assert!(matches!(err, KeyError::Declined(_)), "{err}");
    assert_eq!(s.confirms.len(), 1);
    assert!(s.requests.is_empty());
    assert_eq!(plugged.card().pin_tries(), 1);
    // Non-interactive use cannot confirm either.
    let err = PivSigner::open(&l, &mut arca::keys::NoSecrets)
        .err()
        .unwrap();
    assert!(matches!(err, KeyError::Declined(_)), "{err}");

    let mut s = Script::new(&["000000"]);
    s.confirm = true;
    let err = PivSigner::open(&l, &mut s).err().unwrap();
    assert!(s.requests[0].final_try);
    assert_eq!(s.requests[0].retries_left, Some(1));
    assert!(matches!(err, KeyError::PinLocked(_)), "{err}");
    assert!(err.to_string().contains("PUK"), "{err}");
    assert_eq!(plugged.card().pin_tries(), 0);

    // Blocked: refused before asking, even with the right PIN.
    let mut s = Script::new(&["123456"]);
    let err = PivSigner::open(&l, &mut s).err().unwrap();
    assert!(matches!(err, KeyError::PinLocked(_)), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(s.requests.is_empty());
}

#[test]
fn picks_the_yubikey_by_serial() {
    let Some(_lock) = pcsc_lock() else { return };
    let a = Plugged::new(CardConfig::fw57(20_001));
    let b = Plugged::new(CardConfig {
        port: vpcd_ports()[1],
        ..CardConfig::fw57(20_002)
    });

    let err = PivSigner::generate(
        &loc("piv:slot=9c"),
        KeySpec::Ed25519,
        &mut Script::new(&["123456"]),
    )
    .err()
    .expect("ambiguous");
    let text = err.to_string();
    assert!(
        text.contains("20001") && text.contains("20002") && text.contains("serial="),
        "{text}"
    );

    let mut signer = PivSigner::generate(
        &loc("piv:serial=20002;slot=9c;touch=never"),
        KeySpec::Ed25519,
        &mut Script::new(&["123456"]),
    )
    .unwrap();
    assert_eq!(signer.serial(), 20_002);
    sign_checked(&mut signer, b"to the right key").unwrap();
    drop(signer);
    assert!(a.card().trace.sign_inputs.is_empty());
    assert_eq!(b.card().trace.sign_inputs, vec![16]);
    assert_eq!(piv::list().unwrap().len(), 2);

    // An absent serial: the person is asked to insert it, then a clear error.
    let mut s = Script::new(&["123456"]);
    let err = PivSigner::open(&loc("piv:serial=29999"), &mut s)
        .err()
        .unwrap();
    assert!(matches!(err, KeyError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("29999"), "{err}");
    assert_eq!(
        s.notices,
        vec!["insert the YubiKey with serial 29999".to_string()]
    );
    assert!(s.requests.is_empty());
}

#[test]
fn refuses_keys_conex_cannot_use() {
    let Some(_lock) = pcsc_lock() else { return };
    let _plugged = Plugged::new(CardConfig::fw57(5_700_004));
    // Put an ECDSA key in 9d with the yubikey crate directly.
    {
        use yubikey::{piv as ykpiv, MgmKey, PinPolicy, TouchPolicy, YubiKey};
        let mut yk = YubiKey::open_by_serial(5_700_004.into()).unwrap();
        yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
        ykpiv::generate(
            &mut yk,
            ykpiv::SlotId::KeyManagement,
            ykpiv::AlgorithmId::EccP256,
            PinPolicy::Once,
            TouchPolicy::Never,
        )
        .unwrap();
    }
    let err = PivSigner::open(&loc("piv:slot=9d"), &mut Script::new(&["123456"]))
        .err()
        .expect("ECDSA refused");
    assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("ecdsa-p256"), "{err}");
    let devices = piv::list().unwrap();
    assert_eq!(devices[0].slots.len(), 1);
    assert!(!devices[0].slots[0].usable_for_conex);
}

#[test]
fn typed_management_key() {
    let Some(_lock) = pcsc_lock() else { return };
    let key: [u8; 24] = *b"arca-test-management-k!!";
    let _plugged = Plugged::new(CardConfig {
        mgm_key: key,
        ..CardConfig::fw57(5_700_005)
    });
    let l = loc("piv:slot=9c;touch=never");
    let mut s = Script::new(&["123456", &hex::encode([0u8; 24])]);
    let err = PivSigner::generate(&l, KeySpec::Ed25519, &mut s)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("did not accept the management key"),
        "{err}"
    );
    assert!(
        s.requests[1].what.contains("aes192"),
        "{}",
        s.requests[1].what
    );

    let mut s = Script::new(&["123456", &hex::encode(key)]);
    let mut signer = PivSigner::generate(&l, KeySpec::Ed25519, &mut s).unwrap();
    assert!(
        !s.notices.iter().any(|n| n.contains("factory")),
        "{:?}",
        s.notices
    );
    sign_checked(&mut signer, b"ok").unwrap();
}

#[test]
fn setup_replaces_management_key_pin_and_puk() {
    let Some(_lock) = pcsc_lock() else { return };
    for (cfg, alg) in [
        (CardConfig::fw57(5_700_006), "aes192"),
        (CardConfig::fw54(5_400_006), "3des"),
    ] {
        let serial = cfg.serial;
        let plugged = Plugged::new(cfg);
        let l = loc(&format!("piv:serial={serial}"));

        // Mismatched new PINs: nothing about the PIN changes.
        let mut s = Script::new(&["123456", "24681357", "24681358"]);
        let err = piv::setup(&l, &mut s).expect_err("mismatch");
        assert!(matches!(err, KeyError::Declined(_)), "{err}");
        assert!(plugged.card().pin_is(b"123456"));

        let mut s = Script::new(&[
            "123456", "24681357", "24681357", "12345678", "97531864", "97531864",
        ]);
        let report = piv::setup(&l, &mut s).expect("setup");
        assert_eq!(report.serial, serial);
        assert_eq!(report.management_key_algorithm, alg);
        // The first (failed) run already replaced the factory key.
        assert!(!report.had_default_management_key);
        {
            let card = plugged.card();
            assert_ne!(card.mgm_key(), vpiv::DEFAULT_MGM_KEY);
            assert!(card.pin_is(b"24681357"));
            assert!(card.puk_is(b"97531864"));
        }
        let whats: Vec<&str> = s.requests.iter().map(|r| r.what.as_str()).collect();
        assert!(whats[0].contains("current PIN"), "{whats:?}");
        assert!(whats[3].contains("current PUK"), "{whats:?}");

        // Afterwards keys are made with the stored, PIN-protected key and
        // the new PIN, without asking for a management key.
        if alg == "aes192" {
            let mut s = Script::new(&["24681357"]);
            let mut signer = PivSigner::generate(
                &loc(&format!("piv:serial={serial};touch=never")),
                KeySpec::Ed25519,
                &mut s,
            )
            .unwrap();
            assert_eq!(s.requests.len(), 1);
            assert!(
                s.notices.iter().all(|n| !n.contains("factory")),
                "{:?}",
                s.notices
            );
            sign_checked(&mut signer, b"after setup").unwrap();
        }
    }

    // A factory-fresh key is detected as such.
    let _p = Plugged::new(CardConfig::fw57(5_700_007));
    let mut s = Script::new(&[
        "123456", "24681357", "24681357", "12345678", "97531864", "97531864",
    ]);
    let report = piv::setup(&loc("piv:"), &mut s).unwrap();
    assert!(report.had_default_management_key);
    // Refuses the factory PIN as the new PIN.
    let mut s = Script::new(&["24681357", "123456"]);
    let err = piv::setup(&loc("piv:"), &mut s).err().unwrap();
    assert!(matches!(err, KeyError::Policy(_)), "{err}");
}

#[test]
fn attestation_is_read_and_checked() {
    let Some(_lock) = pcsc_lock() else { return };
    let plugged = Plugged::new(CardConfig::fw57(5_700_008));
    let ed = PivSigner::generate(
        &loc("piv:slot=9c;touch=cached"),
        KeySpec::Ed25519,
        &mut Script::new(&["123456"]),
    )
    .unwrap();
    let rsa = PivSigner::generate(
        &loc("piv:slot=9a;touch=never"),
        KeySpec::Rsa(2048),
        &mut Script::new(&["123456"]),
    )
    .unwrap();
    let (ed_pk, rsa_pk) = (ed.public_key().clone(), rsa.public_key().clone());
    drop((ed, rsa));

    let att = piv::attest(&loc("piv:slot=9c")).expect("attest 9c");
    assert_eq!((att.serial, att.slot), (5_700_008, 0x9c));
    assert_eq!(att.intermediate, plugged.card().f9_cert_der());
    att.check(&ed_pk).expect("Ed25519 attestation checks");
    assert_eq!(att.attested_serial().unwrap(), Some(5_700_008));
    assert_eq!(
        att.attested_policy().unwrap(),
        Some((3, 3)),
        "always / cached"
    );

    let att_rsa = piv::attest(&loc("piv:slot=9a")).expect("attest 9a");
    att_rsa.check(&rsa_pk).expect("RSA attestation checks");

    // The wrong key is refused.
    let err = att.check(&rsa_pk).expect_err("mismatch");
    assert!(matches!(err, KeyError::Policy(_)), "{err}");
    assert!(err.to_string().contains("not the key"), "{err}");
    let err = att_rsa.check(&ed_pk).expect_err("mismatch");
    assert!(matches!(err, KeyError::Policy(_)), "{err}");

    // A certificate not signed by the F9 key is refused.
    let mut forged = att.clone();
    let n = forged.certificate.len();
    forged.certificate[n - 5] ^= 0x01;
    let err = forged.check(&ed_pk).expect_err("bad signature");
    assert!(
        err.to_string().contains("not signed by its F9 key"),
        "{err}"
    );
    // …and so is one checked against another device's F9 certificate.
    let mut other = att.clone();
    other.intermediate = att_rsa.intermediate.clone();
    other.check(&ed_pk).expect("same device, same F9");
    drop(plugged);
    let _p2 = Plugged::new(CardConfig::fw57(5_700_009));
    let theirs = piv::attest(&loc("piv:slot=9c")).expect_err("empty slot");
    assert!(matches!(theirs, KeyError::Device(_)), "{theirs}");
    let mut swapped = att.clone();
    swapped.intermediate = _p2.card().f9_cert_der();
    let err = swapped.check(&ed_pk).expect_err("foreign F9");
    assert!(matches!(err, KeyError::Policy(_)), "{err}");
}

#[test]
fn yubikey_held_by_another_program() {
    let Some(_lock) = pcsc_lock() else { return };
    let _plugged = Plugged::new(CardConfig::fw57(5_700_011));
    let ctx = pcsc::Context::establish(pcsc::Scope::System).unwrap();
    let reader = ctx
        .list_readers_owned()
        .unwrap()
        .into_iter()
        .find(|r| r.to_string_lossy().ends_with("00 00"))
        .expect("first vpcd reader");
    let held = ctx
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::T1)
        .expect("exclusive connection");
    let mut s = Script::new(&["123456"]);
    let err = PivSigner::open(&loc("piv:"), &mut s).err().expect("busy");
    assert!(err.to_string().contains("exclusively"), "{err}");
    assert!(s.requests.is_empty());
    drop(held);
}

#[test]
fn attestation_with_an_rsa_f9_key() {
    let Some(_lock) = pcsc_lock() else { return };
    let _plugged = Plugged::new(CardConfig {
        f9: vpiv::F9Kind::Rsa2048,
        ..CardConfig::fw54(5_400_012)
    });
    let signer = PivSigner::generate(
        &loc("piv:slot=9c"),
        KeySpec::Rsa(2048),
        &mut Script::new(&["123456"]),
    )
    .unwrap();
    let pk = signer.public_key().clone();
    drop(signer);
    let att = piv::attest(&loc("piv:slot=9c")).unwrap();
    att.check(&pk)
        .expect("sha256WithRSAEncryption attestation checks");
    assert_eq!(
        att.attested_policy().unwrap(),
        Some((3, 2)),
        "always / always"
    );
    let mut forged = att.clone();
    let n = forged.certificate.len();
    forged.certificate[n - 1] ^= 0x01;
    let err = forged.check(&pk).expect_err("bad RSA signature");
    assert!(
        err.to_string().contains("not signed by its F9 key"),
        "{err}"
    );
}

// ------------------------------------------------- a janitor at work

#[path = "support/mod.rs"]
mod support;

/// A janitor with an RSA key on a YubiKey signs their targets file through
/// the real `arca` binary; the repository verifies with conex's rules.
#[test]
fn janitor_signs_targets_file_with_yubikey() {
    let Some(_lock) = pcsc_lock() else { return };
    let serial = 5_400_077;
    let _plugged = Plugged::new(CardConfig::fw54(serial));
    let tmp = tempfile::tempdir().unwrap();
    let pin = tmp.path().join("pin");
    std::fs::write(&pin, "123456\n").unwrap();
    let on = format!(
        "piv:serial={serial};slot=9c;pin-source=file:{}",
        pin.display()
    );
    PivSigner::generate(&loc(&on), KeySpec::Rsa(2048), &mut Script::new(&[])).expect("generate");

    let ks = support::vector_key_store(tmp.path());
    let repo = tmp.path().join("repo");
    support::copy_tree(&support::vectors().join("repo"), &repo);
    let run = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-r".into(),
            repo.display().to_string(),
            "--key-store".into(),
            ks.display().to_string(),
        ]);
        support::ok(&support::arca(&v))
    };
    // the root holders delegate to the janitor's YubiKey key (no PIN needed)
    let p = support::ok(&support::arca([
        "key",
        "pub",
        "--id",
        "j1",
        "--on",
        &format!("piv:serial={serial};slot=9c"),
    ]));
    assert!(p.contains("rsa=-----BEGIN PUBLIC KEY-----"), "{p}");
    // the janitor signs packages with the YubiKey
    let out = support::delegate_and_sign_targets(&run, &on);
    assert!(out.contains("targets j1 signed at counter 1"), "{out}");
    run(&["snapshot", "create"]);
    run(&["snapshot", "sign"]);
    run(&["timestamp", "create"]);
    run(&["timestamp", "sign"]);
    let anchors = format!("{},{}", support::ANCHOR_A, support::ANCHOR_B);
    let v = support::arca([
        "verify",
        "--dir",
        repo.to_str().unwrap(),
        "-t",
        &anchors,
        "--quorum",
        "2",
        "-v",
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        support::stderr(&v)
    );
    assert!(v.status.success(), "{all}");
    assert!(all.contains("2 targets file(s)"), "{all}");
}

/// A root holder's key generated on a YubiKey during a ceremony: the slot's
/// attestation is checked against the key and kept in the bundle.
#[test]
fn ceremony_keeps_the_yubikey_attestation() {
    let Some(_lock) = pcsc_lock() else { return };
    let serial = 5_700_088;
    let _plugged = Plugged::new(CardConfig::fw57(serial));
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    std::fs::write(base.join("pin"), "123456\n").unwrap();
    std::fs::create_dir_all(base.join("alice")).unwrap();
    std::fs::write(
        base.join("profile.toml"),
        format!(
            "[holders]\nalice = \"file:{}/alice/\"\nbob = \"piv:serial={serial};slot=9c;pin-source=file:{}/pin\"\n",
            base.display(),
            base.display()
        ),
    )
    .unwrap();
    std::fs::write(base.join("answers.toml"), "confirm = \"yes\"\n").unwrap();
    std::fs::write(
        base.join("c.toml"),
        support::CreateRoot::with_root_b("root with a YubiKey holder", "rsa2048").text(),
    )
    .unwrap();
    let o = support::arca(support::ceremony_args(
        "run",
        &base.join("c.toml"),
        &base.join("profile.toml"),
        &base.join("answers.toml"),
        base,
    ));
    support::ok(&o);
    let att: Vec<String> = std::fs::read_dir(base.join("out/bundle/attestations"))
        .expect("attestations in the bundle")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(att.len(), 2, "{att:?}");
    assert!(
        att.iter().any(|n| n == &format!("rootB-{serial}-9c.der")),
        "{att:?}"
    );
    let v = support::arca([
        "bundle",
        "verify",
        base.join("out/bundle").to_str().unwrap(),
    ]);
    support::ok(&v);
}
