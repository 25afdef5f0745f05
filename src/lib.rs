//! arca — the offline root of a conex-signed opam repository.
#![warn(missing_docs)]

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
