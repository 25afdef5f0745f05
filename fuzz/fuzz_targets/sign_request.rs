//! Sign requests and signature files, as they come from another machine:
//! `SignRequest::parse` and `SignatureFile::parse` (and, for a request that
//! parses, the holder's check `SignRequest::open`) never panic; every error
//! is one line without control characters, starting with the file's name;
//! an accepted file is written by arca to text that parses back to it; a
//! request that opens has a root with exactly the request's signed-content
//! digest and counter, and the holder among its keys.
#![no_main]
use arca::repository::sign_request::{signed_digest, SignRequest, SignatureFile};
use libfuzzer_sys::fuzz_target;

fn one_line(e: impl std::fmt::Display, file: &str) {
    let e = e.to_string();
    // one line, and nothing from the file reaches the terminal raw
    assert!(
        !e.chars().any(char::is_control),
        "control character in the error: {e:?}"
    );
    assert!(
        e.starts_with(&format!("{file}: ")) || e.starts_with(&format!("{file} (root)")),
        "error without the file: {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SignRequest::parse(text, "req.json") {
        Err(e) => one_line(e, "req.json"),
        Ok(r) => {
            let again =
                SignRequest::parse(&r.to_json(), "req.json").expect("a written request parses");
            assert_eq!(again, r);
            match r.open("req.json", &r.id) {
                Err(e) => one_line(e, "req.json"),
                Ok(root) => {
                    assert_eq!(signed_digest(&root), r.signed_digest);
                    assert_eq!(root.header.counter, r.counter);
                    assert!(root.keys.contains_key(&r.id));
                }
            }
        }
    }
    match SignatureFile::parse(text, "sig.json") {
        Err(e) => one_line(e, "sig.json"),
        Ok(s) => {
            let again = SignatureFile::parse(&s.to_json(), "sig.json")
                .expect("a written signature file parses");
            assert_eq!(again, s);
            assert!(s.signature().raw().is_some());
        }
    }
});
