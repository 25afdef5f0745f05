//! The ceremony journal: one JSON line per step, each carrying the hash of
//! the line before it. It is the transcript and what `resume` continues
//! from. It never holds a secret.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The `prev` of the first entry.
pub const GENESIS: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

/// One step of a ceremony.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position, from 1.
    pub seq: u64,
    /// When it was recorded (RFC 3339).
    pub time: String,
    /// Step name (`root-key:rootA`, `sign:rootB`, …).
    pub step: String,
    /// What the step established (public keys, counters, digests).
    pub detail: serde_json::Value,
    /// Files the step wrote (relative to the output folder) and their SHA-256.
    pub outputs: BTreeMap<String, String>,
    /// Hash of the previous entry.
    pub prev: String,
    /// Hash of this entry (over all fields above).
    pub hash: String,
}

#[derive(Serialize)]
struct Unhashed<'a> {
    seq: u64,
    time: &'a str,
    step: &'a str,
    detail: &'a serde_json::Value,
    outputs: &'a BTreeMap<String, String>,
    prev: &'a str,
}

impl Entry {
    fn compute_hash(&self) -> String {
        let u = Unhashed {
            seq: self.seq,
            time: &self.time,
            step: &self.step,
            detail: &self.detail,
            outputs: &self.outputs,
            prev: &self.prev,
        };
        let bytes = serde_json::to_vec(&u).unwrap_or_default();
        format!("sha256={}", hex::encode(Sha256::digest(bytes)))
    }
}

/// A problem with a journal.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub struct JournalError {
    /// The journal file.
    pub file: String,
    /// The line (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub msg: String,
    /// The I/O error, when reading or writing the file failed (line 0).
    #[source]
    pub source: Option<std::io::Error>,
}

/// An open journal.
pub struct Journal {
    path: PathBuf,
    /// Entries so far.
    pub entries: Vec<Entry>,
}

impl Journal {
    /// Opens (or starts) the journal at `path`, checking the whole chain.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let entries = if path.exists() {
            read_chain(path)?
        } else {
            Vec::new()
        };
        Ok(Journal {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The entry of a completed step.
    pub fn find(&self, step: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.step == step)
    }

    /// Appends an entry and syncs it to disk before returning.
    pub fn append(
        &mut self,
        time: &str,
        step: &str,
        detail: serde_json::Value,
        outputs: BTreeMap<String, String>,
    ) -> Result<&Entry, JournalError> {
        let prev = self
            .entries
            .last()
            .map(|e| e.hash.clone())
            .unwrap_or_else(|| GENESIS.to_string());
        let mut e = Entry {
            seq: self.entries.len() as u64 + 1,
            time: time.into(),
            step: step.into(),
            detail,
            outputs,
            prev,
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        let mut line = serde_json::to_string(&e).map_err(|err| self.err(0, err))?;
        line.push('\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| self.io_err(err))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|err| self.io_err(err))?;
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|err| self.io_err(err))?;
        self.entries.push(e);
        Ok(self.entries.last().expect("just pushed"))
    }

    fn err(&self, line: usize, e: impl std::fmt::Display) -> JournalError {
        JournalError {
            file: self.path.display().to_string(),
            line,
            msg: e.to_string(),
            source: None,
        }
    }

    fn io_err(&self, e: std::io::Error) -> JournalError {
        let mut j = self.err(0, &e);
        j.source = Some(e);
        j
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a journal and checks every line's hash and link. A last line cut
/// short by a crash (no trailing newline, not JSON) is reported as such.
pub fn read_chain(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| JournalError {
        file: file.clone(),
        line: 0,
        msg: e.to_string(),
        source: Some(e),
    })?;
    parse_chain(&file, &text)
}

/// Checks journal text already in memory (`file` names it in errors); what
/// [`read_chain`] does after reading the file.
pub fn parse_chain(file: &str, text: &str) -> Result<Vec<Entry>, JournalError> {
    let file = file.to_string();
    let mut out: Vec<Entry> = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let err = |msg: String| JournalError {
            file: file.clone(),
            line: n,
            msg,
            source: None,
        };
        if !raw.ends_with('\n') {
            return Err(err("incomplete last line (the ceremony was interrupted while writing it); remove it to resume".into()));
        }
        let e: Entry = serde_json::from_str(raw.trim_end())
            .map_err(|e| err(format!("not a journal entry: {e}")))?;
        let prev = out
            .last()
            .map(|p| p.hash.clone())
            .unwrap_or_else(|| GENESIS.to_string());
        if e.prev != prev {
            return Err(err(format!(
                "chain broken: prev {} but the line before hashes to {prev}",
                crate::conex::shown_max(&e.prev, 72)
            )));
        }
        if e.seq != n as u64 {
            return Err(err(format!("sequence {} where {n} was expected", e.seq)));
        }
        if e.compute_hash() != e.hash {
            return Err(err("the entry does not match its hash (edited?)".into()));
        }
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_edits() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let mut j = Journal::open(&p).unwrap();
        j.append("t", "begin", serde_json::json!({"a": 1}), BTreeMap::new())
            .unwrap();
        j.append("t", "sign:rootA", serde_json::json!({}), BTreeMap::new())
            .unwrap();
        assert_eq!(read_chain(&p).unwrap().len(), 2);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("rootA", "rootB");
        std::fs::write(&p, text).unwrap();
        let e = read_chain(&p).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
