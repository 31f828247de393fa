//! Who is calling: the gw502 identity in the client certificate.
//!
//! The TLS layer already checked that the certificate chains to the fleet CA;
//! here each RPC checks the role. Agents may only report, and only as the
//! host named in their certificate; operators may query; nobody else may do
//! either. An operator certificate may carry a tenant scope, read as strictly
//! as the role ([`gw502_pki::peer_from_der`]); a query caller is a [`Reader`]
//! with that scope, which [`crate::tenancy`] enforces. In plaintext mode
//! (loopback only, explicit flag) there is no certificate and every caller is
//! trusted and unscoped, which is why that mode exists only for local tests.
//!
//! Every refusal is logged with the caller's identity, so an operator sees
//! who tried what. The handshake checks revocation once per connection; the
//! per-RPC check against the list in force also refuses calls on a
//! connection opened before its certificate was revoked.

use std::sync::Arc;

use tonic::{Request, Status};

use gw502_pki::{Identity, Peer, Role, Scope, peer_from_der};

use crate::revocation::Revocation;

/// The caller of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A verified certificate holder, with the scope its certificate carries.
    Certified(Peer),
    /// A plaintext loopback caller.
    Unauthenticated,
}

/// A caller admitted to the `Query` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Who, for logs: `operator/alice`, `collector/b` or `plaintext`.
    pub who: String,
    /// What they may see; unscoped for collectors and plaintext callers.
    pub scope: Scope,
}

/// Whether the listener runs mTLS (and so every caller must have a certificate).
#[derive(Debug, Clone)]
pub enum Mode {
    /// Client certificates are required, checked against this revocation list.
    Mutual(Arc<Revocation>),
    /// Plaintext on loopback.
    Plaintext,
}

impl Mode {
    /// The revocation list in force (mTLS only). The SIGHUP handler reloads
    /// it with [`crate::revocation::reload_and_log`].
    pub fn revocation(&self) -> Option<&Arc<Revocation>> {
        match self {
            Mode::Mutual(revocation) => Some(revocation),
            Mode::Plaintext => None,
        }
    }

    /// Identifies the caller of `request`.
    pub fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let Mode::Mutual(revocation) = self else {
            return Ok(Caller::Unauthenticated);
        };
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let peer = peer_from_der(leaf.as_ref()).map_err(|e| {
            tracing::warn!(error = %e, "refused a certificate without a valid gw502 identity");
            Status::unauthenticated(format!("client certificate refused: {e}"))
        })?;
        if revocation.is_revoked(leaf.as_ref()) {
            let identity = &peer.identity;
            tracing::warn!(%identity, "refused a call on a connection whose certificate was revoked");
            return Err(Status::unauthenticated(format!(
                "certificate of {identity} is revoked"
            )));
        }
        Ok(Caller::Certified(peer))
    }

    /// Admits an agent reporting as `host_id`, and no one else.
    pub fn require_agent<T>(&self, request: &Request<T>, host_id: &str) -> Result<(), Status> {
        match self.caller(request)? {
            Caller::Unauthenticated => Ok(()),
            Caller::Certified(Peer {
                identity:
                    Identity {
                        role: Role::Agent,
                        name,
                    },
                ..
            }) if name == host_id => Ok(()),
            Caller::Certified(Peer {
                identity:
                    Identity {
                        role: Role::Agent,
                        name,
                    },
                ..
            }) => {
                tracing::warn!(certificate = %name, claimed = %host_id.escape_debug(), "refused a report for another host");
                Err(Status::permission_denied(format!(
                    "certificate is for host {name:?}; it may not report as {host_id:?}"
                )))
            }
            Caller::Certified(Peer { identity, .. }) => {
                tracing::warn!(%identity, "refused a report from a certificate that is not an agent's");
                Err(Status::permission_denied(format!(
                    "role {} may not report; only agent certificates may",
                    identity.role.as_str()
                )))
            }
        }
    }

    /// Admits operators (and collectors, for fleet tooling), not agents,
    /// with the scope their certificate carries.
    pub fn require_operator<T>(&self, request: &Request<T>) -> Result<Reader, Status> {
        match self.caller(request)? {
            Caller::Unauthenticated => Ok(Reader {
                who: "plaintext".into(),
                scope: Scope::default(),
            }),
            Caller::Certified(Peer {
                identity:
                    identity @ Identity {
                        role: Role::Operator | Role::Collector,
                        ..
                    },
                scope,
            }) => Ok(Reader {
                who: identity.to_string(),
                scope,
            }),
            Caller::Certified(Peer { identity, .. }) => {
                tracing::warn!(%identity, "refused a query from a certificate that is not an operator's");
                Err(Status::permission_denied(format!(
                    "role {} may not query the collector; use an operator certificate",
                    identity.role.as_str()
                )))
            }
        }
    }
}
