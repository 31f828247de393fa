//! Placeholder: attribution (being written).
