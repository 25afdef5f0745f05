//! placeholder
/// placeholder
pub enum Expr {}
/// placeholder
pub enum KeyRef {}
