//! Placeholder: the proxy_config evidence source (being written).
