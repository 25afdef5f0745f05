fn main() {
    harden_process();
    std::process::exit(arca::cli::run());
}

/// Before anything is read: no core dump (a crash must not write PINs or key
/// material to disk) and not dumpable (other processes of the same user
/// cannot attach with ptrace or read this process's memory).
fn harden_process() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid arguments; failure leaves the
    // process as it was, which is no worse than not trying.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
