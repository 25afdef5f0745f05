//! A whole transfer bundle as a tar file, as it comes off a USB stick:
//! `bundle::verify_tar_bytes` (tar entries, MANIFEST, digests and sizes,
//! the root against the bundle's anchors, derived files, journal, online
//! settings) never panics; every problem is one line; every file it read
//! has a path inside the bundle; a bundle without problems has a root that
//! verified against its anchors.
#![no_main]
use arca::bundle::manifest::path_problem;
use arca::bundle::{verify_tar_bytes, VerifyOptions};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = verify_tar_bytes(data, Path::new("fuzz.tar"), &VerifyOptions::default()) else {
        return;
    };
    for p in &c.problems {
        assert!(!p.contains('\n'), "problem on two lines: {p:?}");
    }
    for name in c.files.keys() {
        assert!(path_problem(name).is_none(), "read a file at {name:?}");
    }
    if c.problems.is_empty() {
        assert!(
            c.root.is_some() && !c.signers.is_empty(),
            "a bundle without problems whose root did not verify"
        );
    }
});
