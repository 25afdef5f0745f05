//! Clear PKCS#8 private keys have one decoder: a key file and a bundle's
//! online key are read by the same code, and an Ed25519 key whose embedded
//! public key (PKCS#8 version 2) is not its private key's is refused on both
//! paths with one line naming the file.

mod support;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes, PublicKeyBytes,
};
use std::path::{Path, PathBuf};
use support::*;

const MISMATCH: &str = "the embedded Ed25519 public key does not match the private key";

/// A PKCS#8 v2 Ed25519 key: private key `seed`, embedded public key that of
/// `embedded_seed`.
fn ed25519_v2(seed: [u8; 32], embedded_seed: [u8; 32]) -> Vec<u8> {
    let public = ed25519_dalek::SigningKey::from_bytes(&embedded_seed)
        .verifying_key()
        .to_bytes();
    KeypairBytes {
        secret_key: seed,
        public_key: Some(PublicKeyBytes(public)),
    }
    .to_pkcs8_der()
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn pem_of_der(der: &[u8]) -> String {
    pkcs8::der::pem::encode_string("PRIVATE KEY", pkcs8::der::pem::LineEnding::LF, der).unwrap()
}

#[test]
fn a_key_file_whose_embedded_public_key_is_not_its_own_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    // the matching v2 key is accepted: the check refuses only a mismatch
    let good = store.join("good.private");
    std::fs::write(&good, pem_of_der(&ed25519_v2([1; 32], [1; 32]))).unwrap();
    let loc = arca::keys::KeyLocation::parse(&format!("file:{}", good.display())).unwrap();
    let mut signer = arca::keys::open(&loc, &mut arca::keys::NoSecrets).unwrap();
    arca::keys::sign_checked(signer.as_mut(), b"a resource").unwrap();
    let o = ok(&arca([
        "key",
        "pub",
        "--id",
        "good",
        "--key-store",
        store.to_str().unwrap(),
    ]));
    assert!(o.contains("ed25519="), "{o}");

    let bad = store.join("bad.private");
    std::fs::write(&bad, pem_of_der(&ed25519_v2([1; 32], [2; 32]))).unwrap();
    let loc = arca::keys::KeyLocation::parse(&format!("file:{}", bad.display())).unwrap();
    let e = arca::keys::open(&loc, &mut arca::keys::NoSecrets)
        .err()
        .expect("a mismatched key file was accepted")
        .to_string();
    assert_eq!(e, format!("{}: {MISMATCH}", bad.display()));
    // through the binary: refused, one line naming the file
    let o = arca([
        "key",
        "pub",
        "--id",
        "bad",
        "--key-store",
        store.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a mismatched key file was accepted");
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.contains(&bad.display().to_string()) && l.contains(MISMATCH)),
        "no line names the file and the mismatch:\n{err}"
    );
}

const PASSPHRASE: &str = "correct horse battery staple";

fn open_bundle(bundle: &Path, out: &Path, pass: &Path) -> std::process::Output {
    arca([
        "bundle",
        "open",
        bundle.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ])
}

#[test]
fn an_online_key_whose_embedded_public_key_is_not_its_own_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let ceremony = CreateRoot::new("online key decoder test root")
        .janitor("m1", M1_KEY)
        .generated_online();
    file_device_room(&base, &ceremony.text(), PASSPHRASE);
    let pass = base.join("pass.txt");
    ok(&file_device_ceremony("run", &base));
    let bundle = base.join("out/bundle");
    let snap: PathBuf = std::fs::read_dir(bundle.join("online-keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("snap.")
        })
        .expect("no snapshot key in the bundle");
    let name = format!(
        "online-keys/{}",
        snap.file_name().unwrap().to_str().unwrap()
    );
    // the same private key, re-encrypted as PKCS#8 v2 with another key's
    // public key embedded; its key id (from the private key) still matches
    // the file name and the root
    let (clear, _) = arca::bundle::decrypt_pkcs8(
        &name,
        &std::fs::read_to_string(&snap).unwrap(),
        PASSPHRASE.as_bytes(),
    )
    .unwrap();
    let seed = KeypairBytes::from_pkcs8_pem(&clear).unwrap().secret_key;
    let mut other = seed;
    other[0] ^= 1;
    let forged =
        arca::bundle::encrypt_pkcs8(&ed25519_v2(seed, other), PASSPHRASE.as_bytes()).unwrap();
    std::fs::write(&snap, forged.as_bytes()).unwrap();
    remanifest(&bundle);

    let online = base.join("online");
    let o = open_bundle(&bundle, &online, &pass);
    assert!(!o.status.success(), "a mismatched online key was opened");
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.contains(&name) && l.contains(MISMATCH)),
        "no line names {name} and the mismatch:\n{err}"
    );
    assert!(!online.join("key-store").exists(), "a key was written");

    // the same key with its own public key embedded opens
    let honest =
        arca::bundle::encrypt_pkcs8(&ed25519_v2(seed, seed), PASSPHRASE.as_bytes()).unwrap();
    std::fs::write(&snap, honest.as_bytes()).unwrap();
    remanifest(&bundle);
    ok(&open_bundle(&bundle, &online, &pass));
    assert!(online.join("key-store").is_dir());
}
