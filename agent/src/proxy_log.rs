//! Placeholder: the proxy_log evidence source (being written).
