//! placeholder
pub struct Delegation; pub struct Key; pub enum Resource {} pub struct Root; pub enum Role {} pub struct Signature; pub struct Snapshot; pub struct Target; pub struct Targets; pub struct Timestamp;
