//! Who is calling: the gw502 identity in the client certificate.
//!
//! The TLS layer already checked that the certificate chains to the fleet CA;
//! here each RPC checks the role. Agents may only report, and only as the
//! host named in their certificate; operators may query; nobody else may do
//! either. In plaintext mode (loopback only, explicit flag) there is no
//! certificate and every caller is trusted, which is why that mode exists only
//! for local tests.

use tonic::{Request, Status};

use gw502_pki::{Identity, Role, identity_from_der};

/// The caller of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A verified certificate holder.
    Certified(Identity),
    /// A plaintext loopback caller.
    Unauthenticated,
}

/// Whether the listener runs mTLS (and so every caller must have a certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Client certificates are required.
    Mutual,
    /// Plaintext on loopback.
    Plaintext,
}

impl Mode {
    /// Identifies the caller of `request`.
    pub fn caller<T>(self, request: &Request<T>) -> Result<Caller, Status> {
        if self == Mode::Plaintext {
            return Ok(Caller::Unauthenticated);
        }
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        identity_from_der(leaf.as_ref())
            .map(Caller::Certified)
            .map_err(|e| {
                Status::unauthenticated(format!("client certificate has no gw502 identity: {e}"))
            })
    }

    /// Admits an agent reporting as `host_id`, and no one else.
    pub fn require_agent<T>(self, request: &Request<T>, host_id: &str) -> Result<(), Status> {
        match self.caller(request)? {
            Caller::Unauthenticated => Ok(()),
            Caller::Certified(Identity {
                role: Role::Agent,
                name,
            }) if name == host_id => Ok(()),
            Caller::Certified(Identity {
                role: Role::Agent,
                name,
            }) => Err(Status::permission_denied(format!(
                "certificate is for host {name:?}; it may not report as {host_id:?}"
            ))),
            Caller::Certified(identity) => Err(Status::permission_denied(format!(
                "role {} may not report; only agent certificates may",
                identity.role.as_str()
            ))),
        }
    }

    /// Admits operators (and collectors, for fleet tooling), not agents.
    pub fn require_operator<T>(self, request: &Request<T>) -> Result<(), Status> {
        match self.caller(request)? {
            Caller::Unauthenticated => Ok(()),
            Caller::Certified(Identity {
                role: Role::Operator | Role::Collector,
                ..
            }) => Ok(()),
            Caller::Certified(identity) => Err(Status::permission_denied(format!(
                "role {} may not query the collector; use an operator certificate",
                identity.role.as_str()
            ))),
        }
    }
}
