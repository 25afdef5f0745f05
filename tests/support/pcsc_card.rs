//! The PC/SC side of the virtual PIV card (`vpiv.rs`): a machine-wide lock
//! (one pcscd and one pair of virtual readers per machine, so PC/SC tests
//! run one after another, also across test binaries run at the same time), a check that pcscd runs with the vpcd reader,
//! and a card plugged into a reader for as long as a value lives.
//!
//! A test binary using it declares both modules at its root:
//!
//! ```ignore
//! #[path = "support/vpiv.rs"]
//! mod vpiv;
//! #[path = "support/pcsc_card.rs"]
//! mod pcsc_card;
//! ```
//!
//! Without pcscd and the vpcd reader, `pcsc_lock` prints one line and
//! returns None (the test passes without running), except under CI (the
//! `CI` environment variable is set), where it panics.

#![allow(dead_code)]

use crate::vpiv::{self, CardConfig, VirtualCard};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

static LOCK: Mutex<()> = Mutex::new(());
static SKIP_NOTICE: Once = Once::new();

/// pcscd answers and lists the vpcd readers.
pub fn services_ready() -> Result<(), String> {
    let ctx = pcsc::Context::establish(pcsc::Scope::System)
        .map_err(|e| format!("pcscd is not reachable ({e})"))?;
    let readers = ctx
        .list_readers_owned()
        .map_err(|e| format!("pcscd lists no readers ({e})"))?;
    if readers.iter().any(|r| r.to_string_lossy().contains("vpcd")) {
        Ok(())
    } else {
        Err("pcscd runs without the vpcd reader".into())
    }
}

/// The lock held: this process's mutex and the machine's lock file.
pub struct PcscGuard {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// The machine-wide lock file beside the pcscd state of
/// `tests/support/pcscd-vpcd.sh` (flock: released when the process dies).
fn machine_lock() -> std::fs::File {
    let path =
        std::env::temp_dir().join(format!("arca-pcsc-{}.lock", crate::vpiv::vpcd_ports()[0]));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    file
}

/// Takes the PC/SC lock, or returns None (outside CI) when the services
/// are missing.
pub fn pcsc_lock() -> Option<PcscGuard> {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match services_ready() {
        Ok(()) => Some(PcscGuard {
            _file: machine_lock(),
            _guard: guard,
        }),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{why}: run tests/support/pcscd-vpcd.sh start before cargo test")
        }
        Err(why) => {
            // Straight to stderr: the test harness captures eprintln!.
            SKIP_NOTICE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping YubiKey PIV tests: {why}; run tests/support/pcscd-vpcd.sh start"
                );
            });
            None
        }
    }
}

/// Serial numbers PC/SC currently sees.
pub fn visible_serials() -> Vec<u32> {
    let Ok(mut ctx) = yubikey::reader::Context::open() else {
        return vec![];
    };
    let Ok(readers) = ctx.iter() else {
        return vec![];
    };
    readers
        .filter_map(|r| r.open().ok())
        .map(|yk| {
            let s = yk.serial().0;
            let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
            s
        })
        .collect()
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A virtual card plugged into a reader; pulled out (and waited for) on drop.
pub struct Plugged(Option<VirtualCard>);

impl Plugged {
    pub fn new(cfg: CardConfig) -> Plugged {
        let serial = cfg.serial;
        let card = VirtualCard::start(cfg).expect("connect the virtual card to vpcd");
        wait_until(&format!("card {serial} is visible"), || {
            visible_serials().contains(&serial)
        });
        Plugged(Some(card))
    }
    pub fn card(&self) -> MutexGuard<'_, vpiv::Card> {
        self.0.as_ref().expect("plugged").card()
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        if let Some(card) = self.0.take() {
            let serial = card.serial;
            drop(card);
            wait_until(&format!("card {serial} is gone"), || {
                !visible_serials().contains(&serial)
            });
        }
    }
}
