//! The tenant scope of an operator certificate: label pairs such as
//! `customer=acme`, each carried as one URI SAN `gw502:scope:customer=acme`.
//!
//! The collector shows a scoped operator only the sites, hosts and incidents
//! whose labels hold every pair of the scope; a certificate without scope
//! URIs is unscoped and sees everything. Because a scope narrows what its
//! holder sees, reading it is as strict as reading the role: any URI whose
//! scheme is `gw502` must be a well-formed scope pair, a key may appear only
//! once, and only operator certificates may carry a scope. A certificate
//! that breaks a rule is refused as a whole, never read as unscoped.

use std::collections::BTreeMap;
use std::fmt;

use super::{Identity, PkiError, Role, identity};

/// The URI prefix of every scope pair in a certificate.
pub const SCOPE_URI_PREFIX: &str = "gw502:scope:";

/// Longest label key.
pub const MAX_LABEL_KEY_LEN: usize = 63;

/// Label pairs that every visible site or host must carry; empty means unscoped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pairs: BTreeMap<String, String>,
}

impl Scope {
    /// The scope of `key=value` pairs (command-line form); a key may appear once.
    pub fn parse<S: AsRef<str>>(pairs: &[S]) -> Result<Scope, PkiError> {
        let mut scope = Scope::default();
        for text in pairs {
            let (key, value) = parse_pair(text.as_ref())?;
            scope.insert(key, value, text.as_ref())?;
        }
        Ok(scope)
    }

    /// The scope carried by a certificate's URI SANs. URIs of other schemes
    /// are ignored; every `gw502:` URI other than the identity must be a scope pair.
    pub fn from_uris<S: AsRef<str>>(uris: &[S]) -> Result<Scope, PkiError> {
        let mut scope = Scope::default();
        for uri in uris {
            let uri = uri.as_ref();
            let scheme = uri.split_once(':').map_or("", |(scheme, _)| scheme);
            if !scheme.eq_ignore_ascii_case("gw502") {
                continue;
            }
            let pair = uri
                .strip_prefix(SCOPE_URI_PREFIX)
                .ok_or_else(|| invalid(uri, "a gw502: URI must be gw502:scope:KEY=VALUE"))?;
            let (key, value) = parse_pair(pair).map_err(|_| invalid(uri, "malformed scope"))?;
            scope.insert(key, value, uri)?;
        }
        Ok(scope)
    }

    /// True when the scope restricts nothing.
    pub fn is_unscoped(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, by key.
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.pairs
    }

    /// True when `labels` carry every pair of the scope.
    pub fn admits(&self, labels: &BTreeMap<String, String>) -> bool {
        self.pairs.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The URI SANs that carry this scope, one per pair.
    pub fn uris(&self) -> Vec<String> {
        self.pairs
            .iter()
            .map(|(k, v)| format!("{SCOPE_URI_PREFIX}{k}={v}"))
            .collect()
    }

    fn insert(&mut self, key: String, value: String, source: &str) -> Result<(), PkiError> {
        if self.pairs.contains_key(&key) {
            return Err(invalid(source, "the key is given more than once"));
        }
        self.pairs.insert(key, value);
        Ok(())
    }
}

impl fmt::Display for Scope {
    /// `customer=acme,env=prod`, or `unscoped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unscoped() {
            return f.write_str("unscoped");
        }
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Splits and checks one `key=value` pair: the key is 1 to 63 characters of
/// `[a-z0-9._-]` starting with a letter or digit, the value a fleet name
/// (`[A-Za-z0-9._-]`, at most 253 characters).
pub fn parse_pair(text: &str) -> Result<(String, String), PkiError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| invalid(text, "expected KEY=VALUE"))?;
    check_label_key(key).map_err(|reason| invalid(text, reason))?;
    gw502_vocab::name::check_name(value).map_err(|reason| invalid(text, reason))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// Checks a label key as used in scopes.
pub fn check_label_key(key: &str) -> Result<(), &'static str> {
    let mut bytes = key.bytes();
    match bytes.next() {
        None => Err("empty label key"),
        Some(_) if key.len() > MAX_LABEL_KEY_LEN => Err("label key longer than 63 characters"),
        Some(first) if !(first.is_ascii_lowercase() || first.is_ascii_digit()) => {
            Err("a label key starts with a-z or 0-9")
        }
        Some(_)
            if !bytes.all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            }) =>
        {
            Err("a label key holds only a-z, 0-9, '.', '_' and '-'")
        }
        Some(_) => Ok(()),
    }
}

/// Who a certificate belongs to and what it may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Role and name.
    pub identity: Identity,
    /// The tenant scope; unscoped for every non-operator.
    pub scope: Scope,
}

/// Reads identity and scope of a DER certificate, strictly: the identity
/// as [`crate::identity_from_der`] does, every `gw502:` URI a valid scope
/// pair, and a scope only on an operator certificate.
pub fn peer_from_der(cert_der: &[u8]) -> Result<Peer, PkiError> {
    let uris = identity::uri_sans(cert_der)?;
    let identity = identity::identity_from_uris(&uris)?;
    let scope = Scope::from_uris(&uris)?;
    check_scope_role(identity.role, &scope)?;
    Ok(Peer { identity, scope })
}

/// Only operator certificates may carry a scope.
pub(crate) fn check_scope_role(role: Role, scope: &Scope) -> Result<(), PkiError> {
    if role != Role::Operator && !scope.is_unscoped() {
        return Err(PkiError::ScopeNotAllowed { role });
    }
    Ok(())
}

fn invalid(scope: &str, reason: &'static str) -> PkiError {
    PkiError::InvalidScope {
        scope: scope.escape_debug().to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pairs_parse_and_round_trip_through_uris() {
        let scope = Scope::parse(&["customer=acme", "env=prod"]).unwrap();
        assert_eq!(scope.to_string(), "customer=acme,env=prod");
        assert_eq!(
            scope.uris(),
            ["gw502:scope:customer=acme", "gw502:scope:env=prod"]
        );
        assert_eq!(Scope::from_uris(&scope.uris()).unwrap(), scope);
        assert_eq!(Scope::default().to_string(), "unscoped");
    }

    #[test]
    fn malformed_pairs_are_refused() {
        for bad in [
            "customer",
            "=acme",
            "customer=",
            "Customer=acme",
            "-x=acme",
            "customer=ac me",
            "customer=acme/x",
            "customer=a=b",
            "customer=..",
            &format!("{}=x", "k".repeat(64)),
        ] {
            assert!(Scope::parse(&[bad]).is_err(), "{bad:?}");
        }
        let twice = Scope::parse(&["customer=acme", "customer=globex"]).unwrap_err();
        assert!(twice.to_string().contains("more than once"), "{twice}");
    }

    #[test]
    fn certificate_uris_are_read_strictly() {
        let ok = Scope::from_uris(&[
            "spiffe://gw502/operator/alice",
            "https://example.net/",
            "gw502:scope:customer=acme",
        ])
        .unwrap();
        assert_eq!(ok.to_string(), "customer=acme");
        for bad in [
            &["gw502:scope:customer"][..],
            &["gw502:scopes:customer=acme"],
            &["GW502:Scope:customer=acme"],
            &["gw502:role:admin"],
            &["gw502:scope:customer=acme", "gw502:scope:customer=globex"],
            &["gw502:scope:customer=acme", "gw502:scope:customer=acme"],
        ] {
            assert!(Scope::from_uris(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn admits_needs_every_pair() {
        let scope = Scope::parse(&["customer=acme", "env=prod"]).unwrap();
        assert!(scope.admits(&labels(&[
            ("customer", "acme"),
            ("env", "prod"),
            ("x", "y")
        ])));
        assert!(!scope.admits(&labels(&[("customer", "acme")])));
        assert!(!scope.admits(&labels(&[("customer", "globex"), ("env", "prod")])));
        assert!(!scope.admits(&labels(&[])));
        assert!(Scope::default().admits(&labels(&[])));
    }

    #[test]
    fn only_operators_carry_a_scope() {
        let scope = Scope::parse(&["customer=acme"]).unwrap();
        assert!(check_scope_role(Role::Operator, &scope).is_ok());
        for role in [Role::Agent, Role::Collector] {
            assert!(check_scope_role(role, &scope).is_err());
            assert!(check_scope_role(role, &Scope::default()).is_ok());
        }
    }
}
