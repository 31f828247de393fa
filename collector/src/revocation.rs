//! The fleet CA's revocation list, loaded into the client-certificate
//! verifier and reloaded without a restart.
//!
//! tonic serves one rustls `ServerConfig` for the life of the listener, so
//! the verifier it holds ([`ReloadingVerifier`]) delegates every check to an
//! inner webpki verifier kept behind an `RwLock<Arc<..>>`; a reload builds a
//! new inner verifier and swaps it in, and the next handshake uses it. A
//! candidate list is first tried on this collector's own certificate (signed
//! by the same CA): a list that is unreadable, from another CA, or whose
//! signature does not verify is refused with the reason logged, and the
//! previous list stays in force. The file is polled (mtime, size, inode) by
//! [`watch`]; [`Revocation::reload`] is the hook for SIGHUP.
//!
//! A TLS handshake happens once per connection, so a connection opened
//! before a revocation would outlive it; [`Revocation::is_revoked`] lets the
//! auth layer refuse every RPC on such a connection as well.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use gw502_pki::Serial;
use gw502_pki::crl::{Crl, parse_crl_pem, serial_of};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// How often [`watch`] looks at the CRL file.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why a revocation list was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] gw502_pki::PkiError),
    /// The CA or collector certificate is unusable.
    #[error("{0}")]
    Material(String),
    /// rustls refused the list, or the list failed the check against this
    /// collector's own certificate (another CA, a bad signature).
    #[error("{path}: {reason}")]
    Refused {
        /// The CRL file.
        path: PathBuf,
        /// rustls' words.
        reason: String,
    },
}

/// What a reload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The file is as last loaded (or still absent).
    Unchanged,
    /// A new list is in force.
    Loaded {
        /// Its CRL number.
        number: u64,
        /// How many serials it revokes.
        revoked: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    revoked: HashSet<Serial>,
    stamp: Option<FileStamp>,
}

/// The CA, the CRL file and the verifier currently in force.
pub struct Revocation {
    roots: Arc<RootCertStore>,
    own_cert: CertificateDer<'static>,
    path: PathBuf,
    hints: Vec<DistinguishedName>,
    current: RwLock<Arc<Loaded>>,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Revocation {
    /// Loads the CA (`ca_pem`), this collector's certificate (`own_cert_pem`,
    /// to test candidate lists on) and the CRL at `path` when it exists. A
    /// list present but bad at start is an error: starting without it would
    /// let revoked certificates in.
    pub fn load(ca_pem: &[u8], own_cert_pem: &[u8], path: PathBuf) -> Result<Self, CrlError> {
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &*ca_pem) {
            let cert = cert.map_err(|e| CrlError::Material(format!("ca certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CrlError::Material(format!("ca certificate: {e}")))?;
        }
        let own_cert = rustls_pemfile::certs(&mut &*own_cert_pem)
            .next()
            .ok_or_else(|| CrlError::Material("collector certificate: no PEM block".into()))?
            .map_err(|e| CrlError::Material(format!("collector certificate: {e}")))?;
        let roots = Arc::new(roots);
        let plain = build(&roots, None).map_err(|reason| CrlError::Refused {
            path: path.clone(),
            reason,
        })?;
        let hints = plain.root_hint_subjects().to_vec();
        let revocation = Revocation {
            roots,
            own_cert,
            path,
            hints,
            current: RwLock::new(Arc::new(Loaded {
                verifier: plain,
                revoked: HashSet::new(),
                stamp: None,
            })),
        };
        revocation.reload_if_changed()?;
        Ok(revocation)
    }

    /// The CRL file this collector watches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the CRL file now (the SIGHUP hook). On error the previous
    /// list stays in force.
    pub fn reload(&self) -> Result<Reloaded, CrlError> {
        let stamp = stamp(&self.path);
        self.load_file(stamp)
    }

    /// Re-reads the CRL file when its mtime, size or inode changed.
    pub fn reload_if_changed(&self) -> Result<Reloaded, CrlError> {
        let stamp = stamp(&self.path);
        if stamp == self.loaded().stamp {
            return Ok(Reloaded::Unchanged);
        }
        self.load_file(stamp)
    }

    /// True when `cert_der`'s serial is on the list in force.
    pub fn is_revoked(&self, cert_der: &[u8]) -> bool {
        let revoked = &self.loaded().revoked;
        !revoked.is_empty() && serial_of(cert_der).is_ok_and(|s| revoked.contains(&s))
    }

    fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn load_file(&self, stamp: Option<FileStamp>) -> Result<Reloaded, CrlError> {
        let Some(stamp) = stamp else {
            // No file: nothing was ever revoked, or it was removed. Removing
            // the list must not un-revoke anyone, so keep what is loaded.
            if !self.loaded().revoked.is_empty() {
                tracing::warn!(path = %self.path.display(), "revocation list file is gone, keeping the loaded list");
            }
            return Ok(Reloaded::Unchanged);
        };
        let pem = std::fs::read(&self.path).map_err(|source| gw502_pki::PkiError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        })?;
        let crl: Crl = parse_crl_pem(&self.path, &pem)?;
        let refused = |reason: String| CrlError::Refused {
            path: self.path.clone(),
            reason,
        };
        let verifier = build(&self.roots, Some(crl.der.clone())).map_err(refused)?;
        match verifier.verify_client_cert(&self.own_cert, &[], UnixTime::now()) {
            Ok(_) => {}
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)) => {
                tracing::warn!(path = %self.path.display(), "the revocation list revokes this collector's own certificate");
            }
            Err(e) => {
                return Err(refused(format!(
                    "does not verify against the fleet CA: {e}"
                )));
            }
        }
        let revoked: HashSet<Serial> = crl.revoked.iter().map(|r| r.serial.clone()).collect();
        let count = revoked.len();
        let next = Arc::new(Loaded {
            verifier,
            revoked,
            stamp: Some(stamp),
        });
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(Reloaded::Loaded {
            number: crl.number,
            revoked: count,
        })
    }
}

/// Polls the CRL file every `every` and swaps in a changed list, logging
/// what was loaded or why a list was refused.
pub async fn watch(revocation: Arc<Revocation>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        log_reload(&revocation, revocation.reload_if_changed());
    }
}

/// Re-reads the CRL file now and logs the outcome: the hook a SIGHUP
/// handler calls (`if let Some(r) = hub.mode.revocation() { reload_and_log(r) }`).
pub fn reload_and_log(revocation: &Revocation) -> Result<Reloaded, String> {
    let outcome = revocation.reload();
    let result = match &outcome {
        Ok(reloaded) => Ok(reloaded.clone()),
        Err(error) => Err(error.to_string()),
    };
    log_reload(revocation, outcome);
    result
}

/// Logs the outcome of a reload (shared by the watcher and the SIGHUP hook).
pub fn log_reload(revocation: &Revocation, outcome: Result<Reloaded, CrlError>) {
    let path = revocation.path().display();
    match outcome {
        Ok(Reloaded::Unchanged) => {}
        Ok(Reloaded::Loaded { number, revoked }) => {
            tracing::info!(path = %path, crl_number = number, revoked, "revocation list loaded");
        }
        Err(error) => {
            tracing::error!(path = %path, %error, "revocation list refused, keeping the previous one");
        }
    }
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok()?,
        len: meta.len(),
        inode: meta.ino(),
    })
}

fn build(
    roots: &Arc<RootCertStore>,
    crl: Option<Vec<u8>>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider);
    if let Some(der) = crl {
        builder = builder
            .with_crls([CertificateRevocationListDer::from(der)])
            .only_check_end_entity_revocation();
    }
    builder.build().map_err(|e| e.to_string())
}

/// The verifier handed to rustls: every call goes to the list in force.
#[derive(Debug)]
pub struct ReloadingVerifier(pub Arc<Revocation>);

impl ClientCertVerifier for ReloadingVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.0.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .loaded()
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .loaded()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .loaded()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.loaded().verifier.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_pki::{RevokeReason, Role, inventory};

    fn der(path: &Path) -> Vec<u8> {
        let pem = std::fs::read(path).unwrap();
        rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn lists_swap_in_and_bad_ones_keep_the_previous() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path();
        gw502_pki::init(pki).unwrap();
        let collector = gw502_pki::issue(pki, Role::Collector, "c", &[]).unwrap();
        let agent = gw502_pki::issue(pki, Role::Agent, "web-1", &[]).unwrap();
        let crl = gw502_pki::crl_path(pki);
        let revocation = Revocation::load(
            &std::fs::read(pki.join("ca.crt")).unwrap(),
            &std::fs::read(&collector.cert).unwrap(),
            crl.clone(),
        )
        .unwrap();
        assert!(!revocation.is_revoked(&der(&agent.cert)));
        assert_eq!(revocation.reload_if_changed().unwrap(), Reloaded::Unchanged);

        inventory::revoke_name(pki, "web-1", RevokeReason::KeyCompromise).unwrap();
        assert_eq!(
            revocation.reload_if_changed().unwrap(),
            Reloaded::Loaded {
                number: 1,
                revoked: 1
            }
        );
        assert!(revocation.is_revoked(&der(&agent.cert)));
        assert!(!revocation.is_revoked(&der(&collector.cert)));
        assert_eq!(revocation.reload_if_changed().unwrap(), Reloaded::Unchanged);

        // A CRL signed by another CA (same name, other key) is refused.
        let other = tempfile::tempdir().unwrap();
        gw502_pki::init(other.path()).unwrap();
        let serial: Serial = "0badc0de".parse().unwrap();
        gw502_pki::crl::revoke_serial(other.path(), &serial, RevokeReason::Unspecified).unwrap();
        std::fs::copy(gw502_pki::crl_path(other.path()), &crl).unwrap();
        let err = revocation.reload().unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(
            revocation.is_revoked(&der(&agent.cert)),
            "previous list kept"
        );

        // Garbage is refused; removing the file keeps the list too.
        std::fs::write(&crl, "junk").unwrap();
        assert!(revocation.reload().is_err());
        std::fs::remove_file(&crl).unwrap();
        assert_eq!(revocation.reload().unwrap(), Reloaded::Unchanged);
        assert!(revocation.is_revoked(&der(&agent.cert)));
    }

    #[test]
    fn a_bad_list_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path();
        gw502_pki::init(pki).unwrap();
        let collector = gw502_pki::issue(pki, Role::Collector, "c", &[]).unwrap();
        std::fs::write(gw502_pki::crl_path(pki), "junk").unwrap();
        let started = Revocation::load(
            &std::fs::read(pki.join("ca.crt")).unwrap(),
            &std::fs::read(&collector.cert).unwrap(),
            gw502_pki::crl_path(pki),
        );
        assert!(started.is_err());
    }
}
