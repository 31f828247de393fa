//! Placeholder: edge (being written).
