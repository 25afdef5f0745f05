//! Verification (todo)
