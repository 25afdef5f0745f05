//! Every file in tests/bad-inputs/<case>/root is refused by the real binary
//! with one line naming the file and what is wrong; nothing is written and
//! nothing panics.

mod support;
use support::*;

#[test]
fn bad_inputs_are_refused_with_one_clear_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs");
    let mut n = 0;
    for case in std::fs::read_dir(&dir).unwrap() {
        let case = case.unwrap().path();
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        let expected = expected.trim();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(case.join("root"), tmp.path().join("root")).unwrap();
        let before = std::fs::read(tmp.path().join("root")).unwrap();
        let r = tmp.path().to_str().unwrap();
        for args in [
            vec!["root", "status", "-r", r],
            vec!["root", "remove-key", "--id", "rootB", "-r", r],
            vec![
                "root",
                "add-to-role",
                "--role",
                "snapshot",
                "--id",
                "s",
                "--key-hash",
                &"a".repeat(64),
                "-r",
                r,
            ],
        ] {
            let o = arca(&args);
            let err = stderr(&o);
            assert!(!o.status.success(), "{name}: {args:?} succeeded");
            assert!(!err.contains("panicked"), "{name}: panic: {err}");
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{name}: not one line: {err}"
            );
            assert!(
                err.contains(expected),
                "{name}: expected {expected:?} in {err:?}"
            );
            assert!(
                err.contains("/root"),
                "{name}: the file is not named: {err}"
            );
            assert_eq!(
                std::fs::read(tmp.path().join("root")).unwrap(),
                before,
                "{name}: file changed"
            );
            let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert_eq!(leftovers.len(), 1, "{name}: stray files left behind");
        }
        n += 1;
    }
    assert!(n >= 18, "only {n} cases");
}
