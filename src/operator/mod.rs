//! The person at the keyboard. A ceremony asks the [`Operator`] to confirm,
//! choose, type secrets, read summaries and see QR codes; [`terminal`]
//! does it with prompts, [`scripted`] from an answers file (CI, rehearsals).

pub mod scripted;
pub mod terminal;

use crate::keys::{KeyError, NoSecrets, SecretSource};
use std::io::IsTerminal as _;

/// How dangerous a confirmation is; destructive ones get a banner. The
/// default answer is always No.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Danger {
    /// An ordinary step.
    Normal,
    /// Something that cannot be undone (signing a root, generating keys).
    Destructive,
}

/// What a ceremony needs of a person.
pub trait Operator: SecretSource {
    /// Asks yes/no; the default is No.
    fn confirm(&mut self, question: &str, danger: Danger) -> Result<bool, KeyError>;
    /// Shows a titled block of text (a change summary, a step list).
    fn show(&mut self, title: &str, body: &str);
    /// Shows a QR code for `data` with a caption.
    fn show_qr(&mut self, caption: &str, data: &str);
    /// Reports progress of step `n` of `total`.
    fn step(&mut self, n: usize, total: usize, what: &str);
    /// Shows the ceremony's steps before it starts.
    fn plan(&mut self, title: &str, steps: &[String]) {
        self.show(title, &plan_text(steps));
    }
    /// Something slow begins (key generation, long verification).
    fn busy(&mut self, what: &str) {
        self.notice(what);
    }
    /// The slow thing ended.
    fn done(&mut self) {}
}

/// A numbered step list.
pub fn plan_text(steps: &[String]) -> String {
    let body: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:>2}. {s}", i + 1))
        .collect();
    body.join("\n")
}

/// The secret source for this process: hidden prompts on a terminal, or
/// [`NoSecrets`] (which explains what to pass instead) when stdin is not one.
pub fn secrets() -> Box<dyn SecretSource> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Box::new(terminal::TerminalSecrets)
    } else {
        Box::new(NoSecrets)
    }
}
