//! The real `arca` binary in a terminal of 80×24: a private tmux server
//! (`tmux -L <socket>`) per terminal, keys sent as a person types them, the
//! screen and the whole scrollback read back.
//!
//! A test binary using it declares it at its root:
//!
//! ```ignore
//! #[path = "support/term.rs"]
//! mod term;
//! ```

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// tmux is installed (outside CI, prints why a test does not run when not).
pub fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux missing in CI: .ci/run installs it"
        );
        eprintln!("tmux is not installed: terminal tests not run");
    }
    ok
}

/// One terminal: a private tmux server running arca in `dir`.
pub struct Term {
    pub sock: String,
    pub dir: PathBuf,
}

/// `s` quoted for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Term {
    /// arca without arguments (the menu) in `dir`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Term {
        Term::run(dir, env, &[])
    }

    /// `arca ARGS…` in `dir`, with `env` added. When arca exits the pane
    /// shows `ARCA-EXITED <status>` and whether the terminal echoes again
    /// (`TTY-echo` / `TTY--echo`), and stays open until the Term is dropped.
    pub fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Term {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sock = format!("arca-tui-{}-{n}", std::process::id());
        let mut envs = String::new();
        for (k, v) in env {
            envs.push_str(&format!("{k}={} ", sh_quote(v)));
        }
        let mut argv = String::new();
        for a in args {
            argv.push(' ');
            argv.push_str(&sh_quote(a));
        }
        let cmd = format!(
            "trap 'true' INT; cd {} && env -u SOFTHSM2_CONF NO_COLOR=1 TERM=xterm {envs}{}{argv}; echo ARCA-EXITED $?; echo TTY-$(stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e -echo); sleep 600",
            sh_quote(&dir.display().to_string()),
            sh_quote(env!("CARGO_BIN_EXE_arca"))
        );
        let st = Command::new("tmux")
            .args([
                "-L",
                &sock,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "80",
                "-y",
                "24",
                &cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success());
        Command::new("tmux")
            .args(["-L", &sock, "set-option", "-g", "history-limit", "20000"])
            .status()
            .unwrap();
        Term {
            sock,
            dir: dir.to_path_buf(),
        }
    }

    /// One of tmux's pane formats (`#{pane_pid}`, `#{pane_tty}`) for the pane.
    fn pane(&self, format: &str) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.sock, "list-panes", "-t", "t", "-F", format])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The pid of the pane's shell; arca runs as its child.
    pub fn pane_pid(&self) -> u32 {
        self.pane("#{pane_pid}")
            .parse()
            .expect("tmux shows the pane's pid")
    }

    /// Whether the pane shows the cursor (a program that hid it and
    /// stopped without showing it again leaves it hidden).
    pub fn cursor_visible(&self) -> bool {
        self.pane("#{cursor_flag}") == "1"
    }

    /// The processes started under the pane's shell (arca and any process
    /// arca started), deepest first.
    pub fn arca_pids(&self) -> Vec<u32> {
        fn children(pid: u32, out: &mut Vec<u32>) {
            let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return;
            };
            for t in rd.flatten() {
                let c = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                for k in c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()) {
                    children(k, out);
                    out.push(k);
                }
            }
        }
        let mut v = Vec::new();
        children(self.pane_pid(), &mut v);
        v
    }

    /// SIGKILL to every process arca runs in the pane, as a power cut.
    pub fn kill_arca(&self) {
        for pid in self.arca_pids() {
            // SAFETY: a signal to a process this terminal started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }

    /// Whether the pane's terminal echoes what is typed. arca turns echo
    /// off while it reads a secret, so a secret is typed only once this is
    /// false: typed earlier, the terminal would show it.
    pub fn echoes(&self) -> bool {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let tty = self.pane("#{pane_tty}");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&tty)
            .unwrap_or_else(|e| panic!("{tty}: {e}"));
        let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios on success; checked before use.
        let r = unsafe { libc::tcgetattr(f.as_raw_fd(), t.as_mut_ptr()) };
        assert_eq!(r, 0, "tcgetattr {tty}: {}", std::io::Error::last_os_error());
        // SAFETY: initialised by the successful tcgetattr above.
        unsafe { t.assume_init() }.c_lflag & libc::ECHO != 0
    }

    /// Everything shown so far (scrollback included).
    pub fn text(&self) -> String {
        let o = Command::new("tmux")
            .args([
                "-L",
                &self.sock,
                "capture-pane",
                "-p",
                "-J",
                "-S",
                "-",
                "-t",
                "t",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The visible screen, line by line as shown (80 columns).
    pub fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.sock, "capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The last line shown (wrapped lines joined).
    pub fn last_line(&self) -> String {
        self.text()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string()
    }

    pub fn keys(&self, ks: &[&str]) {
        for k in ks {
            std::thread::sleep(Duration::from_millis(120));
            Command::new("tmux")
                .args(["-L", &self.sock, "send-keys", "-t", "t", k])
                .status()
                .unwrap();
        }
    }

    /// Types `s` literally (no Enter).
    pub fn type_literal(&self, s: &str) {
        std::thread::sleep(Duration::from_millis(120));
        Command::new("tmux")
            .args(["-L", &self.sock, "send-keys", "-t", "t", "-l", s])
            .status()
            .unwrap();
    }

    /// Pastes `s` as a terminal paste does (all at once, from tmux's
    /// paste buffer), without Enter.
    pub fn paste(&self, s: &str) {
        std::thread::sleep(Duration::from_millis(120));
        let st = Command::new("tmux")
            .args(["-L", &self.sock, "set-buffer", "--", s])
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("tmux")
            .args(["-L", &self.sock, "paste-buffer", "-t", "t"])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Types a secret: `⌫` in `s` is a Backspace key, not a character.
    pub fn type_secret(&self, s: &str) {
        for (i, part) in s.split('⌫').enumerate() {
            if i > 0 {
                self.keys(&["BSpace"]);
            }
            if !part.is_empty() {
                self.type_literal(part);
            }
        }
        self.keys(&["Enter"]);
    }

    pub fn type_line(&self, s: &str) {
        self.type_literal(s);
        self.keys(&["Enter"]);
    }

    pub fn wait(&self, what: &str, cond: impl Fn(&Term) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_last(&self, needle: &str) {
        self.wait(needle, |t| t.last_line().contains(needle));
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let socket = Command::new("tmux")
            .args(["-L", &self.sock, "display-message", "-p", "#{socket_path}"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| p.ends_with(&self.sock));
        let _ = Command::new("tmux")
            .args(["-L", &self.sock, "kill-server"])
            .status();
        // the server leaves its socket file behind
        if let Some(p) = socket {
            let _ = std::fs::remove_file(p);
        }
    }
}
