//! Integration tests live under tests/.

pub mod fleet;
pub mod lab;
