//! Placeholder: routing (being written).
