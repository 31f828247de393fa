//! Tests of the PKI: issuing, identities, file modes and real mTLS handshakes
//! over loopback TCP with tokio-rustls and the rustls webpki verifiers.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = load_pem(path).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap()
}

pub(crate) fn key(path: &Path) -> PrivateKeyDer<'static> {
    let pem = load_pem(path).unwrap();
    rustls_pemfile::private_key(&mut pem.as_slice())
        .unwrap()
        .unwrap()
}

pub(crate) fn roots(dir: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs(&dir.join("ca.crt")) {
        roots.add(c).unwrap();
    }
    Arc::new(roots)
}

fn server_config(ca_dir: &Path, leaf: &IssuedPaths) -> Arc<ServerConfig> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_dir), provider())
        .build()
        .unwrap();
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs(&leaf.cert), key(&leaf.key))
            .unwrap(),
    )
}

pub(crate) fn client_config(ca_dir: &Path, leaf: &IssuedPaths) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(ca_dir))
            .with_client_auth_cert(certs(&leaf.cert), key(&leaf.key))
            .unwrap(),
    )
}

/// Runs one exchange; returns (server result with the peer identity, client result).
pub(crate) async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (Result<Identity, String>, Result<Vec<u8>, String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let peer = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        identity_from_der(&peer).map_err(|e| e.to_string())
    });
    let client_result = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        Ok(out)
    }
    .await;
    (server_task.await.unwrap(), client_result)
}

#[test]
fn init_issue_roundtrip_and_identities() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init(dir.path()).unwrap();
    assert_eq!(ca.cert, dir.path().join("ca.crt"));
    let ca_der = &certs(&ca.cert)[0];
    let (_, parsed) = x509_parser::parse_x509_certificate(ca_der).unwrap();
    assert!(parsed.is_ca());
    assert!(parsed.subject().to_string().contains(CA_COMMON_NAME));
    let years = (parsed.validity().not_after.timestamp()
        - parsed.validity().not_before.timestamp())
        / (365 * 86_400);
    assert_eq!(years, 10);
    assert!(matches!(
        identity_from_der(ca_der),
        Err(PkiError::NoIdentity)
    ));

    for role in Role::ALL {
        let issued = issue(dir.path(), role, "web-1", &[]).unwrap();
        assert_eq!(
            issued.cert,
            dir.path().join(role.dir_name()).join("web-1.crt")
        );
        let der = &certs(&issued.cert)[0];
        let id = identity_from_der(der).unwrap();
        assert_eq!(
            id,
            Identity {
                role,
                name: "web-1".into()
            }
        );
        let (_, leaf) = x509_parser::parse_x509_certificate(der).unwrap();
        assert!(!leaf.is_ca());
        assert!(leaf.subject().to_string().contains("CN=web-1"));
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert_eq!(eku.server_auth, role == Role::Collector);
        let days = (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 365);
    }
}

#[test]
fn collector_sans_default_and_explicit() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let names = |issued: &IssuedPaths| {
        let der = certs(&issued.cert).remove(0);
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = c.subject_alternative_name().unwrap().unwrap().value.clone();
        san.general_names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let default = issue(dir.path(), Role::Collector, "local", &[]).unwrap();
    let s = names(&default);
    assert!(
        s.contains("DNSName(localhost)") && s.contains("IPAddress(7f:00:00:01)"),
        "{s}"
    );
    let explicit = issue(
        dir.path(),
        Role::Collector,
        "c2",
        &["collector.example".into(), "10.77.0.1".into()],
    )
    .unwrap();
    let s = names(&explicit);
    assert!(
        s.contains("collector.example") && s.contains("IPAddress(0a:4d:00:01)"),
        "{s}"
    );
    assert!(!s.contains("localhost"), "{s}");
    assert!(issue(dir.path(), Role::Collector, "c3", &["bad name".into()]).is_err());
}

#[test]
fn refuses_to_overwrite_ca_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let err = init(dir.path()).unwrap_err();
    assert!(matches!(err, PkiError::CaExists { .. }));
    assert!(err.to_string().contains("ca.crt"), "{err}");
    init_with(dir.path(), true).unwrap();
    assert!(matches!(
        issue(dir.path(), Role::Agent, "../evil", &[]),
        Err(PkiError::InvalidName { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    let err = issue(empty.path(), Role::Agent, "a", &[]).unwrap_err();
    assert!(err.to_string().contains("ca.key"), "{err}");
}

#[test]
fn keys_are_0600_and_ensure_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let host = local_hostname();
    let keys = [
        dir.path().join("ca.key"),
        dir.path().join("collectors/local.key"),
        dir.path().join("operators/admin.key"),
        dir.path().join(format!("agents/{host}.key")),
    ];
    for k in &keys {
        let mode = std::fs::metadata(k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", k.display());
    }
    let before = std::fs::read(&keys[1]).unwrap();
    ensure(dir.path(), &[]).unwrap();
    assert_eq!(std::fs::read(&keys[1]).unwrap(), before);
}

#[test]
fn load_pem_rejects_non_pem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.crt");
    std::fs::write(&p, b"garbage").unwrap();
    assert!(load_pem(&p).unwrap_err().to_string().contains("x.crt"));
    assert!(load_pem(dir.path().join("missing")).is_err());
}

#[tokio::test]
async fn mtls_handshake_collector_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let server = issue(dir.path(), Role::Collector, "local", &[]).unwrap();
    let client = issue(dir.path(), Role::Agent, "web-1", &[]).unwrap();
    let (srv, cli) = handshake(
        server_config(dir.path(), &server),
        client_config(dir.path(), &client),
    )
    .await;
    assert_eq!(
        srv.unwrap(),
        Identity {
            role: Role::Agent,
            name: "web-1".into()
        }
    );
    assert_eq!(cli.unwrap(), b"pong");
}

#[tokio::test]
async fn client_from_another_ca_is_rejected() {
    let fleet = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    init(fleet.path()).unwrap();
    init(other.path()).unwrap();
    let server = issue(fleet.path(), Role::Collector, "local", &[]).unwrap();
    let intruder = issue(other.path(), Role::Agent, "web-1", &[]).unwrap();
    // The client trusts the fleet CA (so the server is fine) but presents a
    // certificate from the other CA.
    let client_cfg = Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(fleet.path()))
            .with_client_auth_cert(certs(&intruder.cert), key(&intruder.key))
            .unwrap(),
    );
    let (srv, cli) = handshake(server_config(fleet.path(), &server), client_cfg).await;
    // Same CA name, other key: webpki finds the issuer by name and the
    // signature check fails; an unrelated name gives UnknownIssuer.
    let err = srv.unwrap_err();
    assert!(
        err.contains("BadSignature") || err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(cli.is_err());
}

#[tokio::test]
async fn agent_certificate_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let agent_as_server = issue(dir.path(), Role::Agent, "web-1", &[]).unwrap();
    let client = issue(dir.path(), Role::Operator, "admin", &[]).unwrap();
    let (_, cli) = handshake(
        server_config(dir.path(), &agent_as_server),
        client_config(dir.path(), &client),
    )
    .await;
    let err = cli.unwrap_err();
    assert!(
        err.contains("extended key usage for server authentication"),
        "{err}"
    );
}

mod scope;
