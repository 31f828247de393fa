//! What the PKI directory holds: every issued certificate with its identity,
//! serial and expiry, marked when the CRL revokes it, and revocation by name.
//!
//! `gw502ctl pki list` prints this; `gw502ctl pki revoke NAME` finds the
//! certificate here and hands its serial to [`crate::crl::revoke_serial`].

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::crl::{self, RevokeOutcome, RevokeReason, Revoked, Serial};
use super::{Identity, PkiError, Role, files, identity_from_der};

/// One certificate found under the PKI directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The identity it carries.
    pub identity: Identity,
    /// Its serial.
    pub serial: Serial,
    /// When it expires.
    pub not_after: OffsetDateTime,
    /// The certificate file.
    pub cert: PathBuf,
    /// The CRL entry, when it is revoked.
    pub revoked: Option<Revoked>,
}

/// Everything under `dir`: the issued certificates (by role, then name) and
/// the CRL entries that match none of them (certificates re-issued or deleted
/// since, or revoked by serial).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Certificates on disk.
    pub issued: Vec<Issued>,
    /// CRL entries with no certificate on disk.
    pub revoked_elsewhere: Vec<Revoked>,
}

/// Reads the certificates and the CRL under `dir`.
pub fn list(dir: &Path) -> Result<Inventory, PkiError> {
    let revoked = crl::read_crl(dir)?
        .map(|crl| crl.revoked)
        .unwrap_or_default();
    let mut issued = Vec::new();
    for role in Role::ALL {
        let role_dir = dir.join(role.dir_name());
        let Ok(entries) = std::fs::read_dir(&role_dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        paths.sort();
        for path in paths {
            let mut cert = read_cert(&path)?;
            cert.revoked = revoked.iter().find(|r| r.serial == cert.serial).cloned();
            issued.push(cert);
        }
    }
    let revoked_elsewhere = revoked
        .into_iter()
        .filter(|r| !issued.iter().any(|i| i.serial == r.serial))
        .collect();
    Ok(Inventory {
        issued,
        revoked_elsewhere,
    })
}

/// Reads one PEM certificate file.
pub fn read_cert(path: &Path) -> Result<Issued, PkiError> {
    let bad = |reason: String| PkiError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let pem = files::read(path)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents)
        .map_err(|e| bad(format!("not a certificate: {e}")))?;
    let identity = identity_from_der(&pem.contents).map_err(|e| bad(e.to_string()))?;
    Ok(Issued {
        identity,
        serial: Serial::from_bytes(&cert.tbs_certificate.serial.to_bytes_be()),
        not_after: cert.validity().not_after.to_datetime(),
        cert: path.to_owned(),
        revoked: None,
    })
}

/// Finds the certificate named `target`: `NAME` or `ROLE/NAME`.
pub fn find(dir: &Path, target: &str) -> Result<Issued, PkiError> {
    let (roles, name): (Vec<Role>, &str) = match target.split_once('/') {
        Some((role, name)) => (vec![role.parse()?], name),
        None => (Role::ALL.to_vec(), target),
    };
    super::validate_name(name)?;
    let found: Vec<PathBuf> = roles
        .into_iter()
        .map(|role| files::leaf(dir, role, name).0)
        .filter(|path| path.exists())
        .collect();
    match found.as_slice() {
        [path] => read_cert(path),
        [] => Err(PkiError::NotIssued {
            name: target.escape_debug().to_string(),
            dir: dir.to_owned(),
        }),
        _ => Err(PkiError::AmbiguousName {
            name: name.to_owned(),
        }),
    }
}

/// Revokes the certificate named `target` (`NAME` or `ROLE/NAME`) on disk
/// under `dir`; returns what was revoked.
pub fn revoke_name(
    dir: &Path,
    target: &str,
    reason: RevokeReason,
) -> Result<(Identity, RevokeOutcome), PkiError> {
    let cert = find(dir, target)?;
    let outcome = crl::revoke_serial(dir, &cert.serial, reason)?;
    Ok((cert.identity, outcome))
}
