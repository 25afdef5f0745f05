//! The person at the keyboard. [`terminal`] prompts on a terminal; without
//! one, secrets must come from `pin-source` files.

pub mod terminal;

use crate::keys::{NoSecrets, SecretSource};
use std::io::IsTerminal as _;

/// The secret source for this process: hidden prompts on a terminal, or
/// [`NoSecrets`] (which explains what to pass instead) when stdin is not one.
pub fn secrets() -> Box<dyn SecretSource> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Box::new(terminal::TerminalSecrets)
    } else {
        Box::new(NoSecrets)
    }
}
