//! An operator driven by an answers file, for CI, rehearsals and tests.
//!
//! ```toml
//! confirm = "yes"                      # every question not listed below (default: no)
//! [answers]                            # questions by subject
//! approve = "yes"
//! "sign:rootA" = "yes"
//! [secrets]                            # secrets by subject, from these files
//! "pin:token=root-1" = "pins/root-1"
//! "passphrase:online-keys" = "pins/online"
//! ```
//! Questions and secrets are addressed by their subject, never by the
//! wording of a prompt; an unknown subject is refused with its line.
//! Secrets come only from files; an answers file never holds a PIN itself.

use super::{check_subject, Danger, Operator, Question, SubjectKind};
use crate::error::ScriptError;
use crate::keys::{KeyError, SecretRequest, SecretSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use zeroize::Zeroizing;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Answers {
    #[serde(default)]
    confirm: Option<Spanned<String>>,
    #[serde(default)]
    answers: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    secrets: BTreeMap<Spanned<String>, PathBuf>,
}

/// Answers from a file; everything shown is printed to stderr.
pub struct Scripted {
    yes: bool,
    answers: BTreeMap<String, bool>,
    secrets: BTreeMap<String, PathBuf>,
    /// Everything shown, for tests and transcripts.
    pub shown: Vec<String>,
    quiet: bool,
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

impl Scripted {
    /// Reads an answers file (paths in it are relative to the file).
    pub fn from_file(path: &Path) -> Result<Scripted, ScriptError> {
        let err = |line: Option<usize>, msg: String| ScriptError {
            file: path.display().to_string(),
            line,
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(None, e.to_string()))?;
        let at = |span: std::ops::Range<usize>| crate::repository::line_of(&text, &span);
        let a: Answers = toml::from_str(&text).map_err(|e| {
            let (line, msg) = crate::repository::toml_error(&text, &e);
            err(line, msg)
        })?;
        let yes = match &a.confirm {
            None => false,
            Some(c) => yes_no(c.get_ref()).ok_or_else(|| {
                err(
                    at(c.span()),
                    format!(
                        "confirm = \"{}\": expected \"yes\" or \"no\"",
                        crate::conex::shown(c.get_ref())
                    ),
                )
            })?,
        };
        let mut answers = BTreeMap::new();
        for (k, v) in &a.answers {
            match check_subject(k.get_ref()) {
                Ok(SubjectKind::Question) => {}
                Ok(SubjectKind::Secret) => {
                    return Err(err(
                        at(k.span()),
                        format!(
                            "{} is a secret: list it under [secrets] with the file that holds it",
                            k.get_ref()
                        ),
                    ))
                }
                Err(e) => return Err(err(at(k.span()), e.to_string())),
            }
            let b = yes_no(v.get_ref()).ok_or_else(|| {
                err(
                    at(v.span()),
                    format!(
                        "{} = \"{}\": expected \"yes\" or \"no\"",
                        k.get_ref(),
                        crate::conex::shown(v.get_ref())
                    ),
                )
            })?;
            answers.insert(k.get_ref().clone(), b);
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut secrets = BTreeMap::new();
        for (k, v) in a.secrets {
            match check_subject(k.get_ref()) {
                Ok(SubjectKind::Secret) => {}
                Ok(SubjectKind::Question) => {
                    return Err(err(
                        at(k.span()),
                        format!(
                            "{} is a question: list it under [answers] as \"yes\" or \"no\"",
                            k.get_ref()
                        ),
                    ))
                }
                Err(e) => return Err(err(at(k.span()), e.to_string())),
            }
            secrets.insert(k.into_inner(), base.join(v));
        }
        Ok(Scripted {
            yes,
            answers,
            secrets,
            shown: Vec::new(),
            quiet: false,
        })
    }

    /// Answers yes to everything and takes secrets (by subject) from the
    /// given files.
    pub fn yes(secrets: BTreeMap<String, PathBuf>) -> Scripted {
        Scripted {
            yes: true,
            answers: BTreeMap::new(),
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

    fn answer(&self, subject: &str) -> bool {
        self.answers.get(subject).copied().unwrap_or(self.yes)
    }
}

impl SecretSource for Scripted {
    fn secret(&mut self, req: &SecretRequest) -> Result<Zeroizing<String>, KeyError> {
        Err(KeyError::Declined(format!(
            "the answers file cannot answer {} (no subject)",
            req.what
        )))
    }
    fn confirm_risky(&mut self, question: &str) -> Result<bool, KeyError> {
        let a = self.answer(super::FINAL_PIN_TRY);
        self.out(format!(
            "? {}: {question} -> {}",
            super::FINAL_PIN_TRY,
            if a { "yes" } else { "no" }
        ));
        Ok(a)
    }
    fn notice(&mut self, message: &str) {
        self.out(message.to_string());
    }
}

impl Operator for Scripted {
    fn ask(&mut self, q: &Question) -> Result<bool, KeyError> {
        let mark = if q.danger == Danger::Destructive {
            "!"
        } else {
            "?"
        };
        let a = self.answer(&q.subject);
        self.out(format!(
            "{mark} {}: {} -> {}",
            q.subject,
            q.text,
            if a { "yes" } else { "no" }
        ));
        Ok(a)
    }
    fn secret_as(
        &mut self,
        subject: &str,
        req: &SecretRequest,
    ) -> Result<Zeroizing<String>, KeyError> {
        let file = self.secrets.get(subject).cloned().ok_or_else(|| {
            KeyError::Declined(format!(
                "the answers file has no secret for {} (add \"{subject}\" = \"FILE\" under [secrets])",
                req.what
            ))
        })?;
        crate::keys::read_secret_file(&file, "secret file")
    }
    fn show(&mut self, title: &str, body: &str) {
        self.out(format!("== {title}\n{body}"));
    }
    fn show_qr(&mut self, caption: &str, data: &str) {
        self.out(format!("[QR] {caption}: {data}"));
    }
    fn step(&mut self, n: usize, total: usize, what: &str, _next: Option<&str>) {
        self.out(format!("[{n}/{total}] {what}"));
    }
}
