//! Integration tests live under tests/.

pub mod causes;
pub mod fleet;
pub mod lab;
pub mod matrix;
pub mod module_graph;
pub mod scenario;
