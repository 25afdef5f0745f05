//! QR frame assembly. The input is cut at 0x00 bytes into decoded QR codes
//! fed to an `Assembler` in that order: adding and finishing never panic,
//! and a payload that comes out hashes to the digest its frames announce.
//! The input is also cut into frames (chunk size from its first byte, at
//! most 17 frames),
//! handed over in a shuffled order with a repeat, and must come back whole.
#![no_main]
use arca::bundle::manifest::sha256_hex;
use arca::bundle::qr::{frames, parse_frame, Assembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut a = Assembler::default();
    let mut announced = None;
    let mut framed = false;
    for code in data.split(|b| *b == 0) {
        if a.add(code).is_err() {
            break;
        }
        if let Ok(Some(f)) = parse_frame(code) {
            framed = true;
            announced.get_or_insert(f.digest);
        }
    }
    if let Ok(payload) = a.finish() {
        if framed {
            assert_eq!(Some(sha256_hex(&payload)), announced);
        }
    }

    let Some((&c, payload)) = data.split_first() else {
        return;
    };
    // at most 17 frames, so that a long input does not make thousands
    let chunk = (usize::from(c) + 1).max(payload.len() / 16 + 1);
    let mut fs = frames(payload, chunk);
    let k = fs.len();
    fs.rotate_left(usize::from(c) % k);
    fs.reverse();
    fs.push(fs[0].clone());
    let mut a = Assembler::default();
    for f in &fs {
        a.add(f).expect("a frame of a good sequence was refused");
    }
    assert_eq!(
        a.finish().expect("a good sequence did not assemble"),
        payload
    );
});
