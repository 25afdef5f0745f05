//! The menu (`arca` with no arguments) in an 80×24 terminal (tmux), used as
//! people use it: arrow keys and Enter to choose, anchors pasted as arca
//! printed them, Enter alone for an answer the prompt says may be empty,
//! `y` and Enter for yes, Ctrl-C to stop.

mod support;
#[path = "support/term.rs"]
mod term;
use support::*;
use term::Term;

/// The menu and its prompts, as a person answers them.
trait Person {
    /// Moves with the arrow keys to the item that says `label`, then Enter.
    fn choose(&self, label: &str);
    /// Waits for a prompt that ends the shown text with `prompt…:` (or
    /// `[default]:`).
    fn at_prompt(&self, prompt: &str);
    fn quit(&self);
}

/// The line of the menu the cursor is on (`> …`), in the last menu shown.
fn selected(screen: &str, title: &str) -> Option<String> {
    let menu = screen.rsplit(title).next()?;
    menu.lines()
        .find(|l| l.starts_with("> "))
        .map(|l| l[2..].to_string())
}

impl Person for Term {
    fn choose(&self, label: &str) {
        const TITLES: [&str; 2] = ["What do you want to do?", "Which ceremony file?"];
        // the menu shown last
        let title = |t: &Term| {
            let screen = t.screen();
            TITLES
                .into_iter()
                .filter_map(|x| screen.rfind(&format!("{x}:\n")).map(|p| (p, x)))
                .max()
                .map(|(_, x)| x)
        };
        self.wait("a menu", |t| {
            title(t).is_some_and(|x| selected(&t.screen(), x).is_some())
        });
        let title = title(self).unwrap();
        // dialoguer reports a choice as `title: item`
        let reported = |t: &Term| t.text().matches(&format!("{title}: ")).count();
        let before = reported(self);
        for _ in 0..12 {
            let now = selected(&self.screen(), title).unwrap_or_default();
            if now.contains(label) {
                self.keys(&["Enter"]);
                self.wait("the choice to be taken", |t| reported(t) > before);
                return;
            }
            self.keys(&["Down"]);
            self.wait("the cursor to move", |t| {
                selected(&t.screen(), title).is_some_and(|s| s != now)
            });
        }
        panic!("no item {label:?} in the menu:\n{}", self.screen());
    }

    fn at_prompt(&self, prompt: &str) {
        self.wait(prompt, |t| {
            let l = t.last_line();
            l.starts_with(prompt) && l.trim_end().ends_with(':')
        });
    }

    fn quit(&self) {
        self.wait("the menu", |t| {
            selected(&t.screen(), "What do you want to do?").is_some()
        });
        self.choose("Quit");
        self.wait("arca to exit", |t| t.text().contains("ARCA-EXITED 0"));
    }
}

fn room_with_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&vectors().join("repo"), &tmp.path().join("repo"));
    tmp
}

/// After `after`, the output of the last action, up to the next menu.
fn shown_after(t: &Term, after: &str) -> String {
    let all = t.text();
    let tail = all.rsplit(after).next().unwrap_or("").to_string();
    tail.split("What do you want to do?")
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn verify_a_quorum_2_repository_from_pasted_anchors() {
    if !term::tmux_available() {
        return;
    }
    let tmp = room_with_repo();
    let t = Term::start(tmp.path(), &[]);
    t.choose("Verify a repository");
    t.at_prompt("Repository folder");
    t.type_line("repo");
    t.at_prompt("Trust anchors (sha256=…, comma-separated)");
    // the anchors as `arca ceremony run` and anchors.txt print them
    t.paste(&format!("{ANCHOR_A},{ANCHOR_B}"));
    t.keys(&["Enter"]);
    // the root asks for 2 signatures; Enter takes that
    t.at_prompt("Root signatures needed (opam's --quorum) [2]");
    t.keys(&["Enter"]);
    t.wait("the verdict", |t| {
        t.text().contains("verified: root counter")
    });
    let out = shown_after(&t, "Root signatures needed");
    assert!(
        out.contains("verified: root counter 1 signed by rootA, rootB"),
        "{out}"
    );
    assert!(
        !out.contains("verifying"),
        "the spinner was left behind:\n{out}"
    );
    // the pasted answer (two screen rows) is shown once, with its prompt
    let all = t.text();
    assert_eq!(
        all.matches("Trust anchors (sha256=…, comma-separated)")
            .count(),
        1,
        "the prompt was drawn twice:\n{all}"
    );
    assert!(
        all.contains(&format!(
            "Trust anchors (sha256=…, comma-separated): {ANCHOR_A},{ANCHOR_B}"
        )),
        "{all}"
    );
    // the same with a quorum typed in that the root cannot meet, and the
    // anchors pasted with a space after the comma
    t.choose("Verify a repository");
    t.at_prompt("Repository folder");
    t.type_line("repo");
    t.at_prompt("Trust anchors");
    t.paste(&format!("{ANCHOR_A}, {ANCHOR_B}"));
    t.keys(&["Enter"]);
    t.at_prompt("Root signatures needed");
    t.type_line("3");
    t.wait("the verdict", |t| t.text().contains("3 needed"));
    let out = shown_after(&t, "Root signatures needed (opam's --quorum): 3");
    assert!(
        out.contains(
            "arca: verification failed: provided quorum was not matched: 2 valid signature(s) by trust anchors, 3 needed"
        ),
        "{out}"
    );
    t.quit();
}

#[test]
fn inspect_a_root_with_enter_for_no_anchors_then_pasted_ones() {
    if !term::tmux_available() {
        return;
    }
    let tmp = room_with_repo();
    let t = Term::start(tmp.path(), &[]);
    t.choose("Inspect a root");
    t.at_prompt("Root file [root]");
    t.type_line("repo/root");
    t.at_prompt("Trust anchors to check against");
    t.keys(&["Enter"]);
    t.wait("the root", |t| t.text().contains("quorum: met"));
    let out = shown_after(&t, "empty for none)");
    assert!(out.contains("root: counter 1, epoch 0"), "{out}");
    assert!(!out.contains("[anchor]"), "{out}");
    assert!(!out.contains("m1 — m1"), "{out}");
    t.choose("Inspect a root");
    t.at_prompt("Root file [root]");
    t.type_line("repo/root");
    t.at_prompt("Trust anchors to check against");
    t.paste(&format!("{ANCHOR_A},{ANCHOR_B}"));
    t.keys(&["Enter"]);
    t.wait("the root", |t| t.text().matches("quorum: met").count() == 2);
    let out = t.text();
    assert_eq!(out.matches("[anchor]").count(), 2, "{out}");
    t.quit();
}

#[test]
fn janitor_signs_with_enter_for_the_key_store() {
    if !term::tmux_available() {
        return;
    }
    let tmp = room_with_repo();
    let home = tmp.path().join("home");
    copy_tree(&vectors().join("private-keys"), &home.join(".conex"));
    let before = std::fs::read_to_string(tmp.path().join("repo/keys/m1")).unwrap();
    assert!(before.contains("[counter 0x1]"), "{before}");
    let t = Term::start(tmp.path(), &[("HOME", home.to_str().unwrap())]);
    t.choose("Janitor: sign my targets file");
    t.at_prompt("Repository folder [.]");
    t.type_line("repo");
    t.at_prompt("Your janitor id");
    t.type_line("m1");
    t.at_prompt("Your key (piv:serial=…;slot=9c, pkcs11:…, or empty for ~/.conex)");
    t.keys(&["Enter"]);
    t.wait("the recompute question", |t| {
        t.last_line()
            .contains("Recompute the entries of every package first?")
    });
    t.keys(&["y", "Enter"]);
    t.wait("the signature", |t| t.text().contains("targets m1 signed"));
    let out = shown_after(&t, "Recompute the entries");
    assert!(
        out.contains("targets m1 signed at counter 2 (2 entries)"),
        "{out}"
    );
    t.quit();
    let after = std::fs::read_to_string(tmp.path().join("repo/keys/m1")).unwrap();
    assert!(after.contains("[counter 0x2]"), "{after}");
    // the online side's one command, and the repository verifies again
    ok(&arca([
        "online",
        "sign",
        "-r",
        tmp.path().join("repo").to_str().unwrap(),
        "--key-store",
        home.join(".conex").to_str().unwrap(),
    ]));
    ok(&arca([
        "verify",
        "--dir",
        tmp.path().join("repo").to_str().unwrap(),
        "-t",
        &format!("{ANCHOR_A},{ANCHOR_B}"),
    ]));
}

#[test]
fn a_folder_without_ceremonies_offers_the_built_in_example_and_ctrl_c_restores_the_terminal() {
    if !term::tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    file_device_profile(tmp.path(), &["alice", "bob", "carol"]);
    let t = Term::start(tmp.path(), &[]);
    t.choose("Run a ceremony");
    t.wait("the file list", |t| {
        t.screen().contains("Which ceremony file?")
    });
    let list = t.screen();
    assert!(
        list.contains("create-root (the built-in example)"),
        "{list}"
    );
    assert!(list.contains("another file…"), "{list}");
    t.choose("create-root (the built-in example)");
    t.at_prompt("Device profile of this machine [profile.toml]");
    t.keys(&["Enter"]);
    t.wait("the preflight", |t| {
        t.text()
            .contains("ceremony file: create-root.toml (built in)")
    });
    // the first question of the ceremony, whatever it is: Ctrl-C there
    t.wait("a question", |t| {
        t.last_line().trim_end().ends_with(')')
            || t.last_line().trim_end().ends_with(']')
            || t.last_line().trim_end().ends_with('?')
    });
    t.keys(&["C-c"]);
    t.wait("arca to stop", |t| t.text().contains("TTY-"));
    let all = t.text();
    assert!(all.contains("ARCA-EXITED 130"), "{all}");
    assert!(all.contains("TTY-echo"), "echo left off:\n{all}");
    assert!(t.cursor_visible(), "cursor left hidden:\n{all}");
}

#[test]
fn ctrl_c_at_the_menu_restores_the_terminal() {
    if !term::tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = Term::start(tmp.path(), &[]);
    t.wait("the menu", |t| t.screen().contains("Tokens and YubiKeys"));
    t.keys(&["Down", "Down"]);
    t.keys(&["C-c"]);
    t.wait("arca to stop", |t| t.text().contains("TTY-"));
    let all = t.text();
    assert!(all.contains("arca: interrupted (Ctrl-C)"), "{all}");
    assert!(all.contains("ARCA-EXITED 130"), "{all}");
    assert!(all.contains("TTY-echo"), "echo left off:\n{all}");
    assert!(t.cursor_visible(), "cursor left hidden");
}

#[test]
fn qr_read_on_a_terminal_ends_with_a_newline() {
    if !term::tmux_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("codes");
    ok(&arca([
        "qr",
        "write",
        "--text",
        ANCHOR_A,
        "--single",
        "--out",
        out.to_str().unwrap(),
    ]));
    let png = out.join("code.png");
    let t = Term::run(tmp.path(), &[], &["qr", "read", png.to_str().unwrap()]);
    t.wait("arca to exit", |t| t.text().contains("ARCA-EXITED"));
    let all = t.text();
    assert!(
        all.lines().any(|l| l == ANCHOR_A),
        "the text is not a line of its own:\n{all}"
    );
    assert!(all.lines().any(|l| l == "ARCA-EXITED 0"), "{all}");
}
