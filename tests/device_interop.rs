//! Other programs against the virtual PIV card, and arca with their keys:
//! raw PC/SC (ISO 7816-4 GET RESPONSE), OpenSC's PIV driver through
//! `pkcs11-tool` and `opensc-pkcs11.so`, Yubico's `yubico-piv-tool`, and
//! `openssl` checking what they produce.
//!
//! The card runs in this process (`tests/support/vpiv.rs`), plugged into
//! pcscd's vpcd reader; every test takes the machine-wide PC/SC lock.
//!
//! PINs: `pkcs11-tool` gets the PIN typed on a pseudo-terminal;
//! `yubico-piv-tool` reads the PIN and the management key from its standard
//! input when `-P` is left out and `-k` has no value. Both are the virtual
//! card's factory values, which protect nothing.

#[path = "support/pcsc_card.rs"]
mod pcsc_card;
#[path = "support/pty.rs"]
mod pty;
mod support;
#[path = "support/vpiv.rs"]
mod vpiv;

use arca::keys::piv::{self, PivLocation, PivSigner};
use arca::keys::{KeySpec, NoSecrets};
use pcsc_card::{pcsc_lock, Plugged};
use std::path::{Path, PathBuf};
use std::process::Command;
use vpiv::{CardConfig, F9Kind};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// The virtual card's factory PIN (a test value; see the module comment).
const TEST_PIN: &str = "123456";
/// The factory management key, hex (a test value).
const TEST_MGM: &str = "010203040506070801020304050607080102030405060708";
const OBJ_ATTESTATION: u32 = 0x5f_ff01;

fn need(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found && std::env::var_os("CI").is_some() {
        panic!("{tool} is missing (apt-get install yubico-piv-tool opensc openssl)");
    }
    if !found {
        eprintln!("{tool} is missing: skipping");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    all
}

/// The name of the first vpcd reader, as PC/SC lists it.
fn reader() -> String {
    let ctx = pcsc::Context::establish(pcsc::Scope::System).unwrap();
    let readers = ctx.list_readers_owned().unwrap();
    readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .find(|r| r.contains("vpcd") && r.ends_with("00 00"))
        .expect("vpcd reader 00 00")
}

/// Runs yubico-piv-tool with `input` (a PIN or the management key) on its
/// standard input.
fn yubico_piv_tool(args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("yubico-piv-tool")
        .arg("-r")
        .arg(reader())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start yubico-piv-tool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{input}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "yubico-piv-tool {args:?} failed:\n{all}"
    );
    all
}

/// Sends `apdu` and returns (data, SW1, SW2).
fn transmit(card: &pcsc::Card, apdu: &[u8]) -> (Vec<u8>, u8, u8) {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let r = card.transmit(apdu, &mut buf).expect("transmit");
    let n = r.len();
    assert!(n >= 2, "reply without status word");
    (r[..n - 2].to_vec(), r[n - 2], r[n - 1])
}

/// ISO 7816-4 5.3.4: a card with more data than Le answers at most Le bytes
/// and `61 XX`, XX the bytes still available, `00` for 256 or more; GET
/// RESPONSE (`00 C0 00 00 Le`) returns the next at most Le bytes the same
/// way. Checked byte for byte over real PC/SC with Le 256, 255 and 128.
#[test]
fn get_response_follows_iso_7816_4() {
    let Some(_lock) = pcsc_lock() else { return };
    let mut cfg = CardConfig::fw54(19_000_001);
    cfg.f9 = F9Kind::Rsa2048;
    let plugged = Plugged::new(cfg);
    let want = {
        let c = plugged.card();
        let mut v = vec![0x53];
        let obj = c.object(OBJ_ATTESTATION).unwrap().to_vec();
        v.extend([0x82, (obj.len() >> 8) as u8, obj.len() as u8]);
        v.extend(obj);
        v
    };
    assert!(want.len() > 600, "the object spans three replies");
    let ctx = pcsc::Context::establish(pcsc::Scope::System).unwrap();
    let name = std::ffi::CString::new(reader()).unwrap();
    let card = ctx
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect");
    let (_, s1, s2) = transmit(
        &card,
        &[0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08],
    );
    assert_eq!((s1, s2), (0x90, 0x00), "SELECT PIV");
    for first_le in [0x00u8, 0xff, 0x80] {
        for next_le in [0x00u8, 0xff, 0x80] {
            let le = |b: u8| if b == 0 { 256 } else { b as usize };
            let (mut got, mut s1, mut s2) = transmit(
                &card,
                &[
                    0x00, 0xcb, 0x3f, 0xff, 0x05, 0x5c, 0x03, 0x5f, 0xff, 0x01, first_le,
                ],
            );
            assert_eq!(
                got.len(),
                le(first_le),
                "first reply honours Le {first_le:02x}"
            );
            loop {
                let left = want.len() - got.len();
                if left == 0 {
                    assert_eq!((s1, s2), (0x90, 0x00), "last reply ends with 90 00");
                    break;
                }
                let xx = if left >= 256 { 0 } else { left as u8 };
                assert_eq!(
                    (s1, s2),
                    (0x61, xx),
                    "{left} bytes left: 61 {xx:02x} (Le {first_le:02x}/{next_le:02x})"
                );
                let (part, a, b) = transmit(&card, &[0x00, 0xc0, 0x00, 0x00, next_le]);
                assert_eq!(
                    part.len(),
                    left.min(le(next_le)),
                    "GET RESPONSE honours Le {next_le:02x}"
                );
                got.extend(part);
                (s1, s2) = (a, b);
            }
            assert_eq!(got, want, "the object comes back whole");
        }
    }
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// `openssl verify` accepts the attestation chain: the F9 certificate as
/// the trust anchor (a CA) and the slot's attestation certificate.
#[test]
fn openssl_verifies_the_attestation_chain() {
    if !need("openssl") {
        return;
    }
    let Some(_lock) = pcsc_lock() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for f9 in [F9Kind::P256, F9Kind::Rsa2048] {
        let mut cfg = CardConfig::fw57(19_000_002);
        cfg.f9 = f9;
        let plugged = Plugged::new(cfg);
        let pin = tmp.path().join("pin");
        std::fs::write(&pin, format!("{TEST_PIN}\n")).unwrap();
        let loc = PivLocation::parse(&format!(
            "piv:serial=19000002;slot=9c;pin-source=file:{}",
            pin.display()
        ))
        .unwrap();
        PivSigner::generate(&loc, KeySpec::Ed25519, &mut NoSecrets).expect("generate");
        let att = piv::attest(&loc).expect("attest");
        let ca = tmp.path().join("f9.pem");
        let leaf = tmp.path().join("att.pem");
        std::fs::write(&ca, pem("CERTIFICATE", &att.intermediate)).unwrap();
        std::fs::write(&leaf, pem("CERTIFICATE", &att.certificate)).unwrap();
        let out = run(Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&ca)
            .arg(&leaf));
        assert!(out.contains(": OK"), "{f9:?}: {out}");
        let text = run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&ca));
        assert!(text.contains("CA:TRUE"), "{text}");
        drop(plugged);
    }
}

/// A certificate for `public` stored in 9c's certificate object with
/// yubico-piv-tool. The certificate is made by openssl with a throw-away
/// RSA-2048 issuer key (so that, like a YubiKey's own, it is over 512 bytes
/// and takes three replies to read): Debian's yubico-piv-tool 2.2 cannot sign certificates with
/// OpenSSL 3 ("Failed signing certificate", before anything reaches the
/// card), and a PIV certificate object only has to carry the public key.
fn certify_and_import(public: &Path, cert: &Path, subject: &str) {
    let issuer = cert.with_extension("issuer.pem");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&issuer));
    run(Command::new("openssl")
        .args(["x509", "-new", "-days", "365", "-subj", subject, "-key"])
        .arg(&issuer)
        .arg("-force_pubkey")
        .arg(public)
        .arg("-out")
        .arg(cert));
    yubico_piv_tool(
        &[
            "-k",
            "-a",
            "import-certificate",
            "-s",
            "9c",
            "-i",
            cert.to_str().unwrap(),
        ],
        TEST_MGM,
    );
}

/// Runs pkcs11-tool on OpenSC's module, the PIN typed on a terminal.
fn pkcs11_tool_with_pin(module: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("pkcs11-tool");
    cmd.arg("--module").arg(module).args(args);
    let (status, out) = pty::run_typing(cmd, "PIN", &format!("{TEST_PIN}\n"));
    assert!(status.success(), "pkcs11-tool {args:?} failed:\n{out}");
    out
}

fn openssl_verify_pss(public_pem: &Path, msg: &Path, sig: &Path) -> String {
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss"])
        .args([
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-sigopt",
            "rsa_mgf1_md:sha256",
        ])
        .arg("-verify")
        .arg(public_pem)
        .arg("-signature")
        .arg(sig)
        .arg(msg))
}

/// yubico-piv-tool generates an RSA-2048 key in 9c and stores a certificate
/// for it; OpenSC's PIV driver lists the key with its
/// certificate and signs RSA-PSS (SHA-256, MGF1-SHA-256, salt 32), which
/// openssl verifies; then arca uses the same key as a janitor's, and conex's
/// own verifiers accept the repository.
#[test]
#[cfg_attr(
    not(arca_conex_oracle),
    ignore = "needs conex's tools (../shared/oracle/build.sh)"
)]
fn yubico_piv_tool_key_used_by_opensc_and_arca() {
    if !(need("yubico-piv-tool") && need("pkcs11-tool") && need("openssl")) {
        return;
    }
    let Some(_lock) = pcsc_lock() else { return };
    let serial = 19_000_003;
    let _plugged = Plugged::new(CardConfig::fw54(serial));
    let tmp = tempfile::tempdir().unwrap();
    let public = tmp.path().join("pub.pem");
    let cert = tmp.path().join("cert.pem");
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    yubico_piv_tool(
        &[
            "-k",
            "-a",
            "generate",
            "-s",
            "9c",
            "-A",
            "RSA2048",
            "-o",
            &p(&public),
        ],
        TEST_MGM,
    );
    certify_and_import(&public, &cert, "/CN=janitor j1");
    let der = run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(tmp.path().join("cert.der")));
    let _ = der;
    let size = std::fs::metadata(tmp.path().join("cert.der"))
        .unwrap()
        .len();
    assert!(
        size > 512,
        "the certificate spans three replies: {size} bytes"
    );

    // OpenSC: the key and its certificate, 761 bytes and more, read whole
    let objects = pkcs11_tool_with_pin(OPENSC, &["--login", "--list-objects"]);
    assert!(
        objects.contains("Certificate Object") && objects.contains("janitor j1"),
        "OpenSC lists the 9c certificate:\n{objects}"
    );
    assert!(
        objects.contains("Public Key Object; RSA 2048 bits"),
        "OpenSC lists the 9c key:\n{objects}"
    );
    assert!(
        objects.contains("Private Key Object; RSA"),
        "OpenSC lists the 9c private key:\n{objects}"
    );
    let msg = tmp.path().join("msg");
    let sig = tmp.path().join("sig");
    std::fs::write(&msg, b"counter: 1\nname: j1\n").unwrap();
    pkcs11_tool_with_pin(
        OPENSC,
        &[
            "--login",
            "--sign",
            "--id",
            "02",
            "-m",
            "SHA256-RSA-PKCS-PSS",
            "--mgf",
            "MGF1-SHA256",
            "--salt-len",
            "32",
            "-i",
            &p(&msg),
            "-o",
            &p(&sig),
        ],
    );
    let v = openssl_verify_pss(&public, &msg, &sig);
    assert!(v.contains("Verified OK"), "{v}");

    // arca with the key yubico-piv-tool made: a janitor's targets file
    let pin = tmp.path().join("pin");
    std::fs::write(&pin, format!("{TEST_PIN}\n")).unwrap();
    let on = format!(
        "piv:serial={serial};slot=9c;pin-source=file:{}",
        pin.display()
    );
    let ks = support::vector_key_store(tmp.path());
    let repo = tmp.path().join("repo");
    support::copy_tree(&support::vectors().join("repo"), &repo);
    let arca = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["-r".into(), p(&repo), "--key-store".into(), p(&ks)]);
        support::ok(&support::arca(&v))
    };
    let out = support::delegate_and_sign_targets(&arca, &on);
    assert!(out.contains("targets j1 signed"), "{out}");
    // arca's key for j1 is the one yubico-piv-tool wrote out
    let key_pub = arca(&["key", "pub", "--id", "j1", "--on", &on]);
    let spki = std::fs::read_to_string(&public).unwrap();
    let b64: String = spki.lines().filter(|l| !l.starts_with("-----")).collect();
    let flat: String = key_pub.split_whitespace().collect::<Vec<_>>().join("");
    assert!(
        flat.contains(&b64),
        "arca's public key is yubico-piv-tool's:\n{key_pub}\n{spki}"
    );
    for (what, args) in [
        ("snapshot", ["snapshot", "create"]),
        ("snapshot", ["snapshot", "sign"]),
        ("timestamp", ["timestamp", "create"]),
        ("timestamp", ["timestamp", "sign"]),
    ] {
        let _ = what;
        arca(&args);
    }
    let anchors = format!("{},{}", support::ANCHOR_A, support::ANCHOR_B);
    for tool in ["conex_verify_openssl", "conex_verify_mirage_crypto"] {
        let out = Command::new(support::conex_tool(tool))
            .arg(format!("--dir={}", p(&repo)))
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

/// The reverse: a key arca generated is used by yubico-piv-tool (its test
/// signature, checked against a certificate holding arca's public key) and, through Yubico's ykcs11, by pkcs11-tool
/// for RSA-PSS salt 32, verified by openssl.
#[test]
fn arca_key_used_by_yubico_piv_tool_and_ykcs11() {
    if !(need("yubico-piv-tool") && need("pkcs11-tool") && need("openssl")) {
        return;
    }
    let ykcs11 = "/usr/lib/x86_64-linux-gnu/libykcs11.so";
    if !Path::new(ykcs11).exists() {
        assert!(std::env::var_os("CI").is_none(), "ykcs11 is missing");
        return;
    }
    let Some(_lock) = pcsc_lock() else { return };
    let serial = 19_000_004;
    let _plugged = Plugged::new(CardConfig::fw54(serial));
    let tmp = tempfile::tempdir().unwrap();
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let pin = tmp.path().join("pin");
    std::fs::write(&pin, format!("{TEST_PIN}\n")).unwrap();
    let loc = PivLocation::parse(&format!(
        "piv:serial={serial};slot=9c;pin-source=file:{}",
        pin.display()
    ))
    .unwrap();
    let signer = PivSigner::generate(&loc, KeySpec::Rsa(2048), &mut NoSecrets).expect("generate");
    let public = tmp.path().join("arca.pem");
    use arca::keys::Signer as _;
    std::fs::write(&public, &signer.public_key().data).unwrap();
    drop(signer);

    // yubico-piv-tool signs with arca's key and checks the signature with
    // the public key of the certificate it finds in the slot
    let cert = tmp.path().join("cert.pem");
    certify_and_import(&public, &cert, "/CN=arca root key");
    let cert_key = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&cert));
    assert_eq!(
        cert_key.trim(),
        std::fs::read_to_string(&public).unwrap().trim(),
        "the certificate is for arca's key"
    );
    let t = yubico_piv_tool(
        &[
            "-a",
            "verify-pin",
            "-a",
            "test-signature",
            "-s",
            "9c",
            "-i",
            cert.to_str().unwrap(),
        ],
        TEST_PIN,
    );
    assert!(t.contains("Successful"), "{t}");
    let msg = tmp.path().join("msg");
    std::fs::write(&msg, b"signed through ykcs11 with arca's key\n").unwrap();

    // ykcs11 lists arca's key (from the card's metadata) and signs PSS
    let objects = run(Command::new("pkcs11-tool").args(["--module", ykcs11, "--list-objects"]));
    assert!(
        objects.contains("Public Key Object; RSA 2048 bits"),
        "ykcs11 lists arca's 9c key:\n{objects}"
    );
    let sig2 = tmp.path().join("sig2");
    pkcs11_tool_with_pin(
        ykcs11,
        &[
            "--login",
            "--sign",
            "--id",
            "02",
            "-m",
            "SHA256-RSA-PKCS-PSS",
            "--mgf",
            "MGF1-SHA256",
            "--salt-len",
            "32",
            "-i",
            &p(&msg),
            "-o",
            &p(&sig2),
        ],
    );
    let v = openssl_verify_pss(&public, &msg, &sig2);
    assert!(v.contains("Verified OK"), "{v}");
}
