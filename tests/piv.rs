#[path = "support/vpiv.rs"]
mod vpiv;

#[test]
fn probe() {
    use yubikey::{piv, MgmKey, PinPolicy, TouchPolicy, YubiKey};
    let card = vpiv::VirtualCard::start(vpiv::CardConfig::fw57(4242)).unwrap();
    let mut yk = None;
    for _ in 0..50 {
        if let Ok(y) = YubiKey::open_by_serial(4242.into()) {
            yk = Some(y);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut yk = yk.expect("card visible");
    eprintln!("{:?}", yk);
    yk.verify_pin(b"123456").unwrap();
    let t = std::time::Instant::now();
    yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
    let spki = piv::generate(
        &mut yk,
        piv::SlotId::Signature,
        piv::AlgorithmId::Ed25519,
        PinPolicy::Always,
        TouchPolicy::Never,
    )
    .unwrap();
    eprintln!("gen ed {:?}", t.elapsed());
    for n in [10usize, 254, 256, 1014, 1015, 3000] {
        yk.verify_pin(b"123456").unwrap();
        let msg = vec![0x41u8; n];
        let r = piv::sign_data(
            &mut yk,
            &msg,
            piv::AlgorithmId::Ed25519,
            piv::SlotId::Signature,
        );
        eprintln!("len {n}: {:?}", r.as_ref().map(|s| s.len()));
    }
    let t = std::time::Instant::now();
    let _ = piv::generate(
        &mut yk,
        piv::SlotId::Authentication,
        piv::AlgorithmId::Rsa2048,
        PinPolicy::Always,
        TouchPolicy::Never,
    )
    .unwrap();
    eprintln!("gen rsa {:?}", t.elapsed());
    let m = piv::metadata(&mut yk, piv::SlotId::Authentication).unwrap();
    eprintln!("{:?}", m.algorithm);
    let a = piv::attest(&mut yk, piv::SlotId::Signature).unwrap();
    eprintln!("attest {}", a.len());
    let f9 = yk.fetch_object(0x5fff01).unwrap();
    eprintln!("f9 {}", f9.len());
    let _ = spki;
    eprintln!("trace {:?}", card.card().trace);
    yk.verify_pin(b"123456").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        piv::sign_data(
            &mut yk,
            &[0u8; 255],
            piv::AlgorithmId::Ed25519,
            piv::SlotId::Signature,
        )
    }));
    eprintln!("255: {:?}", r.map(|r| r.map(|s| s.len())));
}
