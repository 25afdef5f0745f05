//! arca — the offline root of a conex-signed opam repository.
//!
//! # Layers
//!
//! The modules form layers, lowest first. A module may import the modules
//! of the layers below its own, never one above. Modules that share a
//! layer may import each other in one direction only: no cycle.
//! `tests/layers.rs` reads this table and checks every `crate::` path in
//! `src/` against it.
//!
//! | layer | modules | what they are | may import |
//! |---|---|---|---|
//! | 1 | alloc, conex | the memory allocator (large blocks in huge pages); the conex 1.0 model: parse, print, canonical bytes, verification | nothing of arca |
//! | 2 | keys | the signers: key files, PKCS#11 tokens, YubiKeys (PIV) | 1 |
//! | 3 | journal | the hash-chained ceremony journal | 1–2 |
//! | 4 | error | [`ArcaError`]: every layer's errors, and the exit codes | 1–3 |
//! | 5 | repository, verify_cache, patch, incremental | the conex verbs over a repository directory; the verified-state cache; git diffs; incremental verification | 1–4 |
//! | 6 | bundle | the air-gap bundle: contents, MANIFEST, verify, open, QR frames | 1–5 |
//! | 7 | status | `status` of root, targets, snapshot and timestamp | 1–6 |
//! | 8 | operator | the person: chooses who answers; terminal prompts, answers files | 1–7 |
//! | 9 | ceremony | typed ceremony files, their plans and engine, preflight, profiles, rehearsals | 1–8 |
//! | 10 | cli | the command line: one file per verb group, the menu | 1–9 |
//!
//! `src/main.rs`, the binary, only hardens the process and calls
//! [`cli::run`].
#![warn(missing_docs)]

pub mod alloc;
pub mod bundle;
pub mod conex;
pub mod error;
pub mod journal;
pub mod keys;
pub mod repository;

pub use error::{ArcaError, Result};
pub mod ceremony;
pub mod cli;
pub mod incremental;
pub mod operator;
pub mod patch;
pub mod status;
pub mod verify_cache;

#[global_allocator]
static ALLOC: alloc::Alloc = alloc::Alloc;
