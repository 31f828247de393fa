//! Placeholder: the systemd evidence source (being written).
