//! Placeholder: the journal evidence source (being written).
