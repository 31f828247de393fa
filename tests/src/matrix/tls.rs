//! The certificate of the lab app on HTTPS transport, made at test time: a lab CA and a
//! leaf for `localhost` and `127.0.0.1` signed by it, generated once per test process
//! with rcgen and written into each app host as PEM files (no openssl command, no
//! shell). Most cells' proxies do not verify it (`proxy_ssl_verify off` is nginx's
//! default; the HAProxy, Apache and Caddy sites say so), as internal upstreams often run.
//! The `tls_certificate_error` cells' proxies verify it against the lab CA
//! ([`APP_CA`]) and the name [`APP_TLS_NAME`] from boot on, and the fault swaps in
//! [`AppCert::expired_pem`]: the same names and key, signed by the same CA, expired.

use std::sync::OnceLock;

use crate::lab::LabFile;

/// Where the app's certificate goes on its host.
pub const APP_CERT: &str = "/etc/gw502-lab/app.crt";
/// Where the app's private key goes on its host.
pub const APP_KEY: &str = "/etc/gw502-lab/app.key";
/// Where the lab CA goes for a proxy that verifies the app.
pub const APP_CA: &str = "/etc/gw502-lab/ca.crt";
/// The name a verifying proxy checks the app's certificate for.
pub const APP_TLS_NAME: &str = "localhost";

/// A leaf certificate and key in PEM, and the CA that signed it.
#[derive(Debug, Clone)]
pub struct AppCert {
    /// The leaf, PEM.
    pub cert_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
    /// The lab CA, PEM.
    pub ca_pem: String,
    /// The same leaf (names, key, CA) valid only during 2024: what the app serves once
    /// its certificate has expired.
    pub expired_pem: String,
}

/// The lab app's certificate, made on first use.
///
/// # Panics
///
/// If rcgen cannot make a key or sign (it only fails on invalid parameters).
pub fn app_cert() -> &'static AppCert {
    static CERT: OnceLock<AppCert> = OnceLock::new();
    CERT.get_or_init(|| make(&["localhost", "127.0.0.1"]).expect("make the lab app certificate"))
}

fn make(names: &[&str]) -> Result<AppCert, rcgen::Error> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gw502 lab ca");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    let mut leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "shop app");
    let key = rcgen::KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca)?;
    leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2025, 1, 1);
    let expired = leaf.signed_by(&key, &ca)?;
    Ok(AppCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.pem(),
        expired_pem: expired.pem(),
    })
}

/// The certificate and key files of an HTTPS app host (the key readable by its owner
/// only; the app runs as root in the lab).
pub fn app_files() -> Vec<LabFile> {
    let c = app_cert();
    vec![
        (APP_CERT.into(), c.cert_pem.clone(), 0o644),
        (APP_KEY.into(), c.key_pem.clone(), 0o600),
    ]
}

/// The lab CA as a file, for a host whose proxy verifies the app.
pub fn ca_file() -> LabFile {
    (APP_CA.into(), app_cert().ca_pem.clone(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_names_the_loopback_app() {
        let a = app_cert();
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem.contains("PRIVATE KEY"));
        assert_ne!(a.cert_pem, a.ca_pem);
        assert!(std::ptr::eq(a, app_cert()));
        let files = app_files();
        assert_eq!(files[1].2, 0o600);
        rcgen::KeyPair::from_pem(&a.key_pem).expect("the key parses");
        // The leaf's DER names both: `localhost` as a DNS name, 127.0.0.1 as an address.
        use base64::Engine as _;
        let body: String = a
            .cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM body is base64");
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"localhost"));
        assert!(
            has(&[0x87, 4, 127, 0, 0, 1]),
            "an iPAddress SAN of 127.0.0.1"
        );
    }

    #[test]
    fn the_expired_leaf_is_valid_only_during_2024() {
        use base64::Engine as _;
        let a = app_cert();
        let der = |pem: &str| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("PEM body is base64")
        };
        let has = |der: &[u8], needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        let (good, old) = (der(&a.cert_pem), der(&a.expired_pem));
        // Validity as UTCTime: from 2024-01-01 to 2025-01-01, both long past.
        assert!(has(&old, b"240101000000Z") && has(&old, b"250101000000Z"));
        assert!(!has(&good, b"250101000000Z"));
        // The same names as the good leaf.
        assert!(has(&old, b"localhost") && has(&old, &[0x87, 4, 127, 0, 0, 1]));
        assert_ne!(good, old);
        assert_eq!(ca_file().0, std::path::PathBuf::from(APP_CA));
    }
}
