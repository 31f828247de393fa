//! Placeholder: the probe evidence source (being written).
