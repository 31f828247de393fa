//! Scoped operator certificates: issued with their `gw502:scope:` URIs, read
//! back strictly, accepted by a real mTLS handshake, and refused when a
//! certificate signed by the fleet CA carries a malformed or misplaced scope.

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};

use super::*;

#[test]
fn scoped_operator_certificates_carry_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let scope = Scope::parse(&["customer=acme", "env=prod"]).unwrap();
    let issued = issue_scoped(dir.path(), Role::Operator, "alice", &[], &scope).unwrap();
    let der = &certs(&issued.cert)[0];
    let peer = peer_from_der(der).unwrap();
    assert_eq!(peer.identity.uri(), "spiffe://gw502/operator/alice");
    assert_eq!(peer.scope, scope);
    assert_eq!(
        identity_from_der(der).unwrap(),
        peer.identity,
        "the identity reads the same with a scope"
    );

    let plain = issue(dir.path(), Role::Operator, "admin", &[]).unwrap();
    let peer = peer_from_der(&certs(&plain.cert)[0]).unwrap();
    assert!(peer.scope.is_unscoped());

    for role in [Role::Agent, Role::Collector] {
        let err = issue_scoped(dir.path(), role, "web-1", &[], &scope).unwrap_err();
        assert!(matches!(err, PkiError::ScopeNotAllowed { .. }), "{err}");
        assert!(!leaf_paths(dir.path(), role, "web-1").0.exists());
    }
}

/// A leaf signed by the CA in `dir` with exactly these URI SANs.
fn crafted(dir: &Path, role: Role, uris: &[&str]) -> Vec<u8> {
    let issuer = load_issuer(dir).unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let identity = Identity {
        role,
        name: "mallory".into(),
    };
    params.subject_alt_names = std::iter::once(identity.uri())
        .chain(uris.iter().map(|u| u.to_string()))
        .map(|u| SanType::URI(u.as_str().try_into().unwrap()))
        .collect();
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, &issuer).unwrap().der().to_vec()
}

#[test]
fn malformed_or_misplaced_scopes_refuse_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let ok = crafted(dir.path(), Role::Operator, &["gw502:scope:customer=acme"]);
    assert_eq!(
        peer_from_der(&ok).unwrap().scope.to_string(),
        "customer=acme"
    );
    for uris in [
        &["gw502:scope:customer"][..],
        &["gw502:scope:customer=acme", "gw502:scope:customer=globex"],
        &["gw502:admin"],
        &["gw502:scope:customer=ac%20me"],
    ] {
        let der = crafted(dir.path(), Role::Operator, uris);
        assert!(
            matches!(peer_from_der(&der), Err(PkiError::InvalidScope { .. })),
            "{uris:?}"
        );
    }
    let agent = crafted(dir.path(), Role::Agent, &["gw502:scope:customer=acme"]);
    assert!(matches!(
        peer_from_der(&agent),
        Err(PkiError::ScopeNotAllowed { role: Role::Agent })
    ));
}

#[tokio::test]
async fn scoped_operator_passes_mtls() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let server = issue(dir.path(), Role::Collector, "local", &[]).unwrap();
    let scope = Scope::parse(&["customer=acme"]).unwrap();
    let client = issue_scoped(dir.path(), Role::Operator, "alice", &[], &scope).unwrap();
    let (srv, cli) = handshake(
        server_config(dir.path(), &server),
        client_config(dir.path(), &client),
    )
    .await;
    assert_eq!(srv.unwrap().name, "alice");
    assert_eq!(cli.unwrap(), b"pong");
}
