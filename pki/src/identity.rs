//! Who a certificate belongs to: the fleet role and name carried in its
//! `spiffe://gw502/<role>/<name>` URI SAN.
//!
//! The collector authorizes every RPC from this identity (agents may report,
//! operators may query), so parsing is strict: a certificate must carry
//! exactly one gw502 identity with a known role and a valid name.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;

use super::PkiError;

/// The URI prefix of every gw502 identity SAN.
pub const SPIFFE_PREFIX: &str = "spiffe://gw502/";

pub use gw502_vocab::name::MAX_NAME_LEN;

/// What a certificate holder may do in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A host agent: may deliver reports for its own host.
    Agent,
    /// A collector: serves agents and operators, may also talk to peers.
    Collector,
    /// A person or automation reading incidents with gw502ctl.
    Operator,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 3] = [Role::Agent, Role::Collector, Role::Operator];

    /// The role's word as used in identities and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Collector => "collector",
            Role::Operator => "operator",
        }
    }

    /// The subdirectory of the PKI directory holding this role's certificates.
    pub fn dir_name(self) -> &'static str {
        match self {
            Role::Agent => "agents",
            Role::Collector => "collectors",
            Role::Operator => "operators",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| PkiError::UnknownRole { role: s.to_owned() })
    }
}

/// The fleet identity of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What the holder may do.
    pub role: Role,
    /// The holder's name: a host id for agents, a free label otherwise.
    pub name: String,
}

impl Identity {
    /// The URI SAN that encodes this identity.
    pub fn uri(&self) -> String {
        format!("{SPIFFE_PREFIX}{}/{}", self.role, self.name)
    }

    /// Parses a `spiffe://gw502/<role>/<name>` URI.
    pub fn from_uri(uri: &str) -> Result<Identity, PkiError> {
        let invalid = || PkiError::InvalidIdentity {
            uri: uri.to_owned(),
        };
        let rest = uri.strip_prefix(SPIFFE_PREFIX).ok_or_else(invalid)?;
        let (role, name) = rest.split_once('/').ok_or_else(invalid)?;
        let role = role.parse::<Role>().map_err(|_| invalid())?;
        validate_name(name).map_err(|_| invalid())?;
        Ok(Identity {
            role,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.name)
    }
}

/// Checks a certificate name: 1 to 253 characters of `[A-Za-z0-9._-]`, not
/// `.` or `..` (a name becomes a file name and a host id).
pub fn validate_name(name: &str) -> Result<(), PkiError> {
    let reason = gw502_vocab::name::check_name(name).err();
    match reason {
        Some(reason) => Err(PkiError::InvalidName {
            name: name.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Reads the gw502 identity of a DER certificate from its URI SAN.
///
/// Fails when the certificate does not parse, or carries no or several
/// `spiffe://gw502/` URIs, or an unknown role or invalid name.
pub fn identity_from_der(cert_der: &[u8]) -> Result<Identity, PkiError> {
    identity_from_uris(&uri_sans(cert_der)?)
}

/// The gw502 identity among a certificate's URI SANs: exactly one.
pub(crate) fn identity_from_uris(uris: &[String]) -> Result<Identity, PkiError> {
    let uris: Vec<&str> = uris
        .iter()
        .map(String::as_str)
        .filter(|uri| uri.starts_with(SPIFFE_PREFIX))
        .collect();
    match uris.as_slice() {
        [uri] => Identity::from_uri(uri),
        [] => Err(PkiError::NoIdentity),
        more => Err(PkiError::SeveralIdentities { count: more.len() }),
    }
}

/// Every URI subject alternative name of a DER certificate.
pub(crate) fn uri_sans(cert_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::ParseCertificate {
            reason: e.to_string(),
        })?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::ParseCertificate {
            reason: e.to_string(),
        })?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["web-1", "a", "host.example.com", "A_b-9", &"x".repeat(253)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "x\u{1b}[31m",
            &"x".repeat(254),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uri_roundtrip_and_rejects() {
        let id = Identity {
            role: Role::Agent,
            name: "web-1".into(),
        };
        assert_eq!(id.uri(), "spiffe://gw502/agent/web-1");
        assert_eq!(Identity::from_uri(&id.uri()).unwrap(), id);
        for bad in [
            "spiffe://gw502/root/x",
            "spiffe://gw502/agent/",
            "spiffe://gw502/agent/a/b",
            "spiffe://other/agent/x",
            "spiffe://gw502/agent",
        ] {
            assert!(Identity::from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_parse() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
