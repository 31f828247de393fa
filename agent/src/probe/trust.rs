//! The CA file a proxy trusts for an upstream (`UpstreamTarget.tls_ca_file`:
//! nginx `proxy_ssl_trusted_certificate`, HAProxy `ca-file`, ...), read for
//! the direct probe so it trusts what the proxy trusts.
//!
//! The file is read through the agent's root mapping, like unix socket
//! paths. When it cannot be read or holds no certificate the probe cannot
//! judge the certificate as the proxy does, so [`ProxyTrust::Unknown`] tells
//! the caller to probe without verification rather than report a
//! certificate failure the proxy would not see.

use std::path::Path;

use rustls::pki_types::CertificateDer;

use crate::source::Roots;

/// What the probe can trust for one target.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyTrust {
    /// The proxy names no CA file: its default trust store (the Mozilla roots stand in).
    Default,
    /// The certificates of the proxy's CA file.
    Roots(Vec<CertificateDer<'static>>),
    /// The CA file is named but unusable: why, in words for the probe's detail.
    Unknown(String),
}

/// Reads the CA file `ca_file` (as the proxy config names it) under `roots`.
pub fn proxy_trust(roots: &Roots, ca_file: &str) -> ProxyTrust {
    if ca_file.is_empty() {
        return ProxyTrust::Default;
    }
    if !ca_file.starts_with('/') {
        return ProxyTrust::Unknown(format!("ca file {ca_file}: relative path"));
    }
    let path = roots.host_path(Path::new(ca_file));
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => return ProxyTrust::Unknown(format!("ca file {ca_file}: {e}")),
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        ProxyTrust::Unknown(format!("ca file {ca_file}: no certificate"))
    } else {
        ProxyTrust::Roots(certs)
    }
}
