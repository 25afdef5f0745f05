//! Root, targets, snapshot and timestamp files: parsing never panics, and a
//! resource parsed without warnings (arca refuses to rewrite a file whose
//! parse warned: content would be dropped) prints to a file that parses
//! back to the same resource with the same canonical signed string.
#![no_main]
use arca::conex::resource::{Resource, Root, Snapshot, Targets, Timestamp};
use libfuzzer_sys::fuzz_target;

fn round_trip<R: Resource + PartialEq + std::fmt::Debug>(text: &str) {
    let mut warnings = Vec::new();
    let Ok(r) = R::parse(text, &mut warnings) else {
        return;
    };
    let _ = arca::repository::lint(&r);
    if !warnings.is_empty() {
        return;
    }
    let printed = r.to_file_string();
    let mut w2 = Vec::new();
    let again = R::parse(&printed, &mut w2)
        .unwrap_or_else(|e| panic!("{}: printed file does not parse: {e}\n{printed}", R::TYP));
    assert_eq!(r, again, "{}: print/parse changed the resource", R::TYP);
    assert_eq!(r.canonical_signed(), again.canonical_signed());
    assert_eq!(
        again.to_file_string(),
        printed,
        "{}: not a fixed point",
        R::TYP
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<Root>(text);
    round_trip::<Targets>(text);
    round_trip::<Snapshot>(text);
    round_trip::<Timestamp>(text);
});
