//! gw502-pki, the fleet PKI: one ECDSA P-256 CA that signs the certificates of agents,
//! collectors and operators.
//!
//! Every leaf carries its fleet identity as a URI SAN
//! `spiffe://gw502/<role>/<name>` (and CN=name); the collector authorizes
//! RPCs from it with [`identity_from_der`]. Agents and operators get the
//! clientAuth EKU, collectors serverAuth and clientAuth plus DNS/IP SANs.
//! An operator certificate may also carry a tenant [`Scope`], one URI SAN
//! `gw502:scope:<key>=<value>` per label pair; [`peer_from_der`] reads
//! identity and scope together, strictly.
//! Layout under the PKI directory:
//!
//! ```text
//! ca.crt  ca.key (0600)
//! agents/<name>.crt|.key  collectors/<name>.crt|.key  operators/<name>.crt|.key
//! crl.pem (the revocation list, once something was revoked)
//! ```
//!
//! # Layout
//!
//! - [`identity`](Identity): the SPIFFE identity in a certificate.
//! - `files`: the directory layout and atomic, mode-restricted writes.
//! - [`crl`]: the revocation list `gw502ctl pki revoke` maintains.
//! - [`inventory`]: the issued certificates, revocation by name.

#![warn(missing_docs)]

pub mod crl;
mod files;
mod identity;
pub mod inventory;
mod scope;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crl;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

pub use crl::{CRL_FILE, RevokeReason, Serial, crl_path};
pub use identity::{Identity, MAX_NAME_LEN, Role, SPIFFE_PREFIX, identity_from_der, validate_name};
pub use scope::{
    MAX_LABEL_KEY_LEN, Peer, SCOPE_URI_PREFIX, Scope, check_label_key, parse_pair, peer_from_der,
};

/// Common name of the fleet CA.
pub const CA_COMMON_NAME: &str = "gw502 fleet CA";

/// How long the CA is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a leaf is valid.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Backdating of `not_before`, for hosts whose clocks run a little behind.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Errors of the PKI; each names the file or value involved.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted (`read`, `create`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `init` found an existing CA and was not asked to replace it.
    #[error("a CA already exists at {}; refusing to overwrite it", path.display())]
    CaExists {
        /// The existing CA file.
        path: PathBuf,
    },
    /// A certificate name is not usable.
    #[error("invalid name \"{name}\": {reason}")]
    InvalidName {
        /// The rejected name (escaped).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A role word is not one of agent, collector, operator.
    #[error("unknown role \"{}\" (expected agent, collector or operator)", role.escape_debug())]
    UnknownRole {
        /// The rejected word.
        role: String,
    },
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name \"{}\"", san.escape_debug())]
    InvalidSan {
        /// The rejected SAN.
        san: String,
    },
    /// A file does not hold what was expected (PEM, key, CA certificate).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Key or certificate generation failed.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// A DER certificate does not parse.
    #[error("cannot parse certificate: {reason}")]
    ParseCertificate {
        /// The parser's words.
        reason: String,
    },
    /// The certificate carries no `spiffe://gw502/` URI SAN.
    #[error("certificate carries no gw502 identity (spiffe://gw502/<role>/<name> URI SAN)")]
    NoIdentity,
    /// The certificate carries more than one gw502 identity.
    #[error("certificate carries {count} gw502 identities; exactly one is allowed")]
    SeveralIdentities {
        /// How many were found.
        count: usize,
    },
    /// A serial number is not hex.
    #[error("invalid serial number \"{serial}\" (expected hex, e.g. 3f:a2:... or 3fa2...)")]
    InvalidSerial {
        /// The rejected text (escaped).
        serial: String,
    },
    /// No certificate of that name was issued in the PKI directory.
    #[error("no certificate named \"{name}\" under {}", dir.display())]
    NotIssued {
        /// The name asked for (escaped).
        name: String,
        /// The PKI directory.
        dir: PathBuf,
    },
    /// A name was issued for several roles.
    #[error("\"{name}\" names certificates of several roles; say which, e.g. agent/{name}")]
    AmbiguousName {
        /// The name.
        name: String,
    },
    /// A gw502 identity URI is malformed.
    #[error("invalid gw502 identity \"{}\"", uri.escape_debug())]
    InvalidIdentity {
        /// The URI.
        uri: String,
    },
    /// A scope pair (on the command line or in a certificate) is malformed.
    #[error("invalid scope \"{scope}\": {reason}")]
    InvalidScope {
        /// The rejected pair or URI (escaped).
        scope: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scope was given for a role that cannot carry one.
    #[error("a {role} certificate cannot carry a scope; only operator certificates can")]
    ScopeNotAllowed {
        /// The role.
        role: Role,
    },
}

/// Where `init` wrote the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPaths {
    /// `DIR/ca.crt`.
    pub cert: PathBuf,
    /// `DIR/ca.key` (mode 0600).
    pub key: PathBuf,
}

/// Where `issue` wrote a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPaths {
    /// The identity the certificate carries.
    pub identity: Identity,
    /// `DIR/<role>s/<name>.crt`.
    pub cert: PathBuf,
    /// `DIR/<role>s/<name>.key` (mode 0600).
    pub key: PathBuf,
}

/// Creates a new fleet CA under `dir`; refuses when one exists.
pub fn init(dir: &Path) -> Result<CaPaths, PkiError> {
    init_with(dir, false)
}

/// Creates a new fleet CA under `dir`, replacing an existing one when
/// `overwrite` is set (every certificate it signed stops being trusted).
pub fn init_with(dir: &Path, overwrite: bool) -> Result<CaPaths, PkiError> {
    let paths = CaPaths {
        cert: files::ca_cert(dir),
        key: files::ca_key(dir),
    };
    if !overwrite {
        for existing in [&paths.cert, &paths.key] {
            if existing.exists() {
                return Err(PkiError::CaExists {
                    path: existing.clone(),
                });
            }
        }
    }
    let key = KeyPair::generate().map_err(generate("the CA key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + CA_VALIDITY;
    let cert = params
        .self_signed(&key)
        .map_err(generate("the CA certificate"))?;
    files::create_dir(dir)?;
    files::write_atomic(&paths.key, key.serialize_pem().as_bytes(), files::KEY_MODE)?;
    files::write_atomic(&paths.cert, cert.pem().as_bytes(), files::CERT_MODE)?;
    Ok(paths)
}

/// Issues (or re-issues) the certificate of `role`/`name`, signed by the CA
/// under `dir`. `sans` are the DNS names and IP addresses of a collector
/// (default: localhost, 127.0.0.1, ::1 and this host's name); other roles
/// ignore them.
pub fn issue(dir: &Path, role: Role, name: &str, sans: &[String]) -> Result<IssuedPaths, PkiError> {
    issue_scoped(dir, role, name, sans, &Scope::default())
}

/// Like [`issue`], with a tenant `scope` for an operator certificate (one
/// `gw502:scope:` URI SAN per pair); other roles accept only an empty scope.
pub fn issue_scoped(
    dir: &Path,
    role: Role,
    name: &str,
    sans: &[String],
    scope: &Scope,
) -> Result<IssuedPaths, PkiError> {
    validate_name(name)?;
    scope::check_scope_role(role, scope)?;
    let identity = Identity {
        role,
        name: name.to_owned(),
    };
    let issuer = load_issuer(dir)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + LEAF_VALIDITY;
    let uri = identity.uri();
    params.subject_alt_names = Vec::new();
    for uri in std::iter::once(uri).chain(scope.uris()) {
        params.subject_alt_names.push(SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(|_| PkiError::InvalidSan { san: uri.clone() })?,
        ));
    }
    params.extended_key_usages = match role {
        Role::Agent | Role::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Role::Collector => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    if role == Role::Collector {
        let defaults;
        let sans = if sans.is_empty() {
            defaults = default_collector_sans();
            &defaults
        } else {
            sans
        };
        for san in sans {
            params.subject_alt_names.push(san_type(san)?);
        }
    }
    let what = || format!("the {identity} certificate");
    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: what(),
        source,
    })?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| PkiError::Generate {
            what: what(),
            source,
        })?;
    let (cert_path, key_path) = files::leaf(dir, role, name);
    files::write_atomic(&key_path, key.serialize_pem().as_bytes(), files::KEY_MODE)?;
    files::write_atomic(&cert_path, cert.pem().as_bytes(), files::CERT_MODE)?;
    Ok(IssuedPaths {
        identity,
        cert: cert_path,
        key: key_path,
    })
}

/// Creates whatever is missing of: the CA, collector `local` (with
/// `collector_sans`), operator `admin` and agent `<hostname>`. Used by the
/// all-in-one mode; existing files are left alone.
pub fn ensure(dir: &Path, collector_sans: &[String]) -> Result<(), PkiError> {
    if !files::ca_cert(dir).exists() || !files::ca_key(dir).exists() {
        init_with(dir, true)?;
    }
    let host = local_hostname();
    for (role, name) in [
        (Role::Collector, "local"),
        (Role::Operator, "admin"),
        (Role::Agent, host.as_str()),
    ] {
        let (cert, key) = files::leaf(dir, role, name);
        if !cert.exists() || !key.exists() {
            issue(dir, role, name, collector_sans)?;
        }
    }
    Ok(())
}

/// Paths of the certificate and key of `role`/`name` under `dir` (they may not exist).
pub fn leaf_paths(dir: &Path, role: Role, name: &str) -> (PathBuf, PathBuf) {
    files::leaf(dir, role, name)
}

/// Reads a PEM file (certificate or key), checking that it holds a PEM block.
pub fn load_pem(path: impl AsRef<Path>) -> Result<Vec<u8>, PkiError> {
    let path = path.as_ref();
    let data = files::read(path)?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(PkiError::BadFile {
            path: path.to_owned(),
            reason: "not a PEM file (no -----BEGIN line)".into(),
        });
    }
    Ok(data)
}

/// This machine's host name (from the kernel), or `localhost` when it is
/// unreadable or not a valid certificate name.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| validate_name(s).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let (cert_path, key_path) = (files::ca_cert(dir), files::ca_key(dir));
    let bad = |path: &Path, reason: String| PkiError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let key_pem =
        String::from_utf8(load_pem(&key_path)?).map_err(|_| bad(&key_path, "not UTF-8".into()))?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| bad(&key_path, format!("not a private key: {e}")))?;
    let cert_pem = String::from_utf8(load_pem(&cert_path)?)
        .map_err(|_| bad(&cert_path, "not UTF-8".into()))?;
    Issuer::from_ca_cert_pem(&cert_pem, key)
        .map_err(|e| bad(&cert_path, format!("not a CA certificate: {e}")))
}

fn default_collector_sans() -> Vec<String> {
    let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    let host = local_hostname();
    if !sans.contains(&host) {
        sans.push(host);
    }
    sans
}

fn san_type(san: &str) -> Result<SanType, PkiError> {
    let invalid = || PkiError::InvalidSan {
        san: san.to_owned(),
    };
    let trimmed = san.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns_ok = !san.is_empty()
        && san.len() <= MAX_NAME_LEN
        && san
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b'_'));
    if !dns_ok {
        return Err(invalid());
    }
    Ok(SanType::DnsName(san.try_into().map_err(|_| invalid())?))
}

fn distinguished_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "gw502");
    dn.push(DnType::CommonName, cn);
    dn
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate {
        what: what.to_owned(),
        source,
    }
}
