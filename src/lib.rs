//! arca — the offline root of a conex-signed opam repository.
#![warn(missing_docs)]

pub mod conex;
pub mod keys;
