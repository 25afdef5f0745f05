//! An operator driven by an answers file, for CI, rehearsals and tests.
//!
//! ```toml
//! confirm = "yes"                  # answer to every confirmation (default: no)
//! [secrets]                        # secret requests, matched by substring,
//! "token root-1" = "pins/root-1"   # answered from these files
//! ```
//! Secrets come only from files; an answers file never holds a PIN itself.

use super::{Danger, Operator};
use crate::keys::{KeyError, SecretRequest, SecretSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Answers {
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    secrets: BTreeMap<String, PathBuf>,
}

/// Answers from a file; everything shown is printed to stderr.
pub struct Scripted {
    yes: bool,
    secrets: BTreeMap<String, PathBuf>,
    /// Everything shown, for tests and transcripts.
    pub shown: Vec<String>,
    quiet: bool,
}

impl Scripted {
    /// Reads an answers file (paths in it are relative to the file).
    pub fn from_file(path: &Path) -> Result<Scripted, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let a: Answers = toml::from_str(&text).map_err(|e| {
            let (line, msg) = crate::ceremony::script::toml_error(&text, &e);
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            format!("{}{at}: {msg}", path.display())
        })?;
        let yes = match a.confirm.as_deref() {
            None | Some("no") => false,
            Some("yes") => true,
            Some(o) => {
                return Err(format!(
                    "{}: confirm = {o:?}: expected \"yes\" or \"no\"",
                    path.display()
                ))
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let secrets = a
            .secrets
            .into_iter()
            .map(|(k, v)| (k, base.join(v)))
            .collect();
        Ok(Scripted {
            yes,
            secrets,
            shown: Vec::new(),
            quiet: false,
        })
    }

    /// Answers yes to everything and takes secrets from the given files.
    pub fn yes(secrets: BTreeMap<String, PathBuf>) -> Scripted {
        Scripted {
            yes: true,
            secrets,
            shown: Vec::new(),
            quiet: false,
        }
    }

    /// Stops printing what is shown (it is still recorded).
    pub fn quiet(mut self) -> Scripted {
        self.quiet = true;
        self
    }

    fn out(&mut self, s: String) {
        if !self.quiet {
            eprintln!("{s}");
        }
        self.shown.push(s);
    }
}

impl SecretSource for Scripted {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        let file = self
            .secrets
            .iter()
            .find(|(k, _)| req.what.contains(k.as_str()))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                KeyError::Declined(format!("the answers file has no secret for {}", req.what))
            })?;
        crate::keys::read_secret_file(&file, "secret file")
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        self.out(format!(
            "? {question} -> {}",
            if self.yes { "yes" } else { "no" }
        ));
        Ok(self.yes)
    }
    fn notice(&mut self, message: &str) {
        self.out(message.to_string());
    }
}

impl Operator for Scripted {
    fn confirm(&mut self, question: &str, danger: Danger) -> Result<bool, KeyError> {
        let mark = if danger == Danger::Destructive {
            "!"
        } else {
            "?"
        };
        self.out(format!(
            "{mark} {question} -> {}",
            if self.yes { "yes" } else { "no" }
        ));
        Ok(self.yes)
    }
    fn show(&mut self, title: &str, body: &str) {
        self.out(format!("== {title}\n{body}"));
    }
    fn show_qr(&mut self, caption: &str, data: &str) {
        self.out(format!("[QR] {caption}: {data}"));
    }
    fn step(&mut self, n: usize, total: usize, what: &str) {
        self.out(if total > 0 {
            format!("[{n}/{total}] {what}")
        } else {
            format!("[step {n}] {what}")
        });
    }
}
