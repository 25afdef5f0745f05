//! Runs a program on a pseudo-terminal and types an answer when it asks,
//! as a person would (for tools that read a PIN from the terminal only).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Starts `cmd` with a new pseudo-terminal as its controlling terminal and
/// standard streams, types `answer` each time its output shows `prompt`
/// (again: a key that needs its PIN before every signature), and returns its exit status and everything it printed. The
/// answer never appears on the program's command line or in its
/// environment.
pub fn run_typing(mut cmd: Command, prompt: &str, answer: &str) -> (ExitStatus, String) {
    let (mut master, slave) = openpty();
    // SAFETY: fcntl on a descriptor owned here: the program must not
    // inherit the master side.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start program on a pseudo-terminal");
    drop(cmd); // closes the parent's copies of the slave
    let start = Instant::now();
    let mut out = Vec::new();
    let mut typed = 0;
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "program still running after 60 s:\n{}",
            String::from_utf8_lossy(&out)
        );
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // EIO: the program closed its side of the terminal
            Err(_) => break,
        }
        if String::from_utf8_lossy(&out).matches(prompt).count() > typed {
            // the prompt is printed before echo is off; give the program
            // a moment to switch its terminal to reading the secret
            std::thread::sleep(Duration::from_millis(100));
            master.write_all(answer.as_bytes()).unwrap();
            typed += 1;
        }
    }
    let status = child.wait().unwrap();
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn openpty() -> (std::fs::File, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two file descriptors it opened.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here.
    unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}
