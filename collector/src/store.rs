//! Placeholder: store (being written).
