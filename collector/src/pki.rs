//! Placeholder: pki (being written).
