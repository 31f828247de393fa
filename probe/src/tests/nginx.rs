//! HTTPS and plain-to-TLS probes against a real nginx with certificates made
//! in the test.

use crate::testing::{closed_port, nginx, pki};
use crate::{Endpoint, Outcome, ProbeRequest, Protocol, TlsPolicy, probe};

fn request(port: u16, protocol: Protocol, name: &str, policy: TlsPolicy) -> ProbeRequest {
    let mut r = ProbeRequest::new(
        Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        protocol,
    );
    r.host_header = "site.test".into();
    r.tls_name = Some(name.into());
    r.tls = policy;
    r
}

#[tokio::test]
async fn tls_outcomes_against_real_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let good = pki(&["site.test"], false);
    let old = pki(&["site.test"], true);
    for (name, p) in [("good", &good), ("old", &old)] {
        std::fs::write(dir.path().join(format!("{name}.crt")), &p.cert_pem).unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), &p.key_pem).unwrap();
    }
    let (tls_port, old_port, plain_port) = (closed_port(), closed_port(), closed_port());
    let d = dir.path().display();
    let servers = format!(
        "server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {d}/good.crt; ssl_certificate_key {d}/good.key; location / {{ return 200 'tls ok'; }} }}\n\
         server {{ listen 127.0.0.1:{old_port} ssl; ssl_certificate {d}/old.crt; ssl_certificate_key {d}/old.key; location / {{ return 200 'old'; }} }}\n\
         server {{ listen 127.0.0.1:{plain_port}; location / {{ return 200 'plain'; }} }}\n"
    );
    let _nginx = nginx(dir.path(), &servers, &[tls_port, old_port, plain_port]);
    let trusted = TlsPolicy {
        verify: true,
        extra_roots: vec![good.ca_der.clone(), old.ca_der.clone()],
    };

    let ok = probe(&request(
        tls_port,
        Protocol::Https,
        "site.test",
        trusted.clone(),
    ))
    .await;
    assert_eq!(
        (ok.outcome, ok.status, ok.detail.as_str()),
        (Outcome::Ok, 200, ""),
        "{ok:?}"
    );

    let untrusted = probe(&request(
        tls_port,
        Protocol::Https,
        "site.test",
        TlsPolicy::default(),
    ))
    .await;
    assert_eq!(
        (untrusted.outcome, untrusted.status),
        (Outcome::TlsError, 200),
        "{untrusted:?}"
    );
    assert!(
        untrusted.detail.starts_with("certificate_untrusted:"),
        "{untrusted:?}"
    );

    let lenient = TlsPolicy {
        verify: false,
        ..TlsPolicy::default()
    };
    let relaxed = probe(&request(tls_port, Protocol::Https, "site.test", lenient)).await;
    assert_eq!(
        (relaxed.outcome, relaxed.status),
        (Outcome::Ok, 200),
        "{relaxed:?}"
    );
    assert!(
        relaxed.detail.starts_with("certificate_untrusted:"),
        "{relaxed:?}"
    );

    let wrong = probe(&request(
        tls_port,
        Protocol::Https,
        "other.test",
        trusted.clone(),
    ))
    .await;
    assert_eq!(wrong.outcome, Outcome::TlsError);
    assert!(
        wrong.detail.starts_with("certificate_name_mismatch:"),
        "{wrong:?}"
    );

    let expired = probe(&request(
        old_port,
        Protocol::Https,
        "site.test",
        trusted.clone(),
    ))
    .await;
    assert_eq!(expired.outcome, Outcome::TlsError);
    assert!(
        expired.detail.starts_with("certificate_expired:"),
        "{expired:?}"
    );

    let plain_to_tls = probe(&request(
        tls_port,
        Protocol::Http,
        "site.test",
        trusted.clone(),
    ))
    .await;
    assert_eq!(
        plain_to_tls.outcome,
        Outcome::ProtocolMismatch,
        "{plain_to_tls:?}"
    );
    assert!(
        plain_to_tls.detail.starts_with("tls_peer:"),
        "{plain_to_tls:?}"
    );

    let tls_to_plain = probe(&request(
        plain_port,
        Protocol::Https,
        "site.test",
        trusted.clone(),
    ))
    .await;
    assert_eq!(tls_to_plain.outcome, Outcome::TlsError, "{tls_to_plain:?}");
    assert!(
        tls_to_plain
            .detail
            .starts_with("plaintext_peer: HTTP/1.1 400"),
        "{tls_to_plain:?}"
    );

    let fcgi_to_http = probe(&request(
        plain_port,
        Protocol::FastCgi,
        "site.test",
        trusted,
    ))
    .await;
    assert_eq!(
        fcgi_to_http.outcome,
        Outcome::ProtocolMismatch,
        "{fcgi_to_http:?}"
    );
    assert!(
        fcgi_to_http
            .detail
            .starts_with("http_peer: unsupported FastCGI protocol version: 72"),
        "{fcgi_to_http:?}"
    );
}

/// A TLS server of Python's `ssl` module (OpenSSL, as app servers such as gunicorn run
/// it): it answers no plain request with a 400, it drops the connection.
const PYTHON_TLS: &str = r"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.socket()
s.bind(('127.0.0.1', int(sys.argv[3])))
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(4096)
        t.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
        t.close()
    except (ssl.SSLError, OSError):
        c.close()
";

#[tokio::test]
async fn plain_http_to_a_tls_listener_that_drops_it_is_a_tls_peer() {
    let dir = tempfile::tempdir().unwrap();
    let tls = pki(&["site.test"], false);
    let (cert, key) = (dir.path().join("app.crt"), dir.path().join("app.key"));
    std::fs::write(&cert, &tls.cert_pem).unwrap();
    std::fs::write(&key, &tls.key_pem).unwrap();
    let port = closed_port();
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(PYTHON_TLS)
        .arg(&cert)
        .arg(&key)
        .arg(port.to_string())
        .spawn()
        .unwrap();
    let _running = crate::testing::Running { child };
    crate::testing::wait_for("python tls server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let untrusted = TlsPolicy::default();
    let plain = probe(&request(
        port,
        Protocol::Http,
        "site.test",
        untrusted.clone(),
    ))
    .await;
    assert_eq!(plain.outcome, Outcome::ProtocolMismatch, "{plain:?}");
    assert!(plain.detail.starts_with("tls_peer:"), "{plain:?}");

    // The same listener over TLS answers; its certificate is only untrusted.
    let over_tls = probe(&request(port, Protocol::Https, "site.test", untrusted)).await;
    assert_eq!(over_tls.status, 200, "{over_tls:?}");
    assert!(
        over_tls.detail.starts_with("certificate_untrusted:"),
        "{over_tls:?}"
    );
}
