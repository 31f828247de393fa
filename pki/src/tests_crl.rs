//! Tests of revocation: the CRL that `revoke` writes lists what it should,
//! survives re-reading, and makes rustls' webpki client verifier refuse the
//! revoked certificate (and only it) in a real handshake.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::CertificateRevocationListDer;
use rustls::server::WebPkiClientVerifier;

use super::crl::{self, RevokeReason, Serial};
use super::inventory;
use super::tests::{certs, client_config, handshake, key, provider, roots};
use super::*;

fn server_with_crl(dir: &Path, leaf: &IssuedPaths) -> Arc<ServerConfig> {
    let crl = crl::read_crl(dir).unwrap().expect("a crl");
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(dir), provider())
        .with_crls([CertificateRevocationListDer::from(crl.der)])
        .only_check_end_entity_revocation()
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

#[test]
fn serials_parse_in_every_spelling() {
    let a: Serial = "3f:a2:00".parse().unwrap();
    let b: Serial = "0x003fa200".parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "3fa200");
    assert_eq!(Serial::from_bytes(&[0, 0]).to_string(), "00");
    for bad in ["", "xyz", "12 34", &"a".repeat(81)] {
        assert!(
            matches!(bad.parse::<Serial>(), Err(PkiError::InvalidSerial { .. })),
            "{bad}"
        );
    }
}

#[test]
fn revoke_by_name_lists_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    issue(dir.path(), Role::Agent, "web-1", &[]).unwrap();
    issue(dir.path(), Role::Agent, "web-2", &[]).unwrap();
    issue(dir.path(), Role::Operator, "web-2", &[]).unwrap();
    assert!(crl::read_crl(dir.path()).unwrap().is_none());

    let (id, first) =
        inventory::revoke_name(dir.path(), "web-1", RevokeReason::KeyCompromise).unwrap();
    assert_eq!(id.to_string(), "agent/web-1");
    assert!(!first.already);
    assert_eq!(first.number, 1);
    assert_eq!(first.crl, dir.path().join("crl.pem"));
    let (_, again) =
        inventory::revoke_name(dir.path(), "agent/web-1", RevokeReason::Superseded).unwrap();
    assert!(again.already);
    assert_eq!(again.number, 1);

    assert!(matches!(
        inventory::revoke_name(dir.path(), "web-2", RevokeReason::Unspecified),
        Err(PkiError::AmbiguousName { .. })
    ));
    assert!(matches!(
        inventory::revoke_name(dir.path(), "web-9", RevokeReason::Unspecified),
        Err(PkiError::NotIssued { .. })
    ));
    let stray: Serial = "0badc0de".parse().unwrap();
    let by_serial = crl::revoke_serial(dir.path(), &stray, RevokeReason::Unspecified).unwrap();
    assert_eq!(by_serial.number, 2);

    let listed = inventory::list(dir.path()).unwrap();
    let names: Vec<String> = listed
        .issued
        .iter()
        .map(|i| i.identity.to_string())
        .collect();
    assert_eq!(names, ["agent/web-1", "agent/web-2", "operator/web-2"]);
    let web1 = &listed.issued[0].revoked.as_ref().expect("web-1 revoked");
    assert_eq!(web1.reason, Some(RevokeReason::KeyCompromise));
    assert!(listed.issued[1].revoked.is_none());
    assert_eq!(listed.revoked_elsewhere.len(), 1);
    assert_eq!(listed.revoked_elsewhere[0].serial, stray);
}

#[test]
fn a_crl_from_another_file_is_refused_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init(dir.path()).unwrap();
    let err = crl::parse_crl_pem(&ca.cert, &std::fs::read(&ca.cert).unwrap()).unwrap_err();
    assert!(err.to_string().contains("not an X509 CRL"), "{err}");
}

#[tokio::test]
async fn a_revoked_client_is_refused_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let collector = issue(dir.path(), Role::Collector, "main", &[]).unwrap();
    let bad = issue(dir.path(), Role::Agent, "web-1", &[]).unwrap();
    let good = issue(dir.path(), Role::Agent, "web-2", &[]).unwrap();
    inventory::revoke_name(dir.path(), "web-1", RevokeReason::KeyCompromise).unwrap();
    let server = server_with_crl(dir.path(), &collector);

    let (served, client) = handshake(server.clone(), client_config(dir.path(), &bad)).await;
    let served = served.unwrap_err();
    assert!(served.to_lowercase().contains("revoked"), "{served}");
    assert!(client.is_err());

    let (served, client) = handshake(server, client_config(dir.path(), &good)).await;
    assert_eq!(served.unwrap().name, "web-2");
    assert_eq!(client.unwrap(), b"pong");
}
