//! The fleet's certificate revocation list: `DIR/crl.pem`, signed by the
//! fleet CA and maintained by `gw502ctl pki revoke`.
//!
//! The CRL file is the only record of what was revoked: each revocation
//! reads the current list, adds one entry, bumps the CRL number and writes
//! the re-signed list atomically, so a collector polling the file never sees
//! half of it. Serial numbers are kept as big-endian bytes without leading
//! zeros, the form both rcgen and webpki compare.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::{PkiError, files};

/// Name of the CRL file in the PKI directory.
pub const CRL_FILE: &str = "crl.pem";

/// How far ahead a CRL's `nextUpdate` is set. The collector reads a local
/// file rather than fetching it, and does not enforce this date.
const CRL_VALIDITY: Duration = Duration::days(365);

/// Path of the CRL under `dir`.
pub fn crl_path(dir: &Path) -> PathBuf {
    dir.join(CRL_FILE)
}

/// A certificate serial number (big-endian, no leading zero bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A serial from big-endian bytes; leading zeros are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Serial {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        match &bytes[start..] {
            [] => Serial(vec![0]),
            rest => Serial(rest.to_vec()),
        }
    }

    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for Serial {
    type Err = PkiError;

    /// Parses hex, with or without `:` separators and a `0x` prefix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || PkiError::InvalidSerial {
            serial: s.escape_debug().to_string(),
        };
        let digits: String = s.trim_start_matches("0x").replace(':', "");
        if digits.is_empty() || digits.len() > 80 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid());
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = (0..padded.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).map_err(|_| invalid()))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Serial::from_bytes(&bytes))
    }
}

/// Why a certificate was revoked (the RFC 5280 reason codes that apply to a fleet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// No reason given.
    Unspecified,
    /// The private key leaked or may have.
    KeyCompromise,
    /// The holder moved (a host left the fleet, a person left the team).
    AffiliationChanged,
    /// Replaced by a newer certificate.
    Superseded,
    /// The host or service no longer exists.
    CessationOfOperation,
    /// The holder may no longer do what the certificate allowed.
    PrivilegeWithdrawn,
}

impl RevokeReason {
    /// Every reason, in a stable order.
    pub const ALL: [RevokeReason; 6] = [
        RevokeReason::Unspecified,
        RevokeReason::KeyCompromise,
        RevokeReason::AffiliationChanged,
        RevokeReason::Superseded,
        RevokeReason::CessationOfOperation,
        RevokeReason::PrivilegeWithdrawn,
    ];

    /// The reason's word on the command line and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Unspecified => "unspecified",
            RevokeReason::KeyCompromise => "key-compromise",
            RevokeReason::AffiliationChanged => "affiliation-changed",
            RevokeReason::Superseded => "superseded",
            RevokeReason::CessationOfOperation => "cessation-of-operation",
            RevokeReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn rcgen(self) -> RevocationReason {
        match self {
            RevokeReason::Unspecified => RevocationReason::Unspecified,
            RevokeReason::KeyCompromise => RevocationReason::KeyCompromise,
            RevokeReason::AffiliationChanged => RevocationReason::AffiliationChanged,
            RevokeReason::Superseded => RevocationReason::Superseded,
            RevokeReason::CessationOfOperation => RevocationReason::CessationOfOperation,
            RevokeReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        }
    }

    fn from_code(code: u8) -> Option<RevokeReason> {
        RevokeReason::ALL
            .into_iter()
            .find(|r| r.rcgen() as u8 == code)
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial of the revoked certificate.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why, when the entry says.
    pub reason: Option<RevokeReason>,
}

/// A parsed CRL file.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The DER bytes, for a TLS verifier.
    pub der: Vec<u8>,
    /// Its CRL number (0 when absent).
    pub number: u64,
    /// Every entry.
    pub revoked: Vec<Revoked>,
}

/// Parses a PEM CRL; `path` only labels errors.
pub fn parse_crl_pem(path: &Path, pem: &[u8]) -> Result<Crl, PkiError> {
    let bad = |reason: String| PkiError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| bad(format!("not a PEM file: {e}")))?;
    if pem.label != "X509 CRL" {
        return Err(bad(format!(
            "holds a {:?} block, not an X509 CRL",
            pem.label
        )));
    }
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents)
        .map_err(|e| bad(format!("not a certificate revocation list: {e}")))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let revoked = crl
        .iter_revoked_certificates()
        .map(|entry| Revoked {
            serial: Serial::from_bytes(&entry.user_certificate.to_bytes_be()),
            revoked_at: entry.revocation_date.to_datetime(),
            reason: entry
                .reason_code()
                .and_then(|(_, code)| RevokeReason::from_code(code.0)),
        })
        .collect();
    Ok(Crl {
        der: pem.contents.clone(),
        number,
        revoked,
    })
}

/// Reads `DIR/crl.pem`; `None` when no certificate was ever revoked.
pub fn read_crl(dir: &Path) -> Result<Option<Crl>, PkiError> {
    let path = crl_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    parse_crl_pem(&path, &files::read(&path)?).map(Some)
}

/// The serial of a DER certificate.
pub fn serial_of(cert_der: &[u8]) -> Result<Serial, PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::ParseCertificate {
            reason: e.to_string(),
        })?;
    Ok(Serial::from_bytes(
        &cert.tbs_certificate.serial.to_bytes_be(),
    ))
}

/// What [`revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeOutcome {
    /// The revoked serial.
    pub serial: Serial,
    /// True when the serial was already on the list (the file is unchanged).
    pub already: bool,
    /// The CRL file.
    pub crl: PathBuf,
    /// The CRL number now in the file.
    pub number: u64,
}

/// Adds `serial` to the CRL under `dir` (creating it), re-signed by the CA.
pub fn revoke_serial(
    dir: &Path,
    serial: &Serial,
    reason: RevokeReason,
) -> Result<RevokeOutcome, PkiError> {
    let issuer = super::load_issuer(dir)?;
    let path = crl_path(dir);
    let current = read_crl(dir)?;
    let (number, mut entries) = current
        .map(|crl| (crl.number, crl.revoked))
        .unwrap_or_default();
    if entries.iter().any(|e| &e.serial == serial) {
        return Ok(RevokeOutcome {
            serial: serial.clone(),
            already: true,
            crl: path,
            number,
        });
    }
    let now = OffsetDateTime::now_utc();
    entries.push(Revoked {
        serial: serial.clone(),
        revoked_at: now,
        reason: Some(reason),
    });
    let number = number + 1;
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + CRL_VALIDITY,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: entries
            .iter()
            .map(|e| RevokedCertParams {
                serial_number: SerialNumber::from_slice(e.serial.as_bytes()),
                revocation_time: e.revoked_at,
                reason_code: e.reason.map(RevokeReason::rcgen),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params
        .signed_by(&issuer)
        .and_then(|crl| crl.pem())
        .map_err(|source| PkiError::Generate {
            what: "the revocation list".into(),
            source,
        })?;
    files::write_atomic(&path, crl.as_bytes(), files::CERT_MODE)?;
    Ok(RevokeOutcome {
        serial: serial.clone(),
        already: false,
        crl: path,
        number,
    })
}
