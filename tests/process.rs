//! The running `arca` process: no core dumps (a crash must not write a PIN
//! or key material to disk). Checked on the real binary while it waits at
//! its menu, through /proc.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn arca_runs_without_core_dumps() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "script(1) is missing in CI"
        );
        eprintln!("script(1) is not installed: test not run");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_arca");
    // script gives arca a terminal, so it opens its menu and waits for keys
    let mut child = Command::new("script")
        .args(["-qfc", bin, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let found = std::fs::read_dir("/proc").unwrap().find_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            (exe == std::path::Path::new(bin)).then_some(pid)
        });
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "arca did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    // quit the menu, then make sure nothing is left behind
    let _ = child.stdin.take().unwrap().write_all(b"\x03");
    let _ = child.kill();
    let _ = child.wait();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "core dumps allowed: {core}");
}
