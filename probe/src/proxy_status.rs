//! The RFC 9209 `Proxy-Status` response header, as the probes record it.
//!
//! The parse lives in `gw502_vocab::proxy_status`, beside the error types,
//! because the attribution engine reads the header back from an observation
//! with the very same rules; this module only names it for the probe's users.

pub use gw502_vocab::proxy_status::{BadProxyStatus, ProxyStatus, first_error, parse};
