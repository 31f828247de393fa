//! Placeholder: the sockets evidence source (being written).
