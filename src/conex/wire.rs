//! placeholder
pub enum Wire {}
