//! The real `arca` binary in a terminal of 80×24 (tmux): the menu, a
//! create-root rehearsal against SoftHSM typed key by key (with a wrong PIN
//! first), a declined confirmation that leaves nothing written, and Ctrl-C
//! in the middle of a ceremony followed by a resume.

mod support;
#[path = "support/term.rs"]
mod term;
use std::path::Path;
use std::time::{Duration, Instant};
use term::Term;

fn tools() -> bool {
    if !Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "SoftHSM missing in CI: .ci/run installs it"
        );
        eprintln!("SoftHSM is not installed: terminal tests not run");
        return false;
    }
    term::tmux_available()
}

/// The menu and a rehearsal's prompts, as a person at this terminal
/// answers them.
trait Person {
    fn menu(&self, downs: usize);
    fn quit(&self);
    fn rehearse_create_root(&self, base: &str, resume: Option<bool>);
    fn answer(&self, pins: &mut Vec<&str>, answer: &str) -> bool {
        self.answer_but(pins, answer, None)
    }
    fn answer_but(&self, pins: &mut Vec<&str>, answer: &str, hold: Option<&str>) -> bool;
}

/// The steps shown as `Step k/n`: k never passes n.
fn check_counter(all: &str) {
    for l in all.lines() {
        if let Some(rest) = l.split("Step ").nth(1) {
            let Some((k, rest)) = rest.split_once('/') else {
                continue;
            };
            let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let (Ok(k), Ok(n)) = (k.trim().parse::<usize>(), n.parse::<usize>()) {
                assert!(k <= n, "the counter passed the plan: {l}");
            }
        }
    }
}

impl Person for Term {
    fn menu(&self, downs: usize) {
        self.wait("the menu", |t| {
            t.screen().contains("What do you want to do?") && t.screen().contains("> ")
        });
        for _ in 0..downs {
            self.keys(&["j"]);
        }
        self.keys(&["Enter"]);
    }

    fn quit(&self) {
        self.menu(8);
        self.wait("arca to exit", |t| t.text().contains("ARCA-EXITED 0"));
    }

    /// Menu → rehearse → ceremonies/create-root.toml → rehearsal folder.
    fn rehearse_create_root(&self, base: &str, resume: Option<bool>) {
        self.menu(2);
        self.wait("the file list", |t| t.screen().contains("another file"));
        self.keys(&["j", "j", "Enter"]); // add-role, bump-epoch, create-root, …
        self.wait_last("Rehearsal folder");
        self.type_line(base);
        if let Some(yes) = resume {
            self.wait_last("Resume this ceremony");
            self.type_line(if yes { "y" } else { "n" });
        }
    }

    /// Answers the current prompt: PINs (`pins` in turn), confirmations with
    /// `answer`. Returns false when no prompt is waiting.
    fn answer_but(&self, pins: &mut Vec<&str>, answer: &str, hold: Option<&str>) -> bool {
        let before = self.text();
        let last = self.last_line();
        if hold.is_some_and(|h| last.contains(h)) {
            return false;
        }
        if last.starts_with("user PIN for token") && last.trim_end().ends_with(':') {
            let pin = if pins.len() > 1 {
                pins.remove(0)
            } else {
                pins[0]
            };
            self.type_secret(pin);
        } else if last.trim_end().ends_with("[y/N]") || last.trim_end().ends_with("[Y/n]") {
            // as people answer: the letter, then Enter
            self.type_line(answer);
        } else if last.starts_with("Enter to go on") || last.contains("Enter for the next page") {
            self.keys(&["Enter"]);
        } else {
            return false;
        }
        // wait for the prompt to be answered
        self.wait("the answer to be taken", |t| t.text() != before);
        true
    }
}

fn room() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies"),
        &tmp.path().join("ceremonies"),
    );
    tmp
}

/// Answers every prompt until the root is written.
fn answer_until_done(t: &Term, pins: &mut Vec<&str>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !t.text().contains("root written:") {
        assert!(
            Instant::now() < deadline,
            "ceremony did not finish; screen:\n{}",
            t.screen()
        );
        let last = t.last_line();
        if last.contains("approve these changes") || last.contains("sign the root above") {
            // the whole summary is on the screen with the question
            let screen = t.screen();
            assert!(
                screen.contains("signed content"),
                "the signed content's digest is not on the screen at:\n{screen}"
            );
            // (create-root): from its first line to the question
            for needle in [
                "A NEW ROOT, counter 1",
                "ADDED rootA (rsa 4096)",
                "timestamp:",
            ] {
                assert!(
                    screen.contains(needle),
                    "{needle:?} scrolled away at:\n{screen}"
                );
            }
        }
        if !t.answer(pins, "y") {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    check_counter(&t.text());
}

#[test]
fn menu_opens_and_quits() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[]);
    t.wait("the menu", |t| t.screen().contains("Tokens and YubiKeys"));
    assert!(t.screen().contains("Run a ceremony"));
    for l in t.screen().lines() {
        assert!(l.chars().count() <= 80);
    }
    t.quit();
}

#[test]
fn create_root_rehearsal_typed_key_by_key() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", None);
    // the right PIN is typed with two slips erased by Backspace
    let mut pins = vec!["not-the-pin", "rehearsal-pinXY⌫⌫"];
    answer_until_done(&t, &mut pins);
    let all = t.text();
    assert!(
        all.contains("did not accept that PIN"),
        "the wrong PIN was not reported"
    );
    // nothing typed at a PIN prompt is echoed
    assert!(!all.contains("not-the-pin"), "a typed PIN was echoed");
    assert!(!all.contains("pinXY"), "a typed PIN was echoed");
    assert!(all.contains("[hidden]"), "no entered-PIN line");
    // one PIN per key generated and per signature (3 + 3), and the wrong one
    assert_eq!(all.matches("[hidden]").count(), 7, "{all}");
    assert!(all.contains("What this root changes"));
    assert!(all.contains("root keys: quorum 2 of [rootA, rootB, rootC]"));
    assert!(all.contains("Trust anchors"));
    // the change summary and every QR code fit an 80×24 screen
    let summary = all.split("What this root changes").nth(1).unwrap();
    let summary = summary.split("approve these changes").next().unwrap();
    for l in summary.lines() {
        assert!(
            l.chars().count() <= 80,
            "summary line wider than 80 columns: {l:?}"
        );
    }
    let mut run = 0;
    let mut codes = 0;
    for l in all.lines() {
        if l.contains('█') || l.contains('▀') || l.contains('▄') {
            assert!(l.chars().count() <= 80, "QR line wider than 80 columns");
            run += 1;
            assert!(run <= 23, "a QR code taller than the screen");
        } else {
            if run > 0 {
                codes += 1;
            }
            run = 0;
        }
    }
    assert_eq!(
        codes, 4,
        "one QR code per trust anchor and one for the bundle digest"
    );
    t.quit();
    let out = t.dir.join("rh/out/create-root");
    assert!(out.join("root").exists());
    transcript_verifies(&out);
}

#[test]
fn declined_confirmation_leaves_nothing_written() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", None);
    let mut pins = vec!["rehearsal-pin"];
    // answer the PIN, decline the first confirmation (generating rootA)
    t.wait("the first prompt", |t| {
        let l = t.last_line();
        l.contains("[y/N]") || l.starts_with("user PIN")
    });
    // PINs only: the confirmation is held for the "n" below, so the loop
    // can never answer it itself (and then wait for it for ever)
    answer_until_seen(
        &t,
        &mut pins,
        "n",
        Some("[y/N]"),
        120,
        "a confirmation",
        |t| t.last_line().trim_end().ends_with("[y/N]"),
    );
    t.type_line("n");
    t.wait("the refusal", |t| {
        t.text().contains("declined to generate rootA")
    });
    t.quit();
    assert!(
        !t.dir.join("rh/out/create-root").exists(),
        "a declined ceremony left files behind"
    );
}

#[test]
fn ctrl_c_mid_ceremony_then_resume() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[("ARCA_CEREMONY_STEP_DELAY_MS", "500")]);
    t.rehearse_create_root("rh", None);
    let journal = t.dir.join("rh/out/create-root/journal.jsonl");
    let mut pins = vec!["rehearsal-pin"];
    // work until rootA has signed, then interrupt between prompts
    answer_until_seen(&t, &mut pins, "y", None, 300, "rootA's signature", |_| {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .contains("\"sign:rootA\"")
    });
    t.keys(&["C-c"]);
    t.wait("arca to stop", |t| t.text().contains("ARCA-EXITED"));
    assert!(!t.dir.join("rh/out/create-root/root").exists());
    drop(t);
    // resume from the menu: what was done is not asked again
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", Some(true));
    answer_until_done(&t, &mut pins);
    let all = t.text();
    assert!(all.contains("done before, resumed"));
    assert!(
        !all.contains("generate root key"),
        "a key was generated again"
    );
    t.quit();
    let out = tmp.path().join("rh/out/create-root");
    transcript_verifies(&out);
    let root = std::fs::read_to_string(out.join("root")).unwrap();
    assert_eq!(
        root.matches("\"ed25519=").count() + root.matches("\"rsapss-sha256=").count(),
        5,
        "2 Ed25519 keys and 3 signatures"
    );
}

#[test]
fn ctrl_c_at_a_pin_prompt_restores_the_terminal() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", None);
    answer_until_seen(
        &t,
        &mut vec!["unused"],
        "y",
        None,
        120,
        "a PIN prompt",
        |t| t.last_line().starts_with("user PIN for token"),
    );
    // half a PIN, then Ctrl-C
    t.type_literal("rehear");
    t.keys(&["C-c"]);
    t.wait("arca to stop", |t| t.text().contains("TTY-"));
    let all = t.text();
    assert!(
        all.contains("ARCA-EXITED 130"),
        "not stopped by SIGINT:\n{all}"
    );
    assert!(all.contains("TTY-echo"), "echo left off:\n{all}");
    // the terminal restored, the step and the command to resume said
    assert!(t.cursor_visible(), "the cursor is left hidden");
    says_stopped_and_how_to_resume(&all, "2/13 (root-key:rootA)");
    assert!(
        !all.contains("rehear\n") && !all.contains(": rehear"),
        "typed PIN echoed"
    );
}

/// Answers prompts with `y` + Enter until the last line shows `needle`
/// (that prompt is left unanswered).
fn answer_until(t: &Term, pins: &mut Vec<&str>, needle: &str) {
    answer_until_seen(t, pins, "y", Some(needle), 300, needle, |t| {
        t.last_line().contains(needle)
    });
}

/// Answers prompts (PINs from `pins`, confirmations with `answer`, a prompt
/// showing `hold` left alone) until `seen`; fails naming `what` after
/// `seconds`.
fn answer_until_seen(
    t: &Term,
    pins: &mut Vec<&str>,
    answer: &str,
    hold: Option<&str>,
    seconds: u64,
    what: &str,
    seen: impl Fn(&Term) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !seen(t) {
        assert!(
            Instant::now() < deadline,
            "never reached {what:?}; screen:\n{}",
            t.screen()
        );
        if !t.answer_but(pins, answer, hold) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The ceremony stopped at `step` and said so, and how to resume it.
fn says_stopped_and_how_to_resume(all: &str, step: &str) {
    assert!(all.contains(&format!("Stopped at step {step}")), "{all}");
    assert!(all.contains("journal.jsonl keeps every step"), "{all}");
    assert!(
        all.contains("arca ceremony resume ceremonies/create-root.toml --rehearse --base rh"),
        "{all}"
    );
}

/// `arca ceremony verify-transcript` accepts the journal in `out`.
fn transcript_verifies(out: &Path) {
    support::ok(&support::arca([
        "ceremony",
        "verify-transcript",
        out.to_str().unwrap(),
    ]));
}

fn tree_digest(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    fn walk(d: &Path, base: &Path, v: &mut Vec<(String, Vec<u8>)>) {
        let mut es: Vec<_> = std::fs::read_dir(d).unwrap().flatten().collect();
        es.sort_by_key(|e| e.path());
        for e in es {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                v.push((rel + "/", Vec::new()));
                walk(&p, base, v);
            } else {
                v.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut v);
    v
}

/// A person's own SoftHSM store ($SOFTHSM2_CONF) with one token; the menu
/// lists the tokens first, then a rehearsal runs: the store stays byte for
/// byte as it was. On the way: the spinner with the elapsed time during
/// RSA-4096 generation, each long question drawn once, and "n" at the
/// approval says the step, the journal and the command to resume.
#[test]
fn a_rehearsal_after_the_token_list_leaves_the_users_store_alone() {
    if !tools() {
        return;
    }
    let tmp = room();
    let store = tmp.path().join("my-softhsm");
    let conf = support::softhsm_store_with_one_token(&store);
    let before = tree_digest(&store);
    let t = Term::start(
        tmp.path(),
        &[
            ("SOFTHSM2_CONF", conf.to_str().unwrap()),
            ("ARCA_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
        ],
    );
    t.menu(7); // Tokens and YubiKeys
    t.wait("the token list", |t| t.text().contains("token mine"));
    t.rehearse_create_root("rh", None);
    let mut pins = vec!["rehearsal-pin"];
    answer_until(&t, &mut pins, "approve these changes");
    t.type_line("n");
    t.wait("the refusal", |t| t.text().contains("arca ceremony resume"));
    let all = t.text();
    assert!(all.contains("the change was not approved"), "{all}");
    says_stopped_and_how_to_resume(&all, "6/13 (approve)");
    // the spinner ends with the time the RSA-4096 key took
    assert!(
        all.contains("generating rsa 4096 key rootA on token rehearsal-alice done in"),
        "{all}"
    );
    // a question wider than the screen is drawn once
    assert_eq!(all.matches("generate root key rootA").count(), 1, "{all}");
    for l in all.lines().filter(|l| l.contains("(next: ")) {
        assert!(
            l.chars().count() <= 80 && l.trim_end().ends_with(')'),
            "{l:?}"
        );
    }
    t.quit();
    assert!(t.cursor_visible());
    assert_eq!(
        tree_digest(&store),
        before,
        "the rehearsal wrote to the user's token store"
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["token", "list"])
        .env("SOFTHSM2_CONF", &conf)
        .env("ARCA_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
        .output()
        .unwrap();
    let list = support::ok(&o);
    assert!(!list.contains("rehearsal-"), "{list}");
}

/// Killed with SIGKILL at the first signature question, then resumed from
/// the menu: the change summary and the signed content's digest are on the
/// screen again before the signature is asked for.
#[test]
fn killed_at_the_first_signature_the_resume_shows_the_summary_again() {
    if !tools() {
        return;
    }
    let tmp = room();
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", None);
    let mut pins = vec!["rehearsal-pin"];
    answer_until(&t, &mut pins, "sign the root above as rootA");
    t.kill_arca();
    t.wait("arca to die", |t| t.text().contains("ARCA-EXITED"));
    drop(t);
    let t = Term::start(tmp.path(), &[]);
    t.rehearse_create_root("rh", Some(true));
    answer_until(&t, &mut pins, "sign the root above as rootA");
    let all = t.text();
    let resumed = all.split("Resume this ceremony").last().unwrap();
    let summary = resumed
        .find("What this root changes")
        .expect("no summary on resume");
    let question = resumed.find("sign the root above as rootA").unwrap();
    assert!(summary < question, "{resumed}");
    assert!(
        resumed.contains("approve (done before, resumed)"),
        "{resumed}"
    );
    let screen = t.screen();
    assert!(screen.contains("signed content"), "{screen}");
    assert!(screen.contains("A NEW ROOT, counter 1"), "{screen}");
    answer_until_done(&t, &mut pins);
    let all = t.text();
    assert_eq!(
        all.matches("Enter to go on").count(),
        4,
        "one QR code at a time"
    );
    t.quit();
}

/// An add-role whose input root is another repository's, typed at the
/// terminal: refused by preflight with the file and line, before any PIN
/// prompt, and no journal is left.
#[test]
fn another_repositorys_root_is_refused_before_any_pin() {
    if !tools() {
        return;
    }
    let tmp = room();
    let other = tmp.path().join("rh/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(support::vectors().join("repo/root"), other.join("root")).unwrap();
    // anchors that are not the root's keys (this repository's, say)
    std::fs::write(
        other.join("anchors.txt"),
        "sha256=1111111111111111111111111111111111111111111111111111111111111111\n",
    )
    .unwrap();
    let add = std::fs::read_to_string(tmp.path().join("ceremonies/add-role.toml"))
        .unwrap()
        .replace("out/create-root/root", "other/root");
    std::fs::write(tmp.path().join("add.toml"), add).unwrap();
    let t = Term::run(
        tmp.path(),
        &[],
        &["ceremony", "run", "add.toml", "--rehearse", "--base", "rh"],
    );
    t.wait("arca to stop", |t| t.text().contains("ARCA-EXITED"));
    let all = t.text();
    assert!(all.contains("ARCA-EXITED 2"), "{all}");
    assert!(all.contains("add.toml:5: "), "{all}");
    assert!(
        all.contains("does not verify with the trust anchors"),
        "{all}"
    );
    assert!(!all.contains("PIN for"), "a PIN was asked: {all}");
    assert!(!tmp.path().join("rh/out/add-role").exists());
}
