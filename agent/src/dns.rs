//! Placeholder: the dns evidence source (being written).
